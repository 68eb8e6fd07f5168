//! File uploads (the GraphQL multipart request spec) against tests/uploads/: photos of a
//! complaint reach an HTTP API on loopback as `{filename, contentType, size, sha256, data}`;
//! files too large, too many, not images, put outside the variables, or sent without a
//! preflight header are refused with a JSON error and nothing runs.

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{TestApp, copy_deployment, repo_root};

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

pub(crate) fn png() -> Vec<u8> {
    STANDARD.decode(PNG).expect("png")
}

/// JPEG's start of image and JFIF header, then bytes enough to look like a photo.
pub(crate) fn jpeg(len: usize) -> Vec<u8> {
    let mut bytes = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00".to_vec();
    bytes.extend((0..len.saturating_sub(bytes.len())).map(|i| (i % 251) as u8));
    bytes
}

const SUBMIT: &str = "mutation($input: ComplaintInput!, $photos: [Upload!]) { \
    submitComplaint(input: $input, photos: $photos) { id photos } }";

/// The complaint API: records each body it receives, answers a receipt.
#[derive(Clone, Default)]
struct Intake {
    received: Arc<Mutex<Vec<Value>>>,
}

impl Intake {
    async fn start() -> (Intake, String) {
        let intake = Intake::default();
        let recorded = intake.clone();
        let app = axum::Router::new().route(
            "/photos",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let recorded = recorded.clone();
                async move {
                    let photos = body["photos"].as_array().map_or(0, Vec::len);
                    recorded.received.lock().expect("log").push(body);
                    axum::Json(json!({ "id": 7, "photos": photos }))
                }
            }),
        );
        let url = crate::harness::serve_loopback(app).await;
        (intake, url)
    }

    fn received(&self) -> Vec<Value> {
        self.received.lock().expect("log").clone()
    }
}

async fn app_in(dir: &Path) -> (TestApp, Intake) {
    let (intake, url) = Intake::start().await;
    let app = TestApp::spawn(dir, &[("ECHO_URL", url.as_str())]).await;
    (app, intake)
}

async fn app() -> (TestApp, Intake) {
    app_in(&repo_root().join("tests/uploads")).await
}

/// A part of a multipart body: its name, and for a file its filename and content type.
pub(crate) struct Part<'a> {
    name: &'a str,
    file: Option<(&'a str, &'a str)>,
    bytes: Vec<u8>,
}

impl<'a> Part<'a> {
    pub(crate) fn json(name: &'a str, v: &Value) -> Part<'a> {
        Part {
            name,
            file: None,
            bytes: v.to_string().into_bytes(),
        }
    }

    pub(crate) fn file(
        name: &'a str,
        filename: &'a str,
        content_type: &'a str,
        bytes: Vec<u8>,
    ) -> Part<'a> {
        Part {
            name,
            file: Some((filename, content_type)),
            bytes,
        }
    }
}

const BOUNDARY: &str = "----simpul-test-boundary-7MA4YWxkTrZu0gW";

fn body_of(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match p.file {
            Some((filename, content_type)) => format!(
                "Content-Disposition: form-data; name=\"{}\"; filename=\"{filename}\"\r\n\
                 Content-Type: {content_type}\r\n\r\n",
                p.name
            ),
            None => format!(
                "Content-Disposition: form-data; name=\"{}\"\r\n\r\n",
                p.name
            ),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(&p.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `operations` for the complaint with `n` photos (null where each file goes).
fn operations(n: usize) -> Value {
    json!({
        "query": SUBMIT,
        "variables": { "input": { "title": "Jalan berlubang", "village": "Ngantru" }, "photos": vec![Value::Null; n] },
    })
}

/// `map` putting file `i` at `variables.photos.i`.
fn map(n: usize) -> Value {
    Value::Object(
        (0..n)
            .map(|i| (i.to_string(), json!([format!("variables.photos.{i}")])))
            .collect(),
    )
}

/// POSTs a multipart body with the header Apollo clients send to pass CSRF prevention.
pub(crate) async fn post(app: &TestApp, parts: &[Part<'_>]) -> (u16, Value) {
    send(app, parts, &[("apollo-require-preflight", "true")]).await
}

async fn send(app: &TestApp, parts: &[Part<'_>], headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.url))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body_of(parts));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let resp = request.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

fn only_error(body: &Value) -> (&str, &str) {
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    (
        errors[0]["message"].as_str().expect("message"),
        errors[0]["extensions"]["code"].as_str().expect("code"),
    )
}

fn described(filename: &str, content_type: &str, bytes: &[u8]) -> Value {
    let sha256: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({
        "filename": filename,
        "contentType": content_type,
        "size": bytes.len(),
        "sha256": sha256,
        "data": STANDARD.encode(bytes),
    })
}

#[tokio::test]
async fn a_png_and_a_jpeg_reach_the_upstream_as_described_files() {
    let (app, intake) = app().await;
    let (png, jpeg) = (png(), jpeg(3000));
    let (status, body) = post(
        &app,
        &[
            Part::json("operations", &operations(2)),
            Part::json("map", &map(2)),
            // The client's content types are not believed: the bytes decide.
            Part::file("0", "sawah.png", "application/octet-stream", png.clone()),
            Part::file("1", "jalan.jpg", "image/png", jpeg.clone()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({ "submitComplaint": { "id": 7, "photos": 2 } })
    );
    assert!(body.get("errors").is_none(), "{body}");
    let received = intake.received();
    assert_eq!(received.len(), 1, "one call upstream");
    assert_eq!(
        received[0],
        json!({
            "complaint": { "title": "Jalan berlubang", "village": "Ngantru" },
            "photos": [
                described("sawah.png", "image/png", &png),
                described("jalan.jpg", "image/jpeg", &jpeg),
            ],
        })
    );
}

#[tokio::test]
async fn a_file_over_max_upload_bytes_is_413_and_nothing_runs() {
    let (app, intake) = app().await;
    let (status, body) = post(
        &app,
        &[
            Part::json("operations", &operations(1)),
            Part::json("map", &map(1)),
            Part::file("0", "besar.jpg", "image/jpeg", jpeg(6 << 20)),
        ],
    )
    .await;
    assert_eq!(status, 413, "{body}");
    let (message, code) = only_error(&body);
    assert_eq!(code, "BAD_REQUEST");
    assert!(
        message.starts_with("photos.0 has more than 5242880 bytes"),
        "{message}"
    );
    assert!(
        message.contains("limit max_upload_bytes = 5242880"),
        "{message}"
    );
    assert!(intake.received().is_empty(), "nothing reached the upstream");
    // The connection still answers: the refused body was drained.
    let (status, body) = post(
        &app,
        &[
            Part::json("operations", &operations(1)),
            Part::json("map", &map(1)),
            Part::file("0", "kecil.png", "image/png", png()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["submitComplaint"]["photos"], 1);
}

#[tokio::test]
async fn five_files_are_400_before_any_is_read() {
    let (app, intake) = app().await;
    let mut parts = vec![
        Part::json("operations", &operations(5)),
        Part::json("map", &map(5)),
    ];
    let names = ["0", "1", "2", "3", "4"];
    for name in names {
        parts.push(Part::file(name, "f.png", "image/png", png()));
    }
    let (status, body) = post(&app, &parts).await;
    assert_eq!(status, 400, "{body}");
    let (message, code) = only_error(&body);
    assert_eq!(code, "BAD_REQUEST");
    assert_eq!(message, "the request has 5 files (limit max_uploads = 4)");
    assert!(intake.received().is_empty());
}

#[tokio::test]
async fn a_text_file_named_like_a_photo_is_not_an_image() {
    let (app, intake) = app().await;
    let (status, body) = post(
        &app,
        &[
            Part::json("operations", &operations(1)),
            Part::json("map", &map(1)),
            Part::file(
                "0",
                "photo.jpg",
                "image/jpeg",
                b"Dear sir, the road in front of my house has a hole.".to_vec(),
            ),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (message, code) = only_error(&body);
    assert_eq!(code, "BAD_REQUEST");
    assert_eq!(message, "photos.0 is not a JPEG, PNG or WebP image");
    assert!(intake.received().is_empty());
}

#[tokio::test]
async fn a_place_outside_the_variables_is_refused() {
    let (app, intake) = app().await;
    for (place, expected) in [
        (
            "query",
            "'map' puts the file '0' at 'query': a file's place must be in the variables",
        ),
        (
            "variables.photos.3",
            "'map' puts the file '0' at 'variables.photos.3', which is not in the operation's variables",
        ),
    ] {
        let (status, body) = post(
            &app,
            &[
                Part::json("operations", &operations(1)),
                Part::json("map", &json!({ "0": [place] })),
                Part::file("0", "a.png", "image/png", png()),
            ],
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let (message, code) = only_error(&body);
        assert_eq!(code, "BAD_REQUEST");
        assert!(message.starts_with(expected), "{message}");
    }
    assert!(intake.received().is_empty());
}

#[tokio::test]
async fn malformed_multipart_requests_are_400_with_a_reason() {
    let (app, intake) = app().await;
    let file = || Part::file("0", "a.png", "image/png", png());
    let batch = json!([operations(1), operations(1)]);
    let cases: Vec<(Vec<Part>, &str)> = vec![
        (
            vec![
                Part::json("operations", &batch),
                Part::json("map", &map(1)),
                file(),
            ],
            "'operations' holds a batch (an array): send one operation per request",
        ),
        (
            vec![
                Part::json("map", &map(1)),
                Part::json("operations", &operations(1)),
                file(),
            ],
            "the multipart parts must be 'operations', then 'map', then the files; found 'map' where 'operations' goes",
        ),
        (
            vec![
                Part::json("operations", &operations(1)),
                Part::json("map", &map(1)),
            ],
            "'map' names the file '0', which the request does not carry",
        ),
        (
            vec![
                Part::json("operations", &operations(1)),
                Part::json("map", &map(1)),
                file(),
                Part::file("9", "b.png", "image/png", png()),
            ],
            "the multipart part '9' is not a file named in 'map'",
        ),
    ];
    for (parts, expected) in cases {
        let (status, body) = post(&app, &parts).await;
        assert_eq!(status, 400, "{body}");
        let (message, code) = only_error(&body);
        assert_eq!((message, code), (expected, "BAD_REQUEST"));
    }
    assert!(intake.received().is_empty());
}

#[tokio::test]
async fn multipart_without_a_preflight_header_is_refused_as_possible_csrf() {
    let (app, intake) = app().await;
    let parts = [
        Part::json("operations", &operations(1)),
        Part::json("map", &map(1)),
        Part::file("0", "a.png", "image/png", png()),
    ];
    let (status, body) = send(&app, &parts, &[]).await;
    assert_eq!(status, 400, "{body}");
    let (message, code) = only_error(&body);
    assert_eq!(code, "BAD_REQUEST");
    assert!(
        message.starts_with("this request could be a cross-site request forgery"),
        "{message}"
    );
    assert!(intake.received().is_empty());
    // Apollo clients' other header lets it through.
    let (status, body) = send(&app, &parts, &[("x-apollo-operation-name", "Submit")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["submitComplaint"]["photos"], 1);
    assert_eq!(intake.received().len(), 1);
}

#[tokio::test]
async fn an_upload_in_json_variables_passes_the_same_rule() {
    let (app, intake) = app().await;
    let graphql = |variables: Value| {
        app.client
            .post(format!("{}/graphql", app.url))
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": SUBMIT, "variables": variables }))
            .send()
    };
    let input = json!({ "title": "Sampah menumpuk" });
    // A text claiming to be a JPEG, with made-up size and hash.
    let fake = json!({
        "filename": "photo.jpg",
        "contentType": "image/jpeg",
        "size": 12345,
        "sha256": "00",
        "data": STANDARD.encode("not a photo at all"),
    });
    let resp = graphql(json!({ "input": input, "photos": [fake] }))
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    let (message, code) = only_error(&body);
    assert_eq!(code, "BAD_REQUEST");
    assert_eq!(
        message,
        "variable $photos got an invalid value: at [0]: Upload 'photo.jpg' is not a JPEG, PNG or WebP image"
    );
    // Under plain JSON a request error is 200 (GraphQL over HTTP), still without data.
    let resp = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&json!({ "query": SUBMIT, "variables": { "input": input, "photos": [fake] } }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(only_error(&body).0, message);
    let resp = graphql(json!({ "input": input, "photos": ["sawah.png"] }))
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    assert!(
        only_error(&body)
            .0
            .contains("Upload must be a file sent as a multipart part"),
        "{body}"
    );
    // Written into the document itself, the same rule, as validation.
    let literal = format!(
        "mutation {{ submitComplaint(input: {{title: \"x\"}}, photos: [{{filename: \"photo.jpg\", data: \"{}\"}}]) {{ id }} }}",
        STANDARD.encode("not a photo at all")
    );
    let resp = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": literal }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    let (message, code) = only_error(&body);
    assert_eq!(code, "BAD_REQUEST");
    assert_eq!(
        message,
        "Invalid value for argument \"photos.0\", expected type \"Upload\""
    );
    assert!(intake.received().is_empty());

    // A real image: its size, hash and type are computed from its data.
    let png = png();
    let given = json!({ "filename": "sawah.png", "data": STANDARD.encode(&png) });
    let resp = graphql(json!({ "input": input, "photos": [given] }))
        .await
        .expect("request");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["data"]["submitComplaint"]["photos"], 1, "{body}");
    assert_eq!(
        intake.received()[0]["photos"],
        json!([described("sawah.png", "image/png", &png)])
    );
}

#[tokio::test]
async fn a_multipart_body_over_its_bound_is_413_before_it_is_read() {
    let dir = copy_deployment(&repo_root().join("tests/uploads"));
    std::fs::write(
        dir.path().join("simpul.toml"),
        "[limits]\nmax_body_bytes = 4096\nmax_upload_bytes = 1024\nmax_uploads = 1\n",
    )
    .expect("simpul.toml");
    let (app, intake) = app_in(dir.path()).await;
    let (status, body) = post(
        &app,
        &[
            Part::json("operations", &operations(1)),
            Part::json("map", &map(1)),
            Part::file("0", "a.jpg", "image/jpeg", jpeg(20_000)),
        ],
    )
    .await;
    assert_eq!(status, 413, "{body}");
    let (message, code) = only_error(&body);
    assert_eq!(code, "BAD_REQUEST");
    assert!(
        message.ends_with("(limit max_uploads × max_upload_bytes + max_body_bytes = 5120)"),
        "{message}"
    );
    // Within the body bound, the file's own bound still holds.
    let (status, body) = post(
        &app,
        &[
            Part::json("operations", &operations(1)),
            Part::json("map", &map(1)),
            Part::file("0", "a.jpg", "image/jpeg", jpeg(2000)),
        ],
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        only_error(&body)
            .0
            .starts_with("photos.0 has more than 1024 bytes"),
        "{body}"
    );
    assert!(intake.received().is_empty());
}

#[tokio::test]
async fn a_schema_may_declare_scalar_upload_itself() {
    let dir = copy_deployment(&repo_root().join("tests/uploads"));
    let schema = dir.path().join("schema.graphql");
    let sdl = std::fs::read_to_string(&schema).expect("schema");
    std::fs::write(&schema, format!("scalar Upload\n{sdl}")).expect("schema");
    let (app, intake) = app_in(dir.path()).await;
    let (status, body) = post(
        &app,
        &[
            Part::json("operations", &operations(1)),
            Part::json("map", &map(1)),
            Part::file("0", "a.png", "image/png", png()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        intake.received()[0]["photos"][0]["contentType"],
        "image/png"
    );
}
