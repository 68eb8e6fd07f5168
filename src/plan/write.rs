//! Running a plan, second half: the response bytes, written in one pass with the spec's
//! null propagation. A null where the type forbids it makes the enclosing object null (its
//! bytes are truncated away), up to the nearest nullable field or list item, or `data`.

use async_graphql_parser::types::{BaseType, Type};
use serde_json::{Value, json};

use super::exec::{Children, Fetched, Level, NodeRef, read};
use super::leaf::LIST_NN;
use super::projection::Projection;
use super::{Kind, PlanField, Selection};
use crate::blueprint::Lookup;
use crate::error::ErrorCode;

/// A value became null where its type forbids it; its error is already recorded. The
/// enclosing object must be null too.
pub(super) struct Null;

pub(super) enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

/// The response being written, its errors and the current path.
pub(super) struct Writer<'o, 'p> {
    pub(super) out: &'o mut Vec<u8>,
    pub(super) errors: Vec<Value>,
    pub(super) path: Vec<Seg<'p>>,
    /// `[limits] max_errors`: past it errors are only counted, in `left_out`.
    max_errors: usize,
    left_out: usize,
    /// Reports the source faults it writes to the log; `None` for a trial writer whose
    /// errors are dropped (a projection's: the rows are then written again, reported).
    pub(super) engine: Option<&'p crate::resolve::Engine>,
    /// The binding whose answer the rows being written are, when they are one.
    pub(super) from: Option<&'p crate::blueprint::Binding>,
}

impl<'o, 'p> Writer<'o, 'p> {
    pub fn new(out: &'o mut Vec<u8>, max_errors: usize) -> Self {
        Writer {
            out,
            errors: Vec::new(),
            path: Vec::new(),
            max_errors,
            left_out: 0,
            engine: None,
            from: None,
        }
    }

    /// A writer that logs the source faults it writes (see `faults`).
    pub fn reporting(
        out: &'o mut Vec<u8>,
        max_errors: usize,
        engine: &'p crate::resolve::Engine,
    ) -> Self {
        Writer {
            engine: Some(engine),
            ..Writer::new(out, max_errors)
        }
    }

    /// The errors, the first `max_errors` of them, and then one that counts the rest (a
    /// failed field under 200,000 parents is not 200,000 entries).
    pub fn finish(mut self) -> Vec<Value> {
        if self.left_out > 0 {
            let code = self
                .errors
                .last()
                .and_then(|e| e.get("extensions")?.get("code")?.as_str())
                .unwrap_or(ErrorCode::Internal.as_str())
                .to_string();
            self.errors.push(json!({
                "message": format!("{} more errors like the ones above were left out ([limits] max_errors = {})", self.left_out, self.max_errors),
                "extensions": { "code": code, "leftOut": self.left_out },
            }));
        }
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

    pub(super) fn error(
        &mut self,
        f: &PlanField,
        message: String,
        code: ErrorCode,
        connector: Option<&str>,
    ) {
        if self.errors.len() >= self.max_errors {
            self.left_out += 1;
            return;
        }
        let path: Vec<Value> = self
            .path
            .iter()
            .map(|s| match s {
                Seg::Key(k) => Value::from(*k),
                Seg::Index(i) => Value::from(*i),
            })
            .collect();
        let ext = match connector {
            Some(c) => json!({ "code": code.as_str(), "connector": c }),
            None => json!({ "code": code.as_str() }),
        };
        self.errors.push(json!({
            "message": message,
            "locations": [{ "line": f.at.0, "column": f.at.1 }],
            "path": path,
            "extensions": ext,
        }));
    }

    /// An error a remote GraphQL service reported at `below`, a path under field `f`.
    fn error_below(&mut self, f: &PlanField, below: &[Value], connector: Option<&str>) {
        let before = self.errors.len();
        self.error(
            f,
            ErrorCode::SourceError.public_message(connector.unwrap_or_default()),
            ErrorCode::SourceError,
            connector,
        );
        if self.errors.len() > before
            && let Some(Value::Object(e)) = self.errors.last_mut()
            && let Some(Value::Array(path)) = e.get_mut("path")
        {
            path.extend(below.iter().cloned());
        }
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
        // A null item of a list (an entity `_entities` did not find, a remote list's null).
        if level.row(node).is_null() {
            return Err(Null);
        }
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
    pub(super) fn leaf(&mut self, f: &PlanField, row: &Value) -> Result<(), Null> {
        match &f.kind {
            Kind::Typename(t) => self.out.extend_from_slice(t),
            Kind::Const { value, out: o } => {
                // A constant is no source's value.
                let outer = self.from.take();
                let r = self.value(f, o, &o.ty, value);
                self.from = outer;
                r?
            }
            Kind::Property {
                lookup: Lookup::Cursor(columns),
                out: o,
                children: None,
                ..
            } => {
                let c = crate::blueprint::page::cursor(row, columns).map(Value::String);
                self.value(f, o, &o.ty, c.as_ref().unwrap_or(&Value::Null))?
            }
            Kind::Property {
                lookup,
                out: o,
                suppress,
                children: None,
            } => {
                let v = read(lookup, row);
                let v = match suppress {
                    Some(s) if s.hides(row, v) => None,
                    _ => v,
                };
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
        // Rows below a bound field are its answer's; a nested object's are its parent's.
        let outer = self.from;
        self.from = match &f.kind {
            Kind::Bound { binding, .. } => Some(binding),
            Kind::Property { .. } => outer,
            _ => None,
        };
        let r = self.nested_value(f, fetched, pos);
        self.from = outer;
        r
    }

    fn nested_value(
        &mut self,
        f: &'p PlanField,
        fetched: &Fetched,
        pos: usize,
    ) -> Result<(), Null> {
        match (&f.kind, fetched) {
            (Kind::Property { out: o, .. }, Fetched::Nested(ch)) => {
                self.children(o.is_list().then_some(&o.ty), f, ch, pos)
            }
            (Kind::Sources { .. }, Fetched::Nested(ch)) => {
                self.children(Some(&LIST_NN), f, ch, pos)
            }
            (Kind::Namespace { .. }, Fetched::Nested(ch)) => self.children(None, f, ch, pos),
            (Kind::Builtin { out: o, .. }, Fetched::Nested(ch)) => {
                self.children(o.is_list().then_some(&o.ty), f, ch, pos)
            }
            (Kind::Builtin { .. } | Kind::Bound { .. }, Fetched::Failed(code, message)) => {
                self.error(f, message.clone(), *code, None);
                Err(Null)
            }
            (Kind::Bound { out: o, .. }, Fetched::Bound { bound, children }) => {
                for e in bound.nested.iter().filter(|e| e.node as usize == pos) {
                    self.error_below(f, &e.path, bound.connector.as_deref());
                }
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
}
