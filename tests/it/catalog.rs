//! The Satu Data catalog says the truth about each dataset (docs/data-trust.md): how it is
//! answered (LIVE, SNAPSHOT, MISSING, as the running gateway's sources say), its metadata
//! complete, a unit per variable, and published figures as their sources gave them:
//! approximations flagged, disagreeing sources side by side, exact rupiah.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::harness::{TestApp, copy_deployment, repo_root};

async fn trenggalek() -> (tempfile::TempDir, TestApp) {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[]).await;
    (dir, app)
}

fn list<'v>(v: &'v Value, what: &str) -> &'v Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("{what}: {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_dataset_state_is_how_the_gateway_answers_it() {
    let (_dir, app) = trenggalek().await;
    let r = app
        .query("{ catalog { live snapshot missing datasets { id connector connectorKind state } } sources { name kind mode } }")
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let sources: HashMap<&str, (&str, &str)> = list(&r["data"]["sources"], "sources")
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap_or_default();
            (field("name"), (field("kind"), field("mode")))
        })
        .collect();
    let mut counts = BTreeMap::<&str, i64>::new();
    let datasets = list(&r["data"]["catalog"]["datasets"], "datasets");
    for d in datasets {
        let (id, state) = (&d["id"], d["state"].as_str().unwrap_or_default());
        *counts.entry(state).or_default() += 1;
        match d["connector"].as_str() {
            None => {
                assert_eq!(state, "MISSING", "{id}: no connector");
                assert_eq!(d["connectorKind"], "NONE", "{id}");
            }
            Some(name) => {
                let (kind, mode) = sources
                    .get(name)
                    .unwrap_or_else(|| panic!("{id}: connector {name} is not a source"));
                assert_eq!(
                    state, *mode,
                    "{id}: the catalog says {state}, {name} answers {mode}"
                );
                assert_eq!(
                    d["connectorKind"].as_str(),
                    Some(kind.to_uppercase().as_str()),
                    "{id}"
                );
            }
        }
    }
    // Answered from stored files or API answers, never called LIVE: the spreadsheets and the
    // BPS and CKAN snapshots of the shipped deployment.
    assert_eq!(sources["bps"].1, "SNAPSHOT");
    assert_eq!(sources["disparbud"].1, "SNAPSHOT");
    assert_eq!(sources["dukcapil"].1, "LIVE");
    let catalog = &r["data"]["catalog"];
    for (field, state) in [
        ("live", "LIVE"),
        ("snapshot", "SNAPSHOT"),
        ("missing", "MISSING"),
    ] {
        assert_eq!(
            catalog[field].as_i64(),
            counts.get(state).copied().or(Some(0)),
            "{field}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dataset_carries_its_satu_data_metadata() {
    let (_dir, app) = trenggalek().await;
    let r = app
        .query(
            "{ catalog { datasets { id definition custodian { slug } producer { slug } unit \
             variables { code name unit } frequency lastUpdated nextRelease sourceUrl licence \
             provisional revised state demo } } }",
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    for d in list(&r["data"]["catalog"]["datasets"], "datasets") {
        let id = &d["id"];
        let text = |k: &str| d[k].as_str().unwrap_or_default().trim().to_string();
        assert!(text("definition").len() > 20, "{id}: a definition");
        assert_eq!(d["custodian"]["slug"], "diskominfo", "{id}: the walidata");
        assert!(d["producer"]["slug"].is_string(), "{id}: a producer");
        assert!(!text("licence").is_empty(), "{id}: a licence");
        let variables = list(&d["variables"], "variables");
        assert!(!variables.is_empty(), "{id}: variables");
        let units: std::collections::BTreeSet<&str> = variables
            .iter()
            .map(|v| v["unit"].as_str().unwrap_or_default())
            .collect();
        assert!(!units.contains(""), "{id}: every variable has its unit");
        match units.len() {
            1 => assert_eq!(d["unit"].as_str(), units.first().copied(), "{id}"),
            _ => assert!(
                d["unit"].is_null(),
                "{id}: a mixed dataset has no single unit: {units:?}"
            ),
        }
        // A connected, periodic dataset says when it is next due, after its last update.
        let periodic = d["frequency"] != "IRREGULAR" && d["state"] != "MISSING";
        match (
            periodic,
            d["lastUpdated"].as_str(),
            d["nextRelease"].as_str(),
        ) {
            (true, Some(last), Some(next)) => assert!(next > last, "{id}: {next} after {last}"),
            (true, _, next) => panic!("{id}: a periodic dataset without next release ({next:?})"),
            (false, _, next) => assert!(next.is_none(), "{id}: not periodic, yet due {next:?}"),
        }
    }
    // The poverty dataset mixes percent, thousands of people, rupiah and indices.
    let poverty = list(&r["data"]["catalog"]["datasets"], "datasets")
        .iter()
        .find(|d| d["id"] == "bps.poverty")
        .expect("bps.poverty");
    assert!(poverty["unit"].is_null());
    assert!(
        list(&poverty["variables"], "variables")
            .iter()
            .any(|v| v["unit"] == "ribu jiwa")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn published_figures_stand_as_their_sources_gave_them() {
    let (_dir, app) = trenggalek().await;
    let r = app
        .query(
            "{ budgets { id revenueIdr expenditureIdr revenueApproximate expenditureApproximate \
             publishedFigures { subject measure value approximate served sourceName sourceUrl } } \
             catalog { datasets { id provisional publishedFigures { subject measure value served sourceName } } } }",
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let mut conflicts = 0;
    for b in list(&r["data"]["budgets"], "budgets") {
        let id = b["id"].as_str().unwrap_or_default();
        let figures = list(&b["publishedFigures"], "figures");
        for (measure, typed, approximate) in [
            ("revenue", "revenueIdr", "revenueApproximate"),
            ("expenditure", "expenditureIdr", "expenditureApproximate"),
        ] {
            let of: Vec<&Value> = figures.iter().filter(|f| f["measure"] == measure).collect();
            let served: Vec<&&Value> = of.iter().filter(|f| f["served"] == true).collect();
            assert_eq!(
                served.len(),
                1,
                "{id} {measure}: one served figure among {of:?}"
            );
            let served = served[0];
            // Money is exact decimal text, the very figure the source published.
            assert!(
                b[typed].is_string(),
                "{id}.{typed} is a Rupiah string: {}",
                b[typed]
            );
            assert_eq!(b[typed], served["value"], "{id}.{typed}");
            assert_eq!(b[approximate], served["approximate"], "{id}.{approximate}");
            assert!(
                served["sourceUrl"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("https://")),
                "{id} {measure}: the served figure has its source"
            );
            let values: std::collections::BTreeSet<&str> =
                of.iter().filter_map(|f| f["value"].as_str()).collect();
            if values.len() > 1 {
                conflicts += 1;
                assert!(
                    of.iter().all(|f| f["sourceName"].is_string()),
                    "{id} {measure}"
                );
            }
        }
    }
    assert!(
        conflicts >= 2,
        "APBD 2025 and APBD-P 2025 spending disagree between sources"
    );
    // Approximate 2,0 T is stored as an approximation, the 2,2 T of another report beside it.
    let murni = list(&r["data"]["budgets"], "budgets")
        .iter()
        .find(|b| b["id"] == "2025-MURNI")
        .expect("2025-MURNI");
    assert_eq!(murni["expenditureIdr"], "2000000000000");
    assert_eq!(murni["expenditureApproximate"], true);
    let apbd = list(&r["data"]["catalog"]["datasets"], "datasets")
        .iter()
        .find(|d| d["id"] == "bpkad.apbd")
        .expect("bpkad.apbd");
    assert_eq!(apbd["provisional"], true, "press figures await the Perda");
    assert!(list(&apbd["publishedFigures"], "figures").len() >= 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn villages_that_share_a_name_are_told_apart() {
    let (_dir, app) = trenggalek().await;
    let r = app
        .query("{ regency { districts { name villages { name label } } } }")
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let mut by_name = HashMap::<String, Vec<(String, String)>>::new();
    for d in list(&r["data"]["regency"]["districts"], "districts") {
        let district = d["name"].as_str().unwrap_or_default().to_string();
        for v in list(&d["villages"], "villages") {
            let name = v["name"].as_str().unwrap_or_default().to_string();
            let label = v["label"].as_str().unwrap_or_default().to_string();
            by_name
                .entry(name)
                .or_default()
                .push((district.clone(), label));
        }
    }
    let shared: Vec<&String> = by_name
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(shared.len(), 10, "ten names occur twice: {shared:?}");
    for (name, places) in &by_name {
        for (district, label) in places {
            match places.len() {
                1 => assert_eq!(label, name),
                _ => assert_eq!(*label, format!("{name} ({district})")),
            }
        }
    }
    assert_eq!(
        by_name["Besuki"]
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<std::collections::BTreeSet<_>>(),
        ["Besuki (Munjungan)", "Besuki (Panggul)"].into()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dates_and_times_are_typed() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", crate::alerts::SECRET)]).await;
    let staff = crate::alerts::staff_token("dates");
    let q = "{ complaints(month: \"2025-10\") { receivedOn receivedAt } }";
    let r = crate::alerts::post(&app, Some(&staff), q).await;
    assert!(r.get("errors").is_none(), "{r}");
    let complaints = list(&r["data"]["complaints"], "complaints");
    assert!(!complaints.is_empty());
    for c in complaints {
        let (on, at) = (
            c["receivedOn"].as_str().unwrap_or_default(),
            c["receivedAt"].as_str().unwrap_or_default(),
        );
        assert!(
            chrono::NaiveDate::parse_from_str(on, "%Y-%m-%d").is_ok(),
            "{on}"
        );
        let t = chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(t.offset().local_minus_utc(), 7 * 3600, "WIB: {at}");
        assert_eq!(t.date_naive().to_string(), on, "the day is the time's day");
    }
    // The public reads the day only: the minute is not in its schema.
    let r = app.query(q).await;
    let errors = r["errors"].to_string();
    assert!(errors.contains("receivedAt"), "{r}");
    // The schema types them: no money field is a Float, dates are Date.
    let r = app
        .query(
            "{ __type(name: \"BudgetSummary\") { fields { name type { name ofType { name } } } } }",
        )
        .await;
    for f in list(&r["data"]["__type"]["fields"], "fields") {
        let ty = f["type"]["name"]
            .as_str()
            .or(f["type"]["ofType"]["name"].as_str());
        if f["name"].as_str().is_some_and(|n| n.ends_with("Idr")) {
            assert_eq!(ty, Some("Rupiah"), "{f}");
        }
    }
}
