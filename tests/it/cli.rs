//! The `simpul` binary as a user runs it: `serve` on the repository's deployment, the blog
//! example served with `--dir`, `check` exit codes, and the tokens `token` prints.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Upstream, copy_deployment, repo_root};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Server(Child);

impl Server {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Ends the process with SIGKILL (what `Child::kill` sends on Unix): no drain, no
    /// flush, no chance to record what it was doing.
    pub fn sigkill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Waits up to `within` for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(_)) = self.0.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> (Server, String) {
    spawn(dir, env, Stdio::null(), Stdio::null()).await
}

/// [`start`], with the process's stdout and stderr appended to `log` (created if missing):
/// for tests that read what the gateway logged, across restarts into one file.
pub async fn start_logging(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    log: &std::path::Path,
) -> (Server, String) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the log file");
    let stderr = file.try_clone().expect("clone the log file");
    spawn(dir, env, Stdio::from(file), Stdio::from(stderr)).await
}

async fn spawn(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    stdout: Stdio,
    stderr: Stdio,
) -> (Server, String) {
    // reqwest builds no client without it; run alone, a test here has nobody else to
    // install it first.
    simpul::install_crypto();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simpul"));
    cmd.args(["serve", "--dir"])
        .arg(dir)
        .env("SIMPUL_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(stdout)
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server(cmd.spawn().expect("spawn simpul"));
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(r) = reqwest::get(format!("{url}/readyz")).await
            && r.status().is_success()
        {
            return (server, url);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("simpul did not become ready on {url}");
}

pub async fn post(url: &str, query: &str) -> serde_json::Value {
    simpul::install_crypto();
    reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_the_trenggalek_slice_with_official_codes() {
    let dir = copy_deployment(&repo_root());
    let (_server, url) = start(dir.path(), &[]).await;
    let r = post(&url, crate::backends::SLICE).await;
    let districts = r["data"]["regency"]["districts"]
        .as_array()
        .expect("districts");
    assert_eq!(districts.len(), 14);
    assert_eq!(districts[0]["code"], "35.03.01");
    assert_eq!(districts[0]["name"], "Panggul");
    let trenggalek = districts
        .iter()
        .find(|d| d["code"] == "35.03.11")
        .expect("35.03.11");
    assert_eq!(
        trenggalek["villages"][0],
        serde_json::json!({ "code": "35.03.11.1002", "name": "Tamanan" })
    );
    let total: usize = districts
        .iter()
        .map(|d| d["villages"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(total, 157);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_design_example_directory_serves_posts_with_two_upstream_calls() {
    let upstream = Upstream::start().await;
    let (_server, url) = start(
        &repo_root().join("examples/blog"),
        &[("BLOG_URL", &upstream.url)],
    )
    .await;
    let r = post(&url, "{ posts { id title user { name } } }").await;
    assert_eq!(r["data"]["posts"].as_array().map(Vec::len), Some(100));
    assert_eq!(r["data"]["posts"][42]["user"]["name"], "User 5");
    assert_eq!(upstream.calls(), 2, "{:?}", upstream.requests());
}

#[test]
fn check_exits_zero_on_the_repository_and_one_on_a_broken_copy() {
    let ok = Command::new(env!("CARGO_BIN_EXE_simpul"))
        .args(["check", "--dir"])
        .arg(repo_root())
        .output()
        .expect("run check");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let dir = copy_deployment(&repo_root());
    let schema = std::fs::read_to_string(dir.path().join("schema.graphql")).expect("schema");
    std::fs::write(
        dir.path().join("schema.graphql"),
        schema.replacen("connector: \"wilayah\"", "connector: \"wilayahh\"", 1),
    )
    .expect("write");
    let bad = Command::new(env!("CARGO_BIN_EXE_simpul"))
        .args(["check", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run check");
    assert_eq!(bad.status.code(), Some(1));
    let out = String::from_utf8_lossy(&bad.stdout);
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("schema.graphql:") && first.contains("unknown connector 'wilayahh'"),
        "{out}"
    );
    let mut parts = first.split(':');
    parts.next();
    assert!(
        parts.next().and_then(|l| l.parse::<usize>().ok()).is_some(),
        "LINE in {first}"
    );
    assert!(
        parts.next().and_then(|c| c.parse::<usize>().ok()).is_some(),
        "COL in {first}"
    );

    let serve = Command::new(env!("CARGO_BIN_EXE_simpul"))
        .args(["serve", "--dir"])
        .arg(dir.path())
        .env("SIMPUL_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run serve");
    assert!(!serve.status.success(), "serve refuses to start on errors");
}

#[tokio::test]
async fn token_prints_a_token_the_gateway_accepts_and_exits_2_on_bad_input() {
    simpul::install_crypto();
    let secret = "a-test-secret-that-is-long-enough-for-hs256";
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "[auth]\njwt_secret = \"${env.SIMPUL_JWT_SECRET}\"\n\
                issuer = \"https://sso.example\"\naudience = \"simpul\"\n";
    std::fs::write(dir.path().join("simpul.toml"), toml).expect("write");
    let token = |args: &[&str], secret: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_simpul"));
        cmd.arg("token").args(args).arg("--dir").arg(dir.path());
        match secret {
            Some(s) => cmd.env("SIMPUL_JWT_SECRET", s),
            None => cmd.env_remove("SIMPUL_JWT_SECRET"),
        };
        cmd.output().expect("run token")
    };

    let out = token(
        &["--tier", "restricted", "--opd", "dinsos", "--ttl", "15m"],
        Some(secret),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    assert!(printed.ends_with('\n') && printed.trim().split('.').count() == 3);
    let cfg = simpul::config::AuthFile {
        jwt_secret: Some(secret.into()),
        issuer: Some("https://sso.example".into()),
        audience: Some("simpul".into()),
        ..Default::default()
    };
    let auth = simpul::auth::Authenticator::new(&cfg, reqwest::Client::new()).expect("auth");
    let header = format!("Bearer {}", printed.trim())
        .parse()
        .expect("header");
    let caller = auth.authenticate(Some(&header)).await.expect("accepted");
    assert_eq!(
        caller.view,
        simpul::access::View::Restricted("dinsos".into())
    );

    // The tier in any case, as the README and the views write it.
    let upper = token(&["--tier", "INTERNAL"], Some(secret));
    assert!(
        upper.status.success(),
        "{}",
        String::from_utf8_lossy(&upper.stderr)
    );
    let unset = token(&["--tier", "internal"], None);
    assert_eq!(unset.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("set SIMPUL_JWT_SECRET"));
    for bad in [
        &["--tier", "root"][..],
        &["--tier", "restricted"],
        &["--tier", "RESTRICTED"],
        &["--tier", "internal", "--ttl", "soon"],
    ] {
        assert_eq!(token(bad, Some(secret)).status.code(), Some(2), "{bad:?}");
    }
}
