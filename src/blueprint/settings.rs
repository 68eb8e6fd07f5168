//! Settings the running gateway reads: the compiled form of simpul.toml's `[limits]` and
//! `[cache]` and of each connector file, built by `config` at startup.

use std::time::Duration;

/// The deepest `max_depth` accepted. The parser refuses selection sets nested deeper than
/// this anyway, and brackets may nest [`Limits::max_nesting`] deep, which the recursive
/// parser and validator must survive on a worker thread's stack.
pub const MAX_DEPTH_CEILING: usize = 64;

/// A cache policy with parsed durations; all zero means off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
}

impl CachePolicy {
    pub fn is_on(&self) -> bool {
        !self.ttl.is_zero()
    }
}

/// The kind of a connector with its settings, env references expanded.
#[derive(Clone, Debug)]
pub enum ConnectorKind {
    Postgres {
        url: String,
        max_connections: u32,
    },
    Mysql {
        url: String,
        max_connections: u32,
    },
    Sqlite {
        path: String,
        seed: Option<String>,
        max_connections: u32,
    },
    Http {
        base_url: String,
        headers: Vec<(String, String)>,
        format: HttpFormat,
    },
    File {
        path: String,
        csv: CsvFormat,
    },
    /// A remote GraphQL service: `@graphql` fields forward their selection to it.
    Graphql {
        url: String,
        headers: Vec<(String, String)>,
        /// `schema`: the remote SDL kept beside the deployment, for `simpul check`.
        schema: Option<String>,
    },
}

/// How a `[file]` source's CSV files are written; `None` is detected from each file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CsvFormat {
    /// The byte between cells (`delimiter`), else sniffed from the header line.
    pub delimiter: Option<u8>,
    /// The decimal mark of numbers (`decimal`), else detected per column when the
    /// delimiter is not a comma.
    pub decimal: Option<DecimalMark>,
}

/// How a number's fraction is written: `12.5`, or `12,5` (then `.` groups thousands:
/// `1.234,5`), the usual export of a spreadsheet set to Indonesian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalMark {
    Point,
    Comma,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpFormat {
    Json,
    BpsWebApi,
}

impl ConnectorKind {
    pub fn name(&self) -> &'static str {
        match self {
            ConnectorKind::Postgres { .. } => "postgres",
            ConnectorKind::Mysql { .. } => "mysql",
            ConnectorKind::Sqlite { .. } => "sqlite",
            ConnectorKind::Http { .. } => "http",
            ConnectorKind::File { .. } => "file",
            ConnectorKind::Graphql { .. } => "graphql",
        }
    }

    pub fn is_sql(&self) -> bool {
        !matches!(
            self,
            ConnectorKind::Http { .. } | ConnectorKind::Graphql { .. }
        )
    }
}

/// A loaded, validated connector definition.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    pub name: String,
    /// `connectors/NAME.toml`
    pub file: String,
    pub title: String,
    pub opd: String,
    pub timeout: Duration,
    pub max_concurrency: usize,
    pub retries: u32,
    pub circuit_failures: u32,
    pub circuit_open: Duration,
    /// Largest upstream answer accepted, in bytes.
    pub max_response_bytes: u64,
    pub kind: ConnectorKind,
    /// Default cache policy of its bindings (off unless `[cache]` sets a ttl).
    pub cache: CachePolicy,
}

#[derive(Clone, Debug)]
pub struct CacheSettings {
    pub max_memory: u64,
    pub response: bool,
    /// Bytes the compiled plans of all views may hold together (`plan_memory`).
    pub plan_memory: u64,
    /// Operations whose text is longer are planned on every request, never kept
    /// (`plan_max_text`): a flood of distinct long texts cannot fill the plan caches.
    pub plan_max_text: usize,
    pub redis: Option<RedisSettings>,
}

/// `[cache.redis]`, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisSettings {
    pub url: String,
    /// The prefix of this deployment's keys and of its invalidation channel.
    pub namespace: String,
}

/// `[limits]`, read: see `config::LimitsFile` for what each one bounds.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_fields: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub max_directives_per_field: usize,
    pub max_tokens: usize,
    pub max_operations: usize,
    pub max_body_bytes: usize,
    /// Largest file of a multipart upload; also the largest `Upload` in JSON variables.
    pub max_upload_bytes: usize,
    /// Most files in one multipart request.
    pub max_uploads: usize,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
    pub shutdown_grace: Duration,
    /// Most errors in one response.
    pub max_errors: usize,
    /// Websockets and SSE responses open at once (`server::live`).
    pub max_live_connections: usize,
    /// Operations running at once on one websocket.
    pub max_subscriptions_per_connection: usize,
    /// How long a websocket may wait before its `connection_init`.
    pub connection_init_wait: Duration,
    /// Most estimated cost of one operation (`plan::cost`).
    pub max_cost: u64,
    /// Items a list is taken to hold when no size argument says.
    pub default_list_size: u64,
}

impl Limits {
    /// How deep selection sets, inline fragments, fragment spreads, arguments and input
    /// values may nest together: 32 levels more than fields alone, which is plenty for
    /// real operations and still shallow for the recursive parser and validator.
    pub fn max_nesting(&self) -> usize {
        self.max_depth.saturating_add(32)
    }

    /// The largest multipart body: every file at its bound, and the operation and map
    /// within `max_body_bytes`.
    pub fn max_multipart_bytes(&self) -> usize {
        self.max_uploads
            .saturating_mul(self.max_upload_bytes)
            .saturating_add(self.max_body_bytes)
    }
}

/// What one upstream answer may weigh unless its connector says otherwise.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 << 20;

/// `[reload]`: see `config::ReloadFile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadSettings {
    pub watch: bool,
    pub debounce: std::time::Duration,
}

impl Default for ReloadSettings {
    fn default() -> Self {
        ReloadSettings {
            watch: true,
            debounce: std::time::Duration::from_millis(300),
        }
    }
}

/// `[state]` and `[rules]` as the running gateway reads them.
#[derive(Clone, Debug, Default)]
pub struct StateSettings {
    /// The state store's URL, `${env.X}` expanded (relative SQLite paths are resolved
    /// against the deployment directory when it is opened).
    pub url: String,
    pub region: String,
    pub region_name: String,
    pub webhook_max_tries: u32,
    /// `[outbox]`: the first and the longest wait between delivery tries.
    pub outbox_backoff: (std::time::Duration, std::time::Duration),
}
