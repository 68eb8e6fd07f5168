//! `[limits]` in simpul.toml, as written: what one request may cost. Read into
//! [`Limits`](crate::blueprint::settings::Limits) by `load_gateway`.

use schemars::JsonSchema;
use serde::Deserialize;

/// Request limits: a public endpoint must bound what one request can cost. Every count but
/// the body size and the timeout is checked before the document is validated or run
/// (`server::limits`); over a limit the request is answered 400 naming it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(transform = super::schema::former_name("max_complexity", "max_fields"))]
pub struct LimitsFile {
    /// Deepest field nesting accepted, after fragment expansion (`{ a { b } }` is 2);
    /// default 16, at most 64.
    pub max_depth: usize,
    /// Most fields in one document after fragment expansion, summed over its operations: a
    /// fragment spread twice counts twice (default 2000). `max_complexity` is its former
    /// name.
    #[serde(alias = "max_complexity")]
    pub max_fields: usize,
    /// Most aliased fields in one document after fragment expansion (default 100).
    pub max_aliases: usize,
    /// Most root fields in one operation, after fragment expansion (default 50).
    pub max_root_fields: usize,
    /// Most directives on one field (or fragment, or operation); default 10.
    pub max_directives_per_field: usize,
    /// Most lexical tokens (names, punctuators, values) in one document, counted before it
    /// is parsed (default 15000).
    pub max_tokens: usize,
    /// Most operations in one document (default 100).
    pub max_operations: usize,
    /// Largest request body, in bytes (a number: default 1048576, 1 MiB). A multipart
    /// upload's body may be up to `max_uploads` × `max_upload_bytes` more.
    pub max_body_bytes: usize,
    /// Largest file of a multipart upload (an `Upload` argument), in bytes (a number:
    /// default 5242880, 5 MiB); past it, 413.
    pub max_upload_bytes: usize,
    /// Most files in one multipart request (default 4); past it, 400. 0 turns uploads off.
    pub max_uploads: usize,
    /// Longest a whole request may run: a duration such as "30s" (the default), "500ms",
    /// "2m".
    pub request_timeout: String,
    /// Requests in progress at once; past it, 503 with `Retry-After` instead of a queue
    /// (default 1024).
    pub max_in_flight: usize,
    /// After SIGTERM, how long requests in progress may run before the process exits: a
    /// duration such as "10s" (the default).
    pub shutdown_grace: String,
    /// Most errors in one response; the rest are counted in a last one (default 100).
    pub max_errors: usize,
    /// Websockets and SSE responses open at once in the process, however many clients hold
    /// them; past it, 503 with `Retry-After` (default 10000).
    pub max_live_connections: usize,
    /// Operations running at once on one websocket; past it the next `subscribe` is answered
    /// with an error message, the connection stays (default 32).
    pub max_subscriptions_per_connection: usize,
    /// How long a new websocket may wait before it sends `connection_init`: a duration
    /// such as "10s" (the default); then it is closed with 4408.
    pub connection_init_wait: String,
    /// Most estimated cost of one operation: every field counts 1 for each value it may
    /// produce, lists multiplying what they hold (see `default_list_size`); default 100000.
    pub max_cost: u64,
    /// How many items a list is taken to hold when no `first`, `last`, `limit`, `top` or
    /// `take` argument says (default 20).
    pub default_list_size: u64,
}

impl Default for LimitsFile {
    fn default() -> Self {
        LimitsFile {
            max_depth: 16,
            max_fields: 2000,
            max_aliases: 100,
            max_root_fields: 50,
            max_directives_per_field: 10,
            max_tokens: 15_000,
            max_operations: 100,
            max_body_bytes: 1 << 20,
            max_upload_bytes: 5 << 20,
            max_uploads: 4,
            request_timeout: "30s".into(),
            max_in_flight: 1024,
            shutdown_grace: "10s".into(),
            max_errors: 100,
            max_live_connections: 10_000,
            max_subscriptions_per_connection: 32,
            connection_init_wait: "10s".into(),
            max_cost: 100_000,
            default_list_size: 20,
        }
    }
}
