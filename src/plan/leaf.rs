//! Leaf values: scalars and enums (and lists of them) coerced to their declared type as
//! they are written, with an error at their path for what does not fit.

use std::io::Write as _;

use async_graphql_parser::types::{BaseType, Type};
use serde_json::Value;

use super::PlanField;
use super::write::{Null, Seg, Writer};
use crate::error::ErrorCode;
use crate::resolve::value::{Out, OutKind, scalar};

impl Writer<'_, '_> {
    /// A scalar (or list of scalars) bound field: the single column of each picked row.
    pub(super) fn scalar_rows(
        &mut self,
        f: &PlanField,
        o: &Out,
        rows: &[Value],
        picked: &[usize],
    ) -> Result<(), Null> {
        let cell = |i: usize| -> &Value {
            rows.get(i)
                .and_then(|r| crate::resolve::value::cell(o, r))
                .unwrap_or(&Value::Null)
        };
        match &o.ty.base {
            BaseType::List(inner) => {
                self.out.push(b'[');
                for (k, &i) in picked.iter().enumerate() {
                    if k > 0 {
                        self.out.push(b',');
                    }
                    self.item(f, o, inner, k, cell(i))?;
                }
                self.out.push(b']');
                Ok(())
            }
            BaseType::Named(_) => {
                let v = picked.first().map(|&i| cell(i)).unwrap_or(&Value::Null);
                self.value(f, o, &o.ty, v)
            }
        }
    }

    /// List item `k`: null in its place when it is invalid and nullable.
    fn item(&mut self, f: &PlanField, o: &Out, ty: &Type, k: usize, v: &Value) -> Result<(), Null> {
        self.path.push(Seg::Index(k));
        let start = self.out.len();
        let r = self.value(f, o, ty, v);
        self.path.pop();
        if r.is_err() {
            self.out.truncate(start);
            if !ty.nullable {
                return Err(Null);
            }
            self.out.extend_from_slice(b"null");
        }
        Ok(())
    }

    /// A leaf value (or a list of them) coerced to `ty`; an error for what does not fit.
    pub(super) fn value(
        &mut self,
        f: &PlanField,
        o: &Out,
        ty: &Type,
        v: &Value,
    ) -> Result<(), Null> {
        match (&ty.base, v) {
            (_, Value::Null) if ty.nullable => self.out.extend_from_slice(b"null"),
            (_, Value::Null) => return self.no_value(f),
            (BaseType::List(inner), Value::Array(items)) => {
                self.out.push(b'[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        self.out.push(b',');
                    }
                    self.item(f, o, inner, k, item)?;
                }
                self.out.push(b']');
            }
            (BaseType::List(inner), single) => {
                self.out.push(b'[');
                self.item(f, o, inner, 0, single)?;
                self.out.push(b']');
            }
            (BaseType::Named(name), v) => {
                let problem = if o.invalid_enum(v) {
                    Some(format!("{} is not a value of enum {name}", shown(v)))
                } else if write_plain(&o.kind, v, self.out) {
                    None
                } else {
                    match scalar(&o.kind, v) {
                        Some(g) => {
                            if serde_json::to_writer(&mut *self.out, &g).is_err() {
                                let _ = self.out.write_all(b"null");
                            }
                            None
                        }
                        None => Some(format!("{} cannot be read as {name}", shown(v))),
                    }
                };
                if let Some(p) = problem {
                    self.report(f, v, &p);
                    self.error(
                        f,
                        format!("{}.{}: {p}", f.owner, f.name),
                        ErrorCode::SourceBadResponse,
                        None,
                    );
                    if !ty.nullable {
                        return Err(Null);
                    }
                    self.out.extend_from_slice(b"null");
                }
            }
        }
        Ok(())
    }

    /// No value at all for `f`: null, or an error where its type forbids null.
    pub(super) fn missing(&mut self, f: &PlanField) -> Result<(), Null> {
        if f.non_null {
            return self.no_value(f);
        }
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    /// The error of a null in a non-null place of `f` (the field or a list item).
    pub(super) fn no_value(&mut self, f: &PlanField) -> Result<(), Null> {
        self.report(f, &Value::Null, "non-null but its source gave no value");
        let message = format!(
            "{}.{} is non-null but its source gave no value",
            f.owner, f.name
        );
        self.error(f, message, ErrorCode::SourceBadResponse, None);
        Err(Null)
    }
}

/// `[T!]!`, the type of `Query.sources`.
pub(super) static LIST_NN: std::sync::LazyLock<Type> = std::sync::LazyLock::new(|| Type {
    base: BaseType::List(Box::new(Type {
        base: BaseType::Named(async_graphql_value::Name::new("SourceHealth")),
        nullable: false,
    })),
    nullable: false,
});

/// A value for a message: at most 40 characters of its JSON.
pub(super) fn shown(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// Writes a value that needs no conversion for its declared type without building a
/// GraphQL value first (the common case: a string column for a String field, an integer
/// for an Int). Returns false when the value needs `scalar`'s coercion.
fn write_plain(kind: &OutKind, v: &Value, out: &mut Vec<u8>) -> bool {
    match (kind, v) {
        (OutKind::String | OutKind::Id | OutKind::Enum, Value::String(s)) => {
            serde_json::to_writer(&mut *out, s.as_str()).is_ok()
        }
        (OutKind::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let mut buf = itoa::Buffer::new();
            match n.as_i64() {
                Some(i) => out.extend_from_slice(buf.format(i).as_bytes()),
                None => return false,
            }
            true
        }
        (OutKind::Float, Value::Number(n)) => serde_json::to_writer(&mut *out, n).is_ok(),
        (OutKind::Boolean, Value::Bool(b)) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" });
            true
        }
        _ => false,
    }
}
