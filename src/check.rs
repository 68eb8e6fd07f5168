//! `simpul check`: the startup compile, plus what only a live database can tell: every SQL
//! statement is prepared against its database when that database is reachable.

use std::path::Path;
use std::time::Duration;

use async_graphql_parser::Positioned;
use serde_json::Value;

use crate::blueprint::{Blueprint, Operation};
use crate::connectors::{AnySource, Call, Source};
use crate::diagnostic::{Diagnostic, sorted};
use crate::resolve::render::{self, BatchValues, Values};

/// Every problem in the deployment at `dir`; empty when it is sound.
pub async fn check(dir: &Path) -> Vec<Diagnostic> {
    let blueprint = match crate::compile::compile_dir(dir) {
        Ok(bp) => bp,
        Err(diags) => return diags,
    };
    let mut diags = Vec::new();
    probe_sql(&blueprint, dir, &mut diags).await;
    sorted(diags)
}

async fn probe_sql(bp: &Blueprint, dir: &Path, diags: &mut Vec<Diagnostic>) {
    let mut sources = Vec::new();
    for c in &bp.connectors {
        match Source::build(c.clone(), dir).await {
            Ok(s) => sources.push(Some(s)),
            Err(e) => {
                diags.push(Diagnostic::new(&c.file, 1, 1, e));
                sources.push(None);
            }
        }
    }
    let sdl = std::fs::read_to_string(dir.join(crate::compile::SCHEMA_FILE)).unwrap_or_default();
    for b in &bp.bindings {
        let (Operation::Sql { query }, Some(Some(source))) =
            (&b.operation, sources.get(b.connector))
        else {
            continue;
        };
        let null = Value::Null;
        let values = Values {
            args: &null,
            parent: None,
            auth: &null,
        };
        let keys = [Value::Null];
        let batch = b
            .batch
            .as_ref()
            .map(|batch| BatchValues { batch, keys: &keys });
        let Call::Sql { sql, .. } = render::sql(query, source.dialect(), &values, batch.as_ref())
        else {
            continue;
        };
        let prepared = match &source.kind {
            AnySource::Sql(s) => {
                tokio::time::timeout(Duration::from_secs(5), s.pool().prepare(&sql)).await
            }
            AnySource::File(f) => match f.pool() {
                Some(pool) => {
                    let pool = crate::connectors::sql::Pool::Sqlite(pool);
                    tokio::time::timeout(Duration::from_secs(5), pool.prepare(&sql)).await
                }
                None => continue,
            },
            AnySource::Http(_) => continue,
        };
        if let Ok(Err(message)) = prepared {
            let (line, col) = query_position(&sdl, &b.name);
            diags.push(
                Diagnostic::new(
                    crate::compile::SCHEMA_FILE,
                    line,
                    col,
                    format!(
                        "{}: connector '{}' rejects the query: {message}",
                        b.name, source.name
                    ),
                )
                .hint("check table and column names against the database"),
            );
        }
    }
}

/// Where `Type.field`'s binding directive is in the SDL.
fn query_position(sdl: &str, binding: &str) -> (usize, usize) {
    let Some((ty, field)) = binding.split_once('.') else {
        return (1, 1);
    };
    let Ok(doc) = async_graphql_parser::parse_schema(sdl) else {
        return (1, 1);
    };
    for def in doc.definitions {
        let async_graphql_parser::types::TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        if t.node.name.node != ty {
            continue;
        }
        if let async_graphql_parser::types::TypeKind::Object(o) = &t.node.kind {
            for f in &o.fields {
                if f.node.name.node == field {
                    let d: Option<&Positioned<_>> = f
                        .node
                        .directives
                        .iter()
                        .find(|d| matches!(d.node.name.node.as_str(), "sql"));
                    let pos = d.map_or(f.pos, |d| d.pos);
                    return (pos.line, pos.column);
                }
            }
        }
    }
    (1, 1)
}
