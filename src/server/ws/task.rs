//! One operation of a websocket: started like any other (`operation::start`), its results
//! sent as `next` messages through the connection's bounded queue, then `complete`. A
//! subscription whose client reads too slowly to keep the queue from filling is ended with
//! an error: its events are never buffered without bound.

use axum::extract::ws::Message;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use super::message;
use crate::auth::Caller;
use crate::error::ErrorCode;
use crate::server::AppState;
use crate::server::http::Params;
use crate::server::operation::{self, Sent, Started};

/// An operation of the connection: its id, and which use of that id it is (a client may
/// reuse an id once its operation is over).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Op {
    pub id: String,
    pub generation: u64,
}

/// Where an operation's task sends: the connection's outgoing queue, and the connection's
/// record of running operations, told when this one is over.
pub(super) struct Outlet {
    pub out: mpsc::Sender<Message>,
    pub done: mpsc::UnboundedSender<Op>,
}

/// Runs `p` as operation `op` of a connection.
pub(super) async fn run(state: AppState, caller: Caller, p: Params<'static>, op: Op, to: Outlet) {
    // A query over a websocket takes a place among the requests in progress while it runs,
    // as over HTTP; a subscription only while it is being opened.
    let started = match state.in_progress.place() {
        Some(_place) => operation::start(&state, &caller, p, Sent::Body).await,
        None => {
            let busy = format!(
                "the gateway is answering {} requests already; retry shortly",
                state.in_progress.max()
            );
            let _ = to.done.send(op.clone());
            let _ = to
                .out
                .send(message::refusal(&op.id, ErrorCode::RateLimited, &busy))
                .await;
            return;
        }
    };
    match started {
        Started::Refused(errors) => {
            let _ = to.done.send(op.clone());
            let _ = to.out.send(message::error(&op.id, errors)).await;
        }
        Started::Single(body) => {
            let _ = to.out.send(message::next(&op.id, body)).await;
            finish(op, &to).await;
        }
        Started::Stream(events) => forward(events, op, &to).await,
    }
}

/// Sends each event as it comes; ends the subscription with an error when the queue is full.
pub(super) async fn forward(mut events: BoxStream<'static, Vec<u8>>, op: Op, to: &Outlet) {
    while let Some(body) = events.next().await {
        match to.out.try_send(message::next(&op.id, body)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                drop(events);
                let _ = to.done.send(op.clone());
                let slow = "the client reads too slowly: this subscription's messages filled the \
                            connection's queue, so it ended; subscribe again";
                let _ = to
                    .out
                    .send(message::refusal(&op.id, ErrorCode::RateLimited, slow))
                    .await;
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
    finish(op, to).await;
}

/// The operation is over: the connection forgets its id first, so that a client that reuses
/// the id on reading `complete` is never refused as a duplicate.
async fn finish(op: Op, to: &Outlet) {
    let _ = to.done.send(op.clone());
    let _ = to.out.send(message::complete(&op.id)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: Option<Message>) -> serde_json::Value {
        match m {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap_or_default(),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_subscription_whose_client_does_not_read_ends_with_an_error() {
        let (out, mut queue) = mpsc::channel(4);
        let (done, mut finished) = mpsc::unbounded_channel();
        let op = Op {
            id: "s".into(),
            generation: 1,
        };
        // Endless events; nobody reads the queue until the task gives up.
        let events = futures::stream::repeat_with(|| b"{\"data\":1}".to_vec()).boxed();
        let task = tokio::spawn(async move { forward(events, op, &Outlet { out, done }).await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(finished.try_recv().map(|o| o.id).ok(), Some("s".into()));
        for _ in 0..4 {
            assert_eq!(text(queue.recv().await)["type"], "next");
        }
        let error = text(queue.recv().await);
        assert_eq!(error["type"], "error");
        assert_eq!(error["payload"][0]["extensions"]["code"], "RATE_LIMITED");
        task.await.expect("the task ends");
    }

    #[tokio::test]
    async fn a_finished_operation_is_forgotten_before_its_complete_is_sent() {
        let (out, mut queue) = mpsc::channel(4);
        let (done, mut finished) = mpsc::unbounded_channel();
        let op = Op {
            id: "q".into(),
            generation: 7,
        };
        let events = futures::stream::iter([b"{\"data\":2}".to_vec()]).boxed();
        forward(events, op.clone(), &Outlet { out, done }).await;
        assert_eq!(finished.try_recv().ok(), Some(op));
        assert_eq!(text(queue.recv().await)["payload"]["data"], 2);
        assert_eq!(text(queue.recv().await)["type"], "complete");
    }
}
