//! One executor: every operation answers the same bytes on first sight (validated, then
//! compiled) and on every later request (the cached plan), failures included.

use serde_json::{Value, json};

use crate::conformance::without_extensions;
use crate::harness::{TestApp, Upstream, copy_deployment, dashboard_operations, repo_root};

async fn post(app: &TestApp, query: &str, variables: Value) -> (u16, String) {
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, without_extensions(&r.text().await.expect("body")))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_operation_answers_the_same_bytes_on_first_sight_and_after() {
    let dir = copy_deployment(&repo_root());
    // Replaying whole responses would answer the later requests without running the plan.
    std::fs::write(
        dir.path().join("simpul.toml"),
        "[cache]\nresponse = false\n",
    )
    .expect("simpul.toml");
    let app = TestApp::spawn(dir.path(), &[]).await;
    for (name, q, _) in dashboard_operations() {
        let first = post(&app, &q, Value::Null).await;
        let second = post(&app, &q, Value::Null).await;
        // The third reads what the second serialized once from the same cached answers.
        let third = post(&app, &q, Value::Null).await;
        assert_eq!(first.0, 200, "{name}: {}", first.1);
        assert_eq!(second, first, "{name}");
        assert_eq!(third, first, "{name}");
        let body: Value = serde_json::from_str(&first.1).expect("json");
        assert!(body.get("errors").is_none(), "{name}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn blog_queries_keep_batching_and_partial_results() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn(
        &repo_root().join("tests/cases/blog_batched"),
        &[("UPSTREAM_URL", &upstream.url)],
    )
    .await;
    let q = "{ greet posts { id title author: user { name email } } }";
    let first = post(&app, q, Value::Null).await;
    assert_eq!(upstream.calls(), 2, "two calls on first sight");
    upstream.reset();
    let second = post(&app, q, Value::Null).await;
    assert_eq!(second, first);
    assert_eq!(upstream.calls(), 2, "two calls for the compiled plan too");

    upstream
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let fresh = format!("{q} ");
    for text in [q, fresh.as_str()] {
        let (status, body) = post(&app, text, Value::Null).await;
        let failed: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(status, 200);
        // `posts: [Post!]!`: its null reaches `data`, as the spec asks.
        assert_eq!(failed["data"], Value::Null, "{failed}");
        assert_eq!(failed["errors"][0]["extensions"]["code"], "SOURCE_ERROR");
        assert_eq!(failed["errors"][0]["path"], json!(["posts"]));
        assert_eq!(
            failed["errors"][0]["locations"],
            json!([{ "line": 1, "column": 9 }])
        );
    }

    // Documents the view's schema rejects are request errors, every time.
    for bad in ["query($n: Int) { greet }", "{ nope }", "{ greet "] {
        let first = post(&app, bad, Value::Null).await;
        let again = post(&app, bad, Value::Null).await;
        assert_eq!(first.0, 400, "{bad}: {}", first.1);
        assert_eq!(again, first, "{bad}");
        let body: Value = serde_json::from_str(&first.1).expect("json");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enum_value_the_schema_does_not_declare_is_null_with_an_error_naming_it() {
    let dir = copy_deployment(&repo_root().join("tests/cases/wilayah_levels"));
    std::fs::write(
        dir.path().join("simpul.toml"),
        "[cache]\nresponse = false\n",
    )
    .expect("simpul.toml");
    let app = TestApp::spawn(dir.path(), &[]).await;
    let q = "{ regency { districts { villages { code kind } } } }";
    let (_, first) = post(&app, q, Value::Null).await;
    assert!(!first.contains("\"errors\""), "{first}");
    // The source changes after the plan was compiled: a value the enum does not declare.
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
    for text in [q.to_string(), format!("{q} ")] {
        let (_, body) = post(&app, &text, Value::Null).await;
        let second: Value = serde_json::from_str(&body).expect("json");
        let villages = &second["data"]["regency"]["districts"][0]["villages"];
        assert_eq!(villages[0]["kind"], "DESA", "{second}");
        assert_eq!(
            villages[1]["kind"],
            Value::Null,
            "KOTA is not served: {second}"
        );
        let e = &second["errors"][0];
        assert_eq!(
            e["path"],
            json!(["regency", "districts", 0, "villages", 1, "kind"])
        );
        assert_eq!(e["extensions"]["code"], "SOURCE_BAD_RESPONSE");
        assert!(
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("\"KOTA\"")),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn variables_answer_the_same_on_first_sight_and_after() {
    let dir = copy_deployment(&repo_root().join("tests/cases/wilayah_levels"));
    let app = TestApp::spawn(dir.path(), &[]).await;
    let q = "query One($code: ID!, $other: ID = \"35.03.07\") { district(code: $code) { code name villages { code } } two: district(code: $other) { name } regency { name } }";
    let (status, first) = post(&app, q, json!({ "code": "35.03.11" })).await;
    assert_eq!(status, 200);
    assert!(!first.contains("\"errors\""), "{first}");
    for (i, vars) in [
        json!({ "code": "35.03.07" }),
        json!({ "code": "35.03.11", "other": "35.03.07" }),
        json!({ "code": 5 }),
        json!({ "code": "35.03.07", "unknown": 1 }),
        json!({ "code": "35.03.11", "other": null }),
        // Request errors: nothing runs.
        json!({}),
        json!({ "code": true }),
        json!({ "code": null }),
        json!({ "code": "35.03.07", "other": 1.5 }),
    ]
    .into_iter()
    .enumerate()
    {
        let known = post(&app, q, vars.clone()).await;
        // The same operation with other text: never seen, so validated and compiled now.
        let fresh = post(&app, &format!("{q}{}", " ".repeat(i + 1)), vars.clone()).await;
        assert_eq!(known, fresh, "{vars}");
        let body: Value = serde_json::from_str(&known.1).expect("json");
        match known.0 {
            200 => assert!(body["data"].is_object(), "{vars}: {body}"),
            400 => {
                assert!(body.get("data").is_none(), "{vars}: {body}");
                assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
            }
            s => panic!("{vars}: status {s}"),
        }
        if i == 0 {
            assert_eq!(body["data"]["district"]["code"], "35.03.07");
            assert_ne!(
                body["data"]["district"]["villages"],
                serde_json::from_str::<Value>(&first).expect("json")["data"]["district"]["villages"],
                "a different variable, a different answer"
            );
        }
        if i >= 5 {
            assert_eq!(known.0, 400, "{vars}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_errors_of_one_response_are_bounded_and_the_rest_counted() {
    let dir = copy_deployment(&repo_root().join("tests/conformance/deployment"));
    std::fs::write(dir.path().join("simpul.toml"), "[limits]\nmax_errors = 2\n")
        .expect("simpul.toml");
    let app = TestApp::spawn(dir.path(), &[]).await;
    let (status, body) = post(&app, "{ items { id downField } }", Value::Null).await;
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(status, 200);
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(
        errors.len(),
        3,
        "two kept and one that counts the rest: {body}"
    );
    assert_eq!(errors[1]["path"], json!(["items", 1, "downField"]));
    assert_eq!(errors[2]["extensions"]["leftOut"], 1, "{body}");
    assert_eq!(errors[2]["extensions"]["code"], "SOURCE_UNAVAILABLE");
    assert_eq!(body["data"]["items"][2]["downField"], Value::Null);
    assert_eq!(body["data"]["items"][2]["id"], "3");
}
