//! Serde models of `simpul.toml` and `connectors/*.toml`, and their loading.
//!
//! Loading never stops at the first problem: every file is read and every problem becomes a
//! [`Diagnostic`] with its place. Unknown keys are errors (`deny_unknown_fields`), so a typo
//! cannot silently turn a setting off.

mod auth;
mod cache;
mod connector;
pub mod dashboard;
mod limits;
pub mod log;
mod reload;
pub mod schema;
mod security;
mod state;
pub mod telemetry;

pub use crate::blueprint::settings::{
    CachePolicy, CacheSettings, ConnectorConfig, ConnectorKind, CsvFormat,
    DEFAULT_MAX_RESPONSE_BYTES, DecimalMark, HttpFormat, Limits, MAX_DEPTH_CEILING,
};
pub mod duration;
pub mod env;

pub use auth::{AuthFile, AuthSettings, check_jwt_secret};
pub use cache::{GatewayCacheFile, RedisFile};
pub use connector::{load_connector, load_connectors, toml_files};
pub use dashboard::{Dashboard, DashboardFile};
pub use limits::LimitsFile;
pub use reload::ReloadFile;
pub use security::{Rate, Security, SecurityFile, parse_rate};

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::diagnostic::{Diagnostic, line_col};
use env::EnvLookup;

/// `simpul.toml`: gateway settings, all optional.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayFile {
    /// Address to listen on when neither `--listen` nor `SIMPUL_LISTEN` is given, e.g.
    /// "0.0.0.0:4000" (default "127.0.0.1:4000").
    pub listen: Option<String>,
    /// `[limits]`: what one request may cost; over a limit it is answered 400 naming it.
    #[serde(default)]
    pub limits: LimitsFile,
    /// `[cache]`: the in-process cache of every binding, whole responses, compiled plans,
    /// and an optional Redis second level.
    #[serde(default)]
    pub cache: GatewayCacheFile,
    /// `[admin]`: the token-protected cache endpoints under `/admin`.
    #[serde(default)]
    pub admin: AdminFile,
    /// `[auth]`: the bearer tokens accepted; none unless a secret or a JWKS is set.
    #[serde(default)]
    pub auth: AuthFile,
    /// `[security]`: CORS, CSRF prevention, introspection per tier, persisted operations,
    /// the PUBLIC safelist and rate limits.
    #[serde(default)]
    pub security: SecurityFile,
    /// `[state]`: where alerts, follow-ups and rule runs are kept.
    #[serde(default)]
    pub state: state::StateFile,
    /// `[rules]`: settings shared by the rules of `rules/`.
    #[serde(default)]
    pub rules: state::RulesFile,
    /// `[outbox]`: retries of `@outbox` mutations' deliveries.
    #[serde(default)]
    pub outbox: state::OutboxFile,
    /// `[dashboard]`: the deployment's own web page, served at `/`.
    #[serde(default)]
    pub dashboard: DashboardFile,
    /// `[log]`: how the log is written.
    #[serde(default)]
    pub log: log::LogFile,
    /// `[telemetry]`: where traces are exported (OpenTelemetry, OTLP/HTTP).
    #[serde(default)]
    pub telemetry: telemetry::TelemetryFile,
    /// `[reload]`: picking up edits of the deployment without a restart.
    #[serde(default)]
    pub reload: ReloadFile,
    /// `[federation]`: serving the schema as an Apollo Federation v2 subgraph.
    #[serde(default)]
    pub federation: FederationFile,
}

/// `[federation]`: Simpul as an Apollo Federation v2 subgraph (`_service`, `_entities`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FederationFile {
    /// Add `_service { sdl }` and `_entities(representations:)` to Query, so a federation
    /// router can compose this deployment into a supergraph (default false).
    #[serde(default)]
    pub enabled: bool,
}

/// `[admin]`: the admin endpoints are off unless a token is set (from the environment).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// Bearer token of `/admin/cache` and `/admin/cache/invalidate`, from the environment:
    /// `"${env.SIMPUL_ADMIN_TOKEN}"`. Unset or empty: the endpoints are off.
    pub token: Option<String>,
}

/// One `connectors/NAME.toml`: one data source (its stem is the connector's name), with
/// exactly one kind table: `[postgres]`, `[mysql]`, `[sqlite]`, `[http]`, `[file]` or
/// `[graphql]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorFile {
    /// Human title shown in `extensions.sources` and `Query.sources`.
    pub title: Option<String>,
    /// Owning OPD slug, e.g. "dinsos".
    pub opd: Option<String>,
    /// Longest one upstream call may take, retries included: a duration such as "2s",
    /// "500ms" or "1m" (default "5s").
    pub timeout: Option<String>,
    /// Most upstream calls in flight at once (default 32).
    pub max_concurrency: Option<usize>,
    /// Extra attempts for a read that failed to connect, within its timeout (default 2).
    pub retries: Option<u32>,
    /// Consecutive failures that open the circuit (default 5).
    pub circuit_failures: Option<u32>,
    /// How long an open circuit refuses calls before one probe: a duration such as "10s"
    /// (the default).
    pub circuit_open: Option<String>,
    /// Largest upstream answer accepted, a size such as "32MiB" (the default) or "500KB";
    /// checked while reading.
    pub max_response_bytes: Option<String>,
    /// `[postgres]`: a PostgreSQL database.
    pub postgres: Option<ServerDbFile>,
    /// `[mysql]`: a MySQL or MariaDB database.
    pub mysql: Option<ServerDbFile>,
    /// `[sqlite]`: a SQLite database file, optionally created from a seed script.
    pub sqlite: Option<SqliteFile>,
    /// `[http]`: a JSON API (or BPS WebAPI), or JSON snapshots in a folder.
    pub http: Option<HttpFile>,
    /// `[file]`: CSV, XLSX or JSON files served as SQL tables, reloaded when they change.
    pub file: Option<FileSourceFile>,
    /// `[graphql]`: a remote GraphQL service (`@graphql` fields forward their selection).
    pub graphql: Option<GraphqlFile>,
    /// `[cache]`: cache defaults for every binding of this connector (off without a `ttl`).
    pub cache: Option<CacheFile>,
}

/// `[cache]`: how long answers stay fresh, and how long stale ones may still be served.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheFile {
    /// Fresh for this long, a duration such as "5m", "1h" or "30s"; served as HIT.
    pub ttl: Option<String>,
    /// After the TTL, serve the stale value while one background refresh runs, for this long
    /// (a duration such as "1m").
    pub stale_while_revalidate: Option<String>,
    /// After the TTL, serve the stale value when the source fails, for this long (a duration
    /// such as "7d").
    pub stale_if_error: Option<String>,
}

/// `[postgres]` or `[mysql]`: a database server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerDbFile {
    /// Connection URL with its credentials from the environment, e.g.
    /// `"${env.DINSOS_DATABASE_URL}"` (`postgres://user:pass@host/db`,
    /// `mysql://user:pass@host/db`).
    pub url: String,
    /// Most connections the pool opens (default 8).
    pub max_connections: Option<u32>,
}

/// `[sqlite]`: a SQLite database file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteFile {
    /// Database file, relative to the deployment directory; `${env.X}` is expanded.
    pub path: String,
    /// SQL script that creates the database when the file is missing or older than the seed.
    pub seed: Option<String>,
    /// Most connections the pool opens (default 4).
    pub max_connections: Option<u32>,
}

/// `[http]`: an HTTP JSON API.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// `http(s)://host[:port][/prefix]`, or `file:DIR` to answer from JSON snapshots; often
    /// `"${env.X:-default}"`.
    pub base_url: String,
    /// Headers sent with every call, e.g. `{ Authorization = "Bearer ${env.API_TOKEN}" }`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response decoder: "json" (default) or "bps-webapi".
    #[schemars(extend("enum" = ["json", "bps-webapi"]))]
    pub format: Option<String>,
}

/// `[graphql]`: a remote GraphQL service, called with POST and a JSON body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphqlFile {
    /// The service's endpoint, `http(s)://host[:port]/graphql`; often `"${env.X}"`.
    pub url: String,
    /// Headers sent with every call, e.g. `{ Authorization = "Bearer ${env.JATIM_TOKEN}" }`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The remote schema as SDL, relative to the deployment directory: what `simpul check`
    /// validates the `@graphql` bindings against when the service cannot be reached.
    pub schema: Option<String>,
}

/// `[file]`: spreadsheet exports and JSON files as SQL tables (a table per CSV or JSON file,
/// per workbook sheet).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSourceFile {
    /// A CSV, XLSX or JSON file, or a directory of them, relative to the deployment;
    /// `${env.X}` is expanded.
    pub path: String,
    /// The character between the cells of CSV files, e.g. ";" or "\t". Unset: the most
    /// frequent of `,` `;` tab `|` in the header line (outside quotes).
    #[schemars(length(min = 1, max = 1))]
    pub delimiter: Option<String>,
    /// The decimal mark of numbers in CSV files: "." or "," (then "." groups thousands:
    /// "1.234,5"). Unset: "." when the delimiter is a comma; otherwise detected per column
    /// ("," when its numbers are written "12,5" and none "12.5").
    #[schemars(extend("enum" = [".", ","]))]
    pub decimal: Option<String>,
}

#[derive(Debug)]
pub struct GatewayConfig {
    pub listen: Option<String>,
    pub limits: Limits,
    pub cache: CacheSettings,
    pub admin_token: Option<String>,
    /// `[auth]` with `${env.X}` expanded; its values are checked (a diagnostic each) but
    /// kept as written, so the authenticator is built from one source.
    pub auth: AuthFile,
    pub security: Security,
    pub state: crate::blueprint::settings::StateSettings,
    /// The page at `/`, read whole at startup.
    pub dashboard: Option<std::sync::Arc<Dashboard>>,
    pub reload: crate::blueprint::settings::ReloadSettings,
    /// `[federation] enabled`.
    pub federation: bool,
}

/// "256MiB", "64MB", "1GiB", "1048576".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("size '{text}' does not start with a number"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit '{other}' (use KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    Ok(n * mult)
}

/// Reads `simpul.toml` (optional) from `dir`.
pub fn load_gateway(dir: &Path, env: EnvLookup, diags: &mut Vec<Diagnostic>) -> GatewayConfig {
    let file = "simpul.toml";
    let text = std::fs::read_to_string(dir.join(file)).ok();
    let parsed: GatewayFile = match &text {
        Some(text) => {
            diags.extend(env::check_file(file, text, env));
            parse_toml(file, text, diags).unwrap_or_default()
        }
        None => GatewayFile::default(),
    };
    let timeout = duration::parse(&parsed.limits.request_timeout).unwrap_or_else(|e| {
        diags.push(Diagnostic::new(
            file,
            1,
            1,
            format!("limits.request_timeout: {e}"),
        ));
        Duration::from_secs(30)
    });
    let shutdown_grace = duration::parse(&parsed.limits.shutdown_grace).unwrap_or_else(|e| {
        diags.push(Diagnostic::new(
            file,
            1,
            1,
            format!("limits.shutdown_grace: {e}"),
        ));
        Duration::from_secs(10)
    });
    let connection_init_wait =
        duration::parse(&parsed.limits.connection_init_wait).unwrap_or_else(|e| {
            diags.push(Diagnostic::new(
                file,
                1,
                1,
                format!("limits.connection_init_wait: {e}"),
            ));
            Duration::from_secs(10)
        });
    let mut max_depth = parsed.limits.max_depth;
    if max_depth > MAX_DEPTH_CEILING {
        let text = text.as_deref().unwrap_or_default();
        let (line, col) = line_col(text, text.find("max_depth").unwrap_or(0));
        diags.push(
            Diagnostic::new(
                file,
                line,
                col,
                format!("limits.max_depth: {max_depth} is more than {MAX_DEPTH_CEILING}"),
            )
            .hint(format!(
                "the parser refuses selections nested deeper than {MAX_DEPTH_CEILING}"
            )),
        );
        max_depth = MAX_DEPTH_CEILING;
    }
    let max_memory = parse_size(&parsed.cache.max_memory).unwrap_or_else(|e| {
        diags.push(Diagnostic::new(
            file,
            1,
            1,
            format!("cache.max_memory: {e}"),
        ));
        256 << 20
    });
    let mut size = |key: &str, text: &str, default: u64| {
        parse_size(text).unwrap_or_else(|e| {
            diags.push(Diagnostic::new(file, 1, 1, format!("cache.{key}: {e}")));
            default
        })
    };
    let plan_memory = size("plan_memory", &parsed.cache.plan_memory, 64 << 20);
    let plan_max_text = size("plan_max_text", &parsed.cache.plan_max_text, 32 << 10);
    let expand = |s: &str| env::expand(s, env).unwrap_or_default();
    let auth = AuthFile {
        jwt_secret: parsed.auth.jwt_secret.as_deref().map(expand),
        jwks_url: parsed.auth.jwks_url.as_deref().map(expand),
        issuer: parsed.auth.issuer.as_deref().map(expand),
        audience: parsed.auth.audience.as_deref().map(expand),
        leeway: parsed.auth.leeway.as_deref().map(expand),
        metrics_token: parsed.auth.metrics_token.as_deref().map(expand),
    };
    // A section's problems, each at the section's header.
    let mut section = |header: &str, problems: Vec<String>| {
        let text = text.as_deref().unwrap_or_default();
        let (line, col) = line_col(text, text.find(header).unwrap_or(0));
        diags.extend(
            problems
                .into_iter()
                .map(|p| Diagnostic::new(file, line, col, p)),
        );
    };
    if let Err(e) = auth.settings() {
        section("[auth]", vec![e]);
    }
    if let Some(Err(e)) = parsed.log.format.as_deref().map(log::LogFormat::parse) {
        section("[log]", vec![e]);
    }
    let telemetry = parsed.telemetry.problems();
    if !telemetry.is_empty() {
        section("[telemetry]", telemetry);
    }
    let security = parsed.security.check(dir).unwrap_or_else(|problems| {
        section("[security", problems);
        Security::default()
    });
    let dashboard = parsed.dashboard.load(dir).unwrap_or_else(|problems| {
        section("[dashboard", problems);
        None
    });
    let redis = parsed.cache.redis.as_ref().and_then(|r| {
        let namespace = r
            .namespace(&expand)
            .map_err(|e| section("[cache.redis]", vec![e]))
            .ok()?;
        Some(crate::blueprint::settings::RedisSettings {
            url: expand(&r.url),
            namespace,
        })
    });
    let reload = parsed.reload.settings().unwrap_or_else(|e| {
        section("[reload]", vec![e]);
        crate::blueprint::settings::ReloadSettings::default()
    });
    let state = state::settings(
        &parsed.state,
        &parsed.rules,
        &parsed.outbox,
        expand,
        &mut |p| diags.push(Diagnostic::new(file, 1, 1, p)),
    );
    GatewayConfig {
        federation: parsed.federation.enabled,
        reload,
        dashboard: dashboard.map(std::sync::Arc::new),
        state,
        auth,
        security,
        cache: CacheSettings {
            max_memory,
            response: parsed.cache.response,
            plan_memory,
            plan_max_text: usize::try_from(plan_max_text).unwrap_or(usize::MAX),
            redis,
        },
        admin_token: parsed
            .admin
            .token
            .as_deref()
            .map(expand)
            .filter(|t| !t.is_empty()),
        listen: parsed.listen,
        limits: Limits {
            max_depth,
            max_fields: parsed.limits.max_fields,
            max_aliases: parsed.limits.max_aliases,
            max_root_fields: parsed.limits.max_root_fields,
            max_directives_per_field: parsed.limits.max_directives_per_field,
            max_tokens: parsed.limits.max_tokens,
            max_operations: parsed.limits.max_operations,
            max_errors: parsed.limits.max_errors.max(1),
            max_live_connections: parsed.limits.max_live_connections,
            max_subscriptions_per_connection: parsed.limits.max_subscriptions_per_connection,
            connection_init_wait,
            max_cost: parsed.limits.max_cost,
            default_list_size: parsed.limits.default_list_size.max(1),
            max_body_bytes: parsed.limits.max_body_bytes,
            max_upload_bytes: parsed.limits.max_upload_bytes,
            max_uploads: parsed.limits.max_uploads,
            request_timeout: timeout,
            max_in_flight: parsed.limits.max_in_flight.max(1),
            shutdown_grace,
        },
    }
}

/// Deserializes TOML, turning a parse error into a positioned diagnostic.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    match toml::from_str(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            diags.push(Diagnostic::new(
                file,
                line,
                col,
                e.message().trim().to_string(),
            ));
            None
        }
    }
}
