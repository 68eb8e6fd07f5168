//! JSON from connectors -> GraphQL output values, coerced to each field's declared type so
//! that SQLite's 0/1, MariaDB's DECIMAL and PostgreSQL's BOOL all answer the same.

use std::sync::Arc;

use async_graphql::{Name, Value as GqlValue};
use async_graphql_parser::types::{BaseType, Type};
use serde_json::Value;

/// What a field's innermost named type is.
#[derive(Clone, Debug)]
pub enum OutKind {
    Int,
    Float,
    String,
    Boolean,
    Id,
    Enum,
    CustomScalar,
    Object,
    /// Interface or union: the concrete type comes from `discriminator` in the row.
    Abstract {
        discriminator: Arc<str>,
    },
}

impl OutKind {
    pub fn is_composite(&self) -> bool {
        matches!(self, OutKind::Object | OutKind::Abstract { .. })
    }
}

/// A field's output shape, computed once when the schema is built.
#[derive(Clone, Debug)]
pub struct Out {
    pub ty: Type,
    pub kind: OutKind,
    /// The field name, for reading a scalar out of a multi-column row.
    pub field: Arc<str>,
    /// For enum fields written by a compiled plan: the values the enum declares (the
    /// generic executor checks them itself).
    pub enum_values: Option<Arc<[String]>>,
}

impl Out {
    /// Whether `v` (or an item of it) is a string the field's enum does not declare.
    pub fn invalid_enum(&self, v: &Value) -> bool {
        let Some(values) = &self.enum_values else {
            return false;
        };
        match v {
            Value::String(s) => !values.iter().any(|e| e == s),
            Value::Array(items) => items.iter().any(|i| self.invalid_enum(i)),
            _ => false,
        }
    }
}

impl Out {
    pub fn is_list(&self) -> bool {
        matches!(self.ty.base, BaseType::List(_))
    }
}

/// Coerces a scalar to the declared type; `None` when it cannot be.
pub fn scalar(kind: &OutKind, v: &Value) -> Option<GqlValue> {
    Some(match (kind, v) {
        (_, Value::Null) => return None,
        (OutKind::Int, Value::Number(n)) => match n.as_i64() {
            Some(i) => GqlValue::from(i),
            None => {
                let f = n.as_f64()?;
                if f.fract() != 0.0 {
                    return None;
                }
                GqlValue::from(f as i64)
            }
        },
        (OutKind::Int, Value::String(s)) => GqlValue::from(s.trim().parse::<i64>().ok()?),
        (OutKind::Int, Value::Bool(b)) => GqlValue::from(i64::from(*b)),
        (OutKind::Float, Value::Number(n)) => GqlValue::Number(n.clone()),
        (OutKind::Float, Value::String(s)) => {
            GqlValue::Number(serde_json::Number::from_f64(s.trim().parse().ok()?)?)
        }
        (OutKind::String | OutKind::Id, Value::String(s)) => GqlValue::String(s.clone()),
        (OutKind::String | OutKind::Id, Value::Number(n)) => {
            GqlValue::String(super::node::key_string(&Value::Number(n.clone()))?)
        }
        (OutKind::String, Value::Bool(b)) => GqlValue::String(b.to_string()),
        (OutKind::Boolean, Value::Bool(b)) => GqlValue::Boolean(*b),
        (OutKind::Boolean, Value::Number(n)) => GqlValue::Boolean(n.as_f64()? != 0.0),
        (OutKind::Boolean, Value::String(s)) => match s.as_str() {
            "true" | "t" | "1" | "TRUE" | "yes" => GqlValue::Boolean(true),
            "false" | "f" | "0" | "FALSE" | "no" => GqlValue::Boolean(false),
            _ => return None,
        },
        (OutKind::Enum, Value::String(s)) => GqlValue::Enum(Name::new(s)),
        (OutKind::CustomScalar, v) => GqlValue::from_json(v.clone()).ok()?,
        (OutKind::String, v @ (Value::Array(_) | Value::Object(_))) => {
            GqlValue::String(v.to_string())
        }
        _ => return None,
    })
}

/// The value a scalar bound field takes from one row: its only column, or the column named
/// like the field; a non-object row is the value itself.
pub fn cell<'r>(out: &Out, row: &'r Value) -> Option<&'r Value> {
    match row {
        Value::Object(m) if m.len() == 1 => m.values().next(),
        Value::Object(m) => m.get(out.field.as_ref()),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coerces_across_backends() {
        assert_eq!(
            scalar(&OutKind::Boolean, &json!(1)),
            Some(GqlValue::Boolean(true))
        );
        assert_eq!(
            scalar(&OutKind::Int, &json!(753810.0)),
            Some(GqlValue::from(753810))
        );
        assert_eq!(scalar(&OutKind::Int, &json!(1.5)), None);
        assert_eq!(
            scalar(&OutKind::Id, &json!(12)),
            Some(GqlValue::String("12".into()))
        );
        assert_eq!(
            scalar(&OutKind::Float, &json!("10.29")),
            Some(GqlValue::Number(
                serde_json::Number::from_f64(10.29).unwrap()
            ))
        );
    }
}
