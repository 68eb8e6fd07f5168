//! `[limits]` in simpul.toml, as written: what one request may cost. Read into
//! [`Limits`](crate::blueprint::settings::Limits) by `load_gateway`.

use serde::Deserialize;

/// Request limits: a public endpoint must bound what one request can cost. Every count but
/// the body size and the timeout is checked before the document is validated or run
/// (`server::limits`); over a limit the request is answered 400 naming it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsFile {
    /// Deepest field nesting accepted, after fragment expansion (`{ a { b } }` is 2).
    pub max_depth: usize,
    /// Most fields in one document after fragment expansion, summed over its operations: a
    /// fragment spread twice counts twice. `max_complexity` is its former name.
    #[serde(alias = "max_complexity")]
    pub max_fields: usize,
    /// Most aliased fields in one document after fragment expansion.
    pub max_aliases: usize,
    /// Most root fields in one operation, after fragment expansion.
    pub max_root_fields: usize,
    /// Most directives on one field (or fragment, or operation).
    pub max_directives_per_field: usize,
    /// Most lexical tokens (names, punctuators, values) in one document, counted before it
    /// is parsed.
    pub max_tokens: usize,
    /// Most operations in one document.
    pub max_operations: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a whole request may run.
    pub request_timeout: String,
    /// Requests in progress at once; past it, 503 with `Retry-After` instead of a queue.
    pub max_in_flight: usize,
    /// After SIGTERM, how long requests in progress may run before the process exits.
    pub shutdown_grace: String,
    /// Most errors in one response; the rest are counted in a last one.
    pub max_errors: usize,
    /// Most estimated cost of one operation: every field counts 1 for each value it may
    /// produce, lists multiplying what they hold (see `default_list_size`).
    pub max_cost: u64,
    /// How many items a list is taken to hold when no `first`, `last`, `limit`, `top` or
    /// `take` argument says.
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
            request_timeout: "30s".into(),
            max_in_flight: 1024,
            shutdown_grace: "10s".into(),
            max_errors: 100,
            max_cost: 100_000,
            default_list_size: 20,
        }
    }
}
