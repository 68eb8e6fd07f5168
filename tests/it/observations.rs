//! `Indicator.observations(region:, from:, to:, breakdown:, first:, after:)`: for every
//! indicator, whatever its source (SQL views, spreadsheets, the BPS API), the filters keep
//! exactly the matching observations and the pages, followed by their cursors, give back the
//! whole list once, in order.

use serde_json::{Value, json};

use crate::harness::{TestApp, copy_deployment, repo_root};

const FIELDS: &str = "regionCode year subPeriod breakdown value cursor";

async fn observations(app: &TestApp, token: &str, id: &str, args: &str) -> Value {
    let q = format!("{{ indicator(id: \"{id}\") {{ observations{args} {{ {FIELDS} }} }} }}");
    crate::alerts::post(app, Some(token), &q).await
}

fn items(r: &Value) -> Vec<Value> {
    assert!(r.get("errors").is_none(), "{r}");
    r["data"]["indicator"]["observations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_indicator_filters_and_pages_its_observations() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", crate::alerts::SECRET)]).await;
    let staff = crate::alerts::staff_token("pages");
    let r = crate::alerts::post(&app, Some(&staff), "{ indicators { id } }").await;
    let ids: Vec<String> = r["data"]["indicators"]
        .as_array()
        .expect("indicators")
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    assert!(ids.len() >= 19, "{r}");
    for id in &ids {
        let all = items(&observations(&app, &staff, id, "").await);
        assert!(!all.is_empty(), "{id}: observations");
        let cursors: std::collections::HashSet<&str> =
            all.iter().filter_map(|o| o["cursor"].as_str()).collect();
        assert_eq!(cursors.len(), all.len(), "{id}: one cursor per observation");

        // Pages of 7 (97 for long lists), each starting after the last cursor of the one
        // before.
        let size = if all.len() < 200 { 7 } else { 97 };
        let mut paged = Vec::new();
        let mut after = String::new();
        loop {
            let args = match after.as_str() {
                "" => format!("(first: {size})"),
                c => format!("(first: {size}, after: \"{c}\")"),
            };
            let page = items(&observations(&app, &staff, id, &args).await);
            assert!(page.len() <= size, "{id}");
            let Some(last) = page.last() else { break };
            after = last["cursor"].as_str().expect("cursor").to_string();
            let full = page.len() == size;
            paged.extend(page);
            if !full {
                break;
            }
        }
        assert_eq!(
            paged.len(),
            all.len(),
            "{id}: the pages hold the whole list"
        );
        if let Some(i) = (0..all.len()).find(|&i| paged[i] != all[i]) {
            panic!("{id}: item {i} is {} paged, {} unpaged", paged[i], all[i]);
        }

        // Each filter keeps exactly the observations it names.
        let first = &all[0];
        let region = first["regionCode"].as_str().expect("region");
        let year = first["year"].as_i64().expect("year");
        let breakdown = first["breakdown"].as_str().expect("breakdown");
        let args =
            format!("(region: \"{region}\", from: {year}, to: {year}, breakdown: \"{breakdown}\")");
        let want: Vec<Value> = all
            .iter()
            .filter(|o| {
                o["regionCode"] == region && o["year"] == year && o["breakdown"] == breakdown
            })
            .cloned()
            .collect();
        let got = items(&observations(&app, &staff, id, &args).await);
        assert!(
            !want.is_empty() && got == want,
            "{id} {args}: {} kept, {} match",
            got.len(),
            want.len()
        );
        let since: Vec<Value> = all
            .iter()
            .filter(|o| o["year"].as_i64() >= Some(year + 1))
            .cloned()
            .collect();
        let args = format!("(from: {})", year + 1);
        let got = items(&observations(&app, &staff, id, &args).await);
        assert!(
            got == since,
            "{id} {args}: {} kept, {} match",
            got.len(),
            since.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_out_of_bounds_or_a_foreign_cursor_is_refused_clearly() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[]).await;
    let one = |args: &str| {
        format!("{{ indicator(id: \"population.total\") {{ observations{args} {{ cursor }} }} }}")
    };
    for (args, says) in [
        ("(first: 1001)", "first must be from 0 to 1000"),
        ("(first: -1)", "first must be from 0 to 1000"),
        (
            "(after: \"not-a-cursor\")",
            "is not a cursor this list gave",
        ),
    ] {
        let r = app.query(&one(args)).await;
        assert_eq!(
            r["errors"][0]["extensions"]["code"], "BAD_REQUEST",
            "{args}: {r}"
        );
        assert!(
            r["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{args}: {r}"
        );
    }
    // A cursor of another indicator's list names no item of this one.
    let r = app
        .query("{ indicator(id: \"poverty.rate\") { observations(first: 1) { cursor } } }")
        .await;
    let foreign = r["data"]["indicator"]["observations"][0]["cursor"]
        .as_str()
        .expect("a cursor")
        .to_string();
    let r = app.query_vars(
        "query($c: String) { indicator(id: \"population.total\") { observations(after: $c) { cursor } } }",
        json!({"c": foreign}),
    )
    .await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no item of this list has the cursor")),
        "{r}"
    );
}
