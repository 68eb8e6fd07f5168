//! The messages of `graphql-transport-ws` (graphql-ws's PROTOCOL.md): what a client may
//! send, read strictly (anything else closes the socket with 4400), and what the server
//! sends, written without building JSON trees around result bodies.

use axum::extract::ws::{CloseFrame, Message};
use axum::http::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ErrorCode;

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Incoming {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    /// Its payload, if any, is read by nobody.
    Pong {},
    Subscribe {
        id: String,
        payload: Value,
    },
    Complete {
        id: String,
    },
}

impl Incoming {
    /// Reads one text (or binary) message; `Err` says what is wrong with it.
    pub(super) fn parse(bytes: &[u8]) -> Result<Incoming, String> {
        // serde would also read a tagged enum from an array.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err("invalid message: not a JSON object".into());
        }
        let message: Incoming =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid message: {e}"))?;
        match &message {
            Incoming::Subscribe { id, .. } | Incoming::Complete { id } if id.is_empty() => {
                Err("invalid message: an empty id".into())
            }
            _ => Ok(message),
        }
    }
}

pub(super) fn ack() -> Message {
    Message::text(r#"{"type":"connection_ack"}"#)
}

/// The answer to a ping, with its payload echoed.
pub(super) fn pong(payload: Option<Value>) -> Message {
    Message::text(match payload {
        Some(payload) => json!({ "type": "pong", "payload": payload }).to_string(),
        None => r#"{"type":"pong"}"#.to_string(),
    })
}

/// `next` with one execution result body, as the executor wrote it.
pub(super) fn next(id: &str, body: Vec<u8>) -> Message {
    let mut out = String::with_capacity(body.len() + id.len() + 40);
    out.push_str(r#"{"type":"next","id":"#);
    out.push_str(&Value::from(id).to_string());
    out.push_str(r#","payload":"#);
    match String::from_utf8(body) {
        Ok(body) => out.push_str(&body),
        // The executor writes JSON, so UTF-8: this is a gap in it, never the client's fault.
        Err(_) => {
            let error = json!({ "errors": [{ "message": "the result is not UTF-8", "extensions": { "code": ErrorCode::Internal.as_str() } }] });
            out.push_str(&error.to_string());
        }
    }
    out.push('}');
    Message::text(out)
}

/// `error`: the operation ends with these request errors (no `complete` follows).
pub(super) fn error(id: &str, errors: Vec<Value>) -> Message {
    Message::text(json!({ "type": "error", "id": id, "payload": errors }).to_string())
}

/// `error` with one error of `code`.
pub(super) fn refusal(id: &str, code: ErrorCode, message: &str) -> Message {
    error(
        id,
        vec![json!({ "message": message, "extensions": { "code": code.as_str() } })],
    )
}

pub(super) fn complete(id: &str) -> Message {
    Message::text(json!({ "type": "complete", "id": id }).to_string())
}

/// Why the server closes a socket: a close code and its reason.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Closing {
    pub code: u16,
    pub reason: String,
}

/// A close frame's reason holds at most 123 bytes (RFC 6455 5.5).
const MAX_REASON: usize = 123;

impl Closing {
    pub(super) fn new(code: u16, reason: impl Into<String>) -> Closing {
        let mut reason = reason.into();
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Closing { code, reason }
    }

    pub(super) fn frame(self) -> CloseFrame {
        CloseFrame {
            code: self.code,
            reason: self.reason.into(),
        }
    }
}

/// The `Authorization` value a `connection_init` payload carries: `{"Authorization":
/// "Bearer <jwt>"}`, `{"authorization": ...}` or `{"token": "<jwt>"}`; `None` without one.
pub(super) fn token(payload: Option<&Value>) -> Result<Option<HeaderValue>, String> {
    let fields = match payload {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err("invalid message: connection_init's payload is an object".into()),
    };
    let text = match (
        fields
            .get("Authorization")
            .or_else(|| fields.get("authorization")),
        fields.get("token"),
    ) {
        (Some(Value::String(header)), _) => header.clone(),
        (None, Some(Value::String(token))) => format!("Bearer {token}"),
        (None, None) => return Ok(None),
        // A token that is not text is no token: refused as one.
        _ => String::new(),
    };
    // A value a header cannot hold is refused by the authenticator as malformed.
    Ok(Some(
        HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("malformed")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_read_strictly() {
        assert!(matches!(
            Incoming::parse(br#"{"type":"connection_init"}"#),
            Ok(Incoming::ConnectionInit { payload: None })
        ));
        assert!(matches!(
            Incoming::parse(br#"{"type":"subscribe","id":"1","payload":{"query":"{a}"}}"#),
            Ok(Incoming::Subscribe { .. })
        ));
        for bad in [
            &br#"{"type":"nope"}"#[..],
            br#"{"type":"subscribe","id":"1"}"#,
            br#"{"type":"complete","id":""}"#,
            b"not json",
            br#"["connection_init"]"#,
        ] {
            assert!(
                Incoming::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_close_reason_is_cut_to_123_bytes_on_a_character() {
        let closing = Closing::new(
            4409,
            format!("Subscriber for {} already exists", "é".repeat(100)),
        );
        assert!(closing.reason.len() <= 123);
        assert!(closing.reason.starts_with("Subscriber for é"));
    }

    #[test]
    fn next_carries_the_body_as_written() {
        let Message::Text(text) = next("a\"b", b"{\"data\":1}".to_vec()) else {
            panic!("text");
        };
        let v: Value = serde_json::from_str(text.as_str()).expect("json");
        assert_eq!(
            v,
            json!({ "type": "next", "id": "a\"b", "payload": { "data": 1 } })
        );
    }
}
