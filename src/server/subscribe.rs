//! Subscriptions: a plan run once per event (replaced by the alerts work).
pub(super) async fn open(
    state: &super::AppState,
    caller: &crate::auth::Caller,
    plan: std::sync::Arc<crate::plan::Plan>,
    vars: serde_json::Map<String, serde_json::Value>,
) -> Result<futures::stream::BoxStream<'static, Vec<u8>>, String> {
    let _ = (state, caller, plan, vars);
    Err("subscriptions are not served yet".into())
}
