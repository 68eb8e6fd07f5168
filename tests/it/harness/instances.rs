//! Several gateways as one service on one machine: each instance in a runtime of its own
//! (dropping it stops every task it runs, as if the process were killed), and a PostgreSQL
//! database of one test's own for the state store they share.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{TestApp, pg_url};

/// A gateway in a runtime and thread of its own, stopped (as if killed) by dropping it.
pub struct Instance {
    pub url: String,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The environment of one instance: its only environment variables.
pub type Env = Vec<(String, String)>;

impl Instance {
    /// Serves the deployment in `dir` with `env`; returns once it answers.
    pub fn start(dir: &Path, env: Env) -> Instance {
        let mut started = Instance::start_all(dir, vec![env]);
        started.pop().expect("one instance")
    }

    /// Serves the deployment in `dir` once per environment, all starting at once (their
    /// migrations and elections race, as a rollout's do); returns once every one answers.
    pub fn start_all(dir: &Path, envs: Vec<Env>) -> Vec<Instance> {
        let starting: Vec<_> = envs
            .into_iter()
            .map(|env| Instance::spawn(dir.to_path_buf(), env))
            .collect();
        starting
            .into_iter()
            .map(|(url, mut instance)| {
                instance.url = url.recv().expect("instance started");
                instance
            })
            .collect()
    }

    fn spawn(dir: PathBuf, env: Env) -> (std::sync::mpsc::Receiver<String>, Instance) {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async move {
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let app = TestApp::spawn(&dir, &env).await;
                url_tx.send(app.url.clone()).expect("url");
                let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
            });
        });
        let instance = Instance {
            url: String::new(),
            stop: Some(stop),
            thread: Some(thread),
        };
        (url_rx, instance)
    }

    /// POSTs an operation (with `token` as the bearer, if any) and returns the JSON answer.
    pub async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A PostgreSQL database of one test's own, dropped when the test ends, passed or not.
pub struct ScratchDatabase {
    pub name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub async fn create(name: &str) -> ScratchDatabase {
        let admin = sqlx::PgPool::connect(&pg_url())
            .await
            .expect("PostgreSQL must run (scripts/services.sh)");
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await
                .expect("a scratch database");
        }
        admin.close().await;
        let admin_url = pg_url();
        let (server, _) = admin_url.rsplit_once('/').expect("a database in the URL");
        ScratchDatabase {
            name: name.to_string(),
            url: format!("{server}/{name}"),
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // A runtime of its own on a thread of its own: this runs inside the test's runtime,
        // which cannot block on itself.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let admin = sqlx::PgPool::connect(&pg_url()).await?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("the scratch database {} stays: {e}", self.name);
        }
    }
}
