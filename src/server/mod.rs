//! The HTTP surface: `/graphql` (POST, GET, GraphiQL), the dashboard at `/`, `/healthz`, `/readyz`.

mod admin;
mod assets;
mod caller;
mod graphql;
mod http;
mod limits;
mod live;
mod multipart;
mod operation;
mod overload;
mod persisted;
pub(crate) mod rate;
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
/// request clones its state).
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
    live: live::Live,
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
    /// Builds every source of `blueprint`, probes each database once, and builds the schema.
    pub async fn start(blueprint: Blueprint, dir: &Path) -> Result<AppState, String> {
        let blueprint = Arc::new(blueprint);
        let mut sources = Vec::with_capacity(blueprint.connectors.len());
        for c in &blueprint.connectors {
            sources.push(Arc::new(Source::build(c.clone(), dir).await?));
        }
        // All at once: startup waits for one connector timeout at most. A source that is
        // down does not stop the gateway; it is DOWN from the first request.
        futures::future::join_all(sources.iter().map(|s| s.probe_at_start())).await;
        let cache = crate::cache::Cache::new(&blueprint.cache).await;
        let state = match blueprint.rules.is_empty() && blueprint.outboxes.is_empty() {
            true => None,
            false => Some(
                crate::state::StateStore::open_in(&blueprint.state.url, dir)
                    .await
                    .map_err(|e| format!("[state]: {e}"))?,
            ),
        };
        // With the store come the alerts (a write given up on raises one, even without rules).
        let alerts = state
            .clone()
            .map(|store| Arc::new(crate::alerts::Alerts::new(store, blueprint.rules.clone())));
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
        let in_progress = overload::InProgress::new(engine.blueprint.limits.max_in_flight);
        let live = live::Live::new(engine.blueprint.limits.max_live_connections);
        let app = AppState(Arc::new(Shared {
            engine,
            responses,
            public,
            planners,
            auth,
            rates,
            persisted,
            in_progress,
            live,
        }));
        crate::alerts::run::spawn(&app);
        crate::outbox::spawn(&app.engine);
        Ok(app)
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
        .layer(cors);
    Router::new()
        .merge(graphql)
        .route("/", get(assets::index))
        .route("/ui/{*path}", get(assets::ui))
        .route("/assets/graphiql/{file}", get(assets::graphiql_asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
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
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let sources: Vec<_> = state
        .engine
        .sources
        .iter()
        .map(|s| s.health_json())
        .collect();
    axum::Json(json!({ "status": "ready", "sources": sources }))
}

/// Serves until ctrl-c or SIGTERM; then stops accepting, lets requests in progress finish
/// for up to `[limits] shutdown_grace`, and exits.
pub async fn serve(state: AppState, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "simpul listening");
    let grace = state.engine.blueprint.limits.shutdown_grace;
    let draining = state.clone();
    axum::serve(
        listener,
        router(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
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
