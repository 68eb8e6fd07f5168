//! Compiled plans answer exactly what async-graphql's executor answers: the first request of
//! an operation runs through async-graphql, later ones through the plan.

use serde_json::Value;

use crate::harness::{TestApp, Upstream, copy_deployment, dashboard_operations, repo_root};

async fn post(app: &TestApp, query: &str) -> (bool, Value) {
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .expect("send");
    let planned = r.headers().get("simpul-plan").is_some();
    (planned, r.json().await.expect("json"))
}

/// data, errors without locations, and each source's calls.
fn comparable(mut v: Value) -> Value {
    if let Some(errors) = v.get_mut("errors").and_then(Value::as_array_mut) {
        for e in errors {
            if let Some(m) = e.as_object_mut() {
                m.remove("locations");
            }
        }
    }
    let calls: Vec<Value> = v["extensions"]["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| serde_json::json!([s["name"], s["calls"], s.get("error")]))
        .collect();
    serde_json::json!({ "data": v["data"], "errors": v.get("errors"), "calls": calls })
}

#[tokio::test(flavor = "multi_thread")]
async fn planned_answers_equal_the_generic_executor_on_every_dashboard_query() {
    let dir = copy_deployment(&repo_root());
    // Replaying whole responses would answer the later requests without running the plan.
    std::fs::write(
        dir.path().join("simpul.toml"),
        "[cache]\nresponse = false\n",
    )
    .expect("simpul.toml");
    let app = TestApp::spawn(dir.path(), &[]).await;
    let mut planned_count = 0;
    for (name, q, _) in dashboard_operations() {
        let (first_planned, first) = post(&app, &q).await;
        assert!(!first_planned, "the first run goes through async-graphql");
        let (planned, second) = post(&app, &q).await;
        planned_count += usize::from(planned);
        // The third reads what the second serialized once from the same cached answers.
        let (_, third) = post(&app, &q).await;
        assert_eq!(comparable(third), comparable(first.clone()), "{}", name);
        assert_eq!(comparable(second), comparable(first), "{name}");
    }
    assert!(
        planned_count >= 5,
        "most dashboard queries are planned ({planned_count})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn planned_blog_queries_keep_batching_and_partial_results() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn(
        &repo_root().join("tests/cases/blog_batched"),
        &[("UPSTREAM_URL", &upstream.url)],
    )
    .await;
    let q = "{ greet posts { id title author: user { name email } } }";
    let (_, first) = post(&app, q).await;
    upstream.reset();
    let (planned, second) = post(&app, q).await;
    assert!(planned);
    assert_eq!(second["data"], first["data"]);
    assert_eq!(upstream.calls(), 2, "two calls for the planned request too");

    upstream
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (planned, failed) = post(&app, q).await;
    assert!(planned);
    assert_eq!(failed["data"]["greet"], "Hello World!");
    assert_eq!(failed["data"]["posts"], Value::Null);
    assert_eq!(failed["errors"][0]["extensions"]["code"], "SOURCE_ERROR");
    assert_eq!(failed["errors"][0]["path"], serde_json::json!(["posts"]));

    post(&app, "query($n: Int) { greet }").await;
    let (planned, _) = post(&app, "query($n: Int) { greet }").await;
    assert!(
        !planned,
        "an operation async-graphql rejects (an unused variable) is never planned"
    );
    let (_, r) = post(&app, "{ nope }").await;
    assert!(r["errors"].is_array());
    let (planned, _) = post(&app, "{ nope }").await;
    assert!(!planned, "an invalid operation is never planned");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planned_enum_never_carries_a_value_the_schema_does_not_declare() {
    let dir = copy_deployment(&repo_root().join("tests/cases/wilayah_levels"));
    let app = TestApp::spawn(dir.path(), &[]).await;
    let q = "{ regency { districts { villages { code kind } } } }";
    let (_, first) = post(&app, q).await;
    assert!(first.get("errors").is_none(), "{first}");
    // The source changes after the plan was learned: a value the enum does not declare.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite:{}",
        dir.path().join("data/db.db").display()
    ))
    .await
    .expect("db");
    sqlx::query("UPDATE regions SET village_type = 'KOTA' WHERE code = '35.03.07.2002'")
        .execute(&db)
        .await
        .expect("update");
    let (planned, second) = post(&app, q).await;
    assert!(planned);
    let villages = &second["data"]["regency"]["districts"][0]["villages"];
    assert_eq!(villages[0]["kind"], "DESA");
    assert_eq!(
        villages[1]["kind"],
        Value::Null,
        "KOTA is not served: {second}"
    );
    assert_eq!(
        second["errors"][0]["path"],
        serde_json::json!(["regency", "districts", 0, "villages", 1, "kind"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_can_be_turned_off() {
    let upstream = Upstream::start().await;
    let dir = copy_deployment(&repo_root().join("tests/cases/blog_batched"));
    std::fs::write(
        dir.path().join("simpul.toml"),
        "[execution]\ncompiled_plans = false\n",
    )
    .expect("simpul.toml");
    let app = TestApp::spawn(dir.path(), &[("UPSTREAM_URL", &upstream.url)]).await;
    let q = "{ posts { id title author: user { name } } }";
    let (_, first) = post(&app, q).await;
    let (planned, second) = post(&app, q).await;
    assert!(!planned, "every request runs through async-graphql");
    assert_eq!(second["data"], first["data"]);
}

async fn post_vars(app: &TestApp, query: &str, variables: Value) -> (bool, Value) {
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&serde_json::json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("send");
    let planned = r.headers().get("simpul-plan").is_some();
    (planned, r.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread")]
async fn planned_operations_take_variables_and_leave_bad_ones_to_async_graphql() {
    use serde_json::json;
    let dir = copy_deployment(&repo_root().join("tests/cases/wilayah_levels"));
    let app = TestApp::spawn(dir.path(), &[]).await;
    let q = "query One($code: ID!, $other: ID = \"35.03.07\") { district(code: $code) { code name villages { code } } two: district(code: $other) { name } regency { name } }";
    // The same operation with other text: never seen, so async-graphql answers it.
    let fresh = |i: usize| format!("{q}{}", " ".repeat(i + 1));

    let (planned, first) = post_vars(&app, q, json!({ "code": "35.03.11" })).await;
    assert!(!planned && first.get("errors").is_none(), "{first}");
    for (i, vars) in [
        json!({ "code": "35.03.07" }),
        json!({ "code": "35.03.11", "other": "35.03.07" }),
        json!({ "code": 5 }),
    ]
    .into_iter()
    .enumerate()
    {
        let (planned, answer) = post_vars(&app, q, vars.clone()).await;
        assert!(planned, "{vars}");
        let (_, expected) = post_vars(&app, &fresh(i), vars.clone()).await;
        assert_eq!(answer["data"], expected["data"], "{vars}");
        assert_eq!(answer.get("errors"), expected.get("errors"), "{vars}");
    }
    let (_, other) = post_vars(&app, q, json!({ "code": "35.03.07" })).await;
    assert_eq!(other["data"]["district"]["code"], "35.03.07");
    assert_ne!(
        other["data"]["district"]["villages"], first["data"]["district"]["villages"],
        "a different variable, a different answer"
    );

    // What the plan cannot take goes to async-graphql, which says what is wrong.
    for vars in [
        json!({}),
        json!({ "code": true }),
        json!({ "code": null }),
        json!({ "code": "35.03.07", "other": 1.5 }),
        json!({ "code": "35.03.11", "other": null }),
    ] {
        let (planned, r) = post_vars(&app, q, vars.clone()).await;
        assert!(!planned, "{vars}");
        assert!(r["errors"].is_array(), "{vars}: {r}");
    }
    // Variables the operation does not declare: async-graphql ignores them; so does the
    // plan, by leaving such requests to it.
    let (planned, r) = post_vars(&app, q, json!({ "code": "35.03.07", "unknown": 1 })).await;
    assert!(!planned);
    assert_eq!(r["data"]["district"]["code"], "35.03.07", "{r}");
}
