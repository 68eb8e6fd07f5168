//! The soak: minutes of mixed dashboard traffic on the Trenggalek deployment (the operations
//! of queries/, each answer checked against queries/NAME.snap), with clients that hang up
//! mid-request and the cache invalidated every second, so calls keep reaching the sources
//! while the requests that started them go away. RSS is sampled throughout; at the end every
//! source must be UP and, after a bounded wait, hold no call, permit or connection.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::client;
use crate::dashboard::{self, Op};
use crate::procs::Proc;

/// The longest a request may run: written into the soak's `simpul.toml` (Simpul's default),
/// so the bench knows the bound every answer must meet.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// An answer still unread this long after its timeout is counted as never answered.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long the end waits for the sources to give back what they hold.
pub const SETTLE: Duration = Duration::from_secs(10);
/// Share of requests hung up on mid-request, half of them with a TCP reset.
pub const HANG_UP: f64 = 0.2;
pub const SEED: u64 = 0x50a6;
pub const TOKEN_ENV: &str = "SIMPUL_ADMIN_TOKEN";
pub const TOKEN: &str = "soak-admin-token";

pub struct Settings {
    pub duration: Duration,
    pub connections: usize,
    pub invalidate_every: Duration,
    pub sample_every: Duration,
}

/// `simpul.toml` of the soak's scratch deployment: the admin endpoints on (their token from
/// the environment, as in production) and the request timeout spelled out.
pub fn simpul_toml(extra: &str) -> String {
    format!(
        "[admin]\ntoken = \"${{env.{TOKEN_ENV}}}\"\n\n[limits]\nrequest_timeout = \"{}s\"\n\n{extra}",
        REQUEST_TIMEOUT.as_secs()
    )
}

/// What the clients saw.
#[derive(Default)]
pub struct Tally {
    pub sent: u64,
    pub checked: u64,
    /// Checked answers that called a source, and the calls they made.
    pub from_sources: u64,
    pub calls: u64,
    pub wrong: u64,
    pub wrong_examples: Vec<String>,
    pub hung_up: u64,
    pub reset: u64,
    /// Requests written whose connection closed, or that had no answer within the timeout
    /// and its grace.
    pub unanswered: u64,
    pub over_timeout: u64,
    pub connect_errors: u64,
    /// Latencies of answered requests, µs, per operation.
    pub latencies_us: Vec<Vec<u32>>,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.sent += o.sent;
        self.checked += o.checked;
        self.from_sources += o.from_sources;
        self.calls += o.calls;
        self.wrong += o.wrong;
        self.wrong_examples.extend(o.wrong_examples);
        self.wrong_examples.truncate(3);
        self.hung_up += o.hung_up;
        self.reset += o.reset;
        self.unanswered += o.unanswered;
        self.over_timeout += o.over_timeout;
        self.connect_errors += o.connect_errors;
        self.latencies_us.resize(
            o.latencies_us.len().max(self.latencies_us.len()),
            Vec::new(),
        );
        for (mine, theirs) in self.latencies_us.iter_mut().zip(o.latencies_us) {
            mine.extend(theirs);
        }
    }
}

/// One connection: until `deadline`, random operations; each is either hung up on after
/// 0–5 ms (then a new connection) or read and checked on the kept-alive connection. A
/// request in flight at the deadline is still read to its end.
async fn client_loop(
    addr: SocketAddr,
    ops: Arc<Vec<Op>>,
    seed: u64,
    deadline: tokio::time::Instant,
) -> Tally {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut t = Tally {
        latencies_us: vec![Vec::new(); ops.len()],
        ..Tally::default()
    };
    let mut conn: Option<TcpStream> = None;
    while tokio::time::Instant::now() < deadline {
        let stream = match conn.as_mut() {
            Some(s) => s,
            None => match TcpStream::connect(addr).await {
                Ok(s) => conn.insert(s),
                Err(_) => {
                    t.connect_errors += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        let i = rng.random_range(0..ops.len());
        let op = &ops[i];
        let hang_up = rng.random_bool(HANG_UP);
        t.sent += 1;
        let sent = Instant::now();
        if stream.write_all(&op.request).await.is_err() {
            t.unanswered += 1;
            conn = None;
            continue;
        }
        if hang_up {
            tokio::time::sleep(Duration::from_micros(rng.random_range(0..=5000))).await;
            if rng.random_bool(0.5) && stream.set_zero_linger().is_ok() {
                t.reset += 1;
            }
            t.hung_up += 1;
            conn = None;
            continue;
        }
        match tokio::time::timeout(REQUEST_TIMEOUT + GRACE, client::read_raw(stream)).await {
            Ok(Some((status, body, close))) => {
                let took = sent.elapsed();
                t.latencies_us[i].push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                t.over_timeout += u64::from(took > REQUEST_TIMEOUT);
                match dashboard::check(op, status, &body) {
                    Ok(calls) => {
                        t.checked += 1;
                        t.from_sources += u64::from(calls > 0);
                        t.calls += calls;
                    }
                    Err(why) => {
                        t.wrong += 1;
                        if t.wrong_examples.len() < 3 {
                            t.wrong_examples.push(format!("{}: {why}", op.name));
                        }
                    }
                }
                if close {
                    conn = None;
                }
            }
            Ok(None) | Err(_) => {
                t.unanswered += 1;
                conn = None;
            }
        }
    }
    t
}

/// `POST /admin/cache/invalidate` `{"all":true}` with the admin token.
async fn invalidate(addr: SocketAddr) -> Result<(), String> {
    let auth = format!("authorization: Bearer {TOKEN}\r\n");
    let request = client::raw_post(addr, "/admin/cache/invalidate", &auth, br#"{"all":true}"#);
    match client::exchange_raw(addr, &request, REQUEST_TIMEOUT + GRACE).await? {
        (200..=299, _) => Ok(()),
        (status, body) => Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))),
    }
}

/// Invalidates the whole cache every `every` until `deadline`: the count, and the first failure.
async fn invalidate_loop(
    addr: SocketAddr,
    every: Duration,
    deadline: tokio::time::Instant,
) -> (u64, Option<String>) {
    let (mut done, mut failure) = (0, None);
    let mut next = tokio::time::Instant::now() + every;
    while next < deadline {
        tokio::time::sleep_until(next).await;
        next += every;
        match invalidate(addr).await {
            Ok(()) => done += 1,
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    (done, failure)
}

/// The sources as `/readyz` reports them.
async fn sources(addr: SocketAddr) -> Vec<Value> {
    let answer = client::once(addr, Method::GET, "/readyz", Bytes::new())
        .await
        .unwrap_or_else(|e| panic!("GET /readyz: {e}"));
    let v: Value = serde_json::from_slice(&answer.body).expect("/readyz answers JSON");
    v["sources"].as_array().cloned().unwrap_or_default()
}

/// Calls in flight, permits taken and pool connections in use (HTTP sources have no pool).
pub fn held(s: &Value) -> (u64, u64, u64) {
    let n = |key: &str| s[key].as_u64().unwrap_or(0);
    let busy = n("poolOpen").saturating_sub(n("poolIdle"));
    (n("inFlight"), n("concurrencyInUse"), busy)
}

/// Everything one soak measured.
pub struct Soak {
    pub tally: Tally,
    /// The operations, in the order of `tally.latencies_us`.
    pub names: Vec<String>,
    pub elapsed: Duration,
    pub invalidations: u64,
    pub invalidation_failure: Option<String>,
    /// (time since the traffic started, VmRSS bytes); the first is before any traffic.
    pub rss: Vec<(Duration, u64)>,
    pub peak_rss: u64,
    /// Simpul's user + system CPU time during the traffic.
    pub cpu: Duration,
    /// `/readyz` sources when the last answer was read, and after the wait.
    pub at_end: Vec<Value>,
    pub settled: Vec<Value>,
    /// How long the sources took to hold nothing (zero: they held nothing when the traffic
    /// ended); `None` if they still held something after `SETTLE`.
    pub settled_in: Option<Duration>,
    /// Every operation once more after an invalidation: the slowest answer, or what failed.
    pub final_pass: Result<Duration, String>,
}

/// Runs the soak against `simpul` (started on the soak's deployment, see `simpul_toml`).
pub async fn run(simpul: &Proc, root: &Path, s: &Settings) -> Soak {
    let addr = simpul.addr;
    let ops = Arc::new(dashboard::operations(root, addr));
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + s.duration;
    let mut rss = vec![(Duration::ZERO, simpul.rss())];
    let cpu0 = simpul.cpu_time();
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..s.connections {
        clients.spawn(client_loop(addr, ops.clone(), SEED + c as u64, deadline));
    }
    let invalidator = tokio::spawn(invalidate_loop(addr, s.invalidate_every, deadline));
    let mut next = tokio::time::Instant::now() + s.sample_every;
    while next < deadline {
        tokio::time::sleep_until(next).await;
        next += s.sample_every;
        rss.push((started.elapsed(), simpul.rss()));
    }
    let mut tally = Tally::default();
    while let Some(done) = clients.join_next().await {
        tally.add(done.expect("a soak client panicked"));
    }
    let elapsed = started.elapsed();
    rss.push((elapsed, simpul.rss()));
    let cpu = simpul.cpu_time().saturating_sub(cpu0);
    let (invalidations, invalidation_failure) =
        invalidator.await.expect("the invalidator panicked");

    let (at_end, settled, settled_in) = settle(addr).await;
    let final_pass = final_pass(addr, &ops).await;
    Soak {
        tally,
        names: ops.iter().map(|o| o.name.clone()).collect(),
        elapsed,
        invalidations,
        invalidation_failure,
        rss,
        peak_rss: simpul.peak_rss(),
        cpu,
        at_end,
        settled,
        settled_in,
        final_pass,
    }
}

/// The sources when the traffic has ended, then after they hold nothing (or `SETTLE` has
/// passed), and how long that took.
async fn settle(addr: SocketAddr) -> (Vec<Value>, Vec<Value>, Option<Duration>) {
    let at_end = sources(addr).await;
    let mut now = at_end.clone();
    let since = Instant::now();
    let mut waited = Duration::ZERO;
    loop {
        if now.iter().all(|x| held(x) == (0, 0, 0)) {
            return (at_end, now, Some(waited));
        }
        if since.elapsed() > SETTLE {
            return (at_end, now, None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = sources(addr).await;
        waited = since.elapsed();
    }
}

/// Every operation once more after an invalidation, so each answer comes from the sources
/// rather than the cache: the slowest answer, or the first failure.
async fn final_pass(addr: SocketAddr, ops: &[Op]) -> Result<Duration, String> {
    invalidate(addr)
        .await
        .map_err(|e| format!("invalidate: {e}"))?;
    let mut slowest = Duration::ZERO;
    for op in ops {
        let sent = Instant::now();
        let (status, body) = client::exchange_raw(addr, &op.request, REQUEST_TIMEOUT + GRACE)
            .await
            .map_err(|e| format!("{}: {e}", op.name))?;
        slowest = slowest.max(sent.elapsed());
        dashboard::check(op, status, &body).map_err(|e| format!("{}: {e}", op.name))?;
    }
    Ok(slowest)
}
