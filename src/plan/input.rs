//! Input coercion (GraphQL spec §3.5, §5.6, §6.1.2): a request's variables against their
//! declared types, and argument values against their argument's type. Every input value a
//! binding reads passed through here once.

use std::collections::HashMap;

use async_graphql_parser::Positioned;
use async_graphql_parser::types::{BaseType, Type, VariableDefinition};
use serde_json::{Map, Value};

use crate::blueprint::TypeDefKind;
use crate::resolve::Engine;

/// The input types of one blueprint.
pub(super) struct Inputs<'a> {
    pub engine: &'a Engine,
    pub types: &'a HashMap<String, usize>,
}

/// A request's variables that cannot be coerced: a request error, with where each is
/// declared.
pub struct VariableError {
    pub message: String,
    pub at: (usize, usize),
}

impl Inputs<'_> {
    /// `given` coerced to the operation's variable definitions; a variable neither given
    /// nor defaulted is left out (so an argument reading it takes its own default).
    pub fn variables(
        &self,
        defs: &[Positioned<VariableDefinition>],
        given: Option<&Map<String, Value>>,
    ) -> Result<Map<String, Value>, Vec<VariableError>> {
        let mut out = Map::new();
        let mut errors = Vec::new();
        for d in defs {
            let name = d.node.name.node.as_str();
            let ty = &d.node.var_type.node;
            let at = (d.pos.line, d.pos.column);
            let mut fail = |message: String| errors.push(VariableError { message, at });
            match given.and_then(|g| g.get(name)) {
                Some(Value::Null) if !ty.nullable => fail(format!(
                    "variable ${name} of non-null type {ty} must not be null"
                )),
                Some(v) => match self.coerce(ty, v) {
                    Ok(v) => {
                        out.insert(name.to_string(), v);
                    }
                    Err(e) => fail(format!("variable ${name} got an invalid value: {e}")),
                },
                None => match &d.node.default_value {
                    Some(default) => match default.node.clone().into_json() {
                        Ok(v) => {
                            out.insert(name.to_string(), v);
                        }
                        Err(e) => fail(format!("variable ${name}: {e}")),
                    },
                    None if !ty.nullable => fail(format!(
                        "variable ${name} of required type {ty} was not provided"
                    )),
                    None => {}
                },
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// `v` coerced to `ty`: an error names what is wrong and where inside the value.
    pub fn coerce(&self, ty: &Type, v: &Value) -> Result<Value, String> {
        if v.is_null() {
            return match ty.nullable {
                true => Ok(Value::Null),
                false => Err(format!("expected a non-null {ty}, found null")),
            };
        }
        match &ty.base {
            BaseType::List(inner) => match v {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        self.coerce(inner, item)
                            .map_err(|e| format!("at [{i}]: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                // A single value where a list is expected is a list of one.
                single => Ok(Value::Array(vec![self.coerce(inner, single)?])),
            },
            BaseType::Named(name) => self.named(name.as_str(), v),
        }
    }

    fn named(&self, name: &str, v: &Value) -> Result<Value, String> {
        let bad = || {
            let shown = v.to_string();
            let shown = match shown.char_indices().nth(40) {
                Some((i, _)) => format!("{}...", &shown[..i]),
                None => shown,
            };
            Err(format!("{name} cannot represent {shown}"))
        };
        match (name, v) {
            ("Int", Value::Number(n)) => match n.as_i64() {
                Some(i) if i32::try_from(i).is_ok() => Ok(Value::from(i)),
                Some(_) => bad(),
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() <= i32::MAX as f64 => {
                        Ok(Value::from(f as i64))
                    }
                    _ => bad(),
                },
            },
            ("Float", Value::Number(_)) => Ok(v.clone()),
            ("String", Value::String(_)) => Ok(v.clone()),
            ("Boolean", Value::Bool(_)) => Ok(v.clone()),
            ("ID", Value::String(_)) => Ok(v.clone()),
            ("ID", Value::Number(n)) if n.is_i64() || n.is_u64() => {
                Ok(Value::String(n.to_string()))
            }
            ("Int" | "Float" | "String" | "Boolean" | "ID", _) => bad(),
            _ => {
                let def = self
                    .types
                    .get(name)
                    .and_then(|&i| self.engine.blueprint.types.get(i))
                    .ok_or_else(|| format!("unknown input type {name}"))?;
                match &def.kind {
                    TypeDefKind::Enum { values } => match v {
                        Value::String(s) if values.iter().any(|e| e.name == *s) => Ok(v.clone()),
                        _ => bad(),
                    },
                    TypeDefKind::Scalar { .. } if name == super::upload::NAME => {
                        super::upload::coerce(v, self.engine.blueprint.limits.max_upload_bytes)
                    }
                    TypeDefKind::Scalar { .. } => Ok(v.clone()),
                    TypeDefKind::InputObject { fields } => {
                        let Value::Object(given) = v else {
                            return bad();
                        };
                        if let Some(unknown) =
                            given.keys().find(|k| !fields.iter().any(|f| f.name == **k))
                        {
                            return Err(format!("{name} has no field {unknown}"));
                        }
                        let mut out = Map::new();
                        for f in fields {
                            match given.get(&f.name) {
                                Some(fv) => {
                                    let c = self
                                        .coerce(&f.ty, fv)
                                        .map_err(|e| format!("{name}.{}: {e}", f.name))?;
                                    if let (Some((min, max)), Value::String(s)) = (f.length, &c) {
                                        let chars = s.chars().count();
                                        if chars < min || chars > max {
                                            return Err(format!(
                                                "{name}.{} holds {min} to {max} characters, not {chars}",
                                                f.name
                                            ));
                                        }
                                    }
                                    out.insert(f.name.clone(), c);
                                }
                                None => match &f.default {
                                    Some(d) => {
                                        out.insert(
                                            f.name.clone(),
                                            d.clone().into_json().map_err(|e| e.to_string())?,
                                        );
                                    }
                                    None if !f.ty.nullable => {
                                        return Err(format!(
                                            "{name}.{} of required type {} was not provided",
                                            f.name, f.ty
                                        ));
                                    }
                                    None => {}
                                },
                            }
                        }
                        Ok(Value::Object(out))
                    }
                    _ => Err(format!("{name} is not an input type")),
                }
            }
        }
    }
}
