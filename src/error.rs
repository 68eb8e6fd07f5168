//! The closed set of error codes a client can see, and the error a connector returns.
//!
//! Clients get a code, the connector's name and a short sentence; the upstream's own
//! message (SQL text, stack traces, URLs with keys) goes to the log only.

use std::fmt;
use std::sync::Arc;

use async_graphql::ErrorExtensions;

/// Every `extensions.code` a response can carry (DESIGN.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    SourceUnavailable,
    SourceTimeout,
    SourceError,
    SourceBadResponse,
    Forbidden,
    Unauthenticated,
    RateLimited,
    BadRequest,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::SourceUnavailable => "SOURCE_UNAVAILABLE",
            ErrorCode::SourceTimeout => "SOURCE_TIMEOUT",
            ErrorCode::SourceError => "SOURCE_ERROR",
            ErrorCode::SourceBadResponse => "SOURCE_BAD_RESPONSE",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The sentence a client sees for a failure of `connector`.
    pub fn public_message(self, connector: &str) -> String {
        match self {
            ErrorCode::SourceUnavailable => format!("data source '{connector}' is unavailable"),
            ErrorCode::SourceTimeout => format!("data source '{connector}' did not answer in time"),
            ErrorCode::SourceError => format!("data source '{connector}' returned an error"),
            ErrorCode::SourceBadResponse => {
                format!("data source '{connector}' returned a response that could not be read")
            }
            _ => format!("request to data source '{connector}' failed"),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed upstream call. Cheap to clone: it is shared by every waiter of a coalesced call.
#[derive(Clone, Debug)]
pub struct SourceError {
    pub code: ErrorCode,
    pub connector: Arc<str>,
    /// Internal detail for the log; never sent to a client.
    pub detail: Arc<str>,
    /// The source said plainly that it cannot serve (connection refused, unknown host,
    /// credentials or database rejected): trying again within the same call cannot help.
    pub definite: bool,
    /// An HTTP upstream's status, when it answered one.
    pub status: Option<u16>,
}

impl SourceError {
    pub fn new(code: ErrorCode, connector: &Arc<str>, detail: impl fmt::Display) -> Self {
        SourceError {
            code,
            connector: connector.clone(),
            detail: detail.to_string().into(),
            definite: false,
            status: None,
        }
    }

    /// The same error, with the HTTP status the upstream answered.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The upstream refused the request itself (a 4xx other than a timeout, a conflict in
    /// progress or a rate limit): sending the same request again cannot succeed.
    pub fn is_refusal(&self) -> bool {
        self.status
            .is_some_and(|s| (400..500).contains(&s) && ![408, 409, 425, 429].contains(&s))
    }

    /// The same error, marked as one that retrying within the call cannot cure.
    pub fn definite(mut self) -> Self {
        self.definite = true;
        self
    }

    /// The GraphQL error a client sees: code and connector, no internal detail.
    pub fn to_graphql(&self) -> async_graphql::Error {
        let code = self.code.as_str();
        let connector = self.connector.to_string();
        async_graphql::Error::new(self.code.public_message(&self.connector)).extend_with(
            move |_, ext| {
                ext.set("code", code);
                ext.set("connector", connector.as_str());
            },
        )
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} from '{}': {}",
            self.code, self.connector, self.detail
        )
    }
}

/// A GraphQL error with a code and no connector (limits, access, internal faults).
pub fn graphql_error(code: ErrorCode, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(move |_, ext| ext.set("code", code.as_str()))
}
