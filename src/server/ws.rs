//! GraphQL over WebSocket (`graphql-transport-ws`, graphql-ws's PROTOCOL.md) on
//! `GET /graphql`: the upgrade admitted like a request (token, rate, and a place among
//! `max_live_connections`), then one connection: `connection_init` (a token in its payload
//! may name the caller), operations multiplexed by id, each through `operation::start`.
//!
//! What a client sends cannot grow memory past bounds: a message over `max_body_bytes`
//! closes the socket, at most `max_subscriptions_per_connection` operations run at once,
//! and what the server sends waits in a bounded queue (a subscription that would overflow
//! it ends with an error). The connection ends when its token expires (4403) and when the
//! server drains (1001).

mod message;
mod task;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::AppState;
use super::caller::{admit, spend};
use super::http::{client_ip, error_response, params};
use super::live;
use crate::auth::Caller;
use crate::error::ErrorCode;
use message::{Closing, Incoming};
use task::{Op, Outlet};

pub(super) const PROTOCOL: &str = "graphql-transport-ws";

/// Messages waiting to be written to one socket; past it a subscription ends (task.rs).
const OUT_QUEUE: usize = 16;
/// A socket that takes longer than this to take one message is given up.
const WRITE_STALL: Duration = Duration::from_secs(30);
/// After its close frame, how long a socket is kept for the client to read it and answer.
const LINGER: Duration = Duration::from_secs(1);

/// Whether a request asks to become a websocket.
pub(super) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Admits a websocket upgrade: the subprotocol, a live place, the header's token and the
/// caller's rate, as for a request.
pub(super) async fn upgrade(state: AppState, mut parts: Parts) -> Response {
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let speaks = upgrade
        .requested_protocols()
        .any(|p| p.as_bytes().eq_ignore_ascii_case(PROTOCOL.as_bytes()));
    if !speaks {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "a websocket on /graphql speaks graphql-ws: ask for the subprotocol \
             graphql-transport-ws",
        );
    }
    let place = match state.live.admit() {
        Ok(place) => place,
        Err(busy) => return *busy,
    };
    let ip = client_ip(&parts, &state);
    let caller = match admit(&state, parts.headers.get(header::AUTHORIZATION), ip).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let limits = &state.engine.blueprint.limits;
    let max = limits.max_body_bytes;
    let init_wait = Instant::now() + limits.connection_init_wait;
    upgrade
        .protocols([PROTOCOL])
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(state, socket, caller, ip, init_wait, place))
}

/// What ends a connection besides its client: no `connection_init` in time, the token's
/// expiry, the server draining, or the writer giving up on the socket.
struct Ends {
    init: Option<Instant>,
    expiry: Option<Instant>,
    draining: watch::Receiver<bool>,
    out: mpsc::Sender<Message>,
}

impl Ends {
    /// The close to send, or `None` when the socket cannot take one any more.
    async fn next(&mut self) -> Option<Closing> {
        tokio::select! {
            biased;
            _ = live::drained(&mut self.draining) => {
                Some(Closing::new(1001, "the server is shutting down"))
            }
            _ = live::until(self.init) => {
                Some(Closing::new(4408, "Connection initialisation timeout"))
            }
            _ = live::until(self.expiry) => Some(Closing::new(4403, "token expired")),
            _ = self.out.closed() => None,
        }
    }
}

/// The state of one connection, as its reading loop keeps it.
struct Connection {
    state: AppState,
    caller: Caller,
    ip: Option<IpAddr>,
    initialised: bool,
    acknowledged: bool,
    running: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
    out: mpsc::Sender<Message>,
    done: mpsc::UnboundedSender<Op>,
}

/// What one client message asks of the connection.
enum Turn {
    Nothing,
    Reply(Message),
    Close(Closing),
}

async fn serve(
    state: AppState,
    socket: WebSocket,
    caller: Caller,
    ip: Option<IpAddr>,
    init: Instant,
    place: OwnedSemaphorePermit,
) {
    let (sink, mut incoming) = socket.split();
    let (out, queue) = mpsc::channel(OUT_QUEUE);
    let (close, closed) = oneshot::channel();
    let writer = tokio::spawn(write(sink, queue, closed));
    let (done, mut finished) = mpsc::unbounded_channel();
    let mut ends = Ends {
        init: Some(init),
        expiry: live::expiry(state.auth.expires(&caller)),
        draining: state.live.draining(),
        out: out.clone(),
    };
    let mut conn = Connection {
        state,
        caller,
        ip,
        initialised: false,
        acknowledged: false,
        running: HashMap::new(),
        generation: 0,
        out,
        done,
    };
    let mut client_closed = false;
    let closing = loop {
        // Biased: an operation's end is seen before any message the client sent after
        // reading its `complete`, so a reused id is never taken for a duplicate.
        let turn = tokio::select! {
            biased;
            end = ends.next() => break end,
            Some(op) = finished.recv() => {
                conn.finished(&op);
                continue;
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => conn.take(text.as_bytes(), &mut ends).await,
                Some(Ok(Message::Binary(bytes))) => conn.take(&bytes, &mut ends).await,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => Turn::Nothing,
                Some(Ok(Message::Close(_))) => {
                    client_closed = true;
                    break None;
                }
                None => break None,
                // Over `max_body_bytes`, or not a websocket frame: the reason says which.
                Some(Err(e)) => Turn::Close(Closing::new(4400, e.to_string())),
            },
        };
        match turn {
            Turn::Nothing => {}
            Turn::Close(closing) => break Some(closing),
            Turn::Reply(reply) => tokio::select! {
                biased;
                end = ends.next() => break end,
                sent = conn.out.send(reply) => if sent.is_err() { break None },
            },
        }
    };
    conn.end();
    match closing {
        Some(closing) => {
            let _ = close.send(closing.frame());
            linger(&mut incoming).await;
        }
        None => {
            drop(close);
            // Reading on sends the answer to the client's close frame, which the
            // websocket has queued.
            if client_closed {
                linger(&mut incoming).await;
            }
        }
    }
    let _ = tokio::time::timeout(WRITE_STALL, writer).await;
    drop(place);
}

/// Keeps the socket open a moment after the close frame: dropped at once with bytes still
/// unread (the rest of an oversized message), it would be reset, and the client could
/// lose the close frame with its reason.
async fn linger(incoming: &mut SplitStream<WebSocket>) {
    let _ = tokio::time::timeout(LINGER, async {
        loop {
            match incoming.next().await {
                Some(Ok(_)) => {}
                None => return,
                Some(Err(_)) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
}

/// Writes the queue to the socket, and the close frame when one comes (before whatever
/// is still queued).
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Message>,
    mut close: oneshot::Receiver<CloseFrame>,
) {
    loop {
        let message = tokio::select! {
            biased;
            frame = &mut close => match frame {
                Ok(frame) => Message::Close(Some(frame)),
                Err(_) => return,
            },
            message = queue.recv() => match message {
                Some(message) => message,
                None => return,
            },
        };
        let last = matches!(message, Message::Close(_));
        let written = tokio::time::timeout(WRITE_STALL, sink.send(message)).await;
        if last || !matches!(written, Ok(Ok(()))) {
            return;
        }
    }
}

impl Connection {
    async fn take(&mut self, bytes: &[u8], ends: &mut Ends) -> Turn {
        let message = match Incoming::parse(bytes) {
            Ok(message) => message,
            Err(e) => return Turn::Close(Closing::new(4400, e)),
        };
        match message {
            Incoming::ConnectionInit { payload } => self.init(payload, ends).await,
            Incoming::Ping { payload } => Turn::Reply(message::pong(payload)),
            Incoming::Pong {} => Turn::Nothing,
            Incoming::Subscribe { id, payload } => self.subscribe(id, payload),
            Incoming::Complete { id } => {
                // An id already over (or never known) is no error: the messages crossed.
                if let Some((_, task)) = self.running.remove(&id) {
                    task.abort();
                }
                Turn::Nothing
            }
        }
    }

    /// `connection_init`: once; a token in its payload names the caller.
    async fn init(&mut self, payload: Option<Value>, ends: &mut Ends) -> Turn {
        if self.initialised {
            return Turn::Close(Closing::new(4429, "Too many initialisation requests"));
        }
        self.initialised = true;
        ends.init = None;
        let authorization = match message::token(payload.as_ref()) {
            Ok(authorization) => authorization,
            Err(e) => return Turn::Close(Closing::new(4400, e)),
        };
        if let Some(authorization) = authorization {
            match self.state.auth.authenticate(Some(&authorization)).await {
                Ok(caller) => self.caller = caller,
                Err(e) => {
                    tracing::debug!(reason = %e, "websocket token refused");
                    return Turn::Close(Closing::new(
                        4403,
                        format!("Forbidden: invalid token: {e}"),
                    ));
                }
            }
            ends.expiry = live::expiry(self.state.auth.expires(&self.caller));
        }
        self.acknowledged = true;
        Turn::Reply(message::ack())
    }

    fn subscribe(&mut self, id: String, payload: Value) -> Turn {
        if !self.acknowledged {
            return Turn::Close(Closing::new(4401, "Unauthorized"));
        }
        if self.running.contains_key(&id) {
            return Turn::Close(Closing::new(
                4409,
                format!("Subscriber for {id} already exists"),
            ));
        }
        let p = match params(payload) {
            Ok(p) => p,
            Err(e) => return Turn::Close(Closing::new(4400, format!("invalid message: {e}"))),
        };
        let max = self
            .state
            .engine
            .blueprint
            .limits
            .max_subscriptions_per_connection;
        if self.running.len() >= max {
            let message = format!(
                "this connection runs {max} operations already (limit \
                 max_subscriptions_per_connection = {max}): complete one first"
            );
            return Turn::Reply(message::refusal(&id, ErrorCode::BadRequest, &message));
        }
        if let Err(secs) = spend(&self.state, &self.caller, self.ip) {
            let message = format!("too many requests: try again in {secs} s");
            return Turn::Reply(message::refusal(&id, ErrorCode::RateLimited, &message));
        }
        self.generation += 1;
        let op = Op {
            id: id.clone(),
            generation: self.generation,
        };
        let to = Outlet {
            out: self.out.clone(),
            done: self.done.clone(),
        };
        let run = task::run(self.state.clone(), self.caller.clone(), p, op, to);
        let task = tokio::spawn(run).abort_handle();
        self.running.insert(id, (self.generation, task));
        Turn::Nothing
    }

    /// Forgets an operation that ended on its own, unless its id was since reused.
    fn finished(&mut self, op: &Op) {
        if self
            .running
            .get(&op.id)
            .is_some_and(|(g, _)| *g == op.generation)
        {
            self.running.remove(&op.id);
        }
    }

    /// Every operation still running ends with the connection.
    fn end(&mut self) {
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }
}
