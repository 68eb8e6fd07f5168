//! Running a plan, second half: the response bytes, written in one pass with the spec's
//! null propagation. A null where the type forbids it makes the enclosing object null (its
//! bytes are truncated away), up to the nearest nullable field or list item, or `data`.

use std::io::Write as _;
use std::sync::Arc;

use async_graphql_parser::types::{BaseType, Type};
use serde_json::{Value, json};

use super::exec::{Children, Fetched, Level, NodeRef, read};
use super::{Kind, PlanField, Selection};
use crate::connectors::derived::DerivedKey;
use crate::error::ErrorCode;
use crate::resolve::value::{Out, OutKind, scalar};

/// A value became null where its type forbids it; its error is already recorded. The
/// enclosing object must be null too.
pub(super) struct Null;

enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

/// The response being written, its errors and the current path.
pub(super) struct Writer<'o, 'p> {
    out: &'o mut Vec<u8>,
    errors: Vec<Value>,
    path: Vec<Seg<'p>>,
}

impl<'o, 'p> Writer<'o, 'p> {
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        Writer {
            out,
            errors: Vec::new(),
            path: Vec::new(),
        }
    }

    pub fn finish(self) -> Vec<Value> {
        self.errors
    }

    /// `data`: the root object, or null when a non-null root field is null.
    pub fn root(&mut self, sel: &'p Selection, fetched: &[Fetched], level: &Level) {
        let start = self.out.len();
        let ok = match level.nodes.first() {
            Some(&node) => self.object(sel, fetched, level, node, 0, None).is_ok(),
            None => false,
        };
        if !ok {
            self.out.truncate(start);
            self.out.extend_from_slice(b"null");
        }
    }

    fn error(&mut self, f: &PlanField, message: String, code: ErrorCode, connector: Option<&str>) {
        let path: Vec<Value> = self
            .path
            .iter()
            .map(|s| match s {
                Seg::Key(k) => Value::from(*k),
                Seg::Index(i) => Value::from(*i),
            })
            .collect();
        let mut ext = json!({ "code": code.as_str() });
        if let Some(c) = connector {
            ext["connector"] = json!(c);
        }
        self.errors.push(json!({
            "message": message,
            "locations": [{ "line": f.at.0, "column": f.at.1 }],
            "path": path,
            "extensions": ext,
        }));
    }

    /// One object: from its projection (serialized once per shared answer) when there is
    /// one, field by field otherwise. On `Err` nothing of it is left in the output.
    #[allow(clippy::too_many_arguments)]
    fn object(
        &mut self,
        sel: &'p Selection,
        fetched: &[Fetched],
        level: &Level,
        node: NodeRef,
        pos: usize,
        proj: Option<&Projection>,
    ) -> Result<(), Null> {
        let start = self.out.len();
        let r = self.object_fields(sel, fetched, level, node, pos, proj);
        if r.is_err() {
            self.out.truncate(start);
        }
        r
    }

    fn object_fields(
        &mut self,
        sel: &'p Selection,
        fetched: &[Fetched],
        level: &Level,
        node: NodeRef,
        pos: usize,
        proj: Option<&Projection>,
    ) -> Result<(), Null> {
        if let Some(p) = proj
            && let Some(first) = p.segment(node.index as usize, 0)
        {
            self.out.extend_from_slice(first);
            for (k, &i) in sel.nested.iter().enumerate() {
                if let (Some(f), Some(fetched)) = (sel.fields.get(i), fetched.get(i)) {
                    self.field(f, fetched, level, node, pos)?;
                }
                let segment = p.segment(node.index as usize, k + 1).unwrap_or(b"null");
                self.out.extend_from_slice(segment);
            }
            return Ok(());
        }
        let ty = match &sel.abstract_ {
            Some(a) => match a.type_of(level.row(node)) {
                Some(t) => Some(t),
                None => {
                    let given = level.row(node).get(&*a.discriminator).cloned();
                    if let Some(f) = sel.fields.first() {
                        self.error(
                            f,
                            format!(
                                "the source gave a {} whose {} ({}) names none of its types",
                                a.name,
                                a.discriminator,
                                given.unwrap_or(Value::Null)
                            ),
                            ErrorCode::SourceBadResponse,
                            None,
                        );
                    }
                    return Err(Null);
                }
            },
            None => None,
        };
        self.out.push(b'{');
        let mut first = true;
        for (f, fetched) in sel.fields.iter().zip(fetched) {
            if f.only.is_some() && f.only != ty {
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            self.out.extend_from_slice(&f.key);
            self.field(f, fetched, level, node, pos)?;
        }
        self.out.push(b'}');
        Ok(())
    }

    /// One field's value (its key is written): null in its place when it fails and its
    /// type allows, `Err` when it does not.
    fn field(
        &mut self,
        f: &'p PlanField,
        fetched: &Fetched,
        level: &Level,
        node: NodeRef,
        pos: usize,
    ) -> Result<(), Null> {
        let start = self.out.len();
        self.path.push(Seg::Key(&f.name));
        let r = match f.kind.is_nested() {
            true => self.nested(f, fetched, pos),
            false => self.leaf(f, level.row(node)),
        };
        self.path.pop();
        match r {
            Ok(()) => Ok(()),
            Err(Null) => {
                self.out.truncate(start);
                if f.non_null {
                    return Err(Null);
                }
                self.out.extend_from_slice(b"null");
                Ok(())
            }
        }
    }

    /// A field whose value is in the parent row.
    fn leaf(&mut self, f: &PlanField, row: &Value) -> Result<(), Null> {
        match &f.kind {
            Kind::Typename(t) => self.out.extend_from_slice(t),
            Kind::Const { value, out: o } => self.value(f, o, &o.ty, value)?,
            Kind::Property {
                lookup,
                out: o,
                suppress,
                children: None,
            } => {
                let v = read(lookup, row).filter(|v| match suppress {
                    Some(below) => !v.as_f64().is_some_and(|n| n >= 1.0 && n < *below as f64),
                    None => true,
                });
                self.value(f, o, &o.ty, v.unwrap_or(&Value::Null))?
            }
            Kind::Forbidden => {
                self.error(
                    f,
                    format!("{}.{} is not readable with your access", f.owner, f.name),
                    ErrorCode::Forbidden,
                    None,
                );
                return Err(Null);
            }
            _ => self.out.extend_from_slice(b"null"),
        }
        Ok(())
    }

    /// A value fetched for the field's level: a bound field, a nested object, introspection.
    fn nested(&mut self, f: &'p PlanField, fetched: &Fetched, pos: usize) -> Result<(), Null> {
        match (&f.kind, fetched) {
            (Kind::Property { out: o, .. }, Fetched::Nested(ch)) => {
                self.children(Some(&o.ty), f, ch, pos)
            }
            (Kind::Sources { .. }, Fetched::Nested(ch)) => {
                self.children(Some(&LIST_NN), f, ch, pos)
            }
            (Kind::Namespace { .. }, Fetched::Nested(ch)) => self.children(None, f, ch, pos),
            (Kind::Bound { out: o, .. }, Fetched::Bound { bound, children }) => {
                match (bound.per_node.get(pos), children) {
                    (Some(Err(i)), _) => {
                        if let Some(e) = bound.errors.get(*i as usize) {
                            let message = e.to_graphql().message;
                            self.error(f, message, e.code, Some(&e.connector));
                        }
                        Err(Null)
                    }
                    (Some(Ok(_)), Some(ch)) => {
                        self.children(o.is_list().then_some(&o.ty), f, ch, pos)
                    }
                    (Some(Ok(p)), None) => {
                        let rows = bound.rows(*p);
                        let picked: Vec<usize> = bound.picked(*p).collect();
                        self.scalar_rows(f, o, rows, &picked)
                    }
                    (None, _) => self.value(f, o, &o.ty, &Value::Null),
                }
            }
            (Kind::Introspection { .. }, Fetched::Introspected(v, errors)) => {
                self.errors.extend(errors.iter().cloned());
                if serde_json::to_writer(&mut *self.out, v).is_err() {
                    self.out.extend_from_slice(b"null");
                }
                Ok(())
            }
            _ => {
                self.out.extend_from_slice(b"null");
                Ok(())
            }
        }
    }

    /// The objects under a field: one (`list` is `None`), or a list of them typed `list`.
    fn children(
        &mut self,
        list: Option<&Type>,
        f: &'p PlanField,
        ch: &Children,
        pos: usize,
    ) -> Result<(), Null> {
        let Some(sel) = f.kind.children() else {
            return self.missing(f);
        };
        let (Some(&start), Some(&end)) = (ch.offsets.get(pos), ch.offsets.get(pos + 1)) else {
            return self.missing(f);
        };
        let Some(nodes) = ch.level.nodes.get(start..end) else {
            return self.missing(f);
        };
        let items_nullable = match list.map(|t| &t.base) {
            Some(BaseType::List(inner)) => inner.nullable,
            Some(BaseType::Named(_)) => true,
            None => {
                return match nodes.first() {
                    Some(&node) => {
                        let proj = ch.projection(node.slot);
                        self.object(sel, &ch.fetched, &ch.level, node, start, proj)
                    }
                    None => self.missing(f),
                };
            }
        };
        if ch.null.get(pos).copied().unwrap_or(false) {
            return self.missing(f);
        }
        self.out.push(b'[');
        let mut k = 0;
        while let Some(&node) = nodes.get(k) {
            if k > 0 {
                self.out.push(b',');
            }
            let proj = ch.projection(node.slot);
            // Objects made of row fields only, over consecutive rows of one answer: their
            // serialized form is one slice.
            if sel.nested.is_empty()
                && let Some(p) = proj
            {
                let run = nodes
                    .get(k..)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .take_while(|(j, n)| {
                        n.slot == node.slot && n.index as usize == node.index as usize + j
                    })
                    .count();
                let first = node.index as usize;
                if let Some(bytes) = p.run(first, first + run.max(1) - 1) {
                    self.out.extend_from_slice(bytes);
                    k += run;
                    continue;
                }
            }
            self.path.push(Seg::Index(k));
            let r = self.object(sel, &ch.fetched, &ch.level, node, start + k, proj);
            self.path.pop();
            if r.is_err() {
                if !items_nullable {
                    return Err(Null);
                }
                self.out.extend_from_slice(b"null");
            }
            k += 1;
        }
        self.out.push(b']');
        Ok(())
    }

    /// No value at all for `f`.
    fn missing(&mut self, f: &PlanField) -> Result<(), Null> {
        if f.non_null {
            self.error(
                f,
                format!(
                    "{}.{} is non-null but its source gave no value",
                    f.owner, f.name
                ),
                ErrorCode::SourceBadResponse,
                None,
            );
            return Err(Null);
        }
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    /// A scalar (or list of scalars) bound field: the single column of each picked row.
    fn scalar_rows(
        &mut self,
        f: &PlanField,
        o: &Out,
        rows: &[Value],
        picked: &[usize],
    ) -> Result<(), Null> {
        let cell = |i: usize| -> &Value {
            rows.get(i)
                .and_then(|r| crate::resolve::value::cell(o, r))
                .unwrap_or(&Value::Null)
        };
        match &o.ty.base {
            BaseType::List(inner) => {
                self.out.push(b'[');
                for (k, &i) in picked.iter().enumerate() {
                    if k > 0 {
                        self.out.push(b',');
                    }
                    self.item(f, o, inner, k, cell(i))?;
                }
                self.out.push(b']');
                Ok(())
            }
            BaseType::Named(_) => {
                let v = picked.first().map(|&i| cell(i)).unwrap_or(&Value::Null);
                self.value(f, o, &o.ty, v)
            }
        }
    }

    /// List item `k`: null in its place when it is invalid and nullable.
    fn item(&mut self, f: &PlanField, o: &Out, ty: &Type, k: usize, v: &Value) -> Result<(), Null> {
        self.path.push(Seg::Index(k));
        let start = self.out.len();
        let r = self.value(f, o, ty, v);
        self.path.pop();
        if r.is_err() {
            self.out.truncate(start);
            if !ty.nullable {
                return Err(Null);
            }
            self.out.extend_from_slice(b"null");
        }
        Ok(())
    }

    /// A leaf value (or a list of them) coerced to `ty`; an error for what does not fit.
    fn value(&mut self, f: &PlanField, o: &Out, ty: &Type, v: &Value) -> Result<(), Null> {
        match (&ty.base, v) {
            (_, Value::Null) if ty.nullable => self.out.extend_from_slice(b"null"),
            (_, Value::Null) => {
                self.error(
                    f,
                    format!(
                        "{}.{} is non-null but its source gave no value",
                        f.owner, f.name
                    ),
                    ErrorCode::SourceBadResponse,
                    None,
                );
                return Err(Null);
            }
            (BaseType::List(inner), Value::Array(items)) => {
                self.out.push(b'[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        self.out.push(b',');
                    }
                    self.item(f, o, inner, k, item)?;
                }
                self.out.push(b']');
            }
            (BaseType::List(inner), single) => {
                self.out.push(b'[');
                self.item(f, o, inner, 0, single)?;
                self.out.push(b']');
            }
            (BaseType::Named(name), v) => {
                let problem = if o.invalid_enum(v) {
                    Some(format!("{} is not a value of enum {name}", shown(v)))
                } else if write_plain(&o.kind, v, self.out) {
                    None
                } else {
                    match scalar(&o.kind, v) {
                        Some(g) => {
                            if serde_json::to_writer(&mut *self.out, &g).is_err() {
                                let _ = self.out.write_all(b"null");
                            }
                            None
                        }
                        None => Some(format!("{} cannot be read as {name}", shown(v))),
                    }
                };
                if let Some(p) = problem {
                    self.error(
                        f,
                        format!("{}.{}: {p}", f.owner, f.name),
                        ErrorCode::SourceBadResponse,
                        None,
                    );
                    if !ty.nullable {
                        return Err(Null);
                    }
                    self.out.extend_from_slice(b"null");
                }
            }
        }
        Ok(())
    }
}

/// `[T!]!`, the type of `Query.sources`.
static LIST_NN: std::sync::LazyLock<Type> = std::sync::LazyLock::new(|| Type {
    base: BaseType::List(Box::new(Type {
        base: BaseType::Named(async_graphql_value::Name::new("SourceHealth")),
        nullable: false,
    })),
    nullable: false,
});

/// A value for a message: at most 40 characters of its JSON.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// Writes a value that needs no conversion for its declared type without building a
/// GraphQL value first (the common case: a string column for a String field, an integer
/// for an Int). Returns false when the value needs `scalar`'s coercion.
fn write_plain(kind: &OutKind, v: &Value, out: &mut Vec<u8>) -> bool {
    match (kind, v) {
        (OutKind::String | OutKind::Id | OutKind::Enum, Value::String(s)) => {
            serde_json::to_writer(&mut *out, s.as_str()).is_ok()
        }
        (OutKind::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let mut buf = itoa::Buffer::new();
            match n.as_i64() {
                Some(i) => out.extend_from_slice(buf.format(i).as_bytes()),
                None => return false,
            }
            true
        }
        (OutKind::Float, Value::Number(n)) => serde_json::to_writer(&mut *out, n).is_ok(),
        (OutKind::Boolean, Value::Bool(b)) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" });
            true
        }
        _ => false,
    }
}

/// The row fields of `f` written for `row` into `out`, when they can be written ahead of
/// any request: `None` for a nested field, `Err` when the row gives an error.
fn leaf_ahead(f: &PlanField, row: &Value, out: &mut Vec<u8>) -> Result<bool, Null> {
    if f.kind.is_nested() {
        return Ok(false);
    }
    let mut w = Writer::new(out);
    w.leaf(f, row)?;
    match w.finish().is_empty() {
        true => Ok(true),
        false => Err(Null),
    }
}
pub(crate) struct Projection {
    buf: Vec<u8>,
    starts: Vec<u32>,
    ends: Vec<u32>,
    segments: usize,
}

impl Projection {
    /// `None` when a row cannot be written ahead (a value the field's type rejects, which
    /// must be reported with its path) or the answer is too large to index.
    fn build(sel: &Selection, rows: &[Value]) -> Option<Projection> {
        let segments = sel.nested.len() + 1;
        let mut p = Projection {
            buf: Vec::with_capacity(rows.len() * 64),
            starts: Vec::with_capacity(rows.len()),
            ends: Vec::with_capacity(rows.len() * segments),
            segments,
        };
        let at = |buf: &Vec<u8>| u32::try_from(buf.len()).ok();
        for (r, row) in rows.iter().enumerate() {
            if r > 0 {
                p.buf.push(b',');
            }
            p.starts.push(at(&p.buf)?);
            p.buf.push(b'{');
            for (i, f) in sel.fields.iter().enumerate() {
                if i > 0 {
                    p.buf.push(b',');
                }
                p.buf.extend_from_slice(&f.key);
                if !leaf_ahead(f, row, &mut p.buf).ok()? {
                    p.ends.push(at(&p.buf)?);
                }
            }
            p.buf.push(b'}');
            p.ends.push(at(&p.buf)?);
        }
        Some(p)
    }

    /// Memory it holds.
    fn bytes(&self) -> usize {
        self.buf.capacity() + (self.starts.capacity() + self.ends.capacity()) * 4
    }

    fn segment(&self, row: usize, k: usize) -> Option<&[u8]> {
        let i = row.checked_mul(self.segments)?.checked_add(k)?;
        let start = if k == 0 {
            *self.starts.get(row)?
        } else {
            *self.ends.get(i - 1)?
        };
        let end = *self.ends.get(i)?;
        self.buf.get(start as usize..end as usize)
    }

    /// Rows `first..=last`, comma-separated, when the selection has no nested fields.
    fn run(&self, first: usize, last: usize) -> Option<&[u8]> {
        if self.segments != 1 {
            return None;
        }
        let start = *self.starts.get(first)?;
        let end = *self.ends.get(last)?;
        self.buf.get(start as usize..end as usize)
    }
}

/// The projections of `sel` over the answers of `level`, per slot, built once per answer.
/// Answers most of whose rows are not read here get none.
pub(super) fn projections(sel: &Selection, level: &Level) -> Vec<Option<Arc<Option<Projection>>>> {
    if !sel.projectable {
        return Vec::new();
    }
    let mut used = vec![0usize; level.groups.len()];
    for n in &level.nodes {
        if let Some(u) = used.get_mut(n.slot as usize) {
            *u += 1;
        }
    }
    level
        .groups
        .iter()
        .zip(used)
        .map(|(g, used)| {
            let derived = g.derived()?;
            let rows = g.rows();
            (used > 0 && used * 2 >= rows.len()).then(|| {
                derived.get_or_init(DerivedKey::Projection(sel.id), || {
                    Projection::build(sel, rows).filter(|p| {
                        derived.reserve(p.bytes(), || {
                            rows.iter().map(crate::cache::approx_size).sum()
                        })
                    })
                })
            })
        })
        .collect()
}
