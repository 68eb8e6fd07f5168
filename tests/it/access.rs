//! A public caller never sees internal data: fields marked `@access(tier: INTERNAL)` are not
//! in its schema, or (when an interface requires them) are null with FORBIDDEN.

use serde_json::Value;

use crate::harness::{TestApp, copy_deployment, repo_root};

#[tokio::test(flavor = "multi_thread")]
async fn internal_fields_are_invisible_or_forbidden_to_public_callers() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[]).await;

    let t = app
        .query(r#"{ __type(name: "District") { fields { name } } }"#)
        .await;
    let names: Vec<&str> = t["data"]["__type"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(names.contains(&"code"), "{t}");
    assert!(
        !names.contains(&"welfareDeciles"),
        "internal DTSEN deciles are not introspectable: {names:?}"
    );

    let r = app
        .query("{ districts { welfareDeciles { decile } } }")
        .await;
    assert!(r["data"].is_null() || r.get("data").is_none(), "{r}");
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("welfareDeciles")),
        "{r}"
    );

    let r = app
        .query("{ indicators { id ... on DinsosIndicator { observations { value } } } }")
        .await;
    let indicators = r["data"]["indicators"]
        .as_array()
        .expect("indicators are public");
    assert!(!indicators.is_empty());
    let forbidden: Vec<&Value> = r["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["extensions"]["code"] == "FORBIDDEN")
        .collect();
    assert!(!forbidden.is_empty(), "{r}");
    assert!(forbidden.iter().all(|e| {
        e["path"]
            .as_array()
            .is_some_and(|p| p.last() == Some(&Value::from("observations")))
    }));
    for i in indicators
        .iter()
        .filter(|i| i.get("observations").is_some())
    {
        assert!(
            i["observations"].is_null(),
            "no internal observation leaks: {i}"
        );
    }
}
