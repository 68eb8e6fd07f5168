//! Hot reload: the model a gateway serves (`AppState`: blueprint, sources, planners, ...)
//! sits behind one atomic pointer, with the router built over it. A request loads it once,
//! at its start, and holds it to its end; a websocket or an event stream holds the model it
//! opened on. A reload compiles the deployment's files aside (`compile` + `check::verify`,
//! as `serve` does at startup), takes over what did not change (`carry`), swaps the
//! pointer, and retires the old model's background tasks; the old model is freed when its
//! last request or stream ends. Any problem keeps the old model serving: every diagnostic
//! is logged, and the refusal counted and shown in `/readyz`. `watch` starts it on file
//! changes and on `SIGHUP`.

mod carry;
mod status;
mod watch;

pub(crate) use carry::Carried;
pub use status::{Reloads, Status};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use tower::ServiceExt;

use super::AppState;
use carry::Changes;

/// How the deployment's `${env.X}` are looked up, at startup and at every reload.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A running gateway whose model can be replaced. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<Served>,
    dir: PathBuf,
    env: Env,
    /// One reload at a time: a second trigger waits and then reads the files again.
    reloading: tokio::sync::Mutex<()>,
}

/// A model and the router over it.
struct Served {
    app: AppState,
    router: Router,
}

/// Why a reload was refused: every problem, each as a line.
#[derive(Debug)]
pub struct Refused {
    pub problems: Vec<String>,
}

impl Gateway {
    /// Serves `app`, compiled from `dir` with `env`; later reloads read `dir` again.
    pub fn new(app: AppState, dir: &Path, env: Env) -> Gateway {
        let router = super::router(app.clone());
        Gateway {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(Served { app, router }),
                dir: dir.to_path_buf(),
                env,
                reloading: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The model serving now.
    pub fn current(&self) -> AppState {
        self.inner.current.load().app.clone()
    }

    /// The process's reloads so far.
    pub fn reloads(&self) -> Reloads {
        self.current().reloads.counts()
    }

    /// The router to serve: each request goes to the router of the model current when it
    /// arrives (one atomic load), and stays on it.
    pub fn service(&self) -> Router {
        Router::new()
            .fallback(dispatch)
            .with_state(self.inner.clone())
    }

    /// Starts the reload triggers: `SIGHUP`, and file changes unless `[reload] watch = false`.
    pub fn watch(&self) {
        watch::start(self);
    }

    /// Reads the deployment again and swaps it in, or keeps the current model if anything
    /// is wrong with it. `why` names the trigger in the log.
    pub async fn reload(&self, why: &str) -> Result<u64, Refused> {
        let _one = self.inner.reloading.lock().await;
        let old = self.current();
        tracing::info!(trigger = why, generation = old.generation, "reloading");
        let next = match self.prepare(&old).await {
            Ok(next) => next,
            Err(problems) => return Err(refuse(&old, problems)),
        };
        let changes = Changes::between(&old.engine, &next.engine);
        changes.drop_entries(&next.engine.cache).await;
        let router = super::router(next.clone());
        self.inner.current.store(Arc::new(Served {
            app: next.clone(),
            router,
        }));
        // The old model's evaluator and delivery loops stop where they wait; the new one's
        // take over (the evaluator's lock within a tick, the leases of rows in flight kept).
        old.retire();
        next.begin(false);
        let summary = changes.summary();
        for setting in &changes.need_restart {
            tracing::warn!(
                setting,
                "changed, but read only at startup: restart to apply it"
            );
        }
        next.reloads.succeeded(next.generation, &summary);
        tracing::info!(
            trigger = why,
            generation = next.generation,
            "reloaded: {summary}"
        );
        Ok(next.generation)
    }

    /// The next model, compiled and verified aside. Its problems, if any.
    async fn prepare(&self, old: &AppState) -> Result<AppState, Vec<String>> {
        let dir = &self.inner.dir;
        let blueprint = crate::compile::compile_dir_with_env(dir, &*self.inner.env)
            .map_err(|diags| diags.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let next = AppState::assemble(Arc::new(blueprint), dir, Some(old))
            .await
            .map_err(|e| vec![e])?;
        // What `serve` refuses at startup, a reload refuses; an unreachable source is DOWN.
        let report =
            crate::check::verify(&next.engine.blueprint, &next.engine.sources, false).await;
        if !report.problems.is_empty() {
            return Err(report.problems.iter().map(ToString::to_string).collect());
        }
        Ok(next)
    }
}

/// Logs every problem, counts the refusal and keeps `serving`.
fn refuse(serving: &AppState, problems: Vec<String>) -> Refused {
    for p in &problems {
        tracing::error!(problem = %p, "reload: problem in the deployment");
    }
    tracing::error!(
        problems = problems.len(),
        generation = serving.generation,
        "reload refused: {} problem{}; still serving generation {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        serving.generation
    );
    serving.reloads.refused(serving.generation, &problems);
    Refused { problems }
}

async fn dispatch(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let router = inner.current.load().router.clone();
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
