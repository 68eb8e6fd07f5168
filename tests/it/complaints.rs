//! `submitComplaint` in the Trenggalek deployment: a complaint is accepted with a receipt,
//! delivered into the pengaduan database and counted in the complaint statistics; input
//! the desk cannot take (unknown codes, a description out of bounds, no category, a photo
//! too large or not an image) is refused with a clear error and nothing is kept; the
//! contact is erased once delivered and never answered.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::alerts::{SECRET, post, staff_token};
use crate::harness::{TestApp, copy_deployment, fresh_state_file, repo_root};
use crate::uploads::{Part, jpeg, png};

const SUBMIT: &str = "mutation($input: ComplaintInput!, $photos: [Upload!]) { \
     submitComplaint(input: $input, photos: $photos) { id status acceptedAt } }";

const CONTACT: &str = "0812-3456-7890";

/// The deployment with the complaint statistics read fresh (no one-minute cache), and the
/// state store file its app keeps the outbox in.
async fn trenggalek() -> (tempfile::TempDir, TestApp, std::path::PathBuf) {
    trenggalek_with("").await
}

/// The same with `rate_limits` added to `[security.rate_limits]`.
async fn trenggalek_with(rate_limits: &str) -> (tempfile::TempDir, TestApp, std::path::PathBuf) {
    let dir = copy_deployment(&repo_root());
    if !rate_limits.is_empty() {
        let path = dir.path().join("simpul.toml");
        let text = std::fs::read_to_string(&path).expect("simpul.toml");
        assert!(
            !text.contains("[security"),
            "simpul.toml sets no [security] yet"
        );
        let limited = format!("{text}\n[security.rate_limits]\n{rate_limits}\n");
        std::fs::write(&path, limited).expect("write simpul.toml");
    }
    let connector = dir.path().join("connectors/pengaduan.toml");
    let text = std::fs::read_to_string(&connector).expect("pengaduan.toml");
    let uncached = text.replace("ttl = \"1m\"", "ttl = \"0s\"");
    assert_ne!(text, uncached, "pengaduan.toml has a 1m cache to turn off");
    std::fs::write(&connector, uncached).expect("write pengaduan.toml");
    let state = fresh_state_file();
    let url = format!("sqlite://{}", state.display());
    let app = TestApp::spawn(
        dir.path(),
        &[("SIMPUL_JWT_SECRET", SECRET), ("SIMPUL_STATE_URL", &url)],
    )
    .await;
    (dir, app, state)
}

fn input(district: &str, village: Option<&str>, description: &str) -> Value {
    json!({
        "category": "INFRASTRUCTURE",
        "description": description,
        "districtCode": district,
        "villageCode": village,
        "contact": CONTACT,
    })
}

async fn submit(app: &TestApp, input: Value) -> (u16, Value) {
    let answer = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": SUBMIT, "variables": { "input": input } }))
        .send()
        .await
        .expect("send");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("json"))
}

/// Rows in the outbox and what they still hold.
async fn outbox(state: &Path) -> Vec<(String, String, Option<String>)> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(state);
    let db = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("state store");
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, args FROM simpul_outbox ORDER BY accepted_at_ms")
            .fetch_all(&db)
            .await
            .expect("outbox");
    db.close().await;
    rows
}

/// The staff's count of complaints received in `period` (exact: INTERNAL is not
/// suppressed).
async fn received(app: &TestApp, token: &str, period: &str) -> i64 {
    let answer = post(
        app,
        Some(token),
        "{ regency { complaintsByMonth { period received } } }",
    )
    .await;
    let months = answer["data"]["regency"]["complaintsByMonth"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    months
        .iter()
        .find(|m| m["period"] == period)
        .and_then(|m| m["received"].as_i64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complaint_is_accepted_delivered_and_counted_and_its_contact_forgotten() {
    let (_dir, app, state) = trenggalek().await;
    let staff = staff_token("kominfo");
    // Months are counted in WIB (UTC+7), as the desk records them.
    let period = (chrono::Utc::now() + chrono::Duration::hours(7))
        .format("%Y-%m")
        .to_string();
    let before = received(&app, &staff, &period).await;

    let (status, answer) = submit(
        &app,
        input(
            "35.03.04",
            Some("35.03.04.2001"),
            "Jalan di depan balai desa berlubang besar",
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let receipt = &answer["data"]["submitComplaint"];
    assert_eq!(receipt["status"], "PENDING", "{answer}");
    let id = receipt["id"].as_str().expect("receipt id").to_string();
    assert_eq!(id.len(), 32, "an opaque id of 128 bits: {id}");

    let status_query = format!(
        "{{ complaintStatus(receipt: \"{id}\") {{ id status acceptedAt deliveredAt trackingId }} }}"
    );
    let mut delivered = Value::Null;
    for _ in 0..100 {
        let answer = post(&app, None, &status_query).await;
        if answer["data"]["complaintStatus"]["status"] == "DELIVERED" {
            delivered = answer["data"]["complaintStatus"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered["id"], id.as_str(), "never delivered");
    assert_eq!(delivered["acceptedAt"], receipt["acceptedAt"]);
    assert!(delivered["deliveredAt"].is_string(), "{delivered}");
    // The desk's own id of it: the row it inserted.
    assert_eq!(delivered["trackingId"], id.as_str());
    assert_eq!(received(&app, &staff, &period).await, before + 1);

    // Delivered: the arguments, the contact with them, are erased from the outbox.
    let rows = outbox(&state).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_deref()),
        ("DELIVERED", None)
    );
    // And no answer, the staff's included, carries it.
    let month = post(
        &app,
        Some(&staff),
        &format!("{{ complaints(month: \"{period}\") {{ id summary fullText }} }}"),
    )
    .await;
    let listed = month["data"]["complaints"].as_array().expect("complaints");
    assert!(listed.iter().any(|c| c["id"] == id.as_str()), "{month}");
    assert!(!month.to_string().contains(CONTACT), "{month}");
    assert!(!delivered.to_string().contains(CONTACT));
    // An unknown receipt is null, not an error.
    let unknown = post(&app, None, "{ complaintStatus(receipt: \"nope\") { id } }").await;
    assert_eq!(unknown["data"]["complaintStatus"], Value::Null, "{unknown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn input_the_desk_cannot_take_is_refused_and_nothing_is_kept() {
    let (_dir, app, state) = trenggalek().await;
    let good = "Lampu penerangan jalan padam sejak seminggu";
    // A code checked against the regions is the field's error (its data null, 200); input
    // its types refuse is a request error (400).
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "an unknown district",
            input("35.03.99", None, good),
            "districtCode bukan kode kecamatan",
        ),
        (
            "a village of another district",
            input("35.03.04", Some("35.03.01.2001"), good),
            "villageCode bukan kode desa",
        ),
        (
            "a 1 MB description",
            input("35.03.04", None, &"a".repeat(1_000_000)),
            "ComplaintInput.description holds 10 to 4000 characters, not 1000000",
        ),
        (
            "a description too short to act on",
            input("35.03.04", None, "rusak"),
            "holds 10 to 4000 characters, not 5",
        ),
        (
            "no category",
            json!({ "description": good, "districtCode": "35.03.04" }),
            "category",
        ),
        (
            "a category the desk does not know",
            json!({ "category": "UFO", "description": good, "districtCode": "35.03.04" }),
            "UFO",
        ),
    ];
    for (what, input, said) in cases {
        let (status, answer) = submit(&app, input).await;
        let field_error = what.contains("district");
        assert_eq!(
            status,
            if field_error { 200 } else { 400 },
            "{what}: {answer}"
        );
        if field_error {
            assert_eq!(answer["data"], Value::Null, "{what}: {answer}");
            assert_eq!(answer["errors"][0]["path"], json!(["submitComplaint"]));
        }
        let error = &answer["errors"][0];
        assert_eq!(
            error["extensions"]["code"], "BAD_REQUEST",
            "{what}: {answer}"
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(said), "{what}: {message}");
        assert!(!answer.to_string().contains(CONTACT), "{what}: {answer}");
    }

    // Photos: 50 MB is over the body's bound; a text file is not an image.
    let operations = json!({
        "query": SUBMIT,
        "variables": { "input": input("35.03.04", None, good), "photos": [Value::Null] },
    });
    let map = json!({ "0": ["variables.photos.0"] });
    let (status, answer) = crate::uploads::post(
        &app,
        &[
            Part::json("operations", &operations),
            Part::json("map", &map),
            Part::file("0", "big.jpg", "image/jpeg", jpeg(50 << 20)),
        ],
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    let (status, answer) = crate::uploads::post(
        &app,
        &[
            Part::json("operations", &operations),
            Part::json("map", &map),
            Part::file("0", "photo.jpg", "image/jpeg", b"just some text".to_vec()),
        ],
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not a JPEG, PNG or WebP image"),
        "{message}"
    );
    assert!(outbox(&state).await.is_empty(), "nothing may be kept");

    // The same with a real photo is accepted: the refusals above were for what they said.
    let (status, answer) = crate::uploads::post(
        &app,
        &[
            Part::json("operations", &operations),
            Part::json("map", &map),
            Part::file("0", "photo.png", "image/png", png()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["submitComplaint"]["status"], "PENDING");
    assert_eq!(outbox(&state).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mutation_bound_to_sql_writes_with_bound_parameters_and_is_never_cached() {
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("connectors")).expect("connectors");
    std::fs::create_dir_all(root.join("data")).expect("data");
    std::fs::write(
        root.join("data/seed.sql"),
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);",
    )
    .expect("seed");
    std::fs::write(
        root.join("connectors/db.toml"),
        "title = \"Notes\"\n[sqlite]\npath = \"data/db.db\"\nseed = \"data/seed.sql\"\n[cache]\nttl = \"1h\"\n",
    )
    .expect("connector");
    std::fs::write(
        root.join("schema.graphql"),
        r#"type Query { notes: [Note!]! @sql(connector: "db", query: "SELECT id, text FROM notes ORDER BY id") @cache(ttl: "0s") }
type Mutation {
  addNote(text: String!): Note @sql(connector: "db", query: "INSERT INTO notes (text) VALUES ({{args.text}}) RETURNING id, text")
  renameNote(id: Int!, text: String!): Note @sql(connector: "db", query: "UPDATE notes SET text = {{args.text}} WHERE id = {{args.id}} RETURNING id, text")
}
type Note { id: Int! text: String! }
"#,
    )
    .expect("schema");
    let app = TestApp::spawn(root, &[]).await;
    // A value that would break a spliced statement is stored as it is; the same mutation
    // twice is two rows (a write's answer is never cached nor shared).
    let hostile = "x'); DROP TABLE notes; --";
    let add = format!(
        "mutation {{ addNote(text: {}) {{ id text }} }}",
        json!(hostile)
    );
    let first = post(&app, None, &add).await;
    let second = post(&app, None, &add).await;
    assert_eq!(
        first["data"]["addNote"],
        json!({ "id": 1, "text": hostile }),
        "{first}"
    );
    assert_eq!(second["data"]["addNote"]["id"], 2, "{second}");
    let renamed = post(
        &app,
        None,
        "mutation { renameNote(id: 1, text: \"dibaca\") { id text } }",
    )
    .await;
    assert_eq!(
        renamed["data"]["renameNote"],
        json!({ "id": 1, "text": "dibaca" })
    );
    let notes = post(&app, None, "{ notes { id text } }").await;
    assert_eq!(
        notes["data"]["notes"],
        json!([{ "id": 1, "text": "dibaca" }, { "id": 2, "text": hostile }]),
        "{notes}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_anonymous_client_submits_within_its_write_budget_and_staff_are_not_counted() {
    let (_dir, app, state) = trenggalek_with("public_writes = \"2/h\"").await;
    let good = "Saluran air tersumbat di depan sekolah";
    for _ in 0..2 {
        let (status, answer) = submit(&app, input("35.03.04", None, good)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["data"]["submitComplaint"]["status"], "PENDING",
            "{answer}"
        );
    }
    let (_, answer) = submit(&app, input("35.03.04", None, good)).await;
    assert_eq!(answer["data"], Value::Null, "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{answer}"
    );
    assert_eq!(outbox(&state).await.len(), 2, "the third was not kept");
    // Staff writes (a desk officer entering a phoned-in complaint) have no such budget.
    let staff = staff_token("kominfo");
    let query = format!(
        "mutation {{ submitComplaint(input: {{category: HEALTH, description: \"{good}\", districtCode: \"35.03.04\"}}) {{ status }} }}"
    );
    let answer = post(&app, Some(&staff), &query).await;
    assert_eq!(
        answer["data"]["submitComplaint"]["status"], "PENDING",
        "{answer}"
    );
    assert_eq!(outbox(&state).await.len(), 3);
}
