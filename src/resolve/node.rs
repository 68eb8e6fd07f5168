//! Parent values as the resolvers see them: a row inside a group of sibling rows.
//!
//! A group is every row one upstream answer produced (or one batched level). Keeping the
//! siblings together is what lets a batched child field fetch once for the whole level: the
//! first child to resolve collects the keys of every row of its parent's group.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::connectors::Fetched;
use crate::connectors::derived::Derived;

static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);

pub enum GroupRows {
    Fetched(Arc<Fetched>),
    Owned(Vec<Value>),
}

pub struct Group {
    pub id: u64,
    rows: GroupRows,
}

impl Group {
    pub fn new(rows: GroupRows) -> Arc<Group> {
        Arc::new(Group {
            id: NEXT_GROUP.fetch_add(1, Ordering::Relaxed),
            rows,
        })
    }

    /// What readers derived from these rows, when they are one shared upstream answer.
    pub fn derived(&self) -> Option<&Derived> {
        match &self.rows {
            GroupRows::Fetched(f) => Some(&f.derived),
            GroupRows::Owned(_) => None,
        }
    }

    /// The id of the shared upstream answer these rows are, if they are one.
    pub fn answer_id(&self) -> Option<u64> {
        match &self.rows {
            GroupRows::Fetched(f) => Some(f.id),
            GroupRows::Owned(_) => None,
        }
    }

    pub fn rows(&self) -> &[Value] {
        match &self.rows {
            GroupRows::Fetched(f) => &f.rows,
            GroupRows::Owned(v) => v,
        }
    }
}

/// One parent value: row `index` of `group`.
#[derive(Clone)]
pub struct Node {
    pub group: Arc<Group>,
    pub index: usize,
}

impl Node {
    pub fn single(value: Value) -> Node {
        Node {
            group: Group::new(GroupRows::Owned(vec![value])),
            index: 0,
        }
    }

    pub fn row(&self) -> &Value {
        self.group.rows().get(self.index).unwrap_or(&Value::Null)
    }
}

/// Reads `path` inside `value` (object keys, or array indexes).
pub fn get_path<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut v = value;
    for seg in path {
        v = match v {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// The string a value is matched by when batched results are handed back to parents:
/// `7`, `7.0` and `"7"` all match.
pub fn key_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => (f as i64).to_string(),
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// Calls `f` with the match string of `v` (see [`key_string`]), without allocating for
/// strings and integers.
pub fn with_key<R>(v: &Value, f: impl FnOnce(&str) -> R) -> Option<R> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(f(s)),
        Value::Number(n) if n.is_i64() => {
            let mut buf = itoa::Buffer::new();
            Some(f(buf.format(n.as_i64().unwrap_or_default())))
        }
        other => key_string(other).map(|k| f(&k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_across_number_and_string() {
        assert_eq!(key_string(&json!(7)), key_string(&json!("7")));
        assert_eq!(key_string(&json!(7.0)), Some("7".into()));
        assert_eq!(key_string(&Value::Null), None);
    }

    #[test]
    fn paths_read_objects_and_arrays() {
        let v = json!({"a": [{"b": 1}]});
        assert_eq!(
            get_path(&v, &["a".into(), "0".into(), "b".into()]),
            Some(&json!(1))
        );
    }
}
