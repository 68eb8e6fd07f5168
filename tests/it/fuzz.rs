//! Fuzzing on the stable toolchain, bounded in time so it runs with every `cargo test`:
//! inputs mutated from the committed corpus in tests/fuzz/corpus/ never make the gateway
//! panic, hang or answer 5xx (request bodies through the router), and never make the
//! deployment compiler panic or hang (schema.graphql, connectors/*.toml, simpul.toml).
//!
//! `SIMPUL_FUZZ_SECS` bounds each target (default 20), `SIMPUL_FUZZ_SEED` picks the seed
//! (a number, or `random`; a fixed one by default). A failing input is written to
//! tests/fuzz/failures/ with the command that replays it (`SIMPUL_FUZZ_REPLAY=PATH`); one
//! that ends the process (a stack overflow) is left there as `request-current`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use serde_json::Value;
use tower::ServiceExt;

use crate::harness::repo_root;

/// How long one request may take to be answered, its body read included.
const REQUEST_BOUND: Duration = Duration::from_secs(2);
/// How long compiling one small deployment may take (a debug build on a busy machine).
const COMPILE_BOUND: Duration = Duration::from_secs(5);
/// Largest mutated input: room for repeated chunks (nesting, aliases) well past the limits.
const MAX_INPUT: usize = 256 << 10;

fn corpus(target: &str) -> PathBuf {
    repo_root().join("tests/fuzz/corpus").join(target)
}

fn failures() -> PathBuf {
    repo_root().join("tests/fuzz/failures")
}

/// The time each target runs for.
fn budget() -> Duration {
    let secs = std::env::var("SIMPUL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// The seed: fixed unless `SIMPUL_FUZZ_SEED` says otherwise; printed to replay a run.
fn seed(target: &str) -> u64 {
    let seed = match std::env::var("SIMPUL_FUZZ_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        Some(n) => n.parse().expect("SIMPUL_FUZZ_SEED is a number or `random`"),
        None => 12,
    };
    eprintln!("fuzz {target}: SIMPUL_FUZZ_SEED={seed}");
    seed
}

/// SplitMix64: tiny, and the same sequence for a seed on every platform and version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that often change how JSON, GraphQL, TOML or UTF-8 is read.
const INTERESTING: &[u8] = b"\0\x7f\xff\xc3\xed\t\n\r \"'\\{}[]()<>:,;=#$@!.|&-+0129eE";

/// Applies 1 to `edits` random edits to `input`: bit flips, interesting bytes, deletions, tokens
/// of `dictionary`, a chunk repeated (nesting, aliases, bombs), a chunk of another input
/// spliced in, truncation.
fn mutate(
    rng: &mut Rng,
    input: &mut Vec<u8>,
    others: &[Vec<u8>],
    dictionary: &[&str],
    edits: usize,
) {
    for _ in 0..1 + rng.below(edits) {
        let at = rng.below(input.len() + 1);
        let len = 1 + rng.below(32.min(input.len().saturating_sub(at)).max(1));
        let end = (at + len).min(input.len());
        match rng.below(9) {
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            1 if at < input.len() => input[at] = *rng.pick(INTERESTING),
            2 => {
                input.drain(at..end);
            }
            3 | 4 => {
                let token = rng.pick(dictionary).as_bytes();
                input.splice(at..at, token.iter().copied());
            }
            5 if at < end => {
                let chunk = input[at..end].to_vec();
                let most = if rng.below(4) == 0 { 2_000 } else { 16 };
                let times = 1 + rng.below(most);
                let repeated: Vec<u8> = chunk
                    .iter()
                    .copied()
                    .cycle()
                    .take(chunk.len() * times)
                    .collect();
                input.splice(at..at, repeated);
            }
            6 => {
                let other = rng.pick(others);
                let from = rng.below(other.len());
                let to = (from + 1 + rng.below(64)).min(other.len());
                input.splice(at..at, other[from..to].iter().copied());
            }
            7 => input.truncate(at),
            _ => {
                let token = rng.pick(dictionary).as_bytes();
                input.splice(at..end, token.iter().copied());
            }
        }
        input.truncate(MAX_INPUT);
    }
}

/// The files of `dir`, sorted, with their bytes.
fn read_seeds(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("seed");
            (p, bytes)
        })
        .collect()
}

/// Writes a failing input to tests/fuzz/failures/NAME and says how to replay it.
fn keep_failure(name: &str, write: impl FnOnce(&Path), test: &str) -> String {
    let path = failures().join(name);
    let _ = std::fs::remove_dir_all(&path);
    let _ = std::fs::remove_file(&path);
    std::fs::create_dir_all(failures()).expect("tests/fuzz/failures");
    write(&path);
    format!(
        "kept in {}; replay: SIMPUL_FUZZ_REPLAY={} cargo test --release --test it {test}",
        path.display(),
        path.display()
    )
}

fn replay() -> Option<PathBuf> {
    std::env::var_os("SIMPUL_FUZZ_REPLAY").map(PathBuf::from)
}

// ---------------------------------------------------------------------------------------
// a) Request bodies through the router

const REQUEST_TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    "\\\"",
    "\\u0000",
    "\\ud800",
    "\\n",
    "...",
    "... on Query ",
    "...F ",
    "fragment F on Query { greet } ",
    "fragment F on Item { ...F } ",
    "query ",
    "query Q($v: Int = 1) ",
    "mutation ",
    "subscription ",
    "__typename ",
    "__schema { types { name } } ",
    "__type(name: \\\"Item\\\") { ofType { name } } ",
    "items { id name tags { label } } ",
    "item(id: 2) { id } ",
    "item(id: $v) { id } ",
    "byName(name: \\\"satu\\\") { id } ",
    "byKind(kind: B) { id } ",
    "a: ",
    "@skip(if: true) ",
    "@include(if: $v) ",
    "@deprecated ",
    "$v",
    "\"variables\":{\"v\":1},",
    "\"variables\":[],",
    "\"operationName\":\"Q\",",
    "\"extensions\":{},",
    "\"query\":",
    "null",
    "true",
    "[",
    "]",
    "1e999",
    "-0",
    "123456789012345678901234567890",
    "#",
    "\\\"\\\"\\\"",
    "\u{feff}",
    "\u{1F600}",
];

/// Tokens for the GraphQL text itself, once it is out of its JSON string.
const GRAPHQL_TOKENS: &[&str] = &[
    "{ ",
    "} ",
    "(",
    ")",
    "[",
    "]",
    ": ",
    "\"",
    "\"\"\"",
    "\\u0000",
    "\\ud800",
    "...",
    "... on Item ",
    "fragment F on Query { ...F } ",
    "...F ",
    "query Q($v: Int = 1, $s: String) ",
    "$v ",
    "$s ",
    "mutation ",
    "__typename ",
    "__schema { types { name fields { name } } } ",
    "__type(name: \"Item\") { ofType { ofType { name } } } ",
    "items { id name kind tags { label } } ",
    "item(id: 2147483648) { id } ",
    "byName(name: $s, limit: -1) { id } ",
    "byKind(kind: C) { id } ",
    "a: ",
    "@skip(if: $v) ",
    "@include(if: true) ",
    "@nope ",
    "secret ",
    "null ",
    "1e999 ",
    "\n# comment\n",
    ",",
    "\u{1F600}",
];

/// Mutates a request: half the time the GraphQL text or the variables inside a JSON body,
/// so the mutations reach the parser, the limits and the planner, else the raw bytes.
fn mutate_request(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    if rng.below(2) == 0
        && let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(input)
    {
        let key = if rng.below(4) == 0 {
            "variables"
        } else {
            "query"
        };
        let mut text = match body.get(key) {
            Some(Value::String(q)) => q.clone().into_bytes(),
            Some(v) => v.to_string().into_bytes(),
            None => Vec::new(),
        };
        // Few edits: most texts still parse, and reach validation and the planner.
        mutate(rng, &mut text, others, GRAPHQL_TOKENS, 2);
        let text = String::from_utf8_lossy(&text).into_owned();
        let value = match key {
            "query" => Value::String(text),
            _ => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        };
        body.insert(key.into(), value);
        *input = Value::Object(body).to_string().into_bytes();
        return;
    }
    mutate(rng, input, others, REQUEST_TOKENS, 8);
}

/// The sheet deployment of the corpus, served in process.
async fn sheet_router() -> (tempfile::TempDir, axum::Router) {
    let dir = crate::harness::copy_deployment(&corpus("deployment/sheet"));
    simpul::install_crypto();
    let blueprint = simpul::compile::compile_dir_with_env(dir.path(), &|_: &str| None)
        .unwrap_or_else(|d| panic!("the sheet deployment compiles: {d:?}"));
    let state = simpul::server::AppState::start(blueprint, dir.path())
        .await
        .expect("start");
    (dir, simpul::server::router(state))
}

/// How an input is sent: as a POST body, or as GET's `query` parameter.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Post,
    Get,
}

fn request(shape: Shape, accept: &str, input: &[u8]) -> Request<Body> {
    let builder = Request::builder().header(header::ACCEPT, accept);
    let built = match shape {
        Shape::Post => builder
            .method("POST")
            .uri("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(input.to_vec())),
        Shape::Get => {
            let query = percent_encoding::percent_encode(input, percent_encoding::NON_ALPHANUMERIC);
            builder
                .method("GET")
                .uri(format!("/graphql?query={query}"))
                .body(Body::empty())
        }
    };
    built.expect("request")
}

/// Sends `input` and checks the answer: within the bound, below 500, and JSON when it says
/// it is JSON. Runs in its own task, so a panic is reported instead of ending the test.
async fn check_request(
    router: &axum::Router,
    shape: Shape,
    accept: &str,
    input: &[u8],
) -> Result<(u16, String), String> {
    let (router, req) = (router.clone(), request(shape, accept, input));
    let answer = tokio::spawn(async move {
        let r = router.oneshot(req).await.map_err(|e| format!("{e:?}"))?;
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        Ok::<_, String>((status, ct, body))
    });
    let (status, ct, body) = match tokio::time::timeout(REQUEST_BOUND, answer).await {
        Err(_) => return Err(format!("no answer within {REQUEST_BOUND:?}")),
        Ok(Err(e)) => return Err(format!("the handler panicked: {e}")),
        Ok(Ok(Err(e))) => return Err(e),
        Ok(Ok(Ok(answer))) => answer,
    };
    let shown = || {
        String::from_utf8_lossy(&body)
            .chars()
            .take(300)
            .collect::<String>()
    };
    if status >= 500 {
        return Err(format!("answered {status}: {}", shown()));
    }
    if ct.contains("json") && serde_json::from_slice::<Value>(&body).is_err() {
        return Err(format!(
            "answered {status} {ct} that is not JSON: {}",
            shown()
        ));
    }
    Ok((status, shown()))
}

const ACCEPTS: &[&str] = &[
    "application/graphql-response+json",
    "application/json",
    "*/*",
];

/// Sends a kept input every way the fuzz loop can.
async fn replay_request(router: &axum::Router, path: &Path) {
    let input = std::fs::read(path).expect("replay input");
    let shapes: &[Shape] = if input.len() * 3 < 60_000 {
        &[Shape::Post, Shape::Get]
    } else {
        &[Shape::Post]
    };
    for &shape in shapes {
        for accept in ACCEPTS {
            let r = check_request(router, shape, accept, &input).await;
            assert!(r.is_ok(), "{shape:?} {accept}: {r:?}");
        }
    }
}

/// The seeds themselves, unmutated: the valid ones (named valid-*) are answered with data,
/// the others refused.
async fn check_seeds(router: &axum::Router, seeds: &[(PathBuf, Vec<u8>)]) {
    let mut unexpected = Vec::new();
    for (path, input) in seeds {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match check_request(router, Shape::Post, ACCEPTS[0], input).await {
            Ok((status, _)) if name.starts_with("valid-") == (status == 200) => {}
            other => unexpected.push(format!("seed {name}: {other:?}")),
        }
    }
    assert!(unexpected.is_empty(), "\n{}", unexpected.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fuzzed_request_bodies_never_panic_hang_or_answer_5xx() {
    let (_dir, router) = sheet_router().await;
    if let Some(path) = replay() {
        return replay_request(&router, &path).await;
    }
    let seeds = read_seeds(&corpus("request"));
    assert!(seeds.len() >= 30, "a few dozen seeds");
    check_seeds(&router, &seeds).await;
    let others: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let valid: Vec<Vec<u8>> = seeds
        .iter()
        .filter(|(p, _)| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("valid-"))
        })
        .map(|(_, b)| b.clone())
        .collect();

    let seed = seed("request");
    let mut rng = Rng(seed);
    let (started, budget) = (Instant::now(), budget());
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let (mut runs, mut executed) = (0usize, 0usize);
    std::fs::create_dir_all(failures()).expect("tests/fuzz/failures");
    let current = failures().join("request-current");
    while started.elapsed() < budget {
        // Half the time a valid seed: mutations of those are the ones that run.
        let pool = if rng.below(2) == 0 { &valid } else { &others };
        let mut input = rng.pick(pool).clone();
        mutate_request(&mut rng, &mut input, &others);
        // A URI holds at most 64 KiB (the http crate refuses longer ones before sending).
        let shape = if rng.below(8) == 0 && input.len() * 3 < 60_000 {
            Shape::Get
        } else {
            Shape::Post
        };
        let accept = *rng.pick(ACCEPTS);
        // A crash (stack overflow, abort) ends the process: the input is on disk first.
        std::fs::write(&current, &input).expect("write the current input");
        match check_request(&router, shape, accept, &input).await {
            Ok((status, body)) => {
                *statuses.entry(status).or_default() += 1;
                executed += usize::from(body.starts_with("{\"data\":{"));
            }
            Err(e) => {
                let kept = keep_failure(
                    &format!("request-{seed}-{runs}"),
                    |p| std::fs::write(p, &input).expect("keep"),
                    "fuzz::fuzzed_request_bodies",
                );
                panic!("input {runs} of seed {seed} ({shape:?}, accept {accept}): {e}\n{kept}");
            }
        }
        runs += 1;
    }
    let _ = std::fs::remove_file(&current);
    eprintln!(
        "fuzz request: {runs} inputs in {:?}, {executed} executed, statuses {statuses:?}",
        started.elapsed()
    );
    assert!(runs >= 100, "only {runs} inputs in {budget:?}");
    assert!(
        executed > 0 && statuses.contains_key(&400),
        "the mutations reach both execution and refusal: {executed} executed, {statuses:?}"
    );
}

// ---------------------------------------------------------------------------------------
// b) The deployment compiler

const DEPLOYMENT_TOKENS: &[&str] = &[
    "type ",
    "interface ",
    "union U = ",
    "enum E { A B } ",
    "input I { a: Int } ",
    "scalar S ",
    "extend type Query { x: Int } ",
    "implements ",
    "Query",
    "Mutation",
    "[",
    "]",
    "!",
    "{",
    "}",
    "(",
    ")",
    "\"",
    "\"\"\"",
    "@sql(connector: \"sheet\", query: \"SELECT 1\") ",
    "@http(connector: \"api\", path: \"/x\") ",
    "@const(value: 1) ",
    "@map(from: \"a.b.0\") ",
    "@cache(ttl: \"1h\", staleIfError: \"1d\") ",
    "@access(tier: RESTRICTED) ",
    "@suppress(below: 5) ",
    "@deprecated ",
    "batch: {key: \"id\"}",
    "{{args.id}}",
    "{{parent.id}}",
    "{{auth.opd}}",
    "{{",
    "}}",
    "${env.X}",
    "${env.X:-y}",
    "${env.",
    "[limits]\n",
    "[cache]\n",
    "[auth]\n",
    "[http]\n",
    "[file]\n",
    "[sqlite]\n",
    "[postgres]\n",
    "url = \"postgres://127.0.0.1:9/x\"\n",
    "base_url = \"file:data\"\n",
    "path = \"../../..\"\n",
    "max_depth = 0\n",
    "max_depth = 99999999999999999999\n",
    "timeout = \"-1s\"\n",
    "ttl = \"999999999999h\"\n",
    "max_memory = \"1ZiB\"\n",
    " = ",
    "\n",
    "#",
    "\u{0}",
    "\u{feff}",
];

/// A deployment as files: path inside the deployment, bytes.
type Files = Vec<(PathBuf, Vec<u8>)>;

fn read_deployment(dir: &Path) -> Files {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("inside").to_path_buf();
                files.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    files.sort();
    files
}

fn write_deployment(dir: &Path, files: &Files) {
    for (rel, bytes) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, bytes).expect("write");
    }
}

/// What the compiler reads and a mutation may change: the schema, connectors and settings.
fn mutable(rel: &Path) -> bool {
    rel == Path::new("schema.graphql")
        || rel == Path::new("simpul.toml")
        || (rel.starts_with("connectors") && rel.extension().is_some_and(|e| e == "toml"))
}

/// Compiles `dir` on its own thread: Ok(compiled or not) within the bound, Err on a panic
/// or when it takes longer.
fn compile(dir: &Path) -> Result<bool, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let env = |name: &str| (name == "BLOG_URL").then(|| "http://127.0.0.1:9".to_string());
        let outcome =
            std::panic::catch_unwind(|| simpul::compile::compile_dir_with_env(&dir, &env).is_ok());
        let _ = tx.send(outcome);
    });
    match rx.recv_timeout(COMPILE_BOUND) {
        Ok(Ok(compiled)) => Ok(compiled),
        Ok(Err(panic)) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("the compiler panicked: {message}"))
        }
        Err(_) => Err(format!("no result within {COMPILE_BOUND:?}")),
    }
}

/// The small deployments of tests/fuzz/corpus/deployment/, one folder each.
fn deployment_seeds() -> Vec<Files> {
    let mut dirs: Vec<_> = std::fs::read_dir(corpus("deployment"))
        .expect("tests/fuzz/corpus/deployment")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| read_deployment(d)).collect()
}

#[test]
fn fuzzed_deployments_compile_or_fail_with_diagnostics_never_panic_or_hang() {
    if let Some(path) = replay() {
        let r = compile(&path);
        assert!(r.is_ok(), "{}: {r:?}", path.display());
        return;
    }
    let seeds = deployment_seeds();
    assert!(seeds.len() >= 3, "a few small deployments");
    for files in &seeds {
        let dir = tempfile::tempdir().expect("tempdir");
        write_deployment(dir.path(), files);
        assert_eq!(
            compile(dir.path()),
            Ok(true),
            "every seed compiles: {files:?}"
        );
    }
    let others: Vec<Vec<u8>> = seeds
        .iter()
        .flatten()
        .filter(|(rel, _)| mutable(rel))
        .map(|(_, b)| b.clone())
        .collect();

    let seed = seed("deployment");
    let mut rng = Rng(seed);
    let (started, budget) = (Instant::now(), budget());
    let (mut runs, mut compiled) = (0usize, 0usize);
    while started.elapsed() < budget {
        let mut files = rng.pick(&seeds).clone();
        let targets: Vec<usize> = (0..files.len()).filter(|&i| mutable(&files[i].0)).collect();
        for _ in 0..1 + rng.below(2) {
            let i = *rng.pick(&targets);
            mutate(&mut rng, &mut files[i].1, &others, DEPLOYMENT_TOKENS, 4);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        write_deployment(dir.path(), &files);
        match compile(dir.path()) {
            Ok(ok) => compiled += usize::from(ok),
            Err(e) => {
                let kept = keep_failure(
                    &format!("deployment-{seed}-{runs}"),
                    |p| write_deployment(p, &files),
                    "fuzz::fuzzed_deployments",
                );
                panic!("input {runs} of seed {seed}: {e}\n{kept}");
            }
        }
        runs += 1;
    }
    eprintln!(
        "fuzz deployment: {runs} inputs in {:?}, {compiled} compiled",
        started.elapsed()
    );
    assert!(runs >= 100, "only {runs} inputs in {budget:?}");
    assert!(
        compiled > 0 && compiled < runs,
        "the mutations reach both outcomes: {compiled} of {runs} compiled"
    );
}
