//! One evaluation of a rule over its query's answer: the items, each one's values and
//! condition in CEL, and what fires, with its message, recommendation and evidence.
//! Pure: the caller runs the query and stores what fires.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::rule::{Piece, Rule, Text};

/// An item whose condition holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub region_code: String,
    pub region_name: String,
    pub key: String,
    pub message: String,
    pub recommendation: String,
    pub evidence: Value,
}

/// What one evaluation found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub items: usize,
    /// The first item the condition could not be evaluated on; while any item fails, no
    /// alert of the rule is resolved (its state is unknown, not cleared).
    pub error: Option<String>,
}

/// Where alerts of a rule without `region` point.
pub struct DefaultRegion<'a> {
    pub code: &'a str,
    pub name: &'a str,
}

/// Evaluates `rule` over `data` (the query's `data`) and `sources` (its
/// `extensions.sources`), at `now`.
pub fn evaluate(
    rule: &Rule,
    data: &Value,
    sources: &Value,
    now: DateTime<Utc>,
    region: &DefaultRegion<'_>,
) -> Outcome {
    let mut items = Vec::new();
    collect(data, &rule.items, &mut items);
    let stale: Vec<&Value> = sources
        .as_array()
        .map(|s| s.iter().filter(|s| s["cache"] == "STALE").collect())
        .unwrap_or_default();
    let failed: Vec<&Value> = sources
        .as_array()
        .map(|s| s.iter().filter(|s| s.get("error").is_some()).collect())
        .unwrap_or_default();
    let mut out = Outcome {
        items: items.len(),
        ..Outcome::default()
    };
    if let Some(f) = failed.first() {
        out.error = Some(format!(
            "source {} answered {}: the rule's data is incomplete",
            f["name"].as_str().unwrap_or("?"),
            f["error"].as_str().unwrap_or("an error")
        ));
    }
    let now_cel = cel::Value::Timestamp(now.fixed_offset());
    for item in items {
        match check(rule, item, &now_cel) {
            Ok(None) => {}
            Ok(Some(values)) => {
                out.findings
                    .push(finding(rule, item, &values, sources, &stale, now, region));
            }
            Err(e) => {
                if out.error.is_none() {
                    let name = rule
                        .region_name
                        .as_ref()
                        .and_then(|p| read(item, p))
                        .map(text)
                        .unwrap_or_default();
                    out.error = Some(format!("item {name}: {e}"));
                }
            }
        }
    }
    out
}

/// The items `path` names in `data`; a list met on the way is flattened.
fn collect<'v>(data: &'v Value, path: &[String], out: &mut Vec<&'v Value>) {
    match data {
        Value::Array(list) => list.iter().for_each(|v| collect(v, path, out)),
        Value::Null => {}
        _ => match path.split_first() {
            None => out.push(data),
            Some((head, rest)) => {
                if let Some(v) = data.get(head) {
                    collect(v, rest, out);
                }
            }
        },
    }
}

/// The values of `item` when its condition holds.
fn check(
    rule: &Rule,
    item: &Value,
    now: &cel::Value,
) -> Result<Option<Map<String, Value>>, String> {
    let mut cx = cel::Context::default();
    cx.add_variable_from_value("item", to_cel(item));
    cx.add_variable_from_value("now", now.clone());
    let mut values = Map::new();
    for (name, program) in &rule.values {
        let v = program
            .execute(&cx)
            .map_err(|e| format!("values.{name}: {e}"))?;
        let v = v.json().map_err(|e| format!("values.{name}: {e}"))?;
        values.insert(name.clone(), v);
    }
    cx.add_variable_from_value("values", to_cel(&Value::Object(values.clone())));
    match rule.when.execute(&cx) {
        Ok(cel::Value::Bool(true)) => Ok(Some(values)),
        Ok(cel::Value::Bool(false)) => Ok(None),
        Ok(other) => Err(format!("when gave {other:?}, not a bool")),
        Err(e) => Err(format!("when: {e}")),
    }
}

/// A JSON value as CEL sees it: whole numbers are `int` (signed, so differences of counts
/// can go below zero), others `double`.
fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => cel::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => cel::Value::String(std::sync::Arc::new(s.clone())),
        Value::Array(a) => cel::Value::List(std::sync::Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: std::collections::HashMap<String, cel::Value> =
                m.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(map)
        }
    }
}

fn finding(
    rule: &Rule,
    item: &Value,
    values: &Map<String, Value>,
    sources: &Value,
    stale: &[&Value],
    now: DateTime<Utc>,
    region: &DefaultRegion<'_>,
) -> Finding {
    let field = |p: &Option<Vec<String>>| p.as_ref().and_then(|p| read(item, p)).map(text);
    let (region_code, region_name) = match &rule.region {
        Some(_) => (
            field(&rule.region).unwrap_or_default(),
            field(&rule.region_name).unwrap_or_default(),
        ),
        None => (
            region.code.to_string(),
            field(&rule.region_name).unwrap_or_else(|| region.name.to_string()),
        ),
    };
    let mut message = render(&rule.message, item, values);
    if !stale.is_empty() {
        let names: Vec<String> = stale
            .iter()
            .map(|s| {
                format!(
                    "{} ({} detik)",
                    s["name"].as_str().unwrap_or("?"),
                    s["ageSeconds"]
                )
            })
            .collect();
        message.push_str(&format!(
            " Catatan: dinilai dari data basi: {}.",
            names.join(", ")
        ));
    }
    let evidence = json!({
        "values": values.iter().map(|(k, v)| json!({ "name": k, "value": text(v) })).collect::<Vec<_>>(),
        "sources": sources
            .as_array()
            .map(|s| s.iter().map(|s| json!({
                "name": s["name"], "opd": s["opd"], "state": s["cache"],
                "age_seconds": s["ageSeconds"], "fetched_at": s["fetchedAt"], "error": s.get("error"),
            })).collect::<Vec<_>>())
            .unwrap_or_default(),
        "stale": !stale.is_empty(),
        "item": item.to_string(),
        "evaluated_at": now.to_rfc3339_opts(SecondsFormat::Secs, true),
    });
    Finding {
        region_code,
        region_name,
        key: field(&rule.key).unwrap_or_default(),
        message,
        recommendation: render(&rule.recommendation, item, values),
        evidence,
    }
}

fn read<'v>(item: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(item, |v, k| match v {
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => v.get(k),
    })
}

/// A value as the messages print it: strings bare, numbers to at most two decimals.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            let s = format!("{f:.2}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        other => other.to_string(),
    }
}

fn render(t: &Text, item: &Value, values: &Map<String, Value>) -> String {
    let mut out = String::new();
    for p in &t.0 {
        match p {
            Piece::Lit(s) => out.push_str(s),
            Piece::Item(path) => out.push_str(&read(item, path).map(text).unwrap_or("-".into())),
            Piece::Value(name) => out.push_str(&values.get(name).map(text).unwrap_or("-".into())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(body: &str) -> std::sync::Arc<Rule> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/r.toml"), body).unwrap();
        let mut diags = Vec::new();
        let mut rules = super::super::rule::load(dir.path(), &|_| None, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        rules.remove(0)
    }

    const RULE: &str = r#"
title = "t"
severity = "WARNING"
opd = "dinkes"
interval = "1h"
query = "{ districts { code name rate history } }"
items = "districts"
region = "code"
region_name = "name"
when = "values.change > 0"
message = "{{item.name}}: {{values.change}}"
recommendation = "Act in {{item.name}}."
[values]
change = "item.history[size(item.history) - 1] - item.history[0]"
"#;

    fn data() -> Value {
        json!({ "districts": [
            { "code": "35.03.01", "name": "Panggul", "rate": 7.5, "history": [10, 12] },
            { "code": "35.03.02", "name": "Munjungan", "rate": 6.1, "history": [12, 10] },
        ] })
    }

    const REGION: DefaultRegion<'static> = DefaultRegion {
        code: "35.03",
        name: "Trenggalek",
    };

    #[test]
    fn fires_for_the_items_whose_condition_holds_with_their_values() {
        let sources =
            json!([{ "name": "dinkes", "opd": "dinkes", "cache": "MISS", "ageSeconds": 0 }]);
        let out = evaluate(&rule(RULE), &data(), &sources, Utc::now(), &REGION);
        assert_eq!(out.items, 2);
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.findings.len(), 1);
        let f = &out.findings[0];
        assert_eq!(
            (f.region_code.as_str(), f.region_name.as_str()),
            ("35.03.01", "Panggul")
        );
        // Differences of counts are signed ints: Munjungan's -2 is a value, not an overflow.
        assert_eq!(f.message, "Panggul: 2");
        assert_eq!(f.recommendation, "Act in Panggul.");
        assert_eq!(
            f.evidence["values"],
            json!([{ "name": "change", "value": "2" }])
        );
        assert_eq!(f.evidence["stale"], false);
    }

    #[test]
    fn a_rule_over_stale_data_says_so() {
        let sources =
            json!([{ "name": "dinkes", "opd": "dinkes", "cache": "STALE", "ageSeconds": 7200 }]);
        let out = evaluate(&rule(RULE), &data(), &sources, Utc::now(), &REGION);
        let f = &out.findings[0];
        assert_eq!(f.evidence["stale"], true);
        assert!(
            f.message.contains("data basi: dinkes (7200 detik)"),
            "{}",
            f.message
        );
    }

    #[test]
    fn an_item_that_cannot_be_evaluated_and_a_failed_source_are_errors() {
        let mut d = data();
        d["districts"][1]["history"] = json!([]);
        let out = evaluate(&rule(RULE), &d, &json!([]), Utc::now(), &REGION);
        assert_eq!(out.findings.len(), 1, "the other items are still evaluated");
        assert!(
            out.error
                .as_deref()
                .unwrap()
                .starts_with("item Munjungan: values.change"),
            "{:?}",
            out.error
        );
        let failed = json!([{ "name": "dinkes", "cache": "MISS", "error": "SOURCE_UNAVAILABLE" }]);
        let out = evaluate(&rule(RULE), &data(), &failed, Utc::now(), &REGION);
        assert!(out.error.unwrap().contains("SOURCE_UNAVAILABLE"));
    }

    #[test]
    fn a_rule_without_a_region_points_at_the_default_one() {
        let body = RULE
            .replace("region = \"code\"\n", "")
            .replace("region_name = \"name\"\n", "key = \"code\"\n");
        let out = evaluate(&rule(&body), &data(), &json!([]), Utc::now(), &REGION);
        let f = &out.findings[0];
        assert_eq!(
            (
                f.region_code.as_str(),
                f.region_name.as_str(),
                f.key.as_str()
            ),
            ("35.03", "Trenggalek", "35.03.01")
        );
    }
}
