//! Clients of the streaming transports of `/graphql`, for any test: a graphql-ws client
//! (tokio-tungstenite, subprotocol `graphql-transport-ws`) and a GraphQL-over-SSE reader
//! (reqwest, the response read chunk by chunk).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// How long a test waits for any one message before it fails.
const WAIT: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-ws connection to a gateway.
pub struct WsClient {
    socket: Socket,
    /// Messages read while waiting for another operation's, handed out first by `next`.
    pending: std::collections::VecDeque<Value>,
}

/// Opens a websocket on `{url}/graphql` (`url` as `TestApp::url`) with the subprotocol
/// `graphql-transport-ws` and, with `token`, `Authorization: Bearer <token>`.
pub async fn ws_connect(url: &str, token: Option<&str>) -> WsClient {
    match ws_try(url, token, Some("graphql-transport-ws")).await {
        Ok(client) => client,
        Err((status, body)) => panic!("websocket refused: {status} {body}"),
    }
}

/// The same, with any subprotocol (or none); `Err` holds a refused upgrade's status and body.
pub async fn ws_try(
    url: &str,
    token: Option<&str>,
    protocol: Option<&str>,
) -> Result<WsClient, (u16, String)> {
    let ws_url = format!("{}/graphql", url.replacen("http://", "ws://", 1));
    let mut request = ws_url.into_client_request().expect("websocket request");
    if let Some(protocol) = protocol {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).expect("protocol"),
        );
    }
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("token"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(WsClient {
            socket,
            pending: Default::default(),
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            Err((status, body))
        }
        Err(e) => panic!("websocket connect: {e}"),
    }
}

impl WsClient {
    /// Sends one message as JSON text.
    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("send a websocket message");
    }

    /// Sends several messages in one write: the gateway reads them back to back.
    pub async fn send_together(&mut self, messages: &[Value]) {
        for m in messages {
            self.socket
                .feed(Message::text(m.to_string()))
                .await
                .expect("feed");
        }
        self.socket.flush().await.expect("flush");
    }

    /// `connection_init`, with `payload` when given.
    pub async fn init(&mut self, payload: Option<Value>) {
        let message = match payload {
            Some(payload) => json!({ "type": "connection_init", "payload": payload }),
            None => json!({ "type": "connection_init" }),
        };
        self.send(message).await;
    }

    /// Waits for `connection_ack`.
    pub async fn ack(&mut self) -> Value {
        let m = self.next().await;
        assert_eq!(m["type"], "connection_ack", "{m}");
        m
    }

    /// `connection_init` (no payload) and its `connection_ack`.
    pub async fn ready(&mut self) {
        self.init(None).await;
        self.ack().await;
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(subscribe_message(id, query, variables)).await;
    }

    /// The next protocol message; panics on a close or after [`WAIT`].
    pub async fn next(&mut self) -> Value {
        if let Some(m) = self.pending.pop_front() {
            return m;
        }
        loop {
            let m = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a message within the wait");
            match m {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("a JSON message");
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The messages of operation `id` up to its end (`complete` or `error`), in order;
    /// other messages read meanwhile are kept for `next`.
    pub async fn until_done(&mut self, id: &str) -> Vec<Value> {
        let (mut mine, mut others) = (Vec::new(), Vec::new());
        loop {
            let m = self.next().await;
            if m["id"] != id {
                others.push(m);
                continue;
            }
            let done = m["type"] == "complete" || m["type"] == "error";
            mine.push(m);
            if done {
                for m in others.into_iter().rev() {
                    self.pending.push_front(m);
                }
                return mine;
            }
        }
    }

    /// Waits for the server to close with `code` (skipping messages before it); returns the
    /// reason.
    pub async fn expect_close(&mut self, code: u16) -> String {
        loop {
            let m = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a close within the wait");
            match m {
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(u16::from(frame.code), code, "closed: {frame:?}");
                    return frame.reason.to_string();
                }
                Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("expected a close with {code}, got the error {e}"),
            }
        }
    }
}

impl WsClient {
    /// Closes with 1000 and waits for the server's answering close frame; returns its code.
    pub async fn close(mut self) -> Option<u16> {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        self.socket
            .close(Some(frame))
            .await
            .expect("send a close frame");
        loop {
            let m = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("the close handshake ends within the wait");
            match m {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }
}

pub fn subscribe_message(id: &str, query: &str, variables: Value) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })
}

/// One server-sent event: its `event` field and its data (lines joined with `\n`).
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("the event's data is JSON")
    }
}

/// An answer to a GraphQL-over-SSE request: its status and content type, and its events
/// read as they come.
pub struct Sse {
    pub status: u16,
    pub content_type: String,
    response: reqwest::Response,
    buffer: Vec<u8>,
}

/// `POST {url}/graphql` with `Accept: text/event-stream`.
pub async fn sse(url: &str, token: Option<&str>, query: &str, variables: Value) -> Sse {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Sse::read(request).await
}

/// `GET {url}/graphql?query=...` with `Accept: text/event-stream` and the header that
/// passes CSRF prevention.
pub async fn sse_get(url: &str, token: Option<&str>, query: &str) -> Sse {
    let mut request = reqwest::Client::new()
        .get(format!("{url}/graphql"))
        .header("accept", "text/event-stream")
        .header("apollo-require-preflight", "true")
        .query(&[("query", query)]);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Sse::read(request).await
}

impl Sse {
    pub async fn read(request: reqwest::RequestBuilder) -> Sse {
        let response = request.send().await.expect("SSE request");
        Sse {
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            response,
            buffer: Vec::new(),
        }
    }

    /// The body of an answer that is not a stream (an error), as JSON.
    pub async fn json(self) -> Value {
        self.response.json().await.expect("a JSON body")
    }

    /// The next event (comments skipped); `None` once the response has ended.
    pub async fn event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(block).expect("UTF-8 events");
                let mut event = SseEvent {
                    event: String::new(),
                    data: String::new(),
                };
                let mut lines = 0;
                for line in text.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event.event = name.trim().to_string();
                        lines += 1;
                    } else if let Some(data) = line.strip_prefix("data:") {
                        if lines > 0 && !event.data.is_empty() {
                            event.data.push('\n');
                        }
                        event.data.push_str(data.strip_prefix(' ').unwrap_or(data));
                        lines += 1;
                    }
                }
                if lines > 0 {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("an event within the wait")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => return None,
            }
        }
    }

    /// Every event up to the end of the response.
    pub async fn events(mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(e) = self.event().await {
            events.push(e);
        }
        events
    }
}
