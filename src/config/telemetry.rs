//! `[telemetry]` in simpul.toml: where traces go (OpenTelemetry over OTLP/HTTP). Read
//! before anything else, with `[log]`, because the tracer is part of the log's subscriber.

use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

/// `[telemetry]`, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFile {
    /// The OTLP/HTTP endpoint of a collector, e.g. `http://otel-collector:4318` (spans are
    /// posted to `/v1/traces` under it, as protobuf). Unset: no traces are exported.
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` overrides it.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the spans (default "simpul"). `OTEL_SERVICE_NAME` overrides it.
    pub service_name: Option<String>,
    /// The share of traces started here that are kept, from 0.0 to 1.0 (default 1.0). A
    /// client's `traceparent` decides for the traces it started.
    pub sample_ratio: Option<f64>,
}

/// What the tracer is set up with.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    /// Where spans are posted: the endpoint with `/v1/traces`.
    pub traces_url: String,
    pub service_name: String,
    pub sample_ratio: f64,
}

impl TelemetryFile {
    /// Problems of `[telemetry]`, for `simpul check` and startup.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(endpoint) = &self.otlp_endpoint
            && let Err(e) = traces_url(endpoint)
        {
            problems.push(e);
        }
        if let Some(ratio) = self.sample_ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            problems.push(format!(
                "telemetry.sample_ratio: {ratio} is not between 0.0 and 1.0"
            ));
        }
        problems
    }
}

/// `endpoint` + `/v1/traces` (unless it already names it), for an http(s) URL.
pub fn traces_url(endpoint: &str) -> Result<String, String> {
    let endpoint = endpoint.trim();
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {}
        _ => {
            return Err(format!(
                "telemetry.otlp_endpoint: '{endpoint}' is not an http:// or https:// URL \
                 (e.g. http://otel-collector:4318)"
            ));
        }
    }
    let base = endpoint.trim_end_matches('/');
    Ok(match base.ends_with("/v1/traces") {
        true => base.to_string(),
        false => format!("{base}/v1/traces"),
    })
}

impl Telemetry {
    /// The tracer settings of the deployment at `dir`, before it is loaded: the OTEL_*
    /// variables in `env`, else `[telemetry]` of its simpul.toml. `None` when no endpoint
    /// is set (no tracer at all), or when what is set cannot be used (the deployment's check
    /// reports it).
    pub fn of(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Option<Telemetry> {
        let file: TelemetryFile = std::fs::read_to_string(dir.join("simpul.toml"))
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|t| t.get("telemetry")?.clone().try_into().ok())
            .unwrap_or_default();
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let endpoint = set("OTEL_EXPORTER_OTLP_ENDPOINT").or(file.otlp_endpoint)?;
        let traces_url = traces_url(&endpoint).ok()?;
        Some(Telemetry {
            traces_url,
            service_name: set("OTEL_SERVICE_NAME")
                .or(file.service_name)
                .unwrap_or_else(|| "simpul".into()),
            sample_ratio: file.sample_ratio.unwrap_or(1.0).clamp(0.0, 1.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_environment_then_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = |_: &str| None;
        assert_eq!(Telemetry::of(dir.path(), &none), None);
        std::fs::write(
            dir.path().join("simpul.toml"),
            "[telemetry]\notlp_endpoint = \"http://collector:4318/\"\nsample_ratio = 0.5\n",
        )
        .expect("write");
        let t = Telemetry::of(dir.path(), &none).expect("configured");
        assert_eq!(t.traces_url, "http://collector:4318/v1/traces");
        assert_eq!((t.service_name.as_str(), t.sample_ratio), ("simpul", 0.5));
        let env = |name: &str| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("https://otel.example:4318".to_string()),
            "OTEL_SERVICE_NAME" => Some("simpul-trenggalek".to_string()),
            _ => None,
        };
        let t = Telemetry::of(dir.path(), &env).expect("configured");
        assert_eq!(t.traces_url, "https://otel.example:4318/v1/traces");
        assert_eq!(t.service_name, "simpul-trenggalek");
    }

    #[test]
    fn unusable_settings_are_problems() {
        let file = TelemetryFile {
            otlp_endpoint: Some("collector:4318".into()),
            service_name: None,
            sample_ratio: Some(1.5),
        };
        let problems = file.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("not an http:// or https:// URL"));
        assert_eq!(
            traces_url("http://c:4318/v1/traces").as_deref(),
            Ok("http://c:4318/v1/traces")
        );
    }
}
