//! The gateway's log in this test binary, for tests that assert what it says. One
//! subscriber serves the whole binary (installed by the first test that asks), so every
//! test's lines share one buffer: a test looks for names only it uses.

use std::io::Write;
use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();
/// Past this many lines the oldest half is dropped: a long test run stays bounded.
const MAX_LINES: usize = 100_000;

/// Appends what the subscriber writes (one whole event per write) to [`LINES`].
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut lines = LINES.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() >= MAX_LINES {
            lines.drain(..MAX_LINES / 2);
        }
        lines.extend(text.lines().map(str::to_string));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the gateway's warnings and errors from now on (call before spawning the app).
pub fn capture_logs() {
    INSTALL.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("simpul=warn"))
            .with_ansi(false)
            .with_writer(|| Sink)
            .try_init();
    });
}

/// The lines logged so far that contain every one of `needles`.
pub fn logged(needles: &[&str]) -> Vec<String> {
    LINES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .cloned()
        .collect()
}
