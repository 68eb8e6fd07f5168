//! The loop both delivery queues run (webhooks of alerts, the outbox of writes): claim due
//! rows up to the free slots, deliver each in a task of its own, and look again when a
//! delivery finishes (if the claim was full), when this process queued a row, or after a
//! poll interval.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// How often the loop looks for due rows when nothing woke it.
const POLL: Duration = Duration::from_millis(500);
/// Deliveries in flight per queue and instance.
const IN_FLIGHT: usize = 16;
/// Claim failures (the store unreachable) logged at most this often; it retries every poll.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Runs until `retired` completes (the model it belongs to was replaced by a reload) or
/// the runtime ends: `claim(n)` takes up to `n` due rows, `deliver(row)` sends and settles
/// one, `queued` wakes the loop. `what` names the queue in logs. It stops only where it
/// waits, never inside a claim; deliveries in flight finish in their own tasks.
pub async fn pump<R, C, CF, D, DF>(
    what: &'static str,
    queued: &Notify,
    claim: C,
    deliver: D,
    retired: impl Future<Output = ()>,
) where
    R: Send + 'static,
    C: Fn(usize) -> CF,
    CF: Future<Output = Result<Vec<R>, String>>,
    D: Fn(R) -> DF,
    DF: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut logged: Option<Instant> = None;
    let mut retired = std::pin::pin!(retired);
    loop {
        let free = slots.available_permits();
        let mut full = false;
        if free > 0 {
            match claim(free).await {
                Ok(rows) => {
                    full = rows.len() == free;
                    for row in rows {
                        // The claim asked for the free slots only; a row without one is
                        // claimed again once its lease runs out.
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            break;
                        };
                        let delivery = deliver(row);
                        tokio::spawn(async move {
                            delivery.await;
                            drop(slot);
                        });
                    }
                }
                Err(e) if logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) => {
                    logged = Some(Instant::now());
                    tracing::warn!(queue = what, error = %e, "due deliveries not claimed");
                }
                Err(_) => {}
            }
        }
        if full {
            // More may be due: go again as soon as a delivery finishes.
            tokio::select! {
                _ = slots.acquire() => {}
                () = &mut retired => return,
            }
            continue;
        }
        tokio::select! {
            () = queued.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            () = &mut retired => return,
        }
    }
}
