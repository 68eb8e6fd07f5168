//! Decoder for the BPS WebAPI dynamic-table shape (domain.md §3.1).
//!
//! BPS answers with code lists (`vervar`, `var`, `turvar`, `tahun`, `turtahun`) and a
//! `datacontent` object whose keys are the concatenation of one code from each list. The
//! code widths vary, so keys are split by matching known codes, not by fixed widths.

use serde_json::{Map, Value, json};

struct Code {
    val: String,
    label: String,
    unit: String,
}

fn codes(v: &Value, list: &str) -> Vec<Code> {
    v.get(list)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|i| Code {
                    val: match i.get("val") {
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    },
                    label: i
                        .get("label")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    unit: i
                        .get("unit")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Turns a BPS response into an array of rows: vervar, vervar_label, var, var_label, unit,
/// turvar, turvar_label, year, turtahun, turtahun_label, value.
pub fn decode(v: &Value) -> Result<Value, String> {
    let content = v
        .get("datacontent")
        .and_then(Value::as_object)
        .ok_or("response has no datacontent object")?;
    let (vervar, var, turvar, tahun, turtahun) = (
        codes(v, "vervar"),
        codes(v, "var"),
        codes(v, "turvar"),
        codes(v, "tahun"),
        codes(v, "turtahun"),
    );
    let mut rows = Vec::with_capacity(content.len());
    for (key, value) in content {
        let Some(row) = split(key, &vervar, &var, &turvar, &tahun, &turtahun) else {
            return Err(format!(
                "datacontent key '{key}' matches no combination of the code lists"
            ));
        };
        let (vv, va, tv, th, tt) = row;
        let year = th
            .label
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| th.val.parse::<i64>().ok().map(|y| y + 1900));
        let mut m = Map::new();
        m.insert("vervar".into(), json!(vv.val));
        m.insert("vervar_label".into(), json!(vv.label));
        m.insert("var".into(), json!(va.val));
        m.insert("var_label".into(), json!(va.label));
        m.insert("unit".into(), json!(va.unit));
        m.insert("turvar".into(), json!(tv.val));
        m.insert("turvar_label".into(), json!(tv.label));
        m.insert("year".into(), json!(year));
        m.insert("turtahun".into(), json!(tt.val));
        m.insert("turtahun_label".into(), json!(tt.label));
        m.insert("value".into(), value.clone());
        rows.push(Value::Object(m));
    }
    rows.sort_by(|a, b| {
        (
            a["vervar"].as_str(),
            a["year"].as_i64(),
            a["turtahun"].as_str(),
        )
            .cmp(&(
                b["vervar"].as_str(),
                b["year"].as_i64(),
                b["turtahun"].as_str(),
            ))
    });
    Ok(Value::Array(rows))
}

type Split<'a> = (&'a Code, &'a Code, &'a Code, &'a Code, &'a Code);

fn split<'a>(
    key: &str,
    vervar: &'a [Code],
    var: &'a [Code],
    turvar: &'a [Code],
    tahun: &'a [Code],
    turtahun: &'a [Code],
) -> Option<Split<'a>> {
    for vv in vervar.iter().filter(|c| key.starts_with(&c.val)) {
        let r1 = &key[vv.val.len()..];
        for va in var.iter().filter(|c| r1.starts_with(&c.val)) {
            let r2 = &r1[va.val.len()..];
            for tv in turvar.iter().filter(|c| r2.starts_with(&c.val)) {
                let r3 = &r2[tv.val.len()..];
                for th in tahun.iter().filter(|c| r3.starts_with(&c.val)) {
                    let r4 = &r3[th.val.len()..];
                    if let Some(tt) = turtahun.iter().find(|c| c.val == r4) {
                        return Some((vv, va, tv, th, tt));
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_documented_key() {
        // domain.md §3.1: 121801171 = vervar 1, var 218, turvar 0, tahun 117, turtahun 1.
        let v = json!({
            "var": [{"val": 218, "label": "Inflasi", "unit": "persen"}],
            "vervar": [{"val": 1, "label": "Ambon"}, {"val": 12, "label": "X"}],
            "turvar": [{"val": 0, "label": "Tidak ada"}],
            "tahun": [{"val": 117, "label": "2017"}],
            "turtahun": [{"val": 1, "label": "Januari"}],
            "datacontent": {"121801171": 0.5}
        });
        let rows = decode(&v).unwrap();
        assert_eq!(rows[0]["vervar"], "1");
        assert_eq!(rows[0]["year"], 2017);
        assert_eq!(rows[0]["value"], 0.5);
        assert_eq!(rows[0]["unit"], "persen");
    }
}
