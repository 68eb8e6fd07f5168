//! JSON Schemas of `connectors/*.toml` and `simpul.toml`, generated from the serde models
//! (their doc comments are the descriptions), for editors: `simpul schema` prints them and
//! `schemas/` ships them.
//!
//! Draft 7: the draft TOML editors (taplo, VS Code's Even Better TOML) validate with.

use schemars::generate::SchemaSettings;
use schemars::transform::{RecursiveTransform, Transform};
use schemars::{JsonSchema, Schema};
use serde_json::Value;

use super::{ConnectorFile, GatewayFile};

/// The schema of one `connectors/NAME.toml`.
pub fn connector() -> Value {
    generate::<ConnectorFile>("Simpul connector (connectors/NAME.toml)")
}

/// The schema of `simpul.toml`.
pub fn gateway() -> Value {
    generate::<GatewayFile>("Simpul gateway settings (simpul.toml)")
}

/// `schema` as the files in `schemas/` hold it: pretty, ending with a line break.
pub fn text(schema: &Value) -> String {
    let mut out = serde_json::to_string_pretty(schema).unwrap_or_default();
    out.push('\n');
    out
}

fn generate<T: JsonSchema>(title: &str) -> Value {
    let mut schema = SchemaSettings::draft07()
        .with_transform(RecursiveTransform(without_null))
        .into_generator()
        .into_root_schema_for::<T>();
    schema.insert("title".into(), title.into());
    schema.to_value()
}

/// TOML has no null: an `Option` is a key left out, never `null`, so `"type": ["string",
/// "null"]` is just `"type": "string"`, and `anyOf: [T, null]` just `T`. Rust's integer
/// formats (`uint32`) are not JSON Schema's and are dropped: `minimum` says what matters.
fn without_null(schema: &mut Schema) {
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            schema.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(any)) = schema.get("anyOf") {
        let kept: Vec<Value> = any
            .iter()
            .filter(|s| s.get("type").is_none_or(|t| t != "null"))
            .cloned()
            .collect();
        if let ([Value::Object(only)], true) = (kept.as_slice(), kept.len() < any.len()) {
            let only = only.clone();
            schema.remove("anyOf");
            if only.contains_key("$ref") {
                // Draft 7 ignores the siblings of `$ref`: keep the description beside it.
                schema.insert("allOf".into(), Value::Array(vec![Value::Object(only)]));
            } else {
                for (k, v) in only {
                    schema.insert(k, v);
                }
            }
        }
    }
    if schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| f.starts_with("int") || f.starts_with("uint"))
    {
        schema.remove("format");
    }
}

/// Keeps a serde `alias` (`former`, the old name of `current`) valid in the schema, marked
/// deprecated: schemars leaves aliases out, and with `additionalProperties: false` the old
/// name would be flagged though the loader accepts it.
pub(super) fn former_name(former: &'static str, current: &'static str) -> impl Transform {
    move |schema: &mut Schema| {
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            return;
        };
        let Some(Value::Object(now)) = properties.get(current).cloned() else {
            return;
        };
        let mut old = now;
        old.insert(
            "description".into(),
            format!("Former name of `{current}`.").into(),
        );
        old.insert("deprecated".into(), true.into());
        properties.insert(former.into(), Value::Object(old));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_has_a_description() {
        for schema in [connector(), gateway()] {
            let mut missing = Vec::new();
            let mut objects = vec![("".to_string(), &schema)];
            if let Some(Value::Object(defs)) = schema.get("definitions") {
                objects.extend(defs.iter().map(|(k, v)| (k.clone(), v)));
            }
            for (name, object) in objects {
                let Some(Value::Object(props)) = object.get("properties") else {
                    continue;
                };
                for (key, prop) in props {
                    let described = prop.get("description").is_some()
                        || prop.get("$ref").is_some_and(|r| {
                            let def = r.as_str().unwrap_or("").rsplit('/').next().unwrap_or("");
                            schema["definitions"][def].get("description").is_some()
                        });
                    if !described {
                        missing.push(format!("{name}.{key}"));
                    }
                }
            }
            assert!(missing.is_empty(), "undocumented: {missing:?}");
        }
    }

    #[test]
    fn options_are_keys_left_out_not_nulls() {
        let text = text(&connector()) + &text(&gateway());
        assert!(!text.contains("\"null\""), "{text}");
        assert!(!text.contains("\"format\": \"uint"), "{text}");
    }

    #[test]
    fn the_former_name_of_max_fields_stays_valid() {
        let limits = &gateway()["definitions"]["LimitsFile"]["properties"];
        assert_eq!(limits["max_complexity"]["deprecated"], true);
        assert_eq!(
            limits["max_complexity"]["type"],
            limits["max_fields"]["type"]
        );
    }
}
