//! Real GraphQL upstreams on loopback for the `[graphql]` connector and federation tests:
//! async-graphql schemas built with its static (derive) API, served by axum over HTTP POST
//! on a free 127.0.0.1 port inside the test process.
//!
//! - [`spawn_province`]: a plain GraphQL service of the province of Jawa Timur (district
//!   statistics by code, a list field, an interface, field errors);
//! - [`spawn_tourism_subgraph`]: an Apollo Federation v2 subgraph whose `District` entity
//!   is resolved by `code` through `_entities`.
//!
//! Every answer is computed from the code, so tests compare with [`province_stats`],
//! [`tourism_visits`] and [`top_destination`] rather than with numbers of their own.
//!
//! Field errors follow the GraphQL spec here, which async-graphql 7.2.1 alone does not: an
//! erroring resolver makes async-graphql leave the field OUT of its object (with the error
//! and its path in `errors`), and an object left with no field at all becomes `null`; a
//! non-null field is not propagated to its nullable parent. In `_entities` the error path
//! also lacks the entity's index (`["_entities", "tourismVisits"]`), and an erroring entity
//! keeps its other fields. So the erroring fields below add their error themselves and
//! resolve to `null` ([`null_with_error`]), and the offline visitor counter nulls its whole
//! entity with the path `["_entities", i, "tourismVisits"]`, as a spec-following subgraph
//! (Apollo Server's, say) answers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::parser::types::{Selection, SelectionSet};
use async_graphql::{
    Context, EmptyMutation, EmptySubscription, ID, Interface, Object, PathSegment, Pos,
    QueryPathSegment, SDLExportOptions, Schema, ServerError, SimpleObject,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Runs one GraphQL request against a service's schema.
type Execute = Arc<
    dyn Fn(async_graphql::Request) -> Pin<Box<dyn Future<Output = async_graphql::Response> + Send>>
        + Send
        + Sync,
>;

/// What the handler shares with the test: the recorded bodies and the delay.
struct Shared {
    bodies: Mutex<Vec<Value>>,
    slow_ms: AtomicU64,
    execute: Execute,
}

/// A GraphQL service on loopback that records every request it receives.
pub struct Remote {
    /// The endpoint: `http://127.0.0.1:PORT/graphql`.
    pub url: String,
    shared: Arc<Shared>,
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
    connections: Arc<Mutex<tokio::task::JoinSet<()>>>,
}

impl Remote {
    /// The number of `POST /graphql` requests received so far.
    pub fn requests(&self) -> usize {
        self.shared.bodies.lock().expect("bodies").len()
    }

    /// Every request body received, in order: `{query, variables, operationName}` as sent
    /// (a body that is not JSON is kept as a string).
    pub fn bodies(&self) -> Vec<Value> {
        self.shared.bodies.lock().expect("bodies").clone()
    }

    /// Forgets the requests received so far.
    pub fn reset(&self) {
        self.shared.bodies.lock().expect("bodies").clear();
    }

    /// Waits `ms` milliseconds before answering each request (0: answer at once).
    pub fn set_slow(&self, ms: u64) {
        self.shared.slow_ms.store(ms, Ordering::SeqCst);
    }

    /// Stops serving: once this returns the listener and every open connection are closed,
    /// so a new connection to the port is refused (the source is down).
    pub async fn stop(&self) {
        let accept = self.accept.lock().expect("accept").take();
        if let Some(task) = accept {
            task.abort();
            // The task, and with it the listener, is dropped before this returns.
            let _ = task.await;
        }
        let mut connections = std::mem::take(&mut *self.connections.lock().expect("conns"));
        connections.shutdown().await;
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Ok(mut accept) = self.accept.lock()
            && let Some(task) = accept.take()
        {
            task.abort();
        }
    }
}

/// Serves `execute` at `/graphql` on a free 127.0.0.1 port. Each connection is a task of
/// `connections`, so [`Remote::stop`] can close them all (as the harness's `Upstream`).
async fn serve(execute: Execute) -> Remote {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind on 127.0.0.1");
    let addr = listener.local_addr().expect("addr");
    let shared = Arc::new(Shared {
        bodies: Mutex::default(),
        slow_ms: AtomicU64::new(0),
        execute,
    });
    let app = axum::Router::new()
        .route("/graphql", axum::routing::post(graphql))
        .with_state(shared.clone());
    let connections: Arc<Mutex<tokio::task::JoinSet<()>>> = Arc::default();
    let conns = connections.clone();
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let mut set = conns.lock().expect("conns");
            while set.try_join_next().is_some() {}
            set.spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            });
        }
    });
    Remote {
        url: format!("http://{addr}/graphql"),
        shared,
        accept: Mutex::new(Some(accept)),
        connections,
    }
}

/// `POST /graphql`: records the body, waits the delay, executes; 200 with `{data, errors}`
/// whatever the field errors (400 only for a body that is no GraphQL request).
async fn graphql(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body);
    let recorded = match &parsed {
        Ok(v) => v.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
    };
    shared.bodies.lock().expect("bodies").push(recorded);
    let ms = shared.slow_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let request = match parsed.and_then(serde_json::from_value::<async_graphql::Request>) {
        Ok(request) => request,
        Err(e) => {
            let body = json!({ "errors": [{ "message": format!("not a GraphQL request: {e}") }] });
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    let response = (shared.execute)(request).await;
    axum::Json(response).into_response()
}

/// Adds a field error at the current field (its path and location) and resolves it to
/// `null`, as the spec wants for a nullable field; async-graphql itself would leave the
/// field out of the object.
fn null_with_error<T>(ctx: &Context<'_>, message: &str) -> Option<T> {
    let mut error = ServerError::new(message, Some(ctx.item.pos));
    error.path = ctx.path_node.as_ref().map(path_of).unwrap_or_default();
    ctx.add_error(error);
    None
}

/// The response path of `node`, from the root.
fn path_of(node: &async_graphql::QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path: Vec<PathSegment> = std::iter::once(node)
        .chain(node.parents())
        .map(|n| match n.segment {
            QueryPathSegment::Index(i) => PathSegment::Index(i),
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_string()),
        })
        .collect();
    path.reverse();
    path
}

/// The last two digits of a district code (`"35.03.07"` → 7), or `None` for a code that
/// does not end in two digits: such a code is unknown to both services.
fn district_number(code: &str) -> Option<i32> {
    let tail = code.get(code.len().checked_sub(2)?..)?;
    if tail.bytes().all(|b| b.is_ascii_digit()) {
        tail.parse().ok()
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// The province service
// ---------------------------------------------------------------------------------------

/// The message of `poorHouseholds` for a code ending in `05`.
pub const POVERTY_ERROR: &str = "poverty register unavailable";
/// The message of `failing(code:)`, always.
pub const PROVINCE_ERROR: &str = "provincial register offline";

/// Starts the province of Jawa Timur's (plain, non-federated) GraphQL service:
///
/// ```graphql
/// type Query {
///   province: Province!
///   districtStats(code: ID!): DistrictStats              # null for an unknown code
///   districtsStats(codes: [ID!]!): [DistrictStats!]!     # the known codes, in order
///   failing(code: ID!): DistrictStats                    # null + "provincial register offline"
/// }
/// type Province { code: ID! name: String! regencies: Int! }
/// type DistrictStats { code: ID! population: Int! households: Int poorHouseholds: Int
///                      schools: [School!]! facility: Facility }
/// type School { npsn: ID! name: String! level: String! }
/// interface Facility { id: ID! name: String! }
/// type Hospital implements Facility { id: ID! name: String! beds: Int! }
/// type Clinic implements Facility { id: ID! name: String! doctors: Int! }
/// ```
///
/// `poorHouseholds` is null with the error "poverty register unavailable" for a code ending
/// in `05`. A code is known when it ends in two digits (`"35.03.01"`…, any prefix).
pub async fn spawn_province() -> Remote {
    let schema = province_schema();
    serve(Arc::new(move |request| {
        let schema = schema.clone();
        Box::pin(async move { schema.execute(request).await })
    }))
    .await
}

/// The province service's SDL, as a deployment keeps it beside its `[graphql]` connector.
pub fn province_sdl() -> String {
    province_schema().sdl()
}

fn province_schema() -> Schema<ProvinceQuery, EmptyMutation, EmptySubscription> {
    Schema::build(ProvinceQuery, EmptyMutation, EmptySubscription).finish()
}

/// The statistics the province serves for `code`, as its `DistrictStats` in JSON:
/// `code`, `population`, `households`, `poorHouseholds` (null for a code ending in `05`,
/// which answers with an error), `schools` (`npsn`, `name`, `level`) and `facility`
/// (`__typename`, `id`, `name`, and `beds` or `doctors`); `null` for an unknown code.
pub fn province_stats(code: &str) -> Value {
    let Some(d) = DistrictStats::new(code) else {
        return Value::Null;
    };
    let facility = match d.facility_of() {
        Facility::Hospital(h) => {
            json!({ "__typename": "Hospital", "id": h.id, "name": h.name, "beds": h.beds })
        }
        Facility::Clinic(c) => {
            json!({ "__typename": "Clinic", "id": c.id, "name": c.name, "doctors": c.doctors })
        }
    };
    let schools: Vec<Value> = d
        .school_list()
        .into_iter()
        .map(|s| json!({ "npsn": s.npsn, "name": s.name, "level": s.level }))
        .collect();
    json!({
        "code": d.code,
        "population": d.population,
        "households": d.households,
        "poorHouseholds": if d.poverty_offline() { Value::Null } else { json!(d.poor_households) },
        "schools": schools,
        "facility": facility,
    })
}

struct ProvinceQuery;

#[Object(name = "Query")]
impl ProvinceQuery {
    /// The province itself.
    async fn province(&self) -> Province {
        Province {
            code: ID("35".into()),
            name: "Jawa Timur".into(),
            regencies: 38,
        }
    }

    /// One district's statistics; null for an unknown code.
    async fn district_stats(&self, code: ID) -> Option<DistrictStats> {
        DistrictStats::new(&code)
    }

    /// The statistics of each known code, in the order asked (unknown codes are left out).
    async fn districts_stats(&self, codes: Vec<ID>) -> Vec<DistrictStats> {
        codes.iter().filter_map(|c| DistrictStats::new(c)).collect()
    }

    /// Always null, with an error: the provincial register is offline.
    async fn failing(&self, ctx: &Context<'_>, code: ID) -> Option<DistrictStats> {
        let _ = code;
        null_with_error(ctx, PROVINCE_ERROR)
    }
}

#[derive(SimpleObject)]
struct Province {
    code: ID,
    name: String,
    regencies: i32,
}

/// One district's figures, all computed from its code.
struct DistrictStats {
    code: String,
    n: i32,
    population: i32,
    households: i32,
    poor_households: i32,
}

impl DistrictStats {
    fn new(code: &str) -> Option<DistrictStats> {
        let n = district_number(code)?;
        let population = 30_000 + n * 1_000;
        let households = population / 3;
        Some(DistrictStats {
            code: code.to_string(),
            n,
            population,
            households,
            poor_households: households / 10,
        })
    }

    fn poverty_offline(&self) -> bool {
        self.code.ends_with("05")
    }

    fn school_list(&self) -> Vec<School> {
        [(1, "SD"), (2, "SMP")]
            .into_iter()
            .map(|(k, level)| School {
                npsn: ID(format!("2050{:02}{:02}", self.n, k)),
                name: format!("{level} Negeri {k} Kecamatan {}", self.code),
                level: level.to_string(),
            })
            .collect()
    }

    fn facility_of(&self) -> Facility {
        if self.n % 2 == 0 {
            Facility::Hospital(Hospital {
                id: ID(format!("rs-{}", self.code)),
                name: format!("RSUD Kecamatan {}", self.code),
                beds: 50 + self.n,
            })
        } else {
            Facility::Clinic(Clinic {
                id: ID(format!("pkm-{}", self.code)),
                name: format!("Puskesmas {}", self.code),
                doctors: 2 + self.n % 5,
            })
        }
    }
}

#[Object]
impl DistrictStats {
    async fn code(&self) -> ID {
        ID(self.code.clone())
    }

    async fn population(&self) -> i32 {
        self.population
    }

    async fn households(&self) -> Option<i32> {
        Some(self.households)
    }

    /// Null, with an error, while the poverty register is unavailable.
    async fn poor_households(&self, ctx: &Context<'_>) -> Option<i32> {
        if self.poverty_offline() {
            return null_with_error(ctx, POVERTY_ERROR);
        }
        Some(self.poor_households)
    }

    async fn schools(&self) -> Vec<School> {
        self.school_list()
    }

    async fn facility(&self) -> Option<Facility> {
        Some(self.facility_of())
    }
}

#[derive(SimpleObject)]
struct School {
    npsn: ID,
    name: String,
    level: String,
}

#[derive(Interface)]
#[graphql(field(name = "id", ty = "&ID"), field(name = "name", ty = "&String"))]
enum Facility {
    Hospital(Hospital),
    Clinic(Clinic),
}

#[derive(SimpleObject)]
struct Hospital {
    id: ID,
    name: String,
    beds: i32,
}

#[derive(SimpleObject)]
struct Clinic {
    id: ID,
    name: String,
    doctors: i32,
}

// ---------------------------------------------------------------------------------------
// The tourism subgraph
// ---------------------------------------------------------------------------------------

/// The district whose visitor counter is offline: its `tourismVisits` errors.
pub const TOURISM_OFFLINE: &str = "35.03.13";
/// The message of `tourismVisits` for [`TOURISM_OFFLINE`].
pub const TOURISM_ERROR: &str = "visitor counter offline";

/// The attractions of the subgraph, with their visitors.
const DESTINATIONS: [(&str, i32); 4] = [
    ("Pantai Prigi", 120_000),
    ("Pantai Pasir Putih", 95_000),
    ("Goa Lowo", 40_000),
    ("Pantai Karanggongso", 60_000),
];

/// Starts an Apollo Federation v2 subgraph (async-graphql's `enable_federation`):
///
/// ```graphql
/// type District @key(fields: "code") { code: ID! tourismVisits: Int! topDestination: Attraction }
/// type Attraction { name: String! visitors: Int! }
/// type Query { attractions: [Attraction!]! }
/// ```
///
/// plus `_entities(representations: [_Any!]!): [_Entity]!` and `_service { sdl }`. A
/// `District` representation (`{__typename: "District", code: "35.03.07"}`) resolves to
/// the district, or to `null` for an unknown code (one not ending in two digits). For
/// [`TOURISM_OFFLINE`], when `tourismVisits` is selected, the entity is `null` with the
/// error "visitor counter offline" at `["_entities", i, "tourismVisits"]` (the non-null
/// field nulls its nearest nullable parent, the list item). A representation of another
/// `__typename` fails the whole `_entities` field (async-graphql: `data: null` and
/// "Entity not found.", without a path).
pub async fn spawn_tourism_subgraph() -> Remote {
    let schema = tourism_schema();
    serve(Arc::new(move |request: async_graphql::Request| {
        let schema = schema.clone();
        Box::pin(async move { schema.execute(request.data(EntityCalls::default())).await })
    }))
    .await
}

fn tourism_schema() -> Schema<TourismQuery, EmptyMutation, EmptySubscription> {
    Schema::build(TourismQuery, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

/// The SDL the subgraph serves at `_service { sdl }` (async-graphql exports it with
/// `SDLExportOptions::new().federation().compose_directive()`: `extend schema
/// @link(url: "https://specs.apollo.dev/federation/v2.5", import: [...])`, `@key` on
/// `District`, without `_entities`, `_service`, `_Any`, `_Entity` and `_Service`).
pub fn tourism_sdl() -> String {
    tourism_schema().sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

/// The `tourismVisits` of `code` (1000 × its last two digits + 500); `None` for an
/// unknown code and for [`TOURISM_OFFLINE`], whose counter answers with an error.
pub fn tourism_visits(code: &str) -> Option<i64> {
    if code == TOURISM_OFFLINE {
        return None;
    }
    District::new(code).map(|d| i64::from(d.visits()))
}

/// The `topDestination` of `code` as JSON (`name`, `visitors`); `None` for an unknown
/// code.
pub fn top_destination(code: &str) -> Option<Value> {
    let d = District::new(code)?;
    let t = d.top();
    Some(json!({ "name": t.name, "visitors": t.visitors }))
}

/// How many `District` entities each `_entities` field of one request has resolved so
/// far, per code: with the field's representations, the index of the one being resolved.
#[derive(Default)]
struct EntityCalls(Mutex<HashMap<String, usize>>);

struct TourismQuery;

#[Object(name = "Query")]
impl TourismQuery {
    /// Every destination of the subgraph.
    async fn attractions(&self) -> Vec<Attraction> {
        DESTINATIONS
            .iter()
            .map(|(name, visitors)| Attraction {
                name: name.to_string(),
                visitors: *visitors,
            })
            .collect()
    }

    /// `District` by its key, for `_entities` (not a field of `Query`).
    #[graphql(entity)]
    async fn find_district_by_code(&self, ctx: &Context<'_>, code: ID) -> Option<District> {
        // Counted before anything else, so that each representation takes its own index.
        let path = ctx.path_node.map(|n| n.to_string()).unwrap_or_default();
        let nth = ctx.data_opt::<EntityCalls>().map_or(0, |calls| {
            let mut seen = calls.0.lock().expect("entity calls");
            let n = seen
                .entry(format!("{path}\n{}", code.as_str()))
                .or_default();
            *n += 1;
            *n - 1
        });
        let district = District::new(&code)?;
        if district.code == TOURISM_OFFLINE && ctx.look_ahead().field("tourismVisits").exists() {
            // Spec null propagation: the non-null field's error nulls the entity.
            let mut error = ServerError::new(
                TOURISM_ERROR,
                Some(
                    field_pos(&ctx.item.node.selection_set.node, "tourismVisits")
                        .unwrap_or(ctx.item.pos),
                ),
            );
            let mut path = ctx.path_node.as_ref().map(path_of).unwrap_or_default();
            if let Some(i) = representation_index(ctx, &district.code, nth) {
                path.push(PathSegment::Index(i));
            }
            path.push(PathSegment::Field(
                response_key(&ctx.item.node.selection_set.node, "tourismVisits")
                    .unwrap_or_else(|| "tourismVisits".into()),
            ));
            error.path = path;
            ctx.add_error(error);
            return None;
        }
        Some(district)
    }
}

/// The position of the `nth` `District` representation with `code` among the field's
/// `representations` argument.
fn representation_index(ctx: &Context<'_>, code: &str, nth: usize) -> Option<usize> {
    let arguments = ctx.field().arguments().ok()?;
    let (_, representations) = arguments
        .iter()
        .find(|(n, _)| n.as_str() == "representations")?;
    let async_graphql::Value::List(list) = representations else {
        return None;
    };
    list.iter()
        .enumerate()
        .filter(|(_, r)| match r {
            async_graphql::Value::Object(o) => {
                matches!(o.get("code"), Some(async_graphql::Value::String(c)) if c == code)
            }
            _ => false,
        })
        .map(|(i, _)| i)
        .nth(nth)
}

/// The response key (alias, else name) of the first selection of field `name` in `set`:
/// an error's path names the field as the request does.
fn response_key(set: &SelectionSet, name: &str) -> Option<String> {
    set.items.iter().find_map(|s| match &s.node {
        Selection::Field(f) if f.node.name.node == name => {
            Some(f.node.response_key().node.to_string())
        }
        Selection::InlineFragment(f) => response_key(&f.node.selection_set.node, name),
        _ => None,
    })
}

/// Where `name` is selected in `set` (directly or in an inline fragment).
fn field_pos(set: &SelectionSet, name: &str) -> Option<Pos> {
    set.items.iter().find_map(|s| match &s.node {
        Selection::Field(f) if f.node.name.node == name => Some(f.pos),
        Selection::InlineFragment(f) => field_pos(&f.node.selection_set.node, name),
        _ => None,
    })
}

#[derive(SimpleObject, Clone)]
struct Attraction {
    name: String,
    visitors: i32,
}

struct District {
    code: String,
    n: i32,
}

impl District {
    fn new(code: &str) -> Option<District> {
        Some(District {
            code: code.to_string(),
            n: district_number(code)?,
        })
    }

    fn visits(&self) -> i32 {
        1_000 * self.n + 500
    }

    fn top(&self) -> Attraction {
        let (name, visitors) = DESTINATIONS[self.n as usize % DESTINATIONS.len()];
        Attraction {
            name: name.to_string(),
            visitors,
        }
    }
}

#[Object]
impl District {
    async fn code(&self) -> ID {
        ID(self.code.clone())
    }

    /// Visitors counted this year; an error while the district's counter is offline.
    // For TOURISM_OFFLINE through `_entities` the entity resolver has already nulled the
    // entity; this error is for a District reached otherwise (no field of this subgraph).
    async fn tourism_visits(&self) -> async_graphql::Result<i32> {
        if self.code == TOURISM_OFFLINE {
            return Err(TOURISM_ERROR.into());
        }
        Ok(self.visits())
    }

    async fn top_destination(&self) -> Option<Attraction> {
        Some(self.top())
    }
}

// ---------------------------------------------------------------------------------------
// Self checks
// ---------------------------------------------------------------------------------------

/// POSTs `query` to `remote` and returns the status and the JSON answer.
async fn post(client: &reqwest::Client, remote: &Remote, query: &str) -> (u16, Value) {
    let resp = client
        .post(&remote.url)
        .json(&json!({ "query": query, "variables": {}, "operationName": null }))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

fn client() -> reqwest::Client {
    simpul::install_crypto();
    reqwest::Client::new()
}

#[tokio::test]
async fn province_answers_aliases_with_a_field_error_at_its_path() {
    let remote = spawn_province().await;
    let q = r#"{ a: districtStats(code: "35.03.01") { population } b: districtStats(code: "35.03.05") { poorHouseholds } }"#;
    let (status, r) = post(&client(), &remote, q).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["data"]["a"],
        json!({ "population": province_stats("35.03.01")["population"] })
    );
    assert_eq!(r["data"]["a"]["population"], 31_000);
    // Present and null, not left out (async-graphql alone would make `b` null).
    assert_eq!(r["data"]["b"], json!({ "poorHouseholds": null }), "{r}");
    assert_eq!(r["errors"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["errors"][0]["message"], POVERTY_ERROR);
    assert_eq!(r["errors"][0]["path"], json!(["b", "poorHouseholds"]));
    assert!(r["errors"][0]["locations"][0]["line"].is_number(), "{r}");
    assert_eq!(remote.requests(), 1);
    assert_eq!(remote.bodies()[0]["query"], q);
    assert_eq!(remote.bodies()[0]["variables"], json!({}));
    remote.reset();
    assert_eq!(remote.requests(), 0);
    assert!(remote.bodies().is_empty());
}

#[tokio::test]
async fn province_serves_lists_interfaces_unknown_codes_and_failures() {
    let remote = spawn_province().await;
    let q = r#"{
      province { code name regencies }
      unknown: districtStats(code: "nope") { code }
      many: districtsStats(codes: ["35.03.02", "nope", "35.03.05", "35.03.07"]) {
        code population households poorHouseholds
        schools { npsn name level }
        facility { __typename id name ... on Hospital { beds } ... on Clinic { doctors } }
      }
      failing(code: "35.03.01") { code }
    }"#;
    let (status, r) = post(&client(), &remote, q).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["data"]["province"],
        json!({ "code": "35", "name": "Jawa Timur", "regencies": 38 })
    );
    assert_eq!(r["data"]["unknown"], Value::Null);
    assert_eq!(
        r["data"]["many"],
        json!([
            province_stats("35.03.02"),
            province_stats("35.03.05"),
            province_stats("35.03.07")
        ])
    );
    assert_eq!(r["data"]["many"][0]["facility"]["__typename"], "Hospital");
    assert_eq!(r["data"]["many"][2]["facility"]["__typename"], "Clinic");
    assert_eq!(r["data"]["many"][0]["schools"][0]["npsn"], "20500201");
    assert_eq!(r["data"]["failing"], Value::Null);
    assert_eq!(province_stats("nope"), Value::Null);
    let errors = r["errors"].as_array().expect("errors");
    let paths: Vec<&Value> = errors.iter().map(|e| &e["path"]).collect();
    assert_eq!(errors.len(), 2, "{r}");
    assert!(
        paths.contains(&&json!(["many", 1, "poorHouseholds"])),
        "{r}"
    );
    assert!(paths.contains(&&json!(["failing"])), "{r}");
    assert!(errors.iter().any(|e| e["message"] == PROVINCE_ERROR), "{r}");
}

#[tokio::test]
async fn subgraph_resolves_entities_in_order() {
    let remote = spawn_tourism_subgraph().await;
    let q = r#"{ _entities(representations: [{__typename: "District", code: "35.03.07"}, {__typename: "District", code: "nope"}]) { ... on District { code tourismVisits topDestination { name visitors } } } }"#;
    let (status, r) = post(&client(), &remote, q).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["data"]["_entities"],
        json!([
            {
                "code": "35.03.07",
                "tourismVisits": tourism_visits("35.03.07"),
                "topDestination": top_destination("35.03.07"),
            },
            null
        ]),
        "{r}"
    );
    assert_eq!(tourism_visits("35.03.07"), Some(7_500));
    assert_eq!(tourism_visits("nope"), None);
    assert!(r.get("errors").is_none(), "{r}");
    // The representations can come as a variable too, as a gateway sends them.
    let body = json!({
        "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on District { tourismVisits } } }",
        "variables": { "r": [{ "__typename": "District", "code": "35.03.02" }] },
    });
    let r: Value = client()
        .post(&remote.url)
        .json(&body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        r["data"]["_entities"],
        json!([{ "tourismVisits": tourism_visits("35.03.02") }])
    );
    assert_eq!(remote.bodies()[1]["variables"], body["variables"]);
    let (_, r) = post(&client(), &remote, "{ attractions { name visitors } }").await;
    assert_eq!(
        r["data"]["attractions"].as_array().map(Vec::len),
        Some(4),
        "{r}"
    );
}

#[tokio::test]
async fn an_offline_counter_nulls_its_entity_at_its_index() {
    let remote = spawn_tourism_subgraph().await;
    let q = r#"{ _entities(representations: [{__typename: "District", code: "35.03.13"}, {__typename: "District", code: "35.03.01"}, {__typename: "District", code: "35.03.13"}]) { ... on District { code tourismVisits } } }"#;
    let (status, r) = post(&client(), &remote, q).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["data"]["_entities"],
        json!([null, { "code": "35.03.01", "tourismVisits": 1_500 }, null]),
        "{r}"
    );
    let mut paths: Vec<Value> = r["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            assert_eq!(e["message"], TOURISM_ERROR);
            e["path"].clone()
        })
        .collect();
    paths.sort_by_key(|p| p[1].as_u64());
    assert_eq!(
        paths,
        vec![
            json!(["_entities", 0, "tourismVisits"]),
            json!(["_entities", 2, "tourismVisits"])
        ]
    );
    assert_eq!(tourism_visits(TOURISM_OFFLINE), None);
    // Without `tourismVisits` the district resolves.
    let q = r#"{ _entities(representations: [{__typename: "District", code: "35.03.13"}]) { ... on District { code topDestination { name } } } }"#;
    let (_, r) = post(&client(), &remote, q).await;
    assert_eq!(
        r["data"]["_entities"][0]["topDestination"]["name"],
        top_destination(TOURISM_OFFLINE).expect("known")["name"]
    );
    assert!(r.get("errors").is_none(), "{r}");
}

#[tokio::test]
async fn subgraph_serves_its_federation_v2_sdl() {
    let remote = spawn_tourism_subgraph().await;
    let (_, r) = post(&client(), &remote, "{ _service { sdl } }").await;
    let sdl = r["data"]["_service"]["sdl"].as_str().expect("sdl");
    assert_eq!(sdl, tourism_sdl());
    assert!(sdl.contains("extend schema @link("), "{sdl}");
    assert!(
        sdl.contains("https://specs.apollo.dev/federation/v2."),
        "{sdl}"
    );
    assert!(
        sdl.contains(r#"type District @key(fields: "code")"#),
        "{sdl}"
    );
    assert!(sdl.contains("tourismVisits: Int!"), "{sdl}");
    assert!(!sdl.contains("_entities"), "{sdl}");
}

#[tokio::test]
async fn stop_refuses_connections_and_slow_delays() {
    let remote = spawn_province().await;
    let pooled = client();
    remote.set_slow(150);
    let started = std::time::Instant::now();
    let (status, _) = post(&pooled, &remote, "{ province { name } }").await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    remote.set_slow(0);
    let (_, r) = post(&pooled, &remote, "{ province { name } }").await;
    assert_eq!(r["data"]["province"]["name"], "Jawa Timur");
    remote.stop().await;
    let body = json!({ "query": "{ province { name } }" });
    let fresh = client().post(&remote.url).json(&body).send().await;
    match fresh {
        Err(e) => assert!(e.is_connect(), "a refused connection: {e:?}"),
        Ok(resp) => panic!("served after stop: {}", resp.status()),
    }
    // A client that kept a connection open sees the source down as well.
    assert!(pooled.post(&remote.url).json(&body).send().await.is_err());
    assert_eq!(remote.requests(), 2);
}
