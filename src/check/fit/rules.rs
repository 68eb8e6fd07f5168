//! Which column types read as which field types (the rules of `resolve::value::scalar`,
//! by declared type), how to convert what does not, and the names a mistake was close to.

use super::super::shape::{ColKind, Shape};
use crate::blueprint::{Blueprint, TypeDef, TypeDefKind};
use crate::resolve::value::OutKind;

pub(super) enum Fits {
    Yes,
    /// Only the values can tell (text read as a number, a boolean or an enum).
    Values,
    No,
}

/// Whether a column of `kind` can be read as a field of `out`: the rules of
/// [`scalar`], by declared type.
pub(super) fn fits(kind: ColKind, out: &OutKind) -> Fits {
    use ColKind as C;
    match (out, kind) {
        (_, C::Unknown) | (OutKind::CustomScalar, _) | (OutKind::String, _) => Fits::Yes,
        (OutKind::Int, C::Int | C::Bool | C::Decimal) => Fits::Yes,
        (OutKind::Float, C::Int | C::Decimal | C::Float) => Fits::Yes,
        (OutKind::Boolean, C::Bool | C::Int | C::Decimal | C::Float) => Fits::Yes,
        (OutKind::Id, C::Int | C::Decimal | C::Float | C::Text | C::Date) => Fits::Yes,
        (OutKind::Decimal, C::Int | C::Decimal | C::Float) => Fits::Yes,
        (OutKind::Date | OutKind::DateTime, C::Date) => Fits::Yes,
        (OutKind::Date | OutKind::DateTime | OutKind::Decimal, C::Text) => Fits::Values,
        (OutKind::Int | OutKind::Float | OutKind::Boolean | OutKind::Enum, C::Text) => Fits::Values,
        (OutKind::Object | OutKind::Abstract { .. }, C::Json | C::Text) => Fits::Yes,
        _ => Fits::No,
    }
}

/// How to make a column of another type read as `out`.
pub(super) fn conversion(out: &OutKind, kind: ColKind, type_name: &str, column: &str) -> String {
    match (out, kind) {
        (_, ColKind::Date) => {
            "dates are read as ISO text (2026-01-31): declare the field Date, DateTime or String"
                .into()
        }
        (_, ColKind::Json) => {
            "JSON is read as an object: declare an object type, or String for its text".into()
        }
        (OutKind::Int, _) => format!(
            "round or cast it in the query (CAST({column} AS INTEGER) AS {column}), or declare the field Float"
        ),
        (OutKind::Float, _) => format!("cast it in the query (CAST({column} AS REAL) AS {column})"),
        (OutKind::Boolean, _) => format!("compare it in the query ({column} = 'ya' AS {column})"),
        (OutKind::Enum, _) => format!("an enum reads text: select the value names of {type_name}"),
        (OutKind::Id, _) => {
            format!("cast it to text in the query (CAST({column} AS TEXT) AS {column})")
        }
        _ => format!("{type_name} cannot be read from this column"),
    }
}

pub(super) fn enum_values(bp: &Blueprint, name: &str) -> Option<Vec<String>> {
    bp.types
        .iter()
        .find(|t| t.name == name)
        .and_then(|t| match &t.kind {
            TypeDefKind::Enum { values } => Some(values.iter().map(|v| v.name.clone()).collect()),
            _ => None,
        })
}

/// The object types a value of type `name` can be.
pub fn possible_types<'b>(bp: &'b Blueprint, name: &str) -> Vec<&'b TypeDef> {
    let Some(t) = bp.types.iter().find(|t| t.name == name) else {
        return Vec::new();
    };
    match &t.kind {
        TypeDefKind::Object { .. } => vec![t],
        TypeDefKind::Union { members, .. } => bp
            .types
            .iter()
            .filter(|m| members.contains(&m.name))
            .collect(),
        TypeDefKind::Interface { .. } => bp
            .types
            .iter()
            .filter(|m| matches!(&m.kind, TypeDefKind::Object { implements, .. } if implements.iter().any(|i| i == name)))
            .collect(),
        _ => Vec::new(),
    }
}

/// "did you mean `kode_kecamatan`?", or the columns there are.
pub fn closest(name: &str, shape: &Shape) -> String {
    let lower = name.to_lowercase();
    // Close in spelling, or sharing a long prefix (`kode_kecamatan` for `kode_kec`).
    let best = shape
        .columns
        .iter()
        .map(|c| {
            let other = c.name.to_lowercase();
            let d = if other == lower {
                0
            } else {
                let edits = strsim::levenshtein(&lower, &other);
                let similar = strsim::jaro_winkler(&lower, &other);
                if similar >= 0.88 { edits.min(2) } else { edits }
            };
            (d, &c.name)
        })
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, col)) if d <= (name.len() / 3).max(2) => {
            if col.to_lowercase() == lower {
                format!(
                    "did you mean `{col}`? (names are matched exactly; an unquoted alias is folded to lower case by PostgreSQL: write AS \"{name}\")"
                )
            } else {
                format!("did you mean `{col}`?")
            }
        }
        _ => {
            let names: Vec<&str> = shape
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .take(12)
                .collect();
            let more = if shape.columns.len() > 12 {
                ", ..."
            } else {
                ""
            };
            format!("its rows have: {}{more}", names.join(", "))
        }
    }
}
