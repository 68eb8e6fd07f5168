//! A minimal HTTP/1.1 client over one kept-alive connection (hyper), the load generator (N
//! connections, each sending the same request in a loop until a deadline), and raw HTTP/1.1
//! over a socket for clients that must hang up at a chosen moment mid-request.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A complete response.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One kept-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    /// `Authorization` sent with every request, for workloads of a staff caller.
    pub auth: Option<HeaderValue>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, BoxError> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
            auth: None,
        })
    }

    /// Sends one request; `body` is sent as `application/json` unless empty.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Answer, BoxError> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if !body.is_empty() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(auth) = &self.auth {
            req = req.header(hyper::header::AUTHORIZATION, auth.clone());
        }
        let req = req.body(Full::new(body))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// One request on a fresh connection.
pub async fn once(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<Answer, BoxError> {
    Conn::open(addr).await?.send(method, path, body).await
}

/// [`once`] with an `Authorization` header.
pub async fn once_as(
    addr: SocketAddr,
    auth: Option<HeaderValue>,
    path: &str,
    body: Bytes,
) -> Result<Answer, BoxError> {
    let mut c = Conn::open(addr).await?;
    c.auth = auth;
    c.send(Method::POST, path, body).await
}

/// What one load run is sent to and what a right answer looks like.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub body: Bytes,
    /// Length of the verified answer. Answers differ only in the `extensions.sources` age
    /// and cache state, so a 200 within `slack` bytes of it counts as right.
    pub expect_len: usize,
    pub slack: usize,
    pub auth: Option<HeaderValue>,
}

/// The outcome of one load run.
#[derive(Default)]
pub struct Run {
    /// Right answers completed before the deadline.
    pub ok: u64,
    /// Answers that were not 200 or not of the expected size.
    pub wrong: u64,
    /// Connection or protocol failures.
    pub failed: u64,
    pub elapsed: Duration,
    /// Latency of every right answer, microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p`-quantile latency (0 < p <= 1), milliseconds.
    pub fn quantile_ms(&self, p: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        f64::from(self.latencies_us[rank - 1]) / 1000.0
    }
}

/// Drives `connections` connections against `target` for `duration`. Requests still in
/// flight at the deadline are abandoned and not counted.
pub async fn load(target: &Target, connections: usize, duration: Duration) -> Run {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let target = target.clone();
        workers.spawn(async move { worker(target, deadline).await });
    }
    let mut run = Run::default();
    while let Some(done) = workers.join_next().await {
        let part = done.expect("load worker panicked");
        run.ok += part.ok;
        run.wrong += part.wrong;
        run.failed += part.failed;
        run.latencies_us.extend(part.latencies_us);
    }
    run.elapsed = started
        .elapsed()
        .min(duration)
        .max(Duration::from_millis(1));
    run.latencies_us.sort_unstable();
    run
}

async fn worker(target: Target, deadline: tokio::time::Instant) -> Run {
    let mut run = Run {
        latencies_us: Vec::with_capacity(4096),
        ..Run::default()
    };
    let mut conn: Option<Conn> = None;
    while tokio::time::Instant::now() < deadline {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match tokio::time::timeout_at(deadline, Conn::open(target.addr)).await {
                Err(_) => break,
                Ok(Ok(mut c)) => {
                    c.auth = target.auth.clone();
                    conn.insert(c)
                }
                Ok(Err(_)) => {
                    run.failed += 1;
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let answer = tokio::time::timeout_at(
            deadline,
            c.send(Method::POST, "/graphql", target.body.clone()),
        )
        .await;
        match answer {
            Err(_) => break,
            Ok(Err(_)) => {
                run.failed += 1;
                conn = None;
            }
            Ok(Ok(a)) => {
                let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                if a.status == StatusCode::OK
                    && a.body.len().abs_diff(target.expect_len) <= target.slack
                {
                    run.ok += 1;
                    run.latencies_us.push(us);
                } else {
                    run.wrong += 1;
                }
            }
        }
    }
    run
}

/// The bytes of a `POST path` with a JSON `body`; `headers` are extra `name: value\r\n` lines.
pub fn raw_post(addr: SocketAddr, path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\naccept: application/json\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Reads one response with a `content-length` body: status, body, and whether the server
/// closes the connection after it. `None` when the connection ends first.
pub async fn read_raw(stream: &mut TcpStream) -> Option<(u16, Vec<u8>, bool)> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    };
    let len: usize = header("content-length")?.parse().ok()?;
    let close = header("connection") == Some("close");
    while buf.len() < end + 4 + len {
        let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((status, buf[end + 4..end + 4 + len].to_vec(), close))
}

/// One raw request on a fresh connection, answered `within`: status and body.
pub async fn exchange_raw(
    addr: SocketAddr,
    request: &[u8],
    within: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let go = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(request).await.map_err(|e| e.to_string())?;
        let (status, body, _) = read_raw(&mut s).await.ok_or("no answer")?;
        Ok((status, body))
    };
    tokio::time::timeout(within, go)
        .await
        .map_err(|_| format!("no answer within {within:?}"))?
}
