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
    /// `Date`: an ISO 8601 calendar date, `2025-10-03`.
    Date,
    /// `DateTime`: an RFC 3339 instant with its offset, `2025-10-03T14:22:00+07:00`.
    DateTime,
    /// `Decimal` (and `Rupiah`): an exact decimal written as a JSON string, `"1969000000000"`,
    /// so no client reads money through a binary float.
    Decimal,
    CustomScalar,
    Object,
    /// Interface or union: the concrete type comes from `discriminator` in the row.
    Abstract {
        discriminator: Arc<str>,
    },
}

impl OutKind {
    /// The kind of a scalar the schema declares, by name: the formats the engine checks
    /// and writes itself, or any other scalar (passed through as the source wrote it).
    pub fn of_scalar(name: &str) -> OutKind {
        match name {
            "Date" => OutKind::Date,
            "DateTime" => OutKind::DateTime,
            "Decimal" | "Rupiah" => OutKind::Decimal,
            _ => OutKind::CustomScalar,
        }
    }

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
        (OutKind::Date, Value::String(s)) => GqlValue::String(date(s)?),
        (OutKind::DateTime, Value::String(s)) => GqlValue::String(date_time(s)?),
        (OutKind::Decimal, v) => GqlValue::String(decimal(v)?),
        (OutKind::CustomScalar, v) => GqlValue::from_json(v.clone()).ok()?,
        (OutKind::String, v @ (Value::Array(_) | Value::Object(_))) => {
            GqlValue::String(v.to_string())
        }
        _ => return None,
    })
}

/// `YYYY-MM-DD`, a real day of the calendar.
fn date(s: &str) -> Option<String> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(d.format("%Y-%m-%d").to_string())
}

/// RFC 3339 with its offset (a space for the `T` is accepted, as SQL writes it). A time
/// without an offset is refused: which day it falls on would depend on the reader.
fn date_time(s: &str) -> Option<String> {
    let s = s.trim();
    let t = match (s.get(..10), s.as_bytes().get(10), s.get(11..)) {
        (Some(day), Some(b' '), Some(time)) => {
            chrono::DateTime::parse_from_rfc3339(&format!("{day}T{time}"))
        }
        _ => chrono::DateTime::parse_from_rfc3339(s),
    }
    .ok()?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// A number as exact decimal text, never in exponent form: integers as written, a float by
/// its shortest round-trip digits, decimal text checked and kept.
fn decimal(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Some(i.to_string()),
            (_, Some(u), _) => Some(u.to_string()),
            (_, _, Some(f)) if f.is_finite() => Some(format!("{f}")),
            _ => None,
        },
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix('-').unwrap_or(t);
            let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
            let ok = !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && (frac.is_empty() != digits.contains('.'));
            ok.then(|| t.to_string())
        }
        _ => None,
    }
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
    fn dates_times_and_decimals_are_checked_and_normalised() {
        let s = |k: &OutKind, v: Value| scalar(k, &v).map(|g| g.into_json().unwrap());
        assert_eq!(
            s(&OutKind::Date, json!("2025-10-03")),
            Some(json!("2025-10-03"))
        );
        assert_eq!(s(&OutKind::Date, json!("2025-02-30")), None);
        assert_eq!(s(&OutKind::Date, json!("03/10/2025")), None);
        assert_eq!(
            s(&OutKind::DateTime, json!("2024-01-01 15:36:00+07:00")),
            Some(json!("2024-01-01T15:36:00+07:00"))
        );
        assert_eq!(s(&OutKind::DateTime, json!("2024-01-01T15:36:00")), None);
        assert_eq!(
            s(&OutKind::Decimal, json!(2016865000000.0)),
            Some(json!("2016865000000"))
        );
        assert_eq!(
            s(&OutKind::Decimal, json!(1969000000000_i64)),
            Some(json!("1969000000000"))
        );
        assert_eq!(s(&OutKind::Decimal, json!(0.1)), Some(json!("0.1")));
        assert_eq!(
            s(&OutKind::Decimal, json!("-83865000000.50")),
            Some(json!("-83865000000.50"))
        );
        assert_eq!(s(&OutKind::Decimal, json!("1e12")), None);
        assert_eq!(s(&OutKind::Decimal, json!("12.")), None);
        assert!(matches!(OutKind::of_scalar("Rupiah"), OutKind::Decimal));
    }

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
