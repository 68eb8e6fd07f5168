//! Turning a binding's templates plus request values into a concrete upstream [`Call`].
//!
//! SQL: every placeholder becomes a bind marker and a parameter; batched lists get one marker
//! per value, padded to a power of two so the statement cache sees few distinct texts.
//! HTTP: values are percent-encoded in paths and queries, checked in headers and escaped in
//! JSON bodies.

use std::sync::Arc;

use serde_json::Value;

use crate::blueprint::template::{Placeholder, Scope, Segment, Template};
use crate::blueprint::{Batch, HttpOperation};
use crate::connectors::http::{HttpCall, encode};
use crate::connectors::sql::Dialect;
use crate::connectors::{Call, Param};

use super::node::get_path;

/// Where placeholder values come from for one call.
pub struct Values<'a> {
    pub args: &'a Value,
    pub parent: Option<&'a Value>,
    pub auth: &'a Value,
    /// The outbox row a delivery is for: `{"id": …, "acceptedAt": …}`.
    pub outbox: Option<&'a Value>,
    /// The tier of the caller's view, `{{view.tier}}`.
    pub view: crate::access::Tier,
}

impl Values<'_> {
    pub fn get(&self, p: &Placeholder) -> Value {
        let root = match p.scope {
            Scope::Args => Some(self.args),
            Scope::Parent => self.parent,
            Scope::Auth => Some(self.auth),
            Scope::Outbox => self.outbox,
            Scope::View => return Value::String(self.view.as_str().into()),
        };
        root.and_then(|r| get_path(r, &p.path))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// The batched placeholder and the distinct parent values it receives.
pub struct BatchValues<'a> {
    pub batch: &'a Batch,
    pub keys: &'a [Value],
}

pub fn sql(
    template: &Template,
    dialect: Dialect,
    values: &Values,
    batch: Option<&BatchValues>,
) -> Call {
    let mut sql = String::with_capacity(256);
    let mut params = Vec::new();
    for seg in &template.segments {
        match seg {
            Segment::Text(t) => sql.push_str(t),
            Segment::Var(p) => match batch {
                Some(b) if *p == b.batch.parent => {
                    let n = b.keys.len().max(1).next_power_of_two();
                    for i in 0..n {
                        if i > 0 {
                            sql.push_str(", ");
                        }
                        let key = b.keys.get(i).or(b.keys.last()).unwrap_or(&Value::Null);
                        params.push(Param::from_json(key));
                        dialect.marker(params.len(), &mut sql);
                    }
                }
                _ => {
                    params.push(Param::from_json(&values.get(p)));
                    dialect.marker(params.len(), &mut sql);
                }
            },
        }
    }
    Call::Sql { sql, params }
}

/// A template's value as a remote GraphQL argument: a lone placeholder keeps its value's
/// type (`"{{args.first}}"` stays a number); anything else is the text it renders.
pub fn value(template: &Template, values: &Values) -> Value {
    if let [Segment::Var(p)] = template.segments.as_slice() {
        return values.get(p);
    }
    let mut out = String::new();
    for seg in &template.segments {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Var(p) => out.push_str(&text_of(&values.get(p))),
        }
    }
    Value::String(out)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => super::node::key_string(other).unwrap_or_default(),
    }
}

/// Renders a path or query value with every placeholder percent-encoded.
fn encoded(template: &Template, values: &Values, out: &mut String) -> Result<(), String> {
    for seg in &template.segments {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Var(p) => {
                let text = text_of(&values.get(p));
                if !text.is_empty() && text.chars().all(|c| c == '.') {
                    return Err(format!("{} may not be '{text}'", p.display()));
                }
                encode(&text, out);
            }
        }
    }
    Ok(())
}

pub fn http(
    op: &HttpOperation,
    select: &Arc<[String]>,
    values: &Values,
    batch: Option<&BatchValues>,
) -> Result<Call, String> {
    let mut target = String::with_capacity(128);
    encoded(&op.path, values, &mut target)?;
    let mut first = !target.contains('?');
    let mut push = |name: &str, value: &str, target: &mut String| {
        target.push(if first { '?' } else { '&' });
        first = false;
        encode(name, target);
        target.push('=');
        target.push_str(value);
    };
    for (name, template) in &op.query {
        let batched = batch.filter(|b| template.placeholders().any(|p| *p == b.batch.parent));
        match batched {
            Some(b) => {
                let keys: Vec<String> = b
                    .keys
                    .iter()
                    .map(|k| {
                        let mut s = String::new();
                        encode(&text_of(k), &mut s);
                        s
                    })
                    .collect();
                match &b.batch.separator {
                    Some(sep) => {
                        let mut joined_sep = String::new();
                        encode(sep, &mut joined_sep);
                        push(name, &keys.join(&joined_sep), &mut target);
                    }
                    None => keys.iter().for_each(|k| push(name, k, &mut target)),
                }
            }
            None => {
                let mut value = String::new();
                encoded(template, values, &mut value)?;
                push(name, &value, &mut target);
            }
        }
    }
    let mut headers = Vec::with_capacity(op.headers.len());
    for (name, template) in &op.headers {
        let mut value = String::new();
        for seg in &template.segments {
            match seg {
                Segment::Text(t) => value.push_str(t),
                Segment::Var(p) => value.push_str(&text_of(&values.get(p))),
            }
        }
        if value.chars().any(|c| c.is_control()) {
            return Err(format!("header {name} would contain a control character"));
        }
        headers.push((name.clone(), value));
    }
    let body = op.body.as_ref().map(|t| json_body(t, values));
    Ok(Call::Http(HttpCall {
        method: op.method.clone(),
        target,
        headers,
        body,
        select: select.clone(),
    }))
}

/// A JSON body: a placeholder inside a string literal gets the escaped text, elsewhere the
/// JSON encoding of the value; a value can never close a string or add a key.
fn json_body(template: &Template, values: &Values) -> String {
    let mut out = String::new();
    let mut in_string = false;
    for seg in &template.segments {
        match seg {
            Segment::Text(t) => {
                let mut escaped = false;
                for c in t.chars() {
                    if c == '"' && !escaped {
                        in_string = !in_string;
                    }
                    escaped = c == '\\' && !escaped;
                }
                out.push_str(t);
            }
            Segment::Var(p) => {
                let v = values.get(p);
                if in_string {
                    let s = serde_json::to_string(&text_of(&v)).unwrap_or_default();
                    out.push_str(&s[1..s.len().saturating_sub(1)]);
                } else {
                    out.push_str(&serde_json::to_string(&v).unwrap_or_else(|_| "null".into()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vals<'a>(args: &'a Value, auth: &'a Value) -> Values<'a> {
        Values {
            args,
            parent: None,
            auth,
            outbox: None,
            view: crate::access::Tier::Public,
        }
    }

    #[test]
    fn sql_binds_and_numbers_markers() {
        let t = Template::parse("SELECT * FROM t WHERE a = {{args.a}} AND b = {{args.b}}").unwrap();
        let args = json!({"a": "'; DROP TABLE t; --", "b": 2});
        let Call::Sql { sql, params } =
            sql(&t, Dialect::Postgres, &vals(&args, &Value::Null), None)
        else {
            panic!()
        };
        assert_eq!(sql, "SELECT * FROM t WHERE a = $1 AND b = $2");
        assert_eq!(
            params,
            vec![Param::Text("'; DROP TABLE t; --".into()), Param::Int(2)]
        );
    }

    #[test]
    fn body_escapes_strings() {
        let t = Template::parse(r#"{"q": "{{args.q}}", "n": {{args.n}}}"#).unwrap();
        let args = json!({"q": "a\", \"admin\": true, \"x\": \"", "n": "5"});
        let body = json_body(&t, &vals(&args, &Value::Null));
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["q"], args["q"]);
        assert_eq!(parsed["n"], "5");
        assert!(parsed.get("admin").is_none());
    }
}
