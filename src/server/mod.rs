//! The HTTP surface: `/graphql` (POST, GET, GraphiQL), the dashboard at `/`, `/healthz`,
//! `/readyz`, `/metrics`; `reload` swaps the model it serves while it runs.

mod admin;
mod assets;
mod caller;
mod graphql;
mod http;
mod limits;
mod live;
mod metrics;
mod multipart;
mod operation;
mod overload;
mod persisted;
pub(crate) mod rate;
pub mod reload;
mod request_id;
mod sse;
mod subscribe;
mod ws;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::access::{Access, View};
use crate::blueprint::{Blueprint, TypeDefKind};
use crate::connectors::Source;
use crate::resolve::Engine;

/// Everything a request handler needs; one reference count to clone per request (every
/// request clones its state). One per model: a reload builds the next one aside and swaps
/// it in (`reload`); a request keeps the one it started with to its end.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub engine: Arc<Engine>,
    /// The whole-response cache, when `[cache] response = true`.
    pub responses: Option<Arc<crate::cache::response::ResponseCache>>,
    /// The PUBLIC view's schema and plans.
    pub public: crate::plan::Planner,
    /// Every other view's (INTERNAL, then RESTRICTED per OPD).
    pub planners: Vec<crate::plan::Planner>,
    /// Verifies bearer tokens.
    pub auth: crate::auth::Authenticator,
    /// Rate limits per client and tier.
    rates: rate::Limits,
    /// Automatic persisted queries and the PUBLIC safelist.
    persisted: persisted::Persisted,
    /// Requests in progress, at most `[limits] max_in_flight`.
    in_progress: overload::InProgress,
    /// Websockets and SSE responses: at most `[limits] max_live_connections`, ended on drain.
    live: Arc<live::Live>,
    /// 1 for the model the process started with, one more for each reload.
    pub generation: u64,
    /// The process's reloads (counts, the last one's outcome), handed from model to model.
    pub reloads: Arc<reload::Status>,
    /// True once a reload replaced this model: its background tasks stop.
    retire: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    /// The planner of `view`. A RESTRICTED caller whose OPD owns nothing restricted reads
    /// what INTERNAL reads.
    pub fn planner(&self, view: &View) -> &crate::plan::Planner {
        let find = |v: &View| self.planners.iter().find(|p| p.view() == v);
        find(view)
            .or_else(|| match view {
                View::Restricted(_) => find(&View::Internal),
                _ => None,
            })
            .unwrap_or(&self.public)
    }
}

/// Every view the blueprint has beside PUBLIC: INTERNAL, and RESTRICTED for each OPD that owns a
/// restricted type or field.
pub fn views(blueprint: &Blueprint) -> Vec<View> {
    let mut views = vec![View::Internal];
    let mut owners: Vec<Arc<str>> = Vec::new();
    let mut note = |a: &Access| {
        if let Access::Restricted(opd) = a
            && !owners.contains(opd)
        {
            owners.push(opd.clone());
        }
    };
    for t in &blueprint.types {
        note(&t.access);
        if let TypeDefKind::Object { fields, .. } | TypeDefKind::Interface { fields, .. } = &t.kind
        {
            fields.iter().for_each(|f| note(&f.access));
        }
    }
    owners.sort();
    views.extend(owners.into_iter().map(View::Restricted));
    views
}

impl AppState {
    /// Builds every source of `blueprint`, probes each database once, builds the schema and
    /// starts the background tasks (alert evaluation, outbox delivery).
    pub async fn start(blueprint: Blueprint, dir: &Path) -> Result<AppState, String> {
        let app = AppState::assemble(Arc::new(blueprint), dir, None).await?;
        app.begin(true);
        Ok(app)
    }

    /// The model of `blueprint`, background tasks not started. After `previous` (a reload),
    /// what did not change is taken over from it (`reload::Carried`): sources whose settings
    /// are equal, the binding cache, the state store, the bounds on requests and streams.
    pub(crate) async fn assemble(
        blueprint: Arc<Blueprint>,
        dir: &Path,
        previous: Option<&AppState>,
    ) -> Result<AppState, String> {
        let carried = reload::Carried::from(previous, &blueprint);
        let mut sources = Vec::with_capacity(blueprint.connectors.len());
        let mut built = Vec::new();
        for c in &blueprint.connectors {
            match carried.source(c) {
                Some(kept) => sources.push(kept),
                None => {
                    let source = Arc::new(Source::build(c.clone(), dir).await?);
                    built.push(source.clone());
                    sources.push(source);
                }
            }
        }
        // All at once: startup waits for one connector timeout at most. A source that is
        // down does not stop the gateway; it is DOWN from the first request.
        futures::future::join_all(built.iter().map(|s| s.probe_at_start())).await;
        let cache = match carried.cache() {
            Some(kept) => kept,
            None => crate::cache::Cache::new(&blueprint.cache).await,
        };
        let state = match blueprint.rules.is_empty() && blueprint.outboxes.is_empty() {
            true => None,
            false => match carried.store() {
                Some(kept) => Some(kept),
                None => Some(
                    crate::state::StateStore::open_in(&blueprint.state.url, dir)
                        .await
                        .map_err(|e| format!("[state]: {e}"))?,
                ),
            },
        };
        // With the store come the alerts (a write given up on raises one, even without rules).
        let alerts = state.clone().map(|store| {
            let mut alerts = crate::alerts::Alerts::new(store, blueprint.rules.clone());
            // Subscribers of `sourceStatusChanged` opened on the last model keep hearing.
            if let Some(events) = carried.source_events() {
                alerts.sources = events;
            }
            Arc::new(alerts)
        });
        let engine = Arc::new(Engine::new(blueprint, sources, cache, alerts, state));
        let views = views(&engine.blueprint);
        // The plan budget is shared by every view, PUBLIC included.
        let budget = engine.blueprint.cache.plan_memory / (views.len() as u64 + 1);
        let public = crate::plan::Planner::new(
            engine.clone(),
            View::Public,
            crate::schema::build(&engine.blueprint, &View::Public)?,
            budget,
        );
        let mut planners = Vec::new();
        for view in views {
            let schema = crate::schema::build(&engine.blueprint, &view)?;
            planners.push(crate::plan::Planner::new(
                engine.clone(),
                view,
                schema,
                budget,
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| format!("[auth]: {e}"))?;
        let auth = crate::auth::Authenticator::new(&engine.blueprint.auth, http)?;
        let responses = engine.blueprint.cache.response.then(|| {
            Arc::new(crate::cache::response::ResponseCache::new(
                engine.blueprint.cache.max_memory / 4,
            ))
        });
        let rates = rate::Limits::new(&engine.blueprint.security);
        let shipped: Vec<(String, String)> = engine
            .blueprint
            .dashboard
            .iter()
            .flat_map(|d| d.operations.iter())
            .map(|op| (op.id.clone(), op.text.clone()))
            .collect();
        let persisted = persisted::Persisted::new(&engine.blueprint.security, &shipped);
        // The bounds count the whole process: requests and streams of every model.
        let (in_progress, live) = match previous {
            Some(p) => (p.in_progress.clone(), p.live.clone()),
            None => (
                overload::InProgress::new(engine.blueprint.limits.max_in_flight),
                Arc::new(live::Live::new(
                    engine.blueprint.limits.max_live_connections,
                )),
            ),
        };
        Ok(AppState(Arc::new(Shared {
            engine,
            responses,
            public,
            planners,
            auth,
            rates,
            persisted,
            in_progress,
            live,
            generation: previous.map_or(1, |p| p.generation + 1),
            reloads: previous.map_or_else(Default::default, |p| p.reloads.clone()),
            retire: tokio::sync::watch::Sender::new(false),
        })))
    }

    /// Starts the model's background tasks. `first`: the process's first model (its outbox
    /// loop releases what a previous run of the process leased).
    pub(crate) fn begin(&self, first: bool) {
        crate::alerts::run::spawn(self);
        crate::outbox::spawn(&self.engine, first, self.retired());
    }

    /// Completes once a reload replaced this model (at once if it already did).
    pub fn retired(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut retire = self.retire.subscribe();
        async move {
            let _ = retire.wait_for(|r| *r).await;
        }
    }

    /// Stops this model's background tasks; requests and streams on it run to their end.
    pub(crate) fn retire(&self) {
        self.retire.send_replace(true);
    }
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.engine.blueprint.limits.max_body_bytes;
    let body_limits = overload::BodyLimits::of(&state.engine.blueprint.limits);
    let in_progress = state.in_progress.clone();
    // Health, readiness and admin stay outside the bound: they answer while it is full.
    let cors = cors(&state.engine.blueprint.security);
    let graphql = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .layer(axum::middleware::from_fn_with_state(
            in_progress,
            overload::bounded,
        ))
        // Outside the bound: draining an oversized body takes no place in progress.
        .layer(axum::middleware::from_fn_with_state(
            body_limits,
            overload::body_limit,
        ))
        // Outside both: a request they refuse is counted too.
        .layer(axum::middleware::from_fn(metrics::observe))
        .layer(cors);
    Router::new()
        .merge(graphql)
        .route("/", get(assets::index))
        .route("/ui/{*path}", get(assets::ui))
        .route("/assets/graphiql/{file}", get(assets::graphiql_asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::scrape))
        .route(
            "/admin/cache/invalidate",
            axum::routing::post(admin::invalidate),
        )
        .route("/admin/cache", get(admin::stats))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(request_id::traced))
        .with_state(state)
}

/// CORS for `/graphql`: the origins of `[security] cors_origins` may call it from their
/// pages, with a token and the headers GraphQL clients send; others get no grant (their
/// browser refuses), and the preflight is answered either way.
fn cors(security: &crate::config::Security) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins = if security.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            security
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let mut headers = vec![header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT];
    headers.extend(http::PREFLIGHT_HEADERS.map(HeaderName::from_static));
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(headers)
        .expose_headers([
            header::RETRY_AFTER,
            HeaderName::from_static(request_id::HEADER),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

/// Ready once the schema is built. Sources being down does not make the gateway unready:
/// it can still answer other fields; their state is reported here.
/// Also says which model serves (`generation`) and how reloads went.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let sources: Vec<_> = state
        .engine
        .sources
        .iter()
        .map(|s| s.health_json())
        .collect();
    axum::Json(json!({
        "status": "ready",
        "generation": state.generation,
        "reloads": state.reloads.json(),
        "sources": sources,
    }))
}

/// Serves until ctrl-c or SIGTERM, reloading on `SIGHUP` and file changes (`reload`); then
/// stops accepting, lets requests in progress finish for up to `[limits] shutdown_grace`,
/// and exits.
pub async fn serve(gateway: reload::Gateway, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "simpul listening");
    let state = gateway.current();
    let grace = state.engine.blueprint.limits.shutdown_grace;
    gateway.watch();
    // Every model shares one `Live`: draining it ends the streams of old models too.
    let draining = state.clone();
    axum::serve(
        listener,
        gateway
            .service()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown().await;
        tracing::info!(?grace, "shutting down: no new connections");
        overload::exit_after(grace);
        // Websockets and event streams are not requests the server waits for: told to end
        // (a websocket closes with 1001), they end on their own.
        draining.live.drain();
    })
    .await?;
    // Upgraded sockets are no longer the server's: wait for them to have sent their close.
    state.live.ended(grace).await;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
