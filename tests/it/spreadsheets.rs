//! `[file]` sources as offices fill them: Excel exports set to Indonesian (semicolons,
//! decimal commas, a BOM), files replaced by broken or half-written copies, and header
//! mistakes named at startup.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{TestApp, copy_deployment, repo_root};

/// A deployment of one `[file]` connector `sheet` (its `[file]` table is `file_table`),
/// `schema`, and `files` under the deployment folder.
fn deployment(schema: &str, file_table: &str, files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("connectors")).expect("connectors");
    std::fs::write(dir.path().join("schema.graphql"), schema).expect("schema");
    // Why a copy is stale is for staff: `problem` needs an INTERNAL token.
    std::fs::write(
        dir.path().join("simpul.toml"),
        format!("[auth]\njwt_secret = \"{SECRET}\"\n"),
    )
    .expect("simpul.toml");
    std::fs::write(
        dir.path().join("connectors/sheet.toml"),
        format!("[file]\n{file_table}"),
    )
    .expect("connector");
    for (name, bytes) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("file");
    }
    dir
}

const SECRET: &str = "spreadsheets-test-secret-long-enough-0123456789";

/// `Query.sources`' entry of `name`, as staff read it.
async fn health(app: &TestApp, name: &str) -> Value {
    let token = simpul::auth::mint(
        SECRET,
        simpul::access::Tier::Internal,
        None,
        Some("tester"),
        Duration::from_secs(3600),
        None,
        None,
    )
    .expect("mint");
    let r: Value = app
        .client
        .post(format!("{}/graphql", app.url))
        .bearer_auth(token)
        .json(&json!({ "query": "{ sources { name status loadedAt staleSince staleSeconds problem } }" }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    r["data"]["sources"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no source {name}: {r}"))
}

/// Polls `probe` until it says yes, for at most 15 s (a reload waits for two polls a second
/// apart to agree on the file).
async fn eventually<F, Fut>(what: &str, mut probe: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, Value)>,
{
    let started = Instant::now();
    loop {
        let (done, seen) = probe().await;
        if done {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}; last seen: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_semicolon_export_with_decimal_commas_and_a_bom_reads_as_numbers() {
    let dir = deployment(
        "type Query { prices: [Price!]! @sql(connector: \"sheet\", query: \"SELECT * FROM harga ORDER BY kode\") }\n\
         type Price { kode: String! komoditas: String! harga: Float! stok: Float! }\n",
        "path = \"data/harga.csv\"\n",
        &[(
            "data/harga.csv",
            "\u{feff}kode;komoditas;harga;stok\r\n0351;Beras, medium;12,5;1.234,5\r\n0352;Gula pasir;13;7\r\n"
                .as_bytes(),
        )],
    );
    let app = TestApp::spawn(dir.path(), &[]).await;
    let r = app.query("{ prices { kode komoditas harga stok } }").await;
    assert_eq!(r.get("errors"), None, "{r}");
    let prices = r["data"]["prices"].as_array().expect("prices");
    assert_eq!(prices.len(), 2, "{r}");
    // The first column keeps its name (no BOM in it) and its leading zero (a code).
    assert_eq!(prices[0]["kode"], "0351");
    assert_eq!(prices[0]["komoditas"], "Beras, medium");
    assert_eq!(prices[0]["harga"].as_f64(), Some(12.5), "{r}");
    assert_eq!(prices[0]["stok"].as_f64(), Some(1234.5), "{r}");
    assert_eq!(prices[1]["harga"].as_f64(), Some(13.0), "{r}");
    assert_eq!(prices[1]["stok"].as_f64(), Some(7.0), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_csv_keeps_the_last_good_copy_serving_as_stale() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    let query = "{ destinations { id name category } }";
    let good = app.query(query).await;
    assert_eq!(good.get("errors"), None, "{good}");
    assert!(
        good["data"]["destinations"]
            .as_array()
            .is_some_and(|d| d.len() > 3),
        "{good}"
    );
    let h = health(&app, "disparbud").await;
    assert_eq!(h["status"], "UP", "{h}");
    assert!(h["loadedAt"].is_string(), "{h}");
    assert_eq!(h["problem"], Value::Null, "{h}");

    // Half-written: the header cut after a few columns, no rows.
    let csv = dir.path().join("data/opd/disparbud/destinations.csv");
    let text = std::fs::read_to_string(&csv).expect("csv");
    std::fs::write(&csv, &text[..30]).expect("truncate");
    let h = eventually("disparbud turns STALE", || async {
        let h = health(&app, "disparbud").await;
        (h["status"] == "STALE", h)
    })
    .await;
    let problem = h["problem"].as_str().expect("problem");
    assert!(
        problem.starts_with("data/opd/disparbud: table \"destinations\" lost columns"),
        "{problem}"
    );
    assert!(h["staleSince"].is_string(), "{h}");
    assert!(h["staleSeconds"].as_u64().is_some(), "{h}");
    // The last good copy answers, as before the change.
    assert_eq!(app.query(query).await["data"], good["data"]);

    // The office saves the whole file again, with a change: served, and UP again.
    std::fs::write(
        &csv,
        text.replace("Pantai Prigi,", "Pantai Prigi Watulimo,"),
    )
    .expect("csv");
    let r = eventually("the new file is served", || async {
        let r = app.query(query).await;
        (
            r["data"]["destinations"][0]["name"] == "Pantai Prigi Watulimo",
            r,
        )
    })
    .await;
    assert_eq!(r.get("errors"), None, "{r}");
    let h = health(&app, "disparbud").await;
    assert_eq!(h["status"], "UP", "{h}");
    assert_eq!(h["problem"], Value::Null, "{h}");
    assert_eq!(h["staleSince"], Value::Null, "{h}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workbook_overwritten_with_garbage_keeps_the_last_good_copy() {
    let workbook = std::fs::read(repo_root().join("data/opd/disdikpora/rekap_dapodik.xlsx"))
        .expect("workbook");
    let dir = deployment(
        "type Query { semesters: [Semester!]! @sql(connector: \"sheet\", query: \"SELECT semester_id, label FROM semester ORDER BY semester_id\") }\n\
         type Semester { semesterId: Int! label: String! }\n",
        "path = \"data/rekap.xlsx\"\n",
        &[("data/rekap.xlsx", &workbook)],
    );
    let app = TestApp::spawn(dir.path(), &[]).await;
    let query = "{ semesters { semesterId label } }";
    let good = app.query(query).await;
    assert_eq!(
        good["data"]["semesters"][2],
        json!({ "semesterId": 20251, "label": "2025/2026 Ganjil" }),
        "{good}"
    );

    // A save that died after the zip's first bytes.
    let path = dir.path().join("data/rekap.xlsx");
    std::fs::write(&path, b"PK\x03\x04\x14\x00\x06\x00 not a whole workbook").expect("garbage");
    let h = eventually("the workbook source turns STALE", || async {
        let h = health(&app, "sheet").await;
        (h["status"] == "STALE", h)
    })
    .await;
    let problem = h["problem"].as_str().expect("problem");
    assert!(problem.starts_with("data/rekap.xlsx: "), "{problem}");
    // No cache here: every request reads the last good tables.
    let r = app.query(query).await;
    assert_eq!(r["data"], good["data"], "{r}");
    assert_eq!(r["extensions"]["sources"][0]["cache"], "MISS", "{r}");

    std::fs::copy(
        repo_root().join("tests/fixtures/spreadsheets/rekap_dapodik_revised.xlsx"),
        &path,
    )
    .expect("revised");
    eventually("the revised workbook is served", || async {
        let r = app.query(query).await;
        (
            r["data"]["semesters"][2]["label"] == "2025/2026 Ganjil (revisi)",
            r,
        )
    })
    .await;
    assert_eq!(health(&app, "sheet").await["status"], "UP");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_still_being_written_is_not_loaded_until_it_stops_changing() {
    let dir = deployment(
        "type Query { rows: [Row!]! @sql(connector: \"sheet\", query: \"SELECT id FROM items ORDER BY id\") }\n\
         type Row { id: Int! }\n",
        "path = \"data/items.csv\"\n",
        &[("data/items.csv", b"id,nama\n1,a\n")],
    );
    let app = TestApp::spawn(dir.path(), &[]).await;
    let count = |r: &Value| r["data"]["rows"].as_array().map_or(0, Vec::len);
    assert_eq!(count(&app.query("{ rows { id } }").await), 1);

    // A slow writer: a whole row every 250 ms for 2.5 s, each step a readable file.
    let path = dir.path().join("data/items.csv");
    let writer = tokio::spawn(async move {
        let mut text = String::from("id,nama\n1,a\n");
        for id in 2..=11 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            text.push_str(&format!("{id},x\n"));
            std::fs::write(&path, &text).expect("write");
        }
    });
    let mut seen = std::collections::BTreeSet::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let n = count(&app.query("{ rows { id } }").await);
        seen.insert(n);
        if n == 11 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    writer.await.expect("writer");
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [1, 11],
        "only the file before and the file after the writes are served; {}",
        health(&app, "sheet").await
    );
}

/// What `simpul check` says of a deployment whose `sheet` connector reads `data/x.csv`.
async fn check(file_table: &str, csv: &[u8]) -> Vec<String> {
    simpul::install_crypto();
    let dir = deployment(
        "type Query { rows: [Row!]! @sql(connector: \"sheet\", query: \"SELECT * FROM x\") }\n\
         type Row { id: Int }\n",
        file_table,
        &[("data/x.csv", csv)],
    );
    simpul::check::check(dir.path())
        .await
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[tokio::test]
async fn each_header_problem_is_named_with_its_file() {
    let path = "path = \"data/x.csv\"\n";
    let cases: [(&str, &[u8], &str); 5] = [
        (path, b"", "data/x.csv: the file is empty: no header row"),
        (
            path,
            b"id;;nama\n1;x;Prigi\n",
            "data/x.csv: column 2 of the header is empty but has data; give it a name",
        ),
        (
            path,
            b"id;Nama;nama\n1;a;b\n",
            "data/x.csv: duplicate column name \"nama\" (columns 2 and 3); rename one",
        ),
        (
            "path = \"data/x.csv\"\ndelimiter = \",\"\n",
            b"id;nama;nilai\n1;a;2\n",
            "data/x.csv: the header reads as one column \"id;nama;nilai\" containing ';'; \
             set delimiter = \";\" in [file]",
        ),
        (
            "path = \"data/x.csv\"\ndelimiter = \";\"\n",
            b"id\tnama\n1\ta\n",
            "data/x.csv: the header reads as one column \"id\tnama\" containing '\\t'; \
             set delimiter = \"\\t\" in [file]",
        ),
    ];
    for (table, csv, message) in cases {
        assert_eq!(
            check(table, csv).await,
            [format!("connectors/sheet.toml:1:1: {message}")],
            "{}",
            String::from_utf8_lossy(csv)
        );
    }
}

#[tokio::test]
async fn delimiter_and_decimal_are_checked() {
    let got = check(
        "path = \"data/x.csv\"\ndelimiter = \";;\"\ndecimal = \"koma\"\n",
        b"id\n1\n",
    )
    .await;
    assert_eq!(
        got,
        [
            "connectors/sheet.toml:3:1: [file] delimiter \";;\" is not one character\n  \
             hint: write delimiter = \";\", \",\", \"|\" or \"\\t\" (a tab)",
            "connectors/sheet.toml:4:1: [file] decimal \"koma\" is neither \".\" nor \",\"\n  \
             hint: write decimal = \",\" for numbers written 12,5 (1.234,5)",
        ]
    );
    // Set right, they read the file as written.
    let ok = check(
        "path = \"data/x.csv\"\ndelimiter = \"|\"\ndecimal = \",\"\n",
        b"id|nilai\n1|2,5\n",
    )
    .await;
    assert!(ok.is_empty(), "{ok:?}");
}
