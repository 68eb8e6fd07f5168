//! The dashboard (`GET /`) and GraphiQL (`GET /graphql`) in a real browser: Debian's Chromium
//! driven by playwright-core (tests/browser/*.mjs) against the gateway on a copy of the
//! deployment, with every request that would leave loopback blocked and counted as a failure.
//! The dashboard shows the API's own figures, logs staff in and opens the live alerts, shows
//! an alert raised during the test and a source going stale without a reload, and gives a
//! receipt for a complaint that reaches DELIVERED; nothing overflows at 1920×1080 or 390×844.
//! GraphiQL is the vendored 3.9 on React 18 and runs a query. Screenshots go to
//! target/screenshots/.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::alerts::{SECRET, staff_token};
use crate::harness::{TestApp, copy_deployment, repo_root, run_bounded};

/// Longer than the scripts' own watchdogs (110 s and 100 s): they report before this kills them.
const NODE_TIMEOUT: Duration = Duration::from_secs(150);

fn screenshot_dir() -> PathBuf {
    let dir = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("target/screenshots");
    dir
}

/// Makes `rules/NAME.toml` evaluate every second.
fn every_second(dir: &Path, rule: &str) {
    let path = dir.join(format!("rules/{rule}.toml"));
    let text = std::fs::read_to_string(&path).expect("rule");
    let start = text.find("\ninterval = \"").expect("an interval") + 1;
    let end = start + text[start..].find('\n').expect("end of line");
    let text = format!("{}interval = \"1s\"{}", &text[..start], &text[end..]);
    std::fs::write(&path, text).expect("write rule");
}

/// What one run of a browser script printed: its checks (one JSON object per line), the
/// lines that were not JSON, stderr, and whether it exited 0.
struct Run {
    success: bool,
    checks: Vec<Value>,
    other: Vec<String>,
    stderr: String,
}

impl Run {
    fn failed(&self) -> Vec<&Value> {
        self.checks.iter().filter(|c| c["ok"] != true).collect()
    }

    /// Panics with every failed check (and what else the script said) unless all passed.
    fn assert_passed(&self, script: &str) {
        for c in &self.checks {
            eprintln!("{script}: {c}");
        }
        let failed = self.failed();
        assert!(
            self.success && failed.is_empty() && !self.checks.is_empty(),
            "{script}: {} of {} checks failed (exit {}):\n{}\n--- other output:\n{}\n--- stderr:\n{}",
            failed.len(),
            self.checks.len(),
            if self.success { "0" } else { "non-zero" },
            failed
                .iter()
                .map(|c| format!("  {}: {}", c["check"], c["detail"]))
                .collect::<Vec<_>>()
                .join("\n"),
            self.other.join("\n"),
            self.stderr,
        );
    }
}

/// Runs `node tests/browser/SCRIPT` with `env`, at most [`NODE_TIMEOUT`].
fn run_script(script: &str, env: &[(&str, &str)]) -> Run {
    let dir = repo_root().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser's packages are not installed: npm ci --prefix tests/browser (scripts/test.sh does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "no /usr/bin/chromium: scripts/services.sh installs Debian's chromium"
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join(script))
        .envs(env.iter().copied())
        .current_dir(&dir);
    let ran = run_bounded(
        cmd,
        NODE_TIMEOUT,
        "node (scripts/test.sh installs it and tests/browser's packages)",
    );
    let (stdout, stderr) = (ran.stdout, ran.stderr);
    let (mut checks, mut other) = (Vec::new(), Vec::new());
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.get("check").is_some() => checks.push(v),
            _ => other.push(line.to_string()),
        }
    }
    Run {
        success: ran.success,
        checks,
        other,
        stderr,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_apis_figures_and_follows_alerts_sources_and_complaints_live() {
    let dir = copy_deployment(&repo_root());
    assert!(
        dir.path().join("dashboard/index.html").is_file(),
        "the deployment has no dashboard/index.html"
    );
    // The alert the scenario raises (tourism falling at Pantai Pelang, Panggul) must appear
    // within seconds, not at the rule's six-hourly run.
    every_second(dir.path(), "tourism-falling");
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    let token = staff_token("browser-test");
    let deployment = dir.path().display().to_string();
    let shots = screenshot_dir().display().to_string();
    let url = app.url.clone();
    let run = tokio::task::spawn_blocking(move || {
        run_script(
            "dashboard.mjs",
            &[
                ("SIMPUL_URL", &url),
                ("SIMPUL_TOKEN", &token),
                ("SIMPUL_DIR", &deployment),
                ("SCREENSHOT_DIR", &shots),
            ],
        )
    })
    .await
    .expect("dashboard.mjs");
    run.assert_passed("dashboard.mjs");
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_is_served_from_vendored_assets_and_runs_a_query_offline() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[]).await;
    let shots = screenshot_dir().display().to_string();
    let url = app.url.clone();
    let run = tokio::task::spawn_blocking(move || {
        run_script(
            "graphiql.mjs",
            &[("SIMPUL_URL", &url), ("SCREENSHOT_DIR", &shots)],
        )
    })
    .await
    .expect("graphiql.mjs");
    run.assert_passed("graphiql.mjs");
}
