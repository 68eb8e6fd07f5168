//! How a call gets its connection, and what a connection that cannot be had is called.
//!
//! sqlx's pool retries a refused connection inside `acquire()` until its own timeout, so a
//! database that is down would look like a slow one: the call's deadline comes first and
//! the cause is lost. When the pool has no open connection (cold, or after an outage) the
//! acquire is therefore raced against a plain connect to the server's address: a refusal or
//! an unknown host ends the call at once, with the cause. A pool that has connections is
//! not probed: the hot path costs nothing more.

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use tokio::time::Instant;

use super::Failure;

/// Where a database lives, for the probe and for naming it in a cause.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(String, u16),
    Unix(PathBuf),
    File(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(host, port) => write!(f, "{host}:{port}"),
            Target::Unix(path) | Target::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Connect options that say where their database is.
pub trait Located {
    fn target(&self) -> Target;
}

impl Located for PgConnectOptions {
    fn target(&self) -> Target {
        // As sqlx decides: an explicit socket directory, or a host that is a path.
        let dir = match self.get_socket() {
            Some(dir) => Some(dir.clone()),
            None if self.get_host().starts_with('/') => Some(PathBuf::from(self.get_host())),
            None => None,
        };
        match dir {
            Some(dir) => Target::Unix(dir.join(format!(".s.PGSQL.{}", self.get_port()))),
            None => Target::Tcp(self.get_host().to_string(), self.get_port()),
        }
    }
}

impl Located for MySqlConnectOptions {
    fn target(&self) -> Target {
        match self.get_socket() {
            Some(path) => Target::Unix(path.clone()),
            None => Target::Tcp(self.get_host().to_string(), self.get_port()),
        }
    }
}

impl Located for SqliteConnectOptions {
    fn target(&self) -> Target {
        Target::File(self.get_filename().to_path_buf())
    }
}

impl Target {
    /// Whether the server at this address takes connections: `Err` with the cause in words
    /// when it plainly does not (refused, no such host, no route, no socket). Any other
    /// failure of the probe (out of local ports, say) leaves the decision to the acquire.
    /// A file is not probed here: opening it is as cheap as probing it.
    pub async fn probe(&self) -> Result<(), String> {
        match self {
            Target::Tcp(host, port) => {
                let addrs: Vec<std::net::SocketAddr> =
                    tokio::net::lookup_host((host.as_str(), *port))
                        .await
                        .map_err(|e| format!("unknown host {host} ({e})"))?
                        .collect();
                if addrs.is_empty() {
                    return Err(format!("unknown host {host} (no address)"));
                }
                // Every address is tried: `localhost` may refuse on ::1 and listen on 127.0.0.1.
                match tokio::net::TcpStream::connect(addrs.as_slice()).await {
                    Err(e) if unreachable(&e) => Err(io_cause(&e, self)),
                    _ => Ok(()),
                }
            }
            #[cfg(unix)]
            Target::Unix(path) => match tokio::net::UnixStream::connect(path).await {
                Err(e) if unreachable(&e) => Err(io_cause(&e, self)),
                _ => Ok(()),
            },
            #[cfg(not(unix))]
            Target::Unix(_) => Ok(()),
            Target::File(_) => Ok(()),
        }
    }

    /// The cause of a failed `acquire()` (not a pool timeout), naming this database.
    pub fn cause(&self, e: &sqlx::Error) -> String {
        match e {
            sqlx::Error::Io(io) => io_cause(io, self),
            sqlx::Error::Database(d) => match d.code() {
                Some(code) => format!("{} ({self}, code {code})", d.message()),
                None => format!("{} ({self})", d.message()),
            },
            other => format!("{other} ({self})"),
        }
    }
}

/// A connect error that says the server cannot be reached, not that this attempt failed.
fn unreachable(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::NotFound
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
    )
}

fn io_cause(e: &std::io::Error, target: &Target) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("connection refused ({target})"),
        std::io::ErrorKind::NotFound if matches!(target, Target::Unix(_)) => {
            format!("no socket at {target}")
        }
        _ => format!("cannot connect to {target} ({e})"),
    }
}

/// Whether a failed `acquire()` may succeed on a second try within the same call: the
/// pool being replaced may; a refusal, an unknown host or rejected credentials may not.
fn transient(e: &sqlx::Error) -> bool {
    use std::io::ErrorKind;
    match e {
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
                | ErrorKind::TimedOut
                | ErrorKind::Interrupted
        ),
        _ => false,
    }
}

/// A connection of `pool` before `deadline`. An empty pool is raced against a probe of
/// the database's address, so that a refused connection or an unknown host fails at once.
pub async fn acquire<DB>(
    name: &Arc<str>,
    pool: &sqlx::Pool<DB>,
    deadline: Instant,
) -> Result<PoolConnection<DB>, Failure>
where
    DB: sqlx::Database,
    <DB::Connection as sqlx::Connection>::Options: Located,
{
    let probe = (pool.size() == 0).then(|| pool.connect_options().target());
    let acquired = async {
        let acquire = pool.acquire();
        let Some(target) = &probe else {
            return Ok(acquire.await);
        };
        tokio::pin!(acquire);
        tokio::select! {
            acquired = &mut acquire => Ok(acquired),
            Err(cause) = target.probe() => Err(cause),
        }
    };
    match tokio::time::timeout_at(deadline, acquired).await {
        Ok(Ok(Ok(c))) => Ok(c),
        Ok(Err(cause)) => Err(Failure::Unreachable(cause)),
        Ok(Ok(Err(sqlx::Error::PoolTimedOut))) | Err(_) => Err(Failure::NoConnection),
        Ok(Ok(Err(e))) if transient(&e) => Err(Failure::Source(super::db_error(name, e))),
        Ok(Ok(Err(e))) => {
            let target = probe.unwrap_or_else(|| pool.connect_options().target());
            Err(Failure::Unreachable(target.cause(&e)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_probe_names_a_refusal_and_an_unknown_host_and_passes_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Target::Tcp("127.0.0.1".into(), port);
        assert_eq!(target.probe().await, Ok(()));
        drop(listener);
        assert_eq!(
            target.probe().await,
            Err(format!("connection refused (127.0.0.1:{port})"))
        );
        let unknown = Target::Tcp("nonexistent.invalid".into(), 5432)
            .probe()
            .await;
        assert!(
            unknown
                .as_ref()
                .is_err_and(|e| e.starts_with("unknown host nonexistent.invalid")),
            "{unknown:?}"
        );
        assert_eq!(Target::File("x.db".into()).probe().await, Ok(()));
    }
}
