//! Projections: the row fields of a selection serialized once per shared answer, so
//! every request that reads the same rows copies bytes instead of writing them again.

use std::sync::Arc;

use serde_json::Value;

use super::exec::Level;
use super::write::{Null, Writer};
use super::{PlanField, Selection};
use crate::connectors::derived::DerivedKey;

/// The row fields of `f` written for `row` into `out`, when they can be written ahead of
/// any request: `None` for a nested field, `Err` when the row gives an error.
pub(super) fn leaf_ahead(f: &PlanField, row: &Value, out: &mut Vec<u8>) -> Result<bool, Null> {
    if f.kind.is_nested() {
        return Ok(false);
    }
    let mut w = Writer::new(out, 1);
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

    pub(super) fn segment(&self, row: usize, k: usize) -> Option<&[u8]> {
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
    pub(super) fn run(&self, first: usize, last: usize) -> Option<&[u8]> {
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
