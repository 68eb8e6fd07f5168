//! Each binding's rows matched against the fields that read them: every non-null field has
//! a column (or `@map`), types fit (values read where the declared type cannot tell), the
//! batch key is a column of the child's rows and meets the parent's values, and every
//! `{{parent.X}}` is a column of the parent's rows.

use std::collections::BTreeSet;

use serde_json::Value;

use super::shape::{Col, ColKind, Probed, Seen, Shape, field_of};
use crate::blueprint::{
    Binding, Blueprint, FieldDef, FieldPlan, Lookup, TypeDef, TypeDefKind, named,
};
use crate::compile::SCHEMA_FILE;
use crate::diagnostic::Diagnostic;
use crate::resolve::node::key_string;
use crate::resolve::value::{OutKind, scalar};
use crate::schema::out_kind;

/// Values read per column to check them: enough to find a stray `-`, cheap on any table.
const VALUES_READ: usize = 1000;

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
        let Some((_, field)) = field_of(self.bp, b.id) else {
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
            self.leaf_binding(b, field, shape, out);
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
    fn leaf_binding(&mut self, b: &'a Binding, field: &'a FieldDef, shape: &Shape, out: OutKind) {
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
        let owner = b.name.split('.').next().unwrap_or_default();
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
                        type_text(&g.ty),
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
                type_text(&g.ty),
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

    /// Reads the values the declared types could not vouch for.
    pub async fn values(&mut self, probed: &mut Probed) {
        let questions = std::mem::take(&mut self.questions);
        let mut met = std::collections::HashSet::new();
        for q in questions {
            match q {
                Question::Reads {
                    binding,
                    col,
                    owner,
                    field,
                    out,
                } => {
                    let Some(values) = read(self.bp, probed, binding, &col).await else {
                        continue;
                    };
                    let enum_values = enum_values(self.bp, named(&field.ty));
                    let bad = unreadable(&out, enum_values.as_deref(), &values);
                    if !bad.is_empty()
                        && let Some(b) = self.bp.bindings.get(binding)
                    {
                        self.unreadable(b, owner, field, &col, &bad);
                    }
                }
                Question::Meets {
                    parent,
                    child,
                    at,
                    child_name,
                } => {
                    // Parents whose rows come from the same table column ask the same.
                    let asked_by = match &parent.1.origin {
                        Some(origin) => format!("{origin:?}"),
                        None => format!("{}:{}", parent.0, parent.1.name),
                    };
                    if !met.insert((child.0, asked_by)) {
                        continue;
                    }
                    if let Some(message) = self.meets(probed, &parent, &child).await {
                        self.at(
                            at,
                            format!("{child_name}: {message}"),
                            Some("every child list would come back empty: is the batch key the right column, and are both codes written the same way?".into()),
                        );
                    }
                }
            }
        }
    }

    /// Whether the parent's values find children: the child's statement is run with them
    /// as the batch keys, as a request would. `Some(why)` when they find none though the
    /// child's table has keys.
    async fn meets(
        &self,
        probed: &mut Probed,
        parent: &(usize, Col),
        child: &(usize, Col),
    ) -> Option<String> {
        let parents = read(self.bp, probed, parent.0, &parent.1).await?;
        let b = self.bp.bindings.get(child.0)?;
        let batch = b.batch.as_ref()?;
        let mut asked: Vec<Value> = Vec::new();
        let mut seen = BTreeSet::new();
        for v in parents {
            if asked.len() >= batch.max_size {
                break;
            }
            if let Some(k) = key_string(&v)
                && seen.insert(k)
            {
                asked.push(v);
            }
        }
        if asked.is_empty() {
            return None;
        }
        let crate::blueprint::Operation::Sql { query } = &b.operation else {
            return None;
        };
        let conn = probed.conns.get_mut(b.connector)?.as_mut()?;
        let null = Value::Null;
        let values = crate::resolve::render::Values {
            args: &null,
            parent: None,
            auth: &null,
        };
        let keys = crate::resolve::render::BatchValues {
            batch,
            keys: &asked,
        };
        let crate::connectors::Call::Sql { sql, params } =
            crate::resolve::render::sql(query, conn.dialect(), &values, Some(&keys))
        else {
            return None;
        };
        let run = tokio::time::timeout(std::time::Duration::from_secs(10), conn.rows(&sql, params));
        let rows = run.await.ok()?.ok()?;
        let found: BTreeSet<String> = rows
            .iter()
            .filter_map(|r| r.get(&batch.key))
            .filter_map(key_string)
            .collect();
        if !found.is_empty() && !found.is_disjoint(&seen) {
            return None;
        }
        // No row came back for any parent (or none with a matching key): say so only when
        // the child's rows have keys at all, and show both sides.
        let keys = match found.is_empty() {
            false => found,
            true => read(self.bp, probed, child.0, &child.1)
                .await?
                .iter()
                .filter_map(key_string)
                .collect(),
        };
        if keys.is_empty() {
            return None;
        }
        let few = |s: &BTreeSet<String>| s.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        let parent_name = self
            .bp
            .bindings
            .get(parent.0)
            .map_or("?", |b| b.name.as_str());
        Some(format!(
            "no value of batch key `{}` meets a value of `{}` in the rows of {parent_name}: the parents ask {}; the key holds {}",
            child.1.name,
            parent.1.name,
            few(&seen),
            few(&keys)
        ))
    }
}

/// Up to [`VALUES_READ`] non-null values of a column: from its table when its origin is
/// known, else from a sample.
async fn read(
    bp: &Blueprint,
    probed: &mut Probed,
    binding: usize,
    col: &Col,
) -> Option<Vec<Value>> {
    if let Some(Seen::Shape(shape)) = probed.seen.get(binding)
        && let Some(values) = shape.sampled(&col.name)
    {
        return Some(values);
    }
    let (table, column) = col.origin.as_ref()?;
    let connector = bp.bindings.get(binding)?.connector;
    let key = (connector, table.clone(), column.clone());
    if let Some(known) = probed.read.get(&key) {
        return known.clone();
    }
    let conn = probed.conns.get_mut(connector)?.as_mut()?;
    let read = conn.distinct(table, column, VALUES_READ);
    let values = tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .ok()
        .and_then(Result::ok);
    probed.read.insert(key, values.clone());
    values
}

/// The distinct values (shown, at most 5) the gateway could not serve as the field's type.
fn unreadable(out: &OutKind, enum_values: Option<&[String]>, values: &[Value]) -> Vec<String> {
    let mut bad = BTreeSet::new();
    for v in values {
        let fails = match (enum_values, v) {
            (Some(declared), Value::String(s)) => !declared.iter().any(|d| d == s),
            _ => scalar(out, v).is_none(),
        };
        if fails {
            bad.insert(v.to_string());
        }
    }
    bad.into_iter().take(5).collect()
}

enum Fits {
    Yes,
    /// Only the values can tell (text read as a number, a boolean or an enum).
    Values,
    No,
}

/// Whether a column of `kind` can be read as a field of `out`: the rules of
/// [`scalar`], by declared type.
fn fits(kind: ColKind, out: &OutKind) -> Fits {
    use ColKind as C;
    match (out, kind) {
        (_, C::Unknown) | (OutKind::CustomScalar, _) | (OutKind::String, _) => Fits::Yes,
        (OutKind::Int, C::Int | C::Bool | C::Decimal) => Fits::Yes,
        (OutKind::Float, C::Int | C::Decimal | C::Float) => Fits::Yes,
        (OutKind::Boolean, C::Bool | C::Int | C::Decimal | C::Float) => Fits::Yes,
        (OutKind::Id, C::Int | C::Decimal | C::Float | C::Text | C::Date) => Fits::Yes,
        (OutKind::Int | OutKind::Float | OutKind::Boolean | OutKind::Enum, C::Text) => Fits::Values,
        (OutKind::Object | OutKind::Abstract { .. }, C::Json | C::Text) => Fits::Yes,
        _ => Fits::No,
    }
}

/// How to make a column of another type read as `out`.
fn conversion(out: &OutKind, kind: ColKind, type_name: &str, column: &str) -> String {
    match (out, kind) {
        (_, ColKind::Date) => {
            "dates are read as ISO text (2026-01-31): declare the field String".into()
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

/// `Int!`, `[String]` as written.
fn type_text(ty: &async_graphql_parser::types::Type) -> String {
    ty.to_string()
}

fn enum_values(bp: &Blueprint, name: &str) -> Option<Vec<String>> {
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
