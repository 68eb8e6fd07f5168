//! `[log]` in simpul.toml: how the gateway writes its log (stderr). Read before anything
//! else, so even startup problems are written in the chosen format.

use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

/// `[log]`, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    /// "text" (the default: one readable line per event) or "json" (one JSON object per
    /// line, with the request id of the request it belongs to, for a log collector).
    /// `SIMPUL_LOG_FORMAT` overrides it.
    #[schemars(extend("enum" = ["text", "json"]))]
    pub format: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(text: &str) -> Result<LogFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "log.format: '{other}' is neither \"text\" nor \"json\""
            )),
        }
    }

    /// The format of the deployment at `dir`, before it is loaded: `SIMPUL_LOG_FORMAT`, else
    /// `[log] format` of its simpul.toml, else text. What cannot be read is text here; the
    /// deployment's check reports it.
    pub fn of(dir: &Path, env: Option<String>) -> LogFormat {
        if let Some(f) = env.as_deref().and_then(|e| LogFormat::parse(e).ok()) {
            return f;
        }
        std::fs::read_to_string(dir.join("simpul.toml"))
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok())
            .and_then(|t| {
                t.get("log")?
                    .get("format")?
                    .as_str()
                    .and_then(|f| LogFormat::parse(f).ok())
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_environment_then_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(LogFormat::of(dir.path(), None), LogFormat::Text);
        std::fs::write(dir.path().join("simpul.toml"), "[log]\nformat = \"json\"\n")
            .expect("write");
        assert_eq!(LogFormat::of(dir.path(), None), LogFormat::Json);
        assert_eq!(
            LogFormat::of(dir.path(), Some("text".into())),
            LogFormat::Text
        );
        assert!(LogFormat::parse("yaml").is_err());
    }
}
