//! A bound field's rows for every node of a level: one batched call per parent answer
//! (each parent's rows found by key in the answer's index), or one call per node.

use std::sync::Arc;

use serde_json::Value;

use super::exec::Level;
use crate::connectors::derived::DerivedKey;
use crate::error::{ErrorCode, SourceError};
use crate::resolve::node::{Group, GroupRows, Node};
use crate::resolve::request::{ByKey, RequestState};
use crate::resolve::{self, Engine};

/// Which rows of which answer a bound field has for one parent.
#[derive(Clone, Copy)]
pub(super) struct Pick {
    pub slot: u32,
    rows: Picked,
}

#[derive(Clone, Copy)]
enum Picked {
    /// No rows: the parent is of another type than the field is selected on.
    Nothing,
    /// Every row: the call was made for this parent alone.
    All,
    /// The rows of the parent's key in a batched answer's index (start, length).
    Keyed(u32, u32),
}

/// What a bound field fetched for every node of its level.
pub(super) struct Bound {
    pub groups: Vec<Arc<Group>>,
    /// Per slot of a batched answer: its rows by key.
    indexes: Vec<Option<Arc<ByKey>>>,
    /// Per node: its rows, or the index of its error in `errors` (kept small: one entry
    /// per node of a long level).
    pub per_node: Vec<Result<Pick, u32>>,
    pub errors: Vec<SourceError>,
    /// Errors a remote GraphQL service reported inside a value it answered (`plan::remote`).
    pub nested: Vec<NestedError>,
    /// The connector they come from.
    pub connector: Option<Arc<str>>,
}

/// An error inside the value of node `node`, at `path` below the field.
pub(super) struct NestedError {
    pub node: u32,
    pub path: Vec<Value>,
}

impl Bound {
    /// Each node's own rows, or its failure (`None`: the node is not of the field's type).
    pub fn owned(
        per_node: Vec<Option<Result<Vec<Value>, SourceError>>>,
        nested: Vec<NestedError>,
        connector: Arc<str>,
    ) -> Bound {
        let mut bound = Bound {
            groups: Vec::new(),
            indexes: Vec::new(),
            per_node: Vec::with_capacity(per_node.len()),
            errors: Vec::new(),
            nested,
            connector: Some(connector),
        };
        for r in per_node {
            let pick = match r {
                None => Ok(Pick {
                    slot: 0,
                    rows: Picked::Nothing,
                }),
                Some(Ok(rows)) => {
                    let slot = bound.groups.len() as u32;
                    bound.groups.push(Group::new(GroupRows::Owned(rows)));
                    bound.indexes.push(None);
                    Ok(Pick {
                        slot,
                        rows: Picked::All,
                    })
                }
                Some(Err(e)) => Err(bound.error(e)),
            };
            bound.per_node.push(pick);
        }
        bound
    }

    /// Keeps `e` (once per distinct failure, not per node) and returns its index.
    fn error(&mut self, e: SourceError) -> u32 {
        self.errors.push(e);
        self.errors.len() as u32 - 1
    }

    pub fn rows(&self, p: Pick) -> &[Value] {
        self.groups
            .get(p.slot as usize)
            .map(|g| g.rows())
            .unwrap_or_default()
    }

    /// The indexes of the picked rows.
    pub fn picked(&self, p: Pick) -> PickedRows<'_> {
        match p.rows {
            Picked::Nothing => PickedRows::Range(0..0),
            Picked::All => PickedRows::Range(0..self.rows(p).len()),
            Picked::Keyed(start, len) => PickedRows::Slice(
                self.indexes
                    .get(p.slot as usize)
                    .and_then(Option::as_ref)
                    .map(|ix| ix.slice((start, len)))
                    .unwrap_or_default()
                    .iter(),
            ),
        }
    }
}

/// An iterator over picked row indexes.
pub(super) enum PickedRows<'a> {
    Range(std::ops::Range<usize>),
    Slice(std::slice::Iter<'a, usize>),
}

impl Iterator for PickedRows<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            PickedRows::Range(r) => r.next(),
            PickedRows::Slice(s) => s.next().copied(),
        }
    }
}

/// The rows of a bound field for every node: one batched call per parent answer, or one
/// call per node.
pub(super) async fn bound_rows(
    engine: &Engine,
    state: &Arc<RequestState>,
    binding: &crate::blueprint::Binding,
    args: &Value,
    level: &Level,
    root: bool,
    applies: &(dyn Fn(usize) -> bool + Sync),
) -> Bound {
    state.note_binding(binding.cache.ttl, binding.shareable && !binding.uses_auth);
    let mut bound = Bound {
        groups: Vec::new(),
        indexes: Vec::new(),
        per_node: Vec::with_capacity(level.nodes.len()),
        errors: Vec::new(),
        nested: Vec::new(),
        connector: None,
    };
    match (&binding.batch, root) {
        (Some(batch), false) => {
            // Per parent slot: the batched answer's slot and, for each parent row, where its
            // rows are in that answer (computed once per pair of shared answers).
            type ParentSlot = Result<(u32, Arc<Vec<(u32, u32)>>), u32>;
            let mut first = vec![None; level.groups.len()];
            for n in &level.nodes {
                if let Some(f @ None) = first.get_mut(n.slot as usize) {
                    *f = Some(*n);
                }
            }
            let mut parents: Vec<Option<ParentSlot>> = Vec::with_capacity(first.len());
            for n in first {
                let Some(node) = n.and_then(|n| level.node(n)) else {
                    parents.push(None);
                    continue;
                };
                let parent = match resolve::batched(engine, binding, state, args, &node).await {
                    Ok(index) => {
                        let picks = || {
                            let keys = match node.group.derived() {
                                Some(d) => d
                                    .get_or_init(DerivedKey::ParentKeys(binding.uid), || {
                                        resolve::parent_keys(&node.group, &batch.parent.path)
                                    }),
                                None => {
                                    Arc::new(resolve::parent_keys(&node.group, &batch.parent.path))
                                }
                            };
                            let picks = keys
                                .iter()
                                .map(|k| {
                                    k.as_deref()
                                        .and_then(|k| index.by_key.range(k))
                                        .unwrap_or((0, 0))
                                })
                                .collect::<Vec<_>>();
                            let rows = index.group.rows();
                            if !rows.is_empty() && picks.iter().all(|&(_, len)| len == 0) {
                                super::faults::no_batch_match(
                                    engine, binding, &batch.key, &keys, rows,
                                );
                            }
                            picks
                        };
                        let picks = match (node.group.derived(), index.group.answer_id()) {
                            (Some(d), Some(child)) => {
                                d.get_or_init(DerivedKey::Picks(binding.uid, child), picks)
                            }
                            _ => Arc::new(picks()),
                        };
                        let slot = bound.groups.len() as u32;
                        bound.groups.push(index.group.clone());
                        bound.indexes.push(Some(index.by_key.clone()));
                        Ok((slot, picks))
                    }
                    Err(e) => Err(bound.error(e)),
                };
                parents.push(Some(parent));
            }
            for n in &level.nodes {
                let pick = match parents.get(n.slot as usize) {
                    Some(Some(Ok((slot, picks)))) => {
                        let (start, len) = picks.get(n.index as usize).copied().unwrap_or((0, 0));
                        Ok(Pick {
                            slot: *slot,
                            rows: Picked::Keyed(start, len),
                        })
                    }
                    Some(Some(Err(i))) => Err(*i),
                    _ => Err(bound.error(SourceError::new(
                        ErrorCode::Internal,
                        &engine.source_name(binding),
                        "batch missing",
                    ))),
                };
                bound.per_node.push(pick);
            }
        }
        _ => {
            let parents: Vec<Option<Node>> = level
                .nodes
                .iter()
                .map(|&n| if root { None } else { level.node(n) })
                .collect();
            let results = futures::future::join_all(parents.iter().enumerate().map(|(i, p)| {
                let call = applies(i)
                    .then(|| resolve::unbatched(engine, binding, state, args, p.as_ref()));
                async move {
                    match call {
                        Some(call) => Some(call.await),
                        None => None,
                    }
                }
            }))
            .await;
            for r in results {
                let Some(r) = r else {
                    bound.per_node.push(Ok(Pick {
                        slot: 0,
                        rows: Picked::Nothing,
                    }));
                    continue;
                };
                let pick = match r {
                    Ok(group) => {
                        let slot = bound.groups.len() as u32;
                        bound.groups.push(group);
                        bound.indexes.push(None);
                        Ok(Pick {
                            slot,
                            rows: Picked::All,
                        })
                    }
                    Err(e) => Err(bound.error(e)),
                };
                bound.per_node.push(pick);
            }
        }
    }
    bound
}
