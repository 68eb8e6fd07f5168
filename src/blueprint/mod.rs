//! The immutable compiled model of a deployment: types, fields and one [`Binding`] per bound
//! field. Built once by `compile`, then only read by the schema builder and the resolvers.

use std::sync::Arc;

use async_graphql_parser::types::Type;
use async_graphql_value::ConstValue;

use crate::access::Access;
pub mod page;
pub mod settings;
pub mod template;

use crate::config::{CachePolicy, CacheSettings, ConnectorConfig, Limits};
use template::{Placeholder, Template};

#[derive(Debug)]
pub struct Blueprint {
    pub query_type: String,
    pub mutation_type: Option<String>,
    /// `Subscription`, when the deployment has rules (its fields are all built in).
    pub subscription_type: Option<String>,
    pub types: Vec<TypeDef>,
    pub bindings: Vec<Arc<Binding>>,
    pub connectors: Vec<ConnectorConfig>,
    pub limits: Limits,
    /// `[auth]`: the bearer tokens accepted.
    pub auth: crate::config::AuthFile,
    /// `[security]`: CORS, CSRF, introspection per tier, persisted operations, rate limits.
    pub security: crate::config::Security,
    pub listen: Option<String>,
    pub cache: CacheSettings,
    pub admin_token: Option<String>,
    /// `rules/*.toml`, compiled.
    pub rules: Vec<Arc<crate::alerts::rule::Rule>>,
    /// `[state]`: where alerts and the outbox are kept.
    pub state: settings::StateSettings,
    /// Mutation fields with `@outbox`: accepted into the state store, delivered later.
    pub outboxes: Vec<OutboxField>,
    /// `[dashboard]`: the page served at `/` and its persisted operations.
    pub dashboard: Option<Arc<crate::config::Dashboard>>,
    /// `[reload]`: whether the running gateway watches the deployment's files.
    pub reload: settings::ReloadSettings,
    /// `@lookup` fields: how `_entities` resolves each entity type (`[federation]`).
    pub entities: Vec<EntityLookup>,
}

/// A `@lookup` Query field: how `_entities` finds entities of `typename` by key.
#[derive(Debug)]
pub struct EntityLookup {
    pub typename: String,
    pub binding: Arc<Binding>,
    /// The field's arguments, named like key fields: one call per representation. None:
    /// the field returns every entity of the type (`list`), matched by key.
    pub args: Vec<String>,
    /// The type's `@key` field sets.
    pub key: Vec<Vec<String>>,
    pub list: bool,
}

/// A mutation field whose calls go through the outbox (`@outbox` beside its binding).
#[derive(Debug)]
pub struct OutboxField {
    /// "Mutation.submitComplaint": the outbox rows' `field`, and the name in logs.
    pub name: String,
    /// The write it delivers.
    pub binding: usize,
    /// `key: "input.idempotencyKey"`: where in the arguments a client's own key is.
    pub key: Option<Vec<String>>,
    /// `tracking: "trackingId"`: where in the answer's first row the upstream's id is.
    pub tracking: Option<Vec<String>>,
    /// Deliveries tried before the row is FAILED.
    pub tries: u32,
    /// `@validate`: reads that must each return a row before the call is kept.
    pub checks: Vec<Check>,
}

/// `@validate(connector:, query:, message:)`: a read run with the call's arguments; no row
/// refuses the call with `message` (BAD_REQUEST).
#[derive(Debug)]
pub struct Check {
    pub binding: usize,
    pub message: String,
}

#[derive(Debug)]
pub struct TypeDef {
    pub name: String,
    pub description: Option<String>,
    pub kind: TypeDefKind,
    /// `@access(tier:)` on the whole type; unmarked is PUBLIC.
    pub access: Access,
    /// Line and column of its name in schema.graphql.
    pub at: (usize, usize),
    /// `@key(fields:)`: the top-level key fields of each key (federation entities).
    pub keys: Vec<Vec<String>>,
    /// Federation directives as written (`@key(fields: "code")`, `@shareable`), printed
    /// into `_service { sdl }`.
    pub federation: Vec<String>,
}

#[derive(Debug)]
pub enum TypeDefKind {
    Object {
        fields: Vec<FieldDef>,
        implements: Vec<String>,
    },
    Interface {
        fields: Vec<FieldDef>,
        implements: Vec<String>,
        discriminator: String,
    },
    Union {
        members: Vec<String>,
        discriminator: String,
    },
    Enum {
        values: Vec<EnumValueDef>,
    },
    InputObject {
        fields: Vec<InputDef>,
    },
    Scalar {
        specified_by: Option<String>,
    },
}

#[derive(Debug)]
pub struct EnumValueDef {
    pub name: String,
    pub description: Option<String>,
    pub deprecation: Option<String>,
}

#[derive(Debug)]
pub struct FieldDef {
    pub name: String,
    pub description: Option<String>,
    pub deprecation: Option<String>,
    pub ty: Type,
    pub args: Vec<InputDef>,
    pub plan: FieldPlan,
    /// `@access(tier:)`: only views that [`View::reads`](crate::access::View::reads) it
    /// have the field.
    pub access: Access,
    /// `@suppress`: statistical disclosure control for callers below INTERNAL.
    pub suppress: Option<Suppress>,
    /// `@listSize(max: N)`: the most items the list holds, for the operation's estimated
    /// cost when no size argument says.
    pub list_size: Option<u64>,
    /// `@page`: the list filtered by its arguments and read in pages (on an interface field,
    /// for every implementation).
    pub page: Option<std::sync::Arc<page::Page>>,
    /// Line and column of its name in schema.graphql.
    pub at: (usize, usize),
    /// Federation directives as written (`@shareable`, `@external`), for `_service`.
    pub federation: Vec<String>,
}

#[derive(Debug)]
pub struct InputDef {
    pub name: String,
    pub description: Option<String>,
    pub ty: Type,
    pub default: Option<ConstValue>,
    /// `@length(min:, max:)` on an input field: its bounds in characters.
    pub length: Option<(usize, usize)>,
}

/// How a field gets its value.
#[derive(Debug)]
pub enum FieldPlan {
    /// Read from the parent's source row: candidate keys (exact, then snake_case) or a path.
    Property(Lookup),
    /// A constant from `@const(value:)`.
    Const(serde_json::Value),
    /// A connector call: index into [`Blueprint::bindings`].
    Bound(usize),
    /// An object field with no binding under the root type: an empty namespace object.
    Namespace,
    /// `Query.sources`: every connector's health, read live (never cached).
    Sources,
    /// Answered by Simpul itself from its state store (alerts, rules, the outbox) or its
    /// events (subscriptions): `@builtin(name:)` in the alerts SDL added beside the
    /// schema, `@outbox` and `@receipt` in the deployment's.
    Builtin(Builtin),
}

/// The fields Simpul answers itself: early-warning alerts and their events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Alerts,
    Alert,
    Rules,
    AcknowledgeAlert,
    ResolveAlert,
    AddFollowUp,
    AlertRaised,
    AlertChanged,
    OpenAlerts,
    SourceStatusChanged,
    /// An `@outbox` mutation: the call is kept, a receipt answered (index into
    /// `Blueprint::outboxes`).
    Accept(usize),
    /// `@receipt(of:)`: where a receipt of that outbox field is.
    Receipt(usize),
    /// `Query._entities` of a federation subgraph: representations in, entities out.
    Entities,
}

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "alerts" => Builtin::Alerts,
            "alert" => Builtin::Alert,
            "rules" => Builtin::Rules,
            "acknowledgeAlert" => Builtin::AcknowledgeAlert,
            "resolveAlert" => Builtin::ResolveAlert,
            "addFollowUp" => Builtin::AddFollowUp,
            "alertRaised" => Builtin::AlertRaised,
            "alertChanged" => Builtin::AlertChanged,
            "openAlerts" => Builtin::OpenAlerts,
            "sourceStatusChanged" => Builtin::SourceStatusChanged,
            "entities" => Builtin::Entities,
            _ => return None,
        })
    }

    /// A subscription field: answered once per event.
    pub fn is_subscription(self) -> bool {
        matches!(
            self,
            Builtin::AlertRaised
                | Builtin::AlertChanged
                | Builtin::OpenAlerts
                | Builtin::SourceStatusChanged
        )
    }
}

#[derive(Clone, Debug)]
pub enum Lookup {
    /// Try each key in order on the parent row.
    Keys(Vec<String>),
    /// `@map(from: "a.b.0.c")`: a path into the parent row.
    Path(Vec<String>),
    /// `@cursor(from: [...])`: the row's opaque cursor, made of these columns
    /// ([`page::cursor`]).
    Cursor(Vec<String>),
}

/// One bound field: which connector, what call, how it batches.
#[derive(Debug)]
pub struct Binding {
    /// Its index in this blueprint's `bindings`.
    pub id: usize,
    /// Unique in the process: what values derived from answers are keyed by
    /// (`connectors::derived`), since cached answers outlive a blueprint on a reload and
    /// `id` may name another binding in the next one.
    pub uid: usize,
    /// "Type.field", used in logs, cache keys and invalidation.
    pub name: String,
    pub connector: usize,
    pub operation: Operation,
    pub batch: Option<Batch>,
    /// A read can be shared between identical calls; a mutation's call never is.
    pub shareable: bool,
    /// From `@cache` on the field, else on its type, else the connector's `[cache]`.
    pub cache: CachePolicy,
    /// Reads `{{auth.*}}`: its cache entries are per caller.
    pub uses_auth: bool,
    /// Where it is written, for what `simpul check` finds against its source.
    pub places: BindingPlaces,
}

/// Lines and columns in schema.graphql of a binding's directive and of what in it names
/// the source's columns.
#[derive(Debug, Default)]
pub struct BindingPlaces {
    pub directive: (usize, usize),
    /// The `batch:` argument.
    pub batch: Option<(usize, usize)>,
    /// Each `{{parent.X}}`: a column of the parent's rows.
    pub parents: Vec<(Placeholder, (usize, usize))>,
}

#[derive(Debug)]
pub enum Operation {
    Sql { query: Template },
    Http(HttpOperation),
    Graphql(GraphqlOperation),
}

/// `@graphql(connector:, field:, args:, entity:)`: a field of a remote GraphQL service; the
/// selection under it is forwarded (`plan::remote`).
#[derive(Debug)]
pub struct GraphqlOperation {
    /// The remote field: `field:`, else the field's own name.
    pub field: String,
    /// `args: {code: "{{parent.code}}"}`: the remote arguments and their templates; `None`
    /// forwards the field's own arguments under their names.
    pub args: Option<Vec<(String, Template)>>,
    /// `entity: "District"`: the field is one of the remote entity's, read through the
    /// remote `_entities` with representations of the owner's `@key` fields.
    pub entity: Option<RemoteEntity>,
    /// A Mutation field: the remote call is a mutation.
    pub mutation: bool,
}

#[derive(Debug)]
pub struct RemoteEntity {
    /// The remote `__typename` of the representations.
    pub typename: String,
    /// The key fields, read from each parent row (`@key(fields:)` of the owner type).
    pub key: Vec<String>,
}

#[derive(Debug)]
pub struct HttpOperation {
    pub method: reqwest::Method,
    pub path: Template,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, Template)>,
    pub body: Option<Template>,
    /// `select: "result.records"` as path segments.
    pub select: Vec<String>,
}

#[derive(Debug)]
pub struct Batch {
    /// Column or JSON field of the result rows matched against the parent's value.
    pub key: String,
    /// The `{{parent.X}}` that receives every distinct parent value.
    pub parent: Placeholder,
    /// HTTP: join the values into one query parameter with this separator instead of repeating it.
    pub separator: Option<String>,
    /// Largest number of keys in one upstream call; larger levels are split.
    pub max_size: usize,
}

/// The innermost named type of `[[T!]]!`.
/// A GraphQL name: `[_A-Za-z][_0-9A-Za-z]*`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

pub fn named(ty: &Type) -> &str {
    match &ty.base {
        async_graphql_parser::types::BaseType::Named(n) => n.as_str(),
        async_graphql_parser::types::BaseType::List(inner) => named(inner),
    }
}

/// `@suppress(below:, of:, when:, withheld:)`: what a caller below INTERNAL reads as null
/// (docs/data-trust.md). The threshold rule runs here, on every row any path serves; the
/// complementary cells are marked by the source, which sees the whole table.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppress {
    /// Counts from 1 to `below - 1` are withheld.
    pub below: i64,
    /// `of:` the row column of the count this value is derived from (a rate, a mean): the
    /// threshold applies to that count, so the value cannot rebuild it.
    pub of: Option<String>,
    /// `when:` the row column that marks the value a count, in tables mixing counts and
    /// rates; without it the value always is one.
    pub when: Option<String>,
    /// `withheld:` the row column in which the source marks the cells it withholds so that
    /// no suppressed cell follows from a total and its siblings.
    pub withheld: Option<String>,
}

impl Suppress {
    /// Whether a caller below INTERNAL reads null instead of `value`, the field's value in `row`.
    pub fn hides(&self, row: &serde_json::Value, value: Option<&serde_json::Value>) -> bool {
        let column = |name: &Option<String>| name.as_deref().and_then(|n| row.get(n));
        if column(&self.withheld).is_some_and(truthy) {
            return true;
        }
        if self.when.is_some() && !column(&self.when).is_some_and(truthy) {
            return false;
        }
        let count = match self.of {
            Some(_) => column(&self.of),
            None => value,
        };
        count
            .and_then(serde_json::Value::as_f64)
            .is_some_and(|n| n >= 1.0 && n < self.below as f64)
    }
}

/// The column that marks a row synthetic (DATA DEMO): an answer with such a row makes the
/// response say so in `extensions.demo`, whatever the client selected.
pub const DEMO_COLUMN: &str = "demo";

/// A flag column as sources write it: true, a non-zero number, or a text other than "0".
pub fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty() && s != "0" && !s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Suppress;

    fn rule(of: Option<&str>, when: Option<&str>, withheld: Option<&str>) -> Suppress {
        Suppress {
            below: 5,
            of: of.map(Into::into),
            when: when.map(Into::into),
            withheld: withheld.map(Into::into),
        }
    }

    #[test]
    fn the_threshold_hides_one_to_below_minus_one() {
        let r = rule(None, None, None);
        let row = json!({});
        for (v, hidden) in [(0, false), (1, true), (4, true), (5, false), (40, false)] {
            assert_eq!(r.hides(&row, Some(&json!(v))), hidden, "{v}");
        }
        assert!(r.hides(&row, Some(&json!(2.0))));
        assert!(!r.hides(&row, None));
    }

    #[test]
    fn a_rate_follows_its_count_and_a_withheld_cell_is_hidden_whatever_its_value() {
        let rate = rule(Some("stunted"), None, Some("withheld"));
        assert!(rate.hides(&json!({"stunted": 3}), Some(&json!(12.5))));
        assert!(!rate.hides(&json!({"stunted": 30}), Some(&json!(2.5))));
        assert!(rate.hides(&json!({"stunted": 30, "withheld": 1}), Some(&json!(12.5))));
        assert!(!rate.hides(&json!({"stunted": 30, "withheld": 0}), Some(&json!(12.5))));
    }

    #[test]
    fn when_limits_the_threshold_to_rows_marked_as_counts() {
        let r = rule(None, Some("is_count"), None);
        assert!(!r.hides(&json!({"is_count": 0}), Some(&json!(1.43))));
        assert!(r.hides(&json!({"is_count": 1}), Some(&json!(3))));
        assert!(r.hides(&json!({"is_count": true}), Some(&json!(3))));
    }
}
