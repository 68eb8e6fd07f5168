//! Provenance of every value (docs/data-trust.md): each observation says whether it is
//! synthetic, official figures are never flagged demo, and every answer holding demo rows
//! says so in `extensions.demo` whatever the client selected.

use serde_json::Value;

use crate::harness::{TestApp, copy_deployment, repo_root};

async fn trenggalek() -> (tempfile::TempDir, TestApp) {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[]).await;
    (dir, app)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_holding_demo_rows_says_so_whatever_was_selected() {
    let (_dir, app) = trenggalek().await;
    // No `demo` selected; the rows are synthetic. Twice: the second is a response-cache replay.
    for _ in 0..2 {
        let r = app
            .query("{ regency { complaintsByMonth { period } } }")
            .await;
        assert!(r.get("errors").is_none(), "{r}");
        let notice = r["extensions"]["demo"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"));
        assert!(notice.contains("DATA DEMO"), "{notice}");
    }
    // Official figures only: no notice.
    let r = app
        .query("{ complaintVolumesPublished { received sourceUrl } }")
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    assert!(r["extensions"].get("demo").is_none(), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_indicator_answer_says_whether_it_holds_demo_values() {
    let (_dir, app) = trenggalek().await;
    let r = app.query("{ indicators { id } }").await;
    let ids: Vec<String> = r["data"]["indicators"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    let mut flagged = 0;
    for id in &ids {
        // What the client selects first: values only, then their provenance.
        let bare = app
            .query(&format!(
                "{{ indicator(id: \"{id}\") {{ observations {{ value }} }} }}"
            ))
            .await;
        let with = app
            .query(&format!(
                "{{ indicator(id: \"{id}\") {{ observations {{ value demo }} }} }}"
            ))
            .await;
        let Some(observations) = with["data"]["indicator"]["observations"].as_array() else {
            // An INTERNAL indicator: nothing served, nothing to flag.
            assert!(with.get("errors").is_some(), "{with}");
            continue;
        };
        let demo = observations.iter().any(|o| o["demo"] == Value::Bool(true));
        for answer in [&bare, &with] {
            assert_eq!(
                answer["extensions"].get("demo").is_some(),
                demo,
                "{id}: the notice follows the values, selected or not: {}",
                answer["extensions"]
            );
        }
        flagged += demo as usize;
    }
    assert!(
        flagged > 0 && flagged < ids.len(),
        "{flagged} of {}",
        ids.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn official_figures_are_never_flagged_demo() {
    let (_dir, app) = trenggalek().await;
    // Dukcapil DKB Semester II 2024 (data/README.md, "Real figures"): 753,810 = 378,680 + 375,130.
    let r = app
        .query(
            "{ total: indicator(id: \"population.total\") { observations { regionCode year subPeriod value demo } } \
               sex: indicator(id: \"population.sex\") { observations { regionCode year subPeriod breakdown value demo } } \
               households: indicator(id: \"population.households\") { observations { regionCode year subPeriod value demo } } }",
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let official = |list: &str| -> Vec<Value> {
        r["data"][list]["observations"]
            .as_array()
            .expect("observations")
            .iter()
            .filter(|o| o["demo"] == Value::Bool(false))
            .cloned()
            .collect()
    };
    let total = official("total");
    assert_eq!(total.len(), 1, "{total:?}");
    assert_eq!(total[0]["regionCode"], "35.03");
    assert_eq!(
        (total[0]["year"].as_i64(), total[0]["subPeriod"].as_i64()),
        (Some(2024), Some(2))
    );
    assert_eq!(total[0]["value"].as_f64(), Some(753810.0));
    let mut sex: Vec<f64> = official("sex")
        .iter()
        .filter_map(|o| o["value"].as_f64())
        .collect();
    sex.sort_by(f64::total_cmp);
    assert_eq!(sex, [375130.0, 378680.0]);
    // The same row's household count is synthetic, and says so.
    assert!(official("households").is_empty());
}
