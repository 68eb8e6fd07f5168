//! The dashboard's persisted operations checked against the schema: each validates in the
//! INTERNAL view (a staff login runs them all; what only staff may read is refused to an
//! anonymous caller field by field, as any request is).

use crate::blueprint::Blueprint;
use crate::diagnostic::Diagnostic;

/// Every problem of the dashboard's operations in `bp`; `schema` is its INTERNAL view's.
pub async fn problems(bp: &Blueprint, schema: &async_graphql::dynamic::Schema) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for op in bp.dashboard.iter().flat_map(|d| d.operations.iter()) {
        for (message, line, col) in crate::alerts::run::validate(schema, &op.text).await {
            out.push(
                Diagnostic::new(&op.file, line, col, message)
                    .hint("the dashboard sends this operation by its documentId (the file name)"),
            );
        }
    }
    out
}
