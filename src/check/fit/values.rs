//! The questions only a column's values answer, asked once every shape is known: do the
//! values of a text column read as the field's number, boolean or enum, and do a batch's
//! keys meet its parents' values (the child statement run with them, as a request would).

use std::collections::BTreeSet;

use serde_json::Value;

use super::rules::enum_values;
use super::{Fit, Question};
use crate::blueprint::{Blueprint, named};
use crate::check::shape::{Col, Probed, Seen};
use crate::resolve::node::key_string;
use crate::resolve::value::{OutKind, scalar};

/// Values read per column to check them: enough to find a stray `-`, cheap on any table.
const VALUES_READ: usize = 1000;

impl Fit<'_> {
    /// Reads the values the declared types could not vouch for.
    pub async fn values(&mut self, probed: &mut Probed) {
        let questions = std::mem::take(&mut self.questions);
        let mut met = std::collections::HashSet::new();
        for q in questions {
            match q {
                Question::Reads {
                    binding,
                    col,
                    owner,
                    field,
                    out,
                } => {
                    let Some(values) = read(self.bp, probed, binding, &col).await else {
                        continue;
                    };
                    let enum_values = enum_values(self.bp, named(&field.ty));
                    let bad = unreadable(&out, enum_values.as_deref(), &values);
                    if !bad.is_empty()
                        && let Some(b) = self.bp.bindings.get(binding)
                    {
                        self.unreadable(b, owner, field, &col, &bad);
                    }
                }
                Question::Meets {
                    parent,
                    child,
                    at,
                    child_name,
                } => {
                    // Parents whose rows come from the same table column ask the same.
                    let asked_by = parent
                        .1
                        .origin
                        .clone()
                        .ok_or((parent.0, parent.1.name.clone()));
                    if !met.insert((child.0, asked_by)) {
                        continue;
                    }
                    if let Some(message) = self.meets(probed, &parent, &child).await {
                        self.at(
                            at,
                            format!("{child_name}: {message}"),
                            Some("every child list would come back empty: is the batch key the right column, and are both codes written the same way?".into()),
                        );
                    }
                }
            }
        }
    }

    /// Whether the parent's values find children: the child's statement is run with them
    /// as the batch keys, as a request would. `Some(why)` when they find none though the
    /// child's table has keys.
    async fn meets(
        &self,
        probed: &mut Probed,
        parent: &(usize, Col),
        child: &(usize, Col),
    ) -> Option<String> {
        let parents = read(self.bp, probed, parent.0, &parent.1).await?;
        let b = self.bp.bindings.get(child.0)?;
        let batch = b.batch.as_ref()?;
        let mut asked: Vec<Value> = Vec::new();
        let mut seen = BTreeSet::new();
        for v in parents {
            if asked.len() >= batch.max_size {
                break;
            }
            if let Some(k) = key_string(&v)
                && seen.insert(k)
            {
                asked.push(v);
            }
        }
        if asked.is_empty() {
            return None;
        }
        let crate::blueprint::Operation::Sql { query } = &b.operation else {
            return None;
        };
        let conn = probed.conns.get_mut(b.connector)?.as_mut()?;
        let null = Value::Null;
        let values = crate::resolve::render::Values {
            args: &null,
            parent: None,
            auth: &null,
            outbox: None,
            view: crate::access::Tier::Public,
        };
        let keys = crate::resolve::render::BatchValues {
            batch,
            keys: &asked,
        };
        let crate::connectors::Call::Sql { sql, params } =
            crate::resolve::render::sql(query, conn.dialect(), &values, Some(&keys))
        else {
            return None;
        };
        let run = tokio::time::timeout(std::time::Duration::from_secs(10), conn.rows(&sql, params));
        let rows = run.await.ok()?.ok()?;
        let found: BTreeSet<String> = rows
            .iter()
            .filter_map(|r| r.get(&batch.key))
            .filter_map(key_string)
            .collect();
        if !found.is_empty() && !found.is_disjoint(&seen) {
            return None;
        }
        // No row came back for any parent (or none with a matching key): say so only when
        // the child's rows have keys at all, and show both sides.
        let keys = match found.is_empty() {
            false => found,
            true => read(self.bp, probed, child.0, &child.1)
                .await?
                .iter()
                .filter_map(key_string)
                .collect(),
        };
        if keys.is_empty() {
            return None;
        }
        let few = |s: &BTreeSet<String>| s.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let parent_name = self
            .bp
            .bindings
            .get(parent.0)
            .map_or("?", |b| b.name.as_str());
        Some(format!(
            "no value of batch key `{}` meets a value of `{}` in the rows of {parent_name}: the parents ask {}; the key holds {}",
            child.1.name,
            parent.1.name,
            few(&seen),
            few(&keys)
        ))
    }
}

/// Up to [`VALUES_READ`] non-null values of a column: from its table when its origin is
/// known, else from a sample.
async fn read(
    bp: &Blueprint,
    probed: &mut Probed,
    binding: usize,
    col: &Col,
) -> Option<Vec<Value>> {
    if let Some(Seen::Shape(shape)) = probed.seen.get(binding)
        && let Some(values) = shape.sampled(&col.name)
    {
        return Some(values);
    }
    let (table, column) = col.origin.as_ref()?;
    let connector = bp.bindings.get(binding)?.connector;
    let key = (connector, table.clone(), column.clone());
    if let Some(known) = probed.read.get(&key) {
        return known.clone();
    }
    let conn = probed.conns.get_mut(connector)?.as_mut()?;
    let read = conn.distinct(table, column, VALUES_READ);
    let values = tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .ok()
        .and_then(Result::ok);
    probed.read.insert(key, values.clone());
    values
}

/// The distinct values (shown, at most 5) the gateway could not serve as the field's type.
pub(super) fn unreadable(
    out: &OutKind,
    enum_values: Option<&[String]>,
    values: &[Value],
) -> Vec<String> {
    let mut bad = BTreeSet::new();
    for v in values {
        let fails = match (enum_values, v) {
            (Some(declared), Value::String(s)) => !declared.iter().any(|d| d == s),
            _ => scalar(out, v).is_none(),
        };
        if fails {
            bad.insert(v.to_string());
        }
    }
    bad.into_iter().take(5).collect()
}
