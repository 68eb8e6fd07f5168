//! Simpul: one live, cached GraphQL API over the databases, APIs and spreadsheets of a
//! regional government's agencies.
//!
//! Startup compiles a deployment directory (`schema.graphql`, `connectors/*.toml`,
//! `simpul.toml`) into a [`blueprint::Blueprint`]; the server then only reads it.

// No panics: no unwrap, expect, indexing or panic outside tests, on the request path and
// at startup alike (a bad deployment is a diagnostic, never a crash).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod access;
pub mod alerts;
pub mod auth;
pub mod blueprint;
pub mod cache;
pub mod check;
pub mod compile;
pub mod config;
pub mod connectors;
pub mod diagnostic;
pub mod digest;
pub mod error;
pub mod metrics;
pub mod outbox;
pub mod plan;
pub mod resolve;
pub mod schema;
pub mod server;
pub mod state;
pub mod telemetry;

/// Installs the process-wide TLS crypto provider (ring). reqwest is built without one and
/// panics on first use if none is installed, so every entry point calls this first.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
