//! Each binding's rows matched against the fields that read them: every non-null field has
//! a column (or `@map`), types fit (values read where the declared type cannot tell), the
//! batch key is a column of the child's rows and meets the parent's values, and every
//! `{{parent.X}}` is a column of the parent's rows.

mod rules;
mod values;

use super::shape::{Col, Probed, Seen, Shape, field_of};
use crate::blueprint::{Binding, Blueprint, FieldDef, FieldPlan, Lookup, TypeDefKind, named};
use crate::compile::SCHEMA_FILE;
use crate::diagnostic::Diagnostic;
use crate::resolve::value::OutKind;
use crate::schema::out_kind;
pub use rules::possible_types;
use rules::{Fits, closest, conversion, enum_values, fits};
use values::unreadable;

/// A question only the column's values answer, asked once every shape is known.
enum Question<'a> {
    /// The values of `col` (rows of binding `binding`) must read as `field`'s type.
    Reads {
        binding: usize,
        col: Col,
        owner: &'a str,
        field: &'a FieldDef,
        out: OutKind,
    },
    /// Some value of the child's batch key must meet a value of the parent's column.
    Meets {
        parent: (usize, Col),
        child: (usize, Col),
        at: (usize, usize),
        child_name: &'a str,
    },
}

pub struct Fit<'a> {
    bp: &'a Blueprint,
    pub problems: Vec<Diagnostic>,
    questions: Vec<Question<'a>>,
}

impl<'a> Fit<'a> {
    pub fn new(bp: &'a Blueprint) -> Fit<'a> {
        Fit {
            bp,
            problems: Vec::new(),
            questions: Vec::new(),
        }
    }

    fn at(&mut self, (line, col): (usize, usize), message: String, hint: Option<String>) {
        let mut d = Diagnostic::new(SCHEMA_FILE, line, col, message);
        d.hint = hint;
        self.problems.push(d);
    }

    /// Every binding whose rows are known, matched against what reads them.
    pub fn bindings(&mut self, probed: &Probed) {
        for (i, seen) in probed.seen.iter().enumerate() {
            let Some(b) = self.bp.bindings.get(i) else {
                continue;
            };
            match seen {
                Seen::Shape(shape) => self.binding(b, shape, probed),
                Seen::Rejected(message) => {
                    let connector = self.connector_name(b);
                    self.at(
                        b.places.directive,
                        format!(
                            "{}: connector '{connector}' rejects the query: {message}",
                            b.name
                        ),
                        Some("check table and column names against the database".into()),
                    )
                }
                Seen::Unknown => {}
            }
        }
    }

    fn connector_name(&self, b: &Binding) -> &'a str {
        self.bp
            .connectors
            .get(b.connector)
            .map_or("?", |c| c.name.as_str())
    }

    fn binding(&mut self, b: &'a Binding, shape: &Shape, probed: &Probed) {
        let Some((owner, field)) = field_of(self.bp, b.id) else {
            return;
        };
        let out = out_kind(self.bp, &field.ty);
        if let Some(batch) = &b.batch
            && shape.col(&batch.key).is_none()
        {
            self.at(
                b.places.batch.unwrap_or(b.places.directive),
                format!(
                    "{}: batch key `{}` is not a column of its rows",
                    b.name, batch.key
                ),
                Some(format!(
                    "the key is a column of this binding's own rows, matched against {}; {}",
                    batch.parent.display(),
                    closest(&batch.key, shape)
                )),
            );
        }
        if !out.is_composite() {
            self.leaf_binding(b, owner, field, shape, out);
            return;
        }
        let name = named(&field.ty);
        if let OutKind::Abstract { discriminator } = &out
            && shape.col(discriminator).is_none()
        {
            self.at(
                b.places.directive,
                format!(
                    "{}: the rows have no column `{discriminator}` naming each row's type",
                    b.name
                ),
                Some(format!(
                    "select the type name AS {discriminator}, or name the column with @discriminator(field: ...) on {name}; {}",
                    closest(discriminator, shape)
                )),
            );
        }
        for t in possible_types(self.bp, name) {
            let TypeDefKind::Object { fields, .. } = &t.kind else {
                continue;
            };
            for g in fields {
                self.field(b, &t.name, g, shape, probed);
            }
        }
    }

    /// A scalar bound field reads the only column of its rows, or the one named like it.
    fn leaf_binding(
        &mut self,
        b: &'a Binding,
        owner: &'a str,
        field: &'a FieldDef,
        shape: &Shape,
        out: OutKind,
    ) {
        let col = match shape.columns.as_slice() {
            [only] => only,
            _ => match shape.col(&field.name) {
                Some(c) => c,
                None => {
                    self.at(
                        b.places.directive,
                        format!(
                            "{}: its rows have {} columns and none is named `{}`",
                            b.name,
                            shape.columns.len(),
                            field.name
                        ),
                        Some(format!(
                            "select one column, or name the one to read AS {}",
                            field.name
                        )),
                    );
                    return;
                }
            },
        };
        self.types(b, owner, field, col, out, shape);
    }

    /// Field `g` of type `owner`, read from `b`'s rows.
    fn field(
        &mut self,
        b: &'a Binding,
        owner: &'a str,
        g: &'a FieldDef,
        shape: &Shape,
        probed: &Probed,
    ) {
        match &g.plan {
            FieldPlan::Property(Lookup::Keys(keys)) if !keys.is_empty() => {
                let found = keys.iter().find_map(|k| shape.col(k));
                match found {
                    Some(col) => {
                        let out = out_kind(self.bp, &g.ty);
                        if !out.is_composite() {
                            self.types(b, owner, g, col, out, shape);
                        }
                    }
                    None if !g.ty.nullable => self.missing(b, owner, g, &g.name, shape),
                    None => {}
                }
            }
            FieldPlan::Property(Lookup::Path(path)) => {
                let Some(first) = path.first() else { return };
                match shape.col(first) {
                    // `@map(from: "column")`: the column's own values.
                    Some(col) if path.len() == 1 => {
                        let out = out_kind(self.bp, &g.ty);
                        if !out.is_composite() {
                            self.types(b, owner, g, col, out, shape);
                        }
                    }
                    Some(_) => {}
                    None if !g.ty.nullable => self.missing(b, owner, g, first, shape),
                    None => {}
                }
            }
            FieldPlan::Property(Lookup::Cursor(columns)) => {
                for c in columns {
                    if shape.col(c).is_none() {
                        self.missing(b, owner, g, c, shape);
                    }
                }
            }
            FieldPlan::Bound(child) => {
                let Some(child) = self.bp.bindings.get(*child) else {
                    return;
                };
                for (p, at) in &child.places.parents {
                    let Some(first) = p.path.first() else {
                        continue;
                    };
                    let Some(col) = shape.col(first) else {
                        self.at(
                            *at,
                            format!(
                                "{} in {owner}.{}: the rows of {} have no column `{first}`",
                                p.display(),
                                g.name,
                                b.name
                            ),
                            Some(format!(
                                "a parent's rows carry the columns its binding selects; {}",
                                closest(first, shape)
                            )),
                        );
                        continue;
                    };
                    let batched = child.batch.as_ref().filter(|batch| batch.parent == *p);
                    if let (Some(batch), Some(Seen::Shape(child_shape))) =
                        (batched, probed.seen.get(child.id))
                        && let Some(key) = child_shape.col(&batch.key)
                    {
                        self.questions.push(Question::Meets {
                            parent: (b.id, col.clone()),
                            child: (child.id, key.clone()),
                            at: child.places.batch.unwrap_or(*at),
                            child_name: &child.name,
                        });
                    }
                }
            }
            _ => {}
        }
    }

    fn missing(&mut self, b: &Binding, owner: &str, g: &FieldDef, column: &str, shape: &Shape) {
        let connector = self.connector_name(b);
        self.at(
            g.at,
            format!(
                "{owner}.{} is non-null, but the rows of {} (connector '{connector}') have no column `{column}`",
                g.name, b.name
            ),
            Some(format!(
                "select it (or alias a column AS {column}), map another with @map(from: \"...\"), or make the field nullable; {}",
                closest(column, shape)
            )),
        );
    }

    /// Column `col` read as `g`'s type: a mismatch the declared type shows, or a question
    /// for its values.
    fn types(
        &mut self,
        b: &'a Binding,
        owner: &'a str,
        g: &'a FieldDef,
        col: &Col,
        out: OutKind,
        shape: &Shape,
    ) {
        let type_name = named(&g.ty);
        let enum_values = enum_values(self.bp, type_name);
        if let Some(values) = shape.sampled(&col.name) {
            let bad = unreadable(&out, enum_values.as_deref(), &values);
            if !bad.is_empty() {
                self.unreadable(b, owner, g, col, &bad);
            }
            return;
        }
        match fits(col.kind, &out) {
            Fits::Yes => {}
            Fits::Values if col.origin.is_some() => self.questions.push(Question::Reads {
                binding: b.id,
                col: col.clone(),
                owner,
                field: g,
                out,
            }),
            Fits::Values => {}
            Fits::No => {
                let connector = self.connector_name(b);
                self.at(
                    g.at,
                    format!(
                        "{owner}.{} is {}, but column `{}` of the rows of {} (connector '{connector}') is {}",
                        g.name,
                        g.ty,
                        col.name,
                        b.name,
                        col.type_name
                    ),
                    Some(conversion(&out, col.kind, type_name, &col.name)),
                );
            }
        }
    }

    fn unreadable(&mut self, b: &Binding, owner: &str, g: &FieldDef, col: &Col, bad: &[String]) {
        let type_name = named(&g.ty);
        let is_enum = enum_values(self.bp, type_name).is_some();
        let connector = self.connector_name(b);
        let from = match &col.origin {
            Some((table, column)) => {
                let table = table.rsplit('.').next().unwrap_or(table);
                format!("column `{column}` of table {table}")
            }
            None => format!("column `{}` of the rows of {}", col.name, b.name),
        };
        self.at(
            g.at,
            format!(
                "{owner}.{} is {}, but {from} (connector '{connector}') holds {}: {}",
                g.name,
                g.ty,
                if is_enum {
                    format!("values enum {type_name} does not declare")
                } else {
                    format!("values that cannot be read as {type_name}")
                },
                bad.join(", ")
            ),
            Some(if is_enum {
                format!("declare them in enum {type_name}, or map them to declared values in the query (CASE ... END)")
            } else {
                format!(
                    "clean the data, turn them into NULL in the query (NULLIF({}, '-')), or declare the field String",
                    col.name
                )
            }),
        );
    }
}
