//! Federation both ways. In: remote GraphQL services as `[graphql]` connectors, their
//! fields' selections forwarded, sibling calls of a level asked in one request (aliases,
//! one `_entities` per entity type), remote errors at their paths, outages on the remote's
//! fields only. Out: the Trenggalek deployment as an Apollo Federation v2 subgraph
//! (`_service`, `_entities`), composed with another subgraph by @apollo/composition and
//! served joined by @apollo/gateway (tests/federation/, run by node).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestApp, copy_deployment, repo_root};
use crate::remote::{self, Remote};

const CODES: [&str; 14] = [
    "35.03.01", "35.03.02", "35.03.03", "35.03.04", "35.03.05", "35.03.06", "35.03.07", "35.03.08",
    "35.03.09", "35.03.10", "35.03.11", "35.03.12", "35.03.13", "35.03.14",
];

const SCHEMA: &str = r#"
type Query {
  districts: [District!]! @sql(connector: "region", query: "SELECT code, name FROM districts ORDER BY code")
  province: Province @graphql(connector: "province")
  stats(code: ID!): DistrictStats @graphql(connector: "province", field: "districtStats")
  broken(code: ID!): DistrictStats @graphql(connector: "province", field: "failing")
}

type Province { code: ID! name: String! regencies: Int! }

type District @key(fields: "code") {
  code: ID!
  name: String!
  stats: DistrictStats @graphql(connector: "province", field: "districtStats", args: {code: "{{parent.code}}"})
  tourismVisits: Int @graphql(connector: "tourism", entity: "District")
  topDestination: Destination @graphql(connector: "tourism", entity: "District")
}

type DistrictStats {
  code: ID!
  population: Int!
  households: Int
  poorHouseholds: Int
  schools: [School!]!
  facility: Facility
}

type School { npsn: ID! name: String! level: String! }

interface Facility { id: ID! name: String! }
type Hospital implements Facility { id: ID! name: String! beds: Int! }
type Clinic implements Facility { id: ID! name: String! doctors: Int! }

type Destination { name: String! visitors: Int! }
"#;

/// A deployment of 14 districts in SQLite, the province's service and the tourism subgraph.
async fn deployment(province: &Remote, tourism: &Remote) -> (tempfile::TempDir, TestApp) {
    let dir = write_deployment(SCHEMA, &province.url, &tourism.url);
    let app = TestApp::spawn(dir.path(), &[]).await;
    (dir, app)
}

fn write_deployment(schema: &str, province: &str, tourism: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    let p = dir.path();
    std::fs::create_dir_all(p.join("connectors")).expect("connectors");
    std::fs::write(p.join("schema.graphql"), schema).expect("schema");
    std::fs::write(p.join("simpul.toml"), "").expect("simpul.toml");
    let rows: Vec<String> = CODES
        .iter()
        .map(|c| format!("('{c}', 'Kecamatan {}')", &c[6..]))
        .collect();
    std::fs::write(
        p.join("seed.sql"),
        format!(
            "CREATE TABLE districts (code TEXT PRIMARY KEY, name TEXT NOT NULL);\nINSERT INTO districts VALUES {};\n",
            rows.join(", ")
        ),
    )
    .expect("seed");
    std::fs::write(
        p.join("connectors/region.toml"),
        "[sqlite]\npath = \"region.db\"\nseed = \"seed.sql\"\n",
    )
    .expect("region");
    std::fs::write(
        p.join("connectors/province.toml"),
        format!("title = \"Pemprov Jawa Timur\"\ntimeout = \"2s\"\nretries = 0\n\n[graphql]\nurl = \"{province}\"\nschema = \"province.graphql\"\n\n[cache]\nttl = \"300ms\"\nstale_if_error = \"1h\"\n"),
    )
    .expect("province");
    std::fs::write(
        p.join("connectors/tourism.toml"),
        format!("timeout = \"2s\"\n\n[graphql]\nurl = \"{tourism}\"\n"),
    )
    .expect("tourism");
    std::fs::write(p.join("province.graphql"), remote::province_sdl()).expect("sdl");
    dir
}

fn errors(r: &Value) -> Vec<Value> {
    r["errors"].as_array().cloned().unwrap_or_default()
}

fn queries(remote: &Remote) -> Vec<String> {
    remote
        .bodies()
        .iter()
        .map(|b| b["query"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn remote_fields_fan_out_one_request_per_service_per_level() {
    let (province, tourism) = (
        remote::spawn_province().await,
        remote::spawn_tourism_subgraph().await,
    );
    let (_dir, app) = deployment(&province, &tourism).await;
    let r = app
        .query(
            "{ province { name regencies }
               districts { code name
                 stats { population poorHouseholds schools { npsn name }
                         facility { __typename name ... on Hospital { beds } ... on Clinic { doctors } } }
                 tourismVisits topDestination { name visitors } } }",
        )
        .await;
    // Root: the province; second level: every district's stats in one request (aliases),
    // and both entity fields of every district in one `_entities` request.
    assert_eq!(province.requests(), 2, "{:#?}", queries(&province));
    assert_eq!(tourism.requests(), 1, "{:#?}", queries(&tourism));
    let level = &queries(&province)[1];
    assert!(
        level.contains("_0_13: districtStats(code: \"35.03.14\")"),
        "{level}"
    );
    assert!(
        !level.contains(" households"),
        "not selected, not asked: {level}"
    );
    assert!(level.contains("... on Hospital { name beds }"), "{level}");
    let entities = &tourism.bodies()[0];
    assert_eq!(
        entities["variables"]["r0"].as_array().map(Vec::len),
        Some(14),
        "{entities}"
    );

    assert_eq!(
        r["data"]["province"],
        json!({"name": "Jawa Timur", "regencies": 38})
    );
    let districts = r["data"]["districts"].as_array().expect("districts");
    assert_eq!(districts.len(), 14);
    for (i, d) in districts.iter().enumerate() {
        let code = CODES[i];
        assert_eq!(d["code"], code);
        let want = remote::province_stats(code);
        assert_eq!(d["stats"]["population"], want["population"], "{code}");
        assert_eq!(
            d["stats"]["poorHouseholds"], want["poorHouseholds"],
            "{code}"
        );
        let schools: Vec<Value> = want["schools"]
            .as_array()
            .expect("schools")
            .iter()
            .map(|s| json!({"npsn": s["npsn"], "name": s["name"]}))
            .collect();
        assert_eq!(d["stats"]["schools"], json!(schools), "{code}");
        assert_eq!(
            d["stats"]["facility"]["__typename"],
            want["facility"]["__typename"]
        );
        assert_eq!(d["stats"]["facility"]["name"], want["facility"]["name"]);
        assert_eq!(
            d["tourismVisits"],
            remote::tourism_visits(code).map_or(Value::Null, Value::from),
            "{code}"
        );
        assert_eq!(
            d["topDestination"],
            match remote::tourism_visits(code) {
                Some(_) => remote::top_destination(code).unwrap_or(Value::Null),
                None => Value::Null,
            },
            "{code}"
        );
    }
    // Remote errors at their paths under Simpul's fields, with the closed codes.
    let errs = errors(&r);
    let at = |path: Value| {
        errs.iter()
            .find(|e| e["path"] == path)
            .unwrap_or_else(|| panic!("no error at {path}: {errs:#?}"))
    };
    let poor = at(json!(["districts", 4, "stats", "poorHouseholds"]));
    assert_eq!(poor["extensions"]["code"], "SOURCE_ERROR");
    assert_eq!(poor["extensions"]["connector"], "province");
    let offline = at(json!(["districts", 12, "tourismVisits"]));
    assert_eq!(offline["extensions"]["code"], "SOURCE_ERROR");
    assert_eq!(offline["extensions"]["connector"], "tourism");
    assert_eq!(
        errs.len(),
        3,
        "poorHouseholds, and both fields of the offline entity: {errs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fragments_variables_and_own_arguments_are_forwarded() {
    let (province, tourism) = (
        remote::spawn_province().await,
        remote::spawn_tourism_subgraph().await,
    );
    let (_dir, app) = deployment(&province, &tourism).await;
    let r = app
        .query_vars(
            "query($c: ID!) { a: stats(code: $c) { ...Counts } b: stats(code: \"nope\") { code } }
             fragment Counts on DistrictStats { population households }",
            json!({"c": "35.03.03"}),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let want = remote::province_stats("35.03.03");
    assert_eq!(
        r["data"]["a"],
        json!({"population": want["population"], "households": want["households"]})
    );
    assert_eq!(
        r["data"]["b"],
        Value::Null,
        "an unknown code is null, as the remote says"
    );
    // Both root calls in one request; the variable's value and the fragment's fields in it.
    assert_eq!(province.requests(), 1);
    let q = &queries(&province)[0];
    assert!(
        q.contains("districtStats(code: \"35.03.03\") { population households }"),
        "{q}"
    );
    assert!(q.contains("districtStats(code: \"nope\") { code }"), "{q}");

    // A remote field that fails whole: null at its path, the others answered.
    let r = app
        .query("{ broken(code: \"35.03.01\") { code } province { name } }")
        .await;
    assert_eq!(r["data"]["province"]["name"], "Jawa Timur");
    assert_eq!(r["data"]["broken"], Value::Null);
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0]["path"], json!(["broken"]));
    assert_eq!(errs[0]["extensions"]["code"], "SOURCE_ERROR");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_down_fails_its_fields_only_and_serves_what_is_cached() {
    let (province, tourism) = (
        remote::spawn_province().await,
        remote::spawn_tourism_subgraph().await,
    );
    let (_dir, app) = deployment(&province, &tourism).await;
    let cached = "{ districts { code stats { population } } }";
    let first = app.query(cached).await;
    assert!(first.get("errors").is_none(), "{first}");
    province.stop().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Past its TTL, within stale_if_error: the cached answer, no error.
    let stale = app.query(cached).await;
    assert_eq!(stale["data"], first["data"], "{stale}");
    assert!(stale.get("errors").is_none(), "{stale}");
    // Never cached: SOURCE_UNAVAILABLE on the province's field, the rest answered.
    let r = app
        .query("{ province { name } districts { code tourismVisits } }")
        .await;
    assert_eq!(r["data"]["province"], Value::Null, "{r}");
    assert_eq!(r["data"]["districts"][0]["code"], "35.03.01");
    assert_eq!(
        r["data"]["districts"][0]["tourismVisits"],
        remote::tourism_visits("35.03.01").map_or(Value::Null, Value::from)
    );
    let errs = errors(&r);
    let down: Vec<&Value> = errs
        .iter()
        .filter(|e| e["extensions"]["connector"] == "province")
        .collect();
    assert_eq!(down.len(), 1, "{r}");
    assert_eq!(down[0]["path"], json!(["province"]));
    assert_eq!(down[0]["extensions"]["code"], "SOURCE_UNAVAILABLE");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_validates_remote_bindings_by_introspection_or_the_stored_sdl() {
    let (province, tourism) = (
        remote::spawn_province().await,
        remote::spawn_tourism_subgraph().await,
    );
    let sound = write_deployment(SCHEMA, &province.url, &tourism.url);
    let diags = simpl_check(sound.path()).await;
    assert!(diags.is_empty(), "{diags:#?}");
    let broken = SCHEMA
        .replace("field: \"failing\")", "field: \"failed\")")
        .replace("households: Int\n", "households: Int\n  hospitals: Int\n")
        .replace(
            "stats(code: ID!): DistrictStats @graphql",
            "stats(code: ID!, year: Int): DistrictStats @graphql",
        );
    let dir = write_deployment(&broken, &province.url, &tourism.url);
    let want = [
        "the remote Query has no field failed",
        "DistrictStats.hospitals: the remote type DistrictStats has no field hospitals",
        "the remote Query.districtStats takes no argument year",
    ];
    let live = simpl_check(dir.path()).await;
    for w in want {
        assert!(
            live.iter().any(|d| d.contains(w)),
            "introspected: no '{w}' in {live:#?}"
        );
    }
    // The service gone: the same findings from connectors' stored SDL.
    province.stop().await;
    let stored = simpl_check(dir.path()).await;
    for w in want {
        assert!(
            stored.iter().any(|d| d.contains(w)),
            "stored SDL: no '{w}' in {stored:#?}"
        );
    }
}

async fn simpl_check(dir: &Path) -> Vec<String> {
    simpul::check::check(dir)
        .await
        .iter()
        .map(|d| d.to_string())
        .collect()
}

/// The Trenggalek deployment with `[federation] enabled = true`.
async fn subgraph() -> (tempfile::TempDir, TestApp) {
    let dir = copy_deployment(&repo_root());
    let toml = dir.path().join("simpul.toml");
    let mut text = std::fs::read_to_string(&toml).expect("simpul.toml");
    text.push_str("\n[federation]\nenabled = true\n");
    std::fs::write(&toml, text).expect("simpul.toml");
    let app = TestApp::spawn(dir.path(), &[]).await;
    (dir, app)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_subgraph_serves_its_sdl_and_entities_by_key() {
    let (_dir, app) = subgraph().await;
    let r = app.query("{ _service { sdl } }").await;
    let sdl = r["data"]["_service"]["sdl"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        sdl.starts_with("extend schema @link(url: \"https://specs.apollo.dev/federation/v2."),
        "{sdl}"
    );
    for t in ["District", "Village", "Regency"] {
        assert!(
            sdl.contains(&format!(
                "type {t} implements Region @key(fields: \"code\")"
            )),
            "{t}"
        );
    }
    assert!(sdl.contains("interface Indicator @key(fields: \"id\")"));
    assert!(!sdl.contains("@sql") && !sdl.contains("@lookup") && !sdl.contains("@listSize"));
    assert!(
        !sdl.contains("_entities") && !sdl.contains("_Any"),
        "plumbing is the router's"
    );
    // The PUBLIC view: the staff's minute of a complaint is not in it.
    assert!(
        !sdl.contains("receivedAt"),
        "an INTERNAL field in the subgraph's SDL"
    );

    let reps = json!([
        {"__typename": "District", "code": "35.03.07"},
        {"__typename": "Village", "code": "35.03.11.1002"},
        {"__typename": "District", "code": "99.99.99"},
        {"__typename": "Regency", "code": "35.03"},
        {"__typename": "District", "code": "35.03.01"},
        {"__typename": "BpsIndicator", "id": "poverty.rate"},
        {"__typename": "DinsosIndicator", "id": "poverty.rate"},
    ]);
    let r = app
        .query_vars(
            "query($r: [_Any!]!) { _entities(representations: $r) { __typename
               ... on Region { code name } ... on Indicator { id } } }",
            json!({ "r": reps }),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let e = r["data"]["_entities"].as_array().expect("entities");
    assert_eq!(e.len(), 7, "one entity per representation, in order");
    let truth = app
        .query("{ district(code: \"35.03.07\") { name } village(code: \"35.03.11.1002\") { name } regency { name } d1: district(code: \"35.03.01\") { name } }")
        .await;
    assert_eq!(
        e[0],
        json!({"__typename": "District", "code": "35.03.07", "name": truth["data"]["district"]["name"]})
    );
    assert_eq!(e[1]["name"], truth["data"]["village"]["name"]);
    assert_eq!(e[2], Value::Null, "an unknown key is null");
    assert_eq!(e[3]["__typename"], "Regency");
    assert_eq!(e[3]["name"], truth["data"]["regency"]["name"]);
    assert_eq!(e[4]["name"], truth["data"]["d1"]["name"]);
    assert_eq!(
        e[5],
        json!({"__typename": "BpsIndicator", "id": "poverty.rate"})
    );
    assert_eq!(e[6], Value::Null, "poverty.rate is no DinsosIndicator");
    // One upstream call per entity type's lookup (districts, villages, regions; indicators).
    let sources = r["extensions"]["sources"].as_array().expect("sources");
    let calls = |name: &str| {
        sources
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["calls"].as_u64())
    };
    assert_eq!(calls("wilayah"), Some(3), "{sources:?}");
    assert_eq!(calls("catalog"), Some(1), "{sources:?}");

    let bad = app
        .query("{ _entities(representations: [{code: \"35.03.07\"}]) { __typename } }")
        .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{bad}"
    );
}

/// Runs `node tests/federation/SCRIPT args`, at most a minute; its stdout, or its failure.
fn node(script: &str, args: &[&Path]) -> Result<String, String> {
    let mut cmd = Command::new("timeout");
    cmd.arg("90")
        .arg("node")
        .arg(repo_root().join("tests/federation").join(script));
    for a in args {
        cmd.arg(a);
    }
    let out = cmd
        .output()
        .expect("node (scripts/test.sh installs it and tests/federation's packages)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.success() {
        true => Ok(stdout),
        false => Err(format!("{script}: {}\n{stderr}", out.status)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apollo_composes_the_subgraph_and_its_gateway_joins_districts_with_tourism() {
    let (_dir, app) = subgraph().await;
    let tourism = remote::spawn_tourism_subgraph().await;
    let r = app.query("{ _service { sdl } }").await;
    let sdl = r["data"]["_service"]["sdl"]
        .as_str()
        .expect("sdl")
        .to_string();
    let work = tempfile::tempdir().expect("work");
    let subgraphs = work.path().join("subgraphs.json");
    std::fs::write(
        &subgraphs,
        json!([
            {"name": "trenggalek", "url": format!("{}/graphql", app.url), "sdl": sdl},
            {"name": "tourism", "url": tourism.url, "sdl": remote::tourism_sdl()},
        ])
        .to_string(),
    )
    .expect("subgraphs");
    let supergraph = node("compose.mjs", &[&subgraphs]).unwrap_or_else(|e| panic!("{e}"));
    assert!(supergraph.contains("join__Graph"), "{supergraph}");
    let supergraph_file = work.path().join("supergraph.graphql");
    std::fs::write(&supergraph_file, &supergraph).expect("supergraph");

    // The same SDL with a field both subgraphs define and neither shares does not compose.
    let clash = work.path().join("clash.json");
    std::fs::write(
        &clash,
        json!([
            {"name": "trenggalek", "url": format!("{}/graphql", app.url), "sdl": sdl},
            {"name": "other", "url": tourism.url, "sdl": "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\"])\ntype District @key(fields: \"code\") { code: ID! name: String! }\ntype Query { other: Int }\n"},
        ])
        .to_string(),
    )
    .expect("clash");
    let refused = node("compose.mjs", &[&clash]).expect_err("District.name in two subgraphs");
    assert!(refused.contains("INVALID_FIELD_SHARING"), "{refused}");

    let ops = work.path().join("queries.json");
    std::fs::write(
        &ops,
        json!([
            { "query": "{ districts { code name topDestination { name visitors } } }" },
            { "query": "{ kampak: district(code: \"35.03.07\") { name tourismVisits } }" },
        ])
        .to_string(),
    )
    .expect("queries");
    let answered = node("gateway.mjs", &[&supergraph_file, &ops]).unwrap_or_else(|e| panic!("{e}"));
    let answers: Value = serde_json::from_str(answered.trim()).expect("gateway JSON");
    let districts = answers[0]["data"]["districts"]
        .as_array()
        .unwrap_or_else(|| panic!("{answers}"));
    let ours = app
        .query("{ districts { code name } district(code: \"35.03.07\") { name } }")
        .await;
    assert_eq!(districts.len(), 14);
    for (d, mine) in districts
        .iter()
        .zip(ours["data"]["districts"].as_array().expect("ours"))
    {
        let code = d["code"].as_str().expect("code");
        assert_eq!(d["name"], mine["name"], "{code}: the name is Simpul's");
        assert_eq!(
            d["topDestination"],
            remote::top_destination(code).unwrap_or(Value::Null),
            "{code}: the destination is the tourism subgraph's"
        );
    }
    assert_eq!(
        answers[1]["data"]["kampak"],
        json!({
            "name": ours["data"]["district"]["name"],
            "tourismVisits": remote::tourism_visits("35.03.07"),
        }),
        "{answers}"
    );
    // The router asked the tourism subgraph once per operation: every district's
    // representation in one `_entities`.
    assert_eq!(tourism.requests(), 2, "{:?}", tourism.bodies());
    let reps = &tourism.bodies()[0]["variables"]["representations"];
    assert_eq!(reps.as_array().map(Vec::len), Some(14), "{reps}");
}
