//! The evaluator: while this instance leads (the state store's lock: one evaluator among
//! instances sharing PostgreSQL), each rule's query runs every `interval` in the INTERNAL
//! view through the same executor as any request, and what fires is stored and published.
//! Each instance also watches its own sources for `sourceStatusChanged`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::eval::{self, DefaultRegion};
use super::rule::Rule;
use super::{Alerts, now_ms};
use crate::access::View;
use crate::plan::{Plan, Planner};
use crate::resolve::request::RequestState;
use crate::server::AppState;
use crate::state::{EventKind, Firing, RuleRun};

/// Parses and validates `query` against `planner`'s view, and plans it. Errors carry the
/// line and column inside the query.
pub async fn prepare(
    planner: &Planner,
    query: &str,
) -> Result<Arc<Plan>, Vec<(String, usize, usize)>> {
    if let Some(plan) = planner.get(query, None) {
        return Ok(plan);
    }
    let doc = async_graphql_parser::parse_query(query).map_err(|e| {
        let (l, c) = e.positions().next().map_or((1, 1), |p| (p.line, p.column));
        vec![(format!("the query does not parse: {e}"), l, c)]
    })?;
    let errors = validate(planner.schema(), query).await;
    if !errors.is_empty() {
        return Err(errors);
    }
    planner
        .insert(query, None, doc)
        .map_err(|e| vec![(e, 1, 1)])
}

/// What `schema` finds wrong with a rule's `query`: each message with its line and column
/// in the query (for `prepare` and for `simpul check`).
pub async fn validate(
    schema: &async_graphql::dynamic::Schema,
    query: &str,
) -> Vec<(String, usize, usize)> {
    let request = async_graphql::Request::new(query).data(crate::schema::ValidateOnly);
    let response = schema.execute(request).await;
    response
        .errors
        .iter()
        .map(|e| {
            let (l, c) = e.locations.first().map_or((1, 1), |p| (p.line, p.column));
            (e.message.clone(), l, c)
        })
        .collect()
}

/// Starts the evaluator, the webhook deliveries and the source watcher of `app`, when it
/// has rules. Each stops where it waits once `app` is retired by a reload (the evaluator
/// between two rules, letting go of its lock), so one process runs one of each.
pub fn spawn(app: &AppState) {
    let Some(alerts) = app.engine.alerts.clone() else {
        return;
    };
    let secrets: std::collections::HashMap<String, String> = alerts
        .rules
        .iter()
        .flat_map(|r| r.webhooks.iter())
        .filter_map(|(url, secret)| secret.clone().map(|s| (url.clone(), s)))
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    alerts.store.spawn_deliveries_until(
        client,
        Arc::new(secrets),
        app.engine.blueprint.state.webhook_max_tries,
        app.retired(),
    );
    let (retired, watched) = (app.retired(), app.retired());
    let watcher = watch_sources(app.clone(), alerts.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = watcher => {}
            () = watched => {}
        }
    });
    tokio::spawn(evaluate_forever(app.clone(), alerts, retired));
}

async fn evaluate_forever(
    app: AppState,
    alerts: Arc<Alerts>,
    retired: impl Future<Output = ()> + Send,
) {
    let mut retired = std::pin::pin!(retired);
    let mut leader = None;
    let mut due: Vec<Instant> = alerts.rules.iter().map(|_| Instant::now()).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // Dropping `leader` lets the next model's evaluator take the lock.
            () = &mut retired => return,
        }
        match &mut leader {
            None => match alerts.store.try_lead().await {
                Ok(Some(l)) => {
                    tracing::info!("this instance evaluates the rules");
                    leader = Some(l);
                    // A new leader evaluates everything at once: the last one may have died
                    // just before its turn.
                    due.iter_mut().for_each(|d| *d = Instant::now());
                }
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "the state store cannot elect an evaluator");
                    continue;
                }
            },
            Some(l) => {
                if !l.still_leading().await {
                    tracing::warn!("lost the evaluator lock");
                    leader = None;
                    continue;
                }
            }
        }
        for (rule, at) in alerts.rules.iter().zip(due.iter_mut()) {
            if *at > Instant::now() {
                continue;
            }
            *at = Instant::now() + rule.interval;
            evaluate_rule(&app, &alerts, rule).await;
        }
    }
}

/// Runs one rule now: its query, its condition over each item, and the store's update.
pub async fn evaluate_rule(app: &AppState, alerts: &Alerts, rule: &Rule) {
    let started = Instant::now();
    let result = run_rule(app, alerts, rule).await;
    let (firing, error) = match result {
        Ok(n) => (n, None),
        Err(e) => {
            tracing::warn!(rule = %rule.id, error = %e, "rule evaluation failed");
            (0, Some(e))
        }
    };
    let run = RuleRun {
        rule: rule.id.clone(),
        last_run_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        error,
        firing,
    };
    if let Err(e) = alerts.store.record_run(&run).await {
        tracing::warn!(rule = %rule.id, error = %e, "rule run not recorded");
    }
}

async fn run_rule(app: &AppState, alerts: &Alerts, rule: &Rule) -> Result<i64, String> {
    let planner = app.planner(&View::Internal);
    let plan = prepare(planner, &rule.query).await.map_err(|errors| {
        errors
            .first()
            .map_or_else(String::new, |(m, _, _)| format!("query: {m}"))
    })?;
    let mut request = RequestState::new(json!({ "sub": "simpul" }));
    request.view = View::Internal.tier();
    let request = Arc::new(request);
    let mut body = Vec::with_capacity(4096);
    let timeout = app.engine.blueprint.limits.request_timeout;
    let errors = tokio::time::timeout(
        timeout,
        planner.run(&plan, &Map::new(), &request, &mut body),
    )
    .await
    .map_err(|_| "the query took longer than request_timeout".to_string())??;
    let data: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let sources = request.sources_json(&app.engine.sources);
    let bp = &app.engine.blueprint;
    let region = DefaultRegion {
        code: &bp.state.region,
        name: &bp.state.region_name,
    };
    let outcome = eval::evaluate(rule, &data, &sources, chrono::Utc::now(), &region);
    let now = now_ms();
    let mut firing = Vec::with_capacity(outcome.findings.len());
    for f in outcome.findings {
        firing.push((f.region_code.clone(), f.key.clone()));
        let fired = Firing {
            rule: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity.clone(),
            opd: rule.opd.clone(),
            tier: rule.tier.clone(),
            region_code: f.region_code,
            region_name: f.region_name,
            key: f.key,
            message: f.message,
            recommendation: f.recommendation,
            evidence: f.evidence,
            webhooks: rule.webhooks.iter().map(|(u, _)| u.clone()).collect(),
            now_ms: now,
        };
        if let Some(alert) = alerts.store.fire(&fired).await? {
            tracing::info!(rule = %rule.id, region = %alert.region_code, alert = alert.id, "alert raised");
            alerts.store.publish(EventKind::Raised, alert.id).await?;
        }
    }
    let error = outcome.error.or_else(|| {
        errors
            .first()
            .map(|e| format!("query: {}", e["message"].as_str().unwrap_or("an error")))
    });
    if let Some(e) = error {
        // What could not be read is not known to be clear: nothing is resolved.
        return Err(e);
    }
    for alert in alerts.store.clear(&rule.id, &firing, now).await? {
        tracing::info!(rule = %rule.id, region = %alert.region_code, alert = alert.id, "alert resolved");
        alerts.store.publish(EventKind::Changed, alert.id).await?;
    }
    Ok(firing.len() as i64)
}

/// Sends `sourceStatusChanged` when one of this instance's sources changes status.
async fn watch_sources(app: AppState, alerts: Arc<Alerts>) {
    let status = |h: &serde_json::Value| {
        h.get("status")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("UP")
            .to_string()
    };
    let mut last: Vec<String> = app
        .engine
        .sources
        .iter()
        .map(|s| status(&s.health_json()))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        for (s, before) in app.engine.sources.iter().zip(last.iter_mut()) {
            let health = s.health_json();
            let now = status(&health);
            if now != *before {
                let event = json!({
                    "name": s.config.name, "title": s.config.title, "opd": s.config.opd,
                    "status": now, "previous": before,
                    "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "staleSince": health.get("staleSince"),
                    "lastError": health.get("lastError"),
                });
                *before = now;
                let _ = alerts.sources.send(event);
            }
        }
    }
}
