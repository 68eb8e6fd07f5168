//! The dashboard's persisted operations checked against the schema: each validates in the
//! INTERNAL view (a staff login runs them all; what only staff may read is refused to an
//! anonymous caller field by field, as any request is).

use crate::access::View;
use crate::blueprint::Blueprint;
use crate::diagnostic::Diagnostic;

/// Every problem of the dashboard's operations in `bp`.
pub async fn problems(bp: &std::sync::Arc<Blueprint>) -> Vec<Diagnostic> {
    let Some(dashboard) = bp.dashboard.as_ref().filter(|d| !d.operations.is_empty()) else {
        return Vec::new();
    };
    let schema = match crate::schema::build(bp, &View::Internal) {
        Ok(s) => s,
        Err(e) => {
            return vec![Diagnostic::new(
                "dashboard",
                1,
                1,
                format!("the schema cannot be built: {e}"),
            )];
        }
    };
    let mut out = Vec::new();
    for op in &dashboard.operations {
        for (message, line, col) in crate::alerts::run::validate(&schema, &op.text).await {
            out.push(
                Diagnostic::new(&op.file, line, col, message)
                    .hint("the dashboard sends this operation by its documentId (the file name)"),
            );
        }
    }
    out
}
