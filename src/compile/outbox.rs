//! `@outbox` on a mutation field (its write is kept in the state store and delivered
//! later; the caller gets a receipt) and `@receipt(of:)` on a query field (where a receipt
//! is). The `Receipt` type both answer is Simpul's own (`outbox.graphql`), added to the
//! schema when a field uses `@outbox`.

use async_graphql_parser::Positioned;
use async_graphql_parser::types::{ConstDirective, InputValueDefinition, Type, TypeKind};
use async_graphql_value::ConstValue;

use super::SCHEMA_FILE;
use super::binding::FieldCx;
use super::directives::Args;
use super::fields::Cx;
use super::named;
use crate::blueprint::{Builtin, Check, FieldPlan, Lookup, OutboxField, TypeDef, TypeDefKind};
use crate::diagnostic::Diagnostic;

/// The receipt types, appended to the SDL when a field uses `@outbox`.
pub const SDL: &str = include_str!("outbox.graphql");
/// Default deliveries tried before a row is FAILED: about 1 h 40 of backoff at the
/// default 1 s to 5 min.
const DEFAULT_TRIES: u32 = 24;
const MAX_TRIES: u64 = 1000;

/// The field a directive is on.
pub struct Place<'a> {
    pub owner: &'a str,
    pub field: &'a str,
    pub ty: &'a Type,
    pub args: &'a [Positioned<InputValueDefinition>],
    /// Has `@sql` or `@http` (compiled or not).
    pub bound: bool,
}

/// A `@receipt(of:)` field, resolved once every mutation field is compiled.
pub struct PendingReceipt {
    pub owner: String,
    pub field: String,
    pub of: String,
    pub at: (usize, usize),
}

impl Cx<'_> {
    /// The plan of a field with `@outbox` or `@receipt`: built in, or the field's own plan
    /// (with a diagnostic) when the directive is misplaced.
    pub(super) fn outbox_plan(
        &mut self,
        place: Place,
        plan: FieldPlan,
        outbox: Option<&Positioned<ConstDirective>>,
        receipt: Option<&Positioned<ConstDirective>>,
        checks: Vec<Check>,
    ) -> FieldPlan {
        let (d, is_outbox) = match (outbox, receipt) {
            (Some(d), None) => (d, true),
            (None, Some(d)) => (d, false),
            (Some(_), Some(d)) => {
                let args = Args {
                    file: SCHEMA_FILE,
                    directive: d,
                };
                self.diags
                    .push(args.diag("@receipt and @outbox cannot be on one field"));
                return plan;
            }
            (None, None) => return plan,
        };
        let args = Args {
            file: SCHEMA_FILE,
            directive: d,
        };
        if named(place.ty) != "Receipt" {
            self.diags.push(
                args.diag(format!(
                    "{}.{} returns {}; @{} answers Receipt",
                    place.owner,
                    place.field,
                    named(place.ty),
                    args.name()
                ))
                .hint(format!("declare it as {}(...): Receipt!", place.field)),
            );
        }
        if is_outbox {
            self.outbox(&args, &place, plan, checks)
        } else {
            self.receipt(&args, &place)
        }
    }

    /// Each `@validate` compiled as a read (an `@sql` with the field's arguments).
    pub(super) fn validations(
        &mut self,
        place: &Place,
        validates: &[&Positioned<ConstDirective>],
        with_outbox: bool,
    ) -> Vec<Check> {
        let arg_names: Vec<String> = place
            .args
            .iter()
            .map(|a| a.node.name.node.to_string())
            .collect();
        let mut checks = Vec::new();
        for d in validates {
            let args = Args {
                file: SCHEMA_FILE,
                directive: d,
            };
            if !with_outbox {
                self.diags.push(
                    args.diag(format!(
                        "{}.{}: @validate checks the calls of an @outbox mutation",
                        place.owner, place.field
                    ))
                    .hint("add @outbox, or check the input in the upstream"),
                );
                continue;
            }
            args.check_names(&["connector", "query", "message"], &mut self.diags);
            let Some((message, _)) = args.string("message", true, &mut self.diags) else {
                continue;
            };
            // The read is an @sql of its own: the same checks of connector, query and
            // placeholders, the same rendering.
            let mut read = (*d).clone();
            read.node.name.node = async_graphql_value::Name::new("sql");
            read.node
                .arguments
                .retain(|(name, _)| name.node.as_str() != "message");
            let field = FieldCx {
                cache: None,
                owner: place.owner,
                field: place.field,
                is_root: true,
                args: &arg_names,
                mutation: false,
                outbox: false,
            };
            if let Some(binding) = self.binding(&read, &field) {
                checks.push(Check { binding, message });
            }
        }
        checks
    }

    fn outbox(
        &mut self,
        args: &Args,
        place: &Place,
        plan: FieldPlan,
        checks: Vec<Check>,
    ) -> FieldPlan {
        args.check_names(&["key", "tracking", "tries"], &mut self.diags);
        if Some(place.owner) != self.mutation_type {
            self.diags.push(
                args.diag(format!(
                    "@outbox is on {}.{}; it keeps the calls of a mutation",
                    place.owner, place.field
                ))
                .hint("move the field to type Mutation"),
            );
            return plan;
        }
        let key = args
            .string("key", false, &mut self.diags)
            .and_then(|(text, at)| {
                let path = dotted(&text);
                let first = path.first().map(String::as_str).unwrap_or_default();
                if place.args.iter().any(|a| a.node.name.node == first) {
                    Some(path)
                } else {
                    self.diags.push(
                        args.diag_at(at, format!("@outbox(key: \"{text}\"): {first} is no argument of {}", place.field))
                            .hint("name where a client's own idempotency key is, e.g. key: \"input.idempotencyKey\""),
                    );
                    None
                }
            });
        let tracking = args
            .string("tracking", false, &mut self.diags)
            .map(|(text, _)| dotted(&text));
        let tries = match args.get("tries") {
            None => DEFAULT_TRIES,
            Some(Positioned {
                node: ConstValue::Number(n),
                ..
            }) if n.as_u64().is_some_and(|n| (1..=MAX_TRIES).contains(&n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(DEFAULT_TRIES),
            Some(v) => {
                self.diags.push(args.diag_at(
                    v,
                    format!("@outbox(tries:) must be a whole number from 1 to {MAX_TRIES}"),
                ));
                DEFAULT_TRIES
            }
        };
        let FieldPlan::Bound(binding) = plan else {
            // A write that failed to compile has its own diagnostics.
            if !place.bound {
                self.diags.push(
                    args.diag(format!("{}.{}: @outbox needs the write it delivers", place.owner, place.field))
                        .hint("add @http(connector: ..., method: \"POST\", path: ..., body: ...) or @sql(connector: ..., query: \"INSERT ...\")"),
                );
            }
            return plan;
        };
        let index = self.outboxes.len();
        self.outboxes.push(OutboxField {
            name: format!("{}.{}", place.owner, place.field),
            binding,
            key,
            tracking,
            tries,
            checks,
        });
        FieldPlan::Builtin(Builtin::Accept(index))
    }

    fn receipt(&mut self, args: &Args, place: &Place) -> FieldPlan {
        args.check_names(&["of"], &mut self.diags);
        let takes_receipt = place.args.len() == 1
            && place
                .args
                .iter()
                .all(|a| a.node.name.node == "receipt" && named(&a.node.ty.node) == "ID");
        if Some(place.owner) != Some(self.query_type) || !takes_receipt {
            self.diags.push(
                args.diag(format!(
                    "@receipt is on {}.{}; it answers a Query field taking (receipt: ID!)",
                    place.owner, place.field
                ))
                .hint(
                    "e.g. complaintStatus(receipt: ID!): Receipt @receipt(of: \"submitComplaint\")",
                ),
            );
        }
        if let Some((of, _)) = args.string("of", true, &mut self.diags) {
            self.receipts.push(PendingReceipt {
                owner: place.owner.to_string(),
                field: place.field.to_string(),
                of,
                at: args.at(),
            });
        }
        // Until resolved: nothing (a receipt that names no outbox stays a diagnostic).
        FieldPlan::Property(Lookup::Keys(Vec::new()))
    }
}

/// Points each `@receipt(of:)` field at its outbox field, by the mutation field's name.
pub(super) fn resolve_receipts(
    pending: Vec<PendingReceipt>,
    outboxes: &[OutboxField],
    mutation_type: Option<&str>,
    types: &mut [TypeDef],
    diags: &mut Vec<Diagnostic>,
) {
    for r in pending {
        let wanted = format!("{}.{}", mutation_type.unwrap_or("Mutation"), r.of);
        let Some(index) = outboxes.iter().position(|o| o.name == wanted) else {
            let known: Vec<&str> = outboxes
                .iter()
                .filter_map(|o| o.name.split_once('.').map(|(_, f)| f))
                .collect();
            diags.push(
                Diagnostic::new(
                    SCHEMA_FILE,
                    r.at.0,
                    r.at.1,
                    format!("@receipt(of: \"{}\"): {wanted} has no @outbox", r.of),
                )
                .hint(if known.is_empty() {
                    "put @outbox on the mutation field whose receipts this reads".to_string()
                } else {
                    format!("mutation fields with @outbox: {}", known.join(", "))
                }),
            );
            continue;
        };
        let field = types
            .iter_mut()
            .filter(|t| t.name == r.owner)
            .find_map(|t| match &mut t.kind {
                TypeDefKind::Object { fields, .. } => fields.iter_mut().find(|f| f.name == r.field),
                _ => None,
            });
        if let Some(field) = field {
            field.plan = FieldPlan::Builtin(Builtin::Receipt(index));
        }
    }
}

/// Whether the SDL uses `@outbox` on some field definition (its receipt types are then
/// added).
pub(super) fn used(doc: &async_graphql_parser::types::ServiceDocument) -> bool {
    use async_graphql_parser::types::TypeSystemDefinition;
    doc.definitions.iter().any(|d| match d {
        TypeSystemDefinition::Type(t) => match &t.node.kind {
            TypeKind::Object(o) => o.fields.iter().any(|f| {
                f.node
                    .directives
                    .iter()
                    .any(|d| d.node.name.node == "outbox")
            }),
            _ => false,
        },
        _ => false,
    })
}

fn dotted(text: &str) -> Vec<String> {
    text.split('.')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}
