//! `@page` and `@cursor`: a list of objects filtered by its arguments and read in pages,
//! whatever source answered it (an SQL view, a file, an API that cannot filter).
//!
//! The source answers the whole list once (cached and shared like any answer); each request
//! keeps the items its arguments select, starts after the item whose cursor it names, and
//! takes at most `first` (all of them without it). A cursor is opaque to clients: the item's key columns, as JSON,
//! base64url-encoded, so it names the same item however the list is filtered.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// `@page(max:, equal:, atLeast:, atMost:)` on a list field of an object type that has a
/// `@cursor` field.
#[derive(Clone, Debug)]
pub struct Page {
    /// The columns of the item type's `@cursor(from:)`: what a cursor is made of.
    pub cursor: Vec<String>,
    /// The most items one page holds: `first` above it is refused (without `first`, the
    /// field answers its whole list).
    pub max: usize,
    pub filters: Vec<Filter>,
}

/// One argument compared with one column of each item.
#[derive(Clone, Debug)]
pub struct Filter {
    pub arg: String,
    pub column: String,
    pub compare: Compare,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// `equal: {region: "vervar"}`: the column equals the argument.
    Equal,
    /// `atLeast: {from: "year"}`: the column is at least the argument.
    AtLeast,
    /// `atMost: {to: "year"}`: the column is at most the argument.
    AtMost,
}

/// The arguments every paged field declares.
pub const FIRST: &str = "first";
pub const AFTER: &str = "after";

/// What a caller asked for, checked.
#[derive(Debug, PartialEq)]
pub struct Window {
    pub first: usize,
    pub after: Option<String>,
}

impl Page {
    /// The caller's `first` and `after`; `Err` is the message for the client.
    pub fn window(&self, args: &Value) -> Result<Window, String> {
        let first = match args.get(FIRST) {
            // Without `first`, the whole list, as an unpaged field answers.
            None | Some(Value::Null) => usize::MAX,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 && n as u64 <= self.max as u64 => n as usize,
                _ => return Err(format!("first must be from 0 to {}, not {v}", self.max)),
            },
        };
        let after = match args.get(AFTER) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if decode(s).is_some() => Some(s.clone()),
            Some(v) => return Err(format!("after: {v} is not a cursor this list gave")),
        };
        Ok(Window { first, after })
    }

    /// Whether `row` is selected by the caller's filtering arguments (those not given select
    /// every row).
    pub fn keeps(&self, args: &Value, row: &Value) -> bool {
        self.filters.iter().all(|f| {
            let want = match args.get(&f.arg) {
                None | Some(Value::Null) => return true,
                Some(v) => v,
            };
            let Some(have) = row.get(&f.column) else {
                return false;
            };
            match f.compare {
                Compare::Equal => same(have, want),
                Compare::AtLeast => order(have, want).is_some_and(|o| o.is_ge()),
                Compare::AtMost => order(have, want).is_some_and(|o| o.is_le()),
            }
        })
    }

    /// The items of one parent, in the source's order: those the arguments keep, after the
    /// cursor, at most `first`. `None` when the cursor is not among this parent's items.
    pub fn select(
        &self,
        args: &Value,
        window: &Window,
        rows: &[Value],
        items: impl Iterator<Item = usize>,
    ) -> Option<Vec<usize>> {
        let mut kept = items.filter(|&i| rows.get(i).is_some_and(|r| self.keeps(args, r)));
        if let Some(after) = &window.after {
            kept.by_ref().find(|&i| {
                rows.get(i).and_then(|r| cursor(r, &self.cursor)).as_ref() == Some(after)
            })?;
        }
        Some(kept.take(window.first).collect())
    }
}

/// The cursor of `row`: its `columns` as a JSON array, base64url-encoded. `None` when a
/// column is missing.
pub fn cursor(row: &Value, columns: &[String]) -> Option<String> {
    let key: Option<Vec<&Value>> = columns.iter().map(|c| row.get(c)).collect();
    let json = serde_json::to_vec(&key?).ok()?;
    Some(URL_SAFE_NO_PAD.encode(json))
}

fn decode(cursor: &str) -> Option<Vec<Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Equal as a client means it: `2024` and `"2024"` are the same year.
fn same(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => text(a) == text(b),
    }
}

/// Numbers compare as numbers (also when one is written as text), text as text.
fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(text(a)?.cmp(text(b)?)),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page() -> Page {
        Page {
            cursor: vec!["region".into(), "year".into()],
            max: 3,
            filters: vec![
                Filter {
                    arg: "region".into(),
                    column: "region".into(),
                    compare: Compare::Equal,
                },
                Filter {
                    arg: "from".into(),
                    column: "year".into(),
                    compare: Compare::AtLeast,
                },
                Filter {
                    arg: "to".into(),
                    column: "year".into(),
                    compare: Compare::AtMost,
                },
            ],
        }
    }

    fn rows() -> Vec<Value> {
        let mut rows = Vec::new();
        for region in ["35.03", "35.03.01"] {
            for year in 2020..=2024 {
                rows.push(json!({"region": region, "year": year}));
            }
        }
        rows
    }

    fn years(rows: &[Value], picked: &[usize]) -> Vec<(String, i64)> {
        picked
            .iter()
            .map(|&i| {
                (
                    rows[i]["region"].as_str().unwrap().to_string(),
                    rows[i]["year"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn filters_then_pages_after_a_cursor() {
        let (p, rows) = (page(), rows());
        let args = json!({"region": "35.03.01", "from": 2021, "first": 2});
        let w = p.window(&args).unwrap();
        let one = p.select(&args, &w, &rows, 0..rows.len()).unwrap();
        assert_eq!(
            years(&rows, &one),
            [("35.03.01".into(), 2021), ("35.03.01".into(), 2022)]
        );

        let last = cursor(&rows[*one.last().unwrap()], &p.cursor).unwrap();
        let args = json!({"region": "35.03.01", "from": 2021, "first": 2, "after": last});
        let w = p.window(&args).unwrap();
        let two = p.select(&args, &w, &rows, 0..rows.len()).unwrap();
        assert_eq!(
            years(&rows, &two),
            [("35.03.01".into(), 2023), ("35.03.01".into(), 2024)]
        );
    }

    #[test]
    fn bounds_first_and_refuses_foreign_cursors() {
        let p = page();
        assert_eq!(
            p.window(&json!({})).unwrap().first,
            usize::MAX,
            "no first: the whole list"
        );
        assert!(p.window(&json!({"first": 4})).is_err());
        assert!(p.window(&json!({"first": -1})).is_err());
        assert!(p.window(&json!({"after": "not a cursor"})).is_err());
        let rows = rows();
        // A well-formed cursor of an item this parent does not have.
        let other = cursor(&json!({"region": "35.03.99", "year": 2020}), &p.cursor).unwrap();
        let args = json!({"after": other});
        let w = p.window(&args).unwrap();
        assert_eq!(p.select(&args, &w, &rows, 0..rows.len()), None);
    }

    #[test]
    fn text_and_numbers_compare_as_a_client_means() {
        let p = page();
        let row = json!({"region": "35.03", "year": "2024"});
        assert!(p.keeps(&json!({"from": 2024, "to": 2024}), &row));
        assert!(!p.keeps(&json!({"from": 2025}), &row));
        assert!(!p.keeps(&json!({"region": "35.03.01"}), &row));
    }
}
