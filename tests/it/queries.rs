//! The dashboard operations in queries/: each answers without errors from the embedded
//! sources, and its data is the expected response kept beside it (queries/NAME.snap).

use crate::harness::{TestApp, copy_deployment, dashboard_operations, repo_root};

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_answers_its_expected_response() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[]).await;
    let queries = repo_root().join("queries");
    let operations = dashboard_operations();
    assert!(operations.len() >= 10, "one query per domain");
    for (name, query, _) in operations {
        let r = app.query(&query).await;
        assert!(r.get("errors").is_none(), "{name}: {}", r["errors"]);
        insta::with_settings!({ snapshot_path => queries.clone(), prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_json_snapshot!(name, r["data"]);
        });
    }
}

/// DTSEN registers households, so its individuals can never outnumber the people Dukcapil
/// counts in the district, in any quarter.
#[tokio::test(flavor = "multi_thread")]
async fn dtsen_never_counts_more_people_than_a_district_has() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", crate::alerts::SECRET)]).await;
    let staff = crate::alerts::staff_token("data-check");
    let r = crate::alerts::post(
        &app,
        Some(&staff),
        "{ regency { districts { name population { total } welfareDeciles { period individuals } } } }",
    )
    .await;
    assert!(r.get("errors").is_none(), "{r}");
    let districts = r["data"]["regency"]["districts"]
        .as_array()
        .expect("districts");
    assert_eq!(districts.len(), 14);
    for d in districts {
        let population = d["population"]["total"].as_i64().expect("a population");
        let mut by_period = std::collections::BTreeMap::<&str, i64>::new();
        for row in d["welfareDeciles"].as_array().into_iter().flatten() {
            let period = row["period"].as_str().expect("a period");
            *by_period.entry(period).or_default() += row["individuals"].as_i64().expect("a count");
        }
        assert!(!by_period.is_empty(), "{}: DTSEN rows", d["name"]);
        for (period, individuals) in by_period {
            assert!(
                individuals <= population,
                "{} {period}: {individuals} DTSEN individuals, {population} residents",
                d["name"]
            );
        }
    }
}
