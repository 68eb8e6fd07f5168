//! What each binding's rows carry, asked of its source: a SQL statement prepared and
//! described (column names, types, origins), a `[file]` table the same way, an HTTP binding
//! sampled once (a `file:` snapshot always, a live URL only when asked).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::blueprint::template::Scope;
use crate::blueprint::{Binding, Blueprint, FieldDef, Operation};
use crate::connectors::sql::describe::{Conn, Described};
use crate::connectors::{AnySource, Call, Source};
use crate::resolve::render::{self, BatchValues, Values};

/// How a column's values read, from its declared type (or a sample's JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColKind {
    Int,
    /// NUMERIC/DECIMAL: whole values read as Int, others as Float.
    Decimal,
    Float,
    Bool,
    Text,
    /// Dates and times, read as ISO text.
    Date,
    Json,
    /// An expression SQLite does not type, or a sample column that was always null.
    Unknown,
}

impl ColKind {
    pub fn of_type(type_name: &str) -> ColKind {
        let upper = type_name.to_ascii_uppercase();
        let t = upper.trim_end_matches(" UNSIGNED");
        match t {
            "BOOL" | "BOOLEAN" => ColKind::Bool,
            "INT2" | "INT4" | "INT8" | "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "TINYINT"
            | "MEDIUMINT" | "YEAR" | "INT64" => ColKind::Int,
            "NUMERIC" | "DECIMAL" => ColKind::Decimal,
            "FLOAT4" | "FLOAT8" | "REAL" | "FLOAT" | "DOUBLE" => ColKind::Float,
            "JSON" | "JSONB" => ColKind::Json,
            "DATE" | "TIME" | "TIMETZ" | "TIMESTAMP" | "TIMESTAMPTZ" | "DATETIME" => ColKind::Date,
            "NULL" | "" => ColKind::Unknown,
            _ => ColKind::Text,
        }
    }

    fn of_value(v: &Value) -> ColKind {
        match v {
            Value::Null => ColKind::Unknown,
            Value::Bool(_) => ColKind::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => ColKind::Int,
            Value::Number(_) => ColKind::Float,
            Value::String(_) => ColKind::Text,
            Value::Array(_) | Value::Object(_) => ColKind::Json,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Col {
    pub name: String,
    pub kind: ColKind,
    /// The database's type name, or the JSON kind of a sample.
    pub type_name: String,
    /// The table and column it is read from, when a value check can ask for them.
    pub origin: Option<(String, String)>,
}

/// The rows of one binding, as far as its source tells.
#[derive(Debug)]
pub struct Shape {
    pub columns: Vec<Col>,
    /// The rows of a sampled HTTP answer: their values are checked directly.
    pub sample: Option<Vec<Value>>,
}

impl Shape {
    pub fn col(&self, name: &str) -> Option<&Col> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Every non-null value of column `name` in the sample.
    pub fn sampled(&self, name: &str) -> Option<Vec<Value>> {
        let rows = self.sample.as_ref()?;
        Some(
            rows.iter()
                .filter_map(|r| r.get(name))
                .filter(|v| !v.is_null())
                .cloned()
                .collect(),
        )
    }

    fn from_described(cols: Vec<Described>) -> Shape {
        Shape {
            columns: cols
                .into_iter()
                .map(|d| Col {
                    kind: ColKind::of_type(&d.type_name),
                    name: d.name,
                    type_name: d.type_name,
                    origin: d.origin,
                })
                .collect(),
            sample: None,
        }
    }

    /// The columns of sampled rows (objects): every key, typed by its first non-null value.
    pub fn from_sample(rows: Vec<Value>) -> Option<Shape> {
        let mut columns: Vec<Col> = Vec::new();
        for row in &rows {
            let Value::Object(m) = row else { continue };
            for (k, v) in m {
                match columns.iter_mut().find(|c| &c.name == k) {
                    Some(c) if c.kind == ColKind::Unknown => c.kind = ColKind::of_value(v),
                    Some(_) => {}
                    None => columns.push(Col {
                        name: k.clone(),
                        kind: ColKind::of_value(v),
                        type_name: String::new(),
                        origin: None,
                    }),
                }
            }
        }
        for c in &mut columns {
            c.type_name = format!("{:?}", c.kind).to_ascii_lowercase();
        }
        (!columns.is_empty()).then_some(Shape {
            columns,
            sample: Some(rows),
        })
    }
}

/// What asking a binding's source gave.
pub enum Seen {
    Shape(Shape),
    /// The source rejects the statement (its own words).
    Rejected(String),
    /// Nothing to tell: an HTTP binding that needs request values, an empty sample.
    Unknown,
}

/// A source that could not be reached: its bindings were not checked.
pub struct Unreachable {
    pub connector: usize,
    pub reason: String,
}

/// Each binding's rows, asked of its source; and the sources that could not be reached.
pub struct Probed {
    pub seen: Vec<Seen>,
    pub unreachable: Vec<Unreachable>,
    /// Open connections (per connector) for reading column values.
    pub conns: Vec<Option<Conn>>,
    /// Column values already read, by connector, table and column.
    pub read: std::collections::HashMap<(usize, String, String), Option<Vec<Value>>>,
}

/// Asks every source, each within its connector's timeout. Live HTTP URLs are sampled only
/// when `live_http` (`simpul check`): a starting gateway never calls an upstream API.
pub async fn probe(bp: &Blueprint, sources: &[Arc<Source>], live_http: bool) -> Probed {
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut unreachable = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let pool = match &source.kind {
            AnySource::Sql(s) => Some(s.pool()),
            AnySource::File(f) => f.pool().map(crate::connectors::sql::Pool::Sqlite),
            AnySource::Http(_) => None,
        };
        let conn = match pool {
            None => None,
            Some(pool) => {
                match tokio::time::timeout(source.config.timeout, pool.connect_once()).await {
                    Ok(Ok(c)) => Some(c),
                    Ok(Err(reason)) => {
                        unreachable.push(Unreachable {
                            connector: i,
                            reason,
                        });
                        None
                    }
                    Err(_) => {
                        unreachable.push(Unreachable {
                            connector: i,
                            reason: format!("no connection within {:?}", source.config.timeout),
                        });
                        None
                    }
                }
            }
        };
        conns.push(conn);
    }
    let mut seen = Vec::with_capacity(bp.bindings.len());
    for b in &bp.bindings {
        let Some(source) = sources.get(b.connector) else {
            seen.push(Seen::Unknown);
            continue;
        };
        let s = match &b.operation {
            Operation::Sql { query } => match conns.get_mut(b.connector) {
                Some(Some(conn)) => describe(conn, source, b, query, source.config.timeout).await,
                _ => Seen::Unknown,
            },
            // Checked against the remote schema by `check::remote`.
            Operation::Graphql(_) => Seen::Unknown,
            Operation::Http(op) => {
                let unreached = unreachable.iter().any(|u| u.connector == b.connector);
                match sample_call(bp, b, op) {
                    Some(call) if !unreached => match sample(source, call, live_http).await {
                        Ok(s) => s,
                        Err(reason) => {
                            unreachable.push(Unreachable {
                                connector: b.connector,
                                reason,
                            });
                            Seen::Unknown
                        }
                    },
                    _ => Seen::Unknown,
                }
            }
        };
        seen.push(s);
    }
    Probed {
        seen,
        unreachable,
        conns,
        read: Default::default(),
    }
}

async fn describe(
    conn: &mut Conn,
    source: &Source,
    b: &Binding,
    query: &crate::blueprint::template::Template,
    timeout: Duration,
) -> Seen {
    let null = Value::Null;
    let values = Values {
        args: &null,
        parent: None,
        auth: &null,
        outbox: None,
        view: crate::access::Tier::Public,
    };
    let keys = [Value::Null];
    let batch = b
        .batch
        .as_ref()
        .map(|batch| BatchValues { batch, keys: &keys });
    let Call::Sql { sql, .. } = render::sql(query, source.dialect(), &values, batch.as_ref())
    else {
        return Seen::Unknown;
    };
    match tokio::time::timeout(timeout, conn.describe(&sql)).await {
        Ok(Ok(cols)) => Seen::Shape(Shape::from_described(cols)),
        Ok(Err(message)) => Seen::Rejected(message),
        Err(_) => Seen::Rejected(format!("no description within {timeout:?}")),
    }
}

/// The call of an HTTP read that needs no request values: no `{{parent}}` nor `{{auth}}`,
/// every `{{args}}` with a default.
fn sample_call(bp: &Blueprint, b: &Binding, op: &crate::blueprint::HttpOperation) -> Option<Call> {
    let (owner, field) = field_of(bp, b.id)?;
    if bp.mutation_type.as_deref() == Some(owner) {
        return None;
    }
    let mut args = serde_json::Map::new();
    for a in &field.args {
        if let Some(d) = &a.default {
            args.insert(a.name.clone(), d.clone().into_json().ok()?);
        }
    }
    let templates = std::iter::once(&op.path)
        .chain(op.query.iter().map(|(_, t)| t))
        .chain(op.headers.iter().map(|(_, t)| t))
        .chain(op.body.iter());
    for t in templates {
        for p in t.placeholders() {
            let first = p.path.first().map(String::as_str).unwrap_or_default();
            if p.scope != Scope::Args || !args.contains_key(first) {
                return None;
            }
        }
    }
    let args = Value::Object(args);
    let null = Value::Null;
    let values = Values {
        args: &args,
        parent: None,
        auth: &null,
        outbox: None,
        view: crate::access::Tier::Public,
    };
    let select: Arc<[String]> = op.select.clone().into();
    render::http(op, &select, &values, None).ok()
}

/// One answer of an HTTP source; `Err` when it cannot be reached at all.
async fn sample(source: &Source, call: Call, live_http: bool) -> Result<Seen, String> {
    let AnySource::Http(h) = &source.kind else {
        return Ok(Seen::Unknown);
    };
    if !live_http && !h.is_snapshot() {
        return Ok(Seen::Unknown);
    }
    let Call::Http(call) = call else {
        return Ok(Seen::Unknown);
    };
    let answer = tokio::time::timeout(source.config.timeout, h.call(&source.name, call)).await;
    match answer {
        Ok(Ok(rows)) => Ok(Shape::from_sample(rows).map_or(Seen::Unknown, Seen::Shape)),
        Ok(Err(e)) if e.code == crate::error::ErrorCode::SourceUnavailable => {
            Err(e.detail.to_string())
        }
        Ok(Err(e)) => Ok(Seen::Rejected(e.detail.to_string())),
        Err(_) => Err(format!("no answer within {:?}", source.config.timeout)),
    }
}

/// The type and field a binding is on.
pub fn field_of(bp: &Blueprint, binding: usize) -> Option<(&str, &FieldDef)> {
    for t in &bp.types {
        let crate::blueprint::TypeDefKind::Object { fields, .. } = &t.kind else {
            continue;
        };
        for f in fields {
            if matches!(f.plan, crate::blueprint::FieldPlan::Bound(i) if i == binding) {
                return Some((t.name.as_str(), f));
            }
        }
    }
    None
}
