//! The dashboard operations of queries/ as ready-made requests, each with the data it must
//! answer (queries/NAME.snap), and the check of an answer against it.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use crate::client;

/// One dashboard operation: its name, the whole HTTP request, and the data it must answer.
pub struct Op {
    pub name: String,
    pub request: Vec<u8>,
    expected: Value,
}

/// The operations of queries/ with the data each must answer: an insta snapshot is a `---`
/// header block, then the JSON of `data`.
pub fn operations(root: &Path, addr: SocketAddr) -> Vec<Op> {
    let mut files: Vec<_> = std::fs::read_dir(root.join("queries"))
        .expect("read queries/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "graphql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no operations in queries/");
    files
        .into_iter()
        .map(|f| {
            let name = f
                .file_stem()
                .map_or(String::new(), |s| s.to_string_lossy().into());
            let query = std::fs::read_to_string(&f).expect("read the query");
            let snap = std::fs::read_to_string(f.with_extension("snap"))
                .unwrap_or_else(|e| panic!("queries/{name}.snap: {e}"));
            let json = snap.splitn(3, "---\n").nth(2).expect("a snapshot body");
            let expected = serde_json::from_str(json).expect("the snapshot's JSON");
            let body = serde_json::json!({ "query": query }).to_string();
            let request = client::raw_post(addr, "/graphql", "", body.as_bytes());
            Op {
                name,
                request,
                expected,
            }
        })
        .collect()
}

/// The first place where `got` differs from `want`, as a JSON pointer (a missing key is a
/// difference, also where `want` holds a null).
fn difference(got: &Value, want: &Value, at: &str) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w
            .iter()
            .find_map(|(k, wv)| match g.get(k) {
                None => Some(format!("{at}/{k} (missing)")),
                Some(gv) => difference(gv, wv, &format!("{at}/{k}")),
            })
            .or_else(|| {
                let extra = g.keys().find(|k| !w.contains_key(*k))?;
                Some(format!("{at}/{extra} (unexpected)"))
            }),
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (gv, wv))| difference(gv, wv, &format!("{at}/{i}"))),
        _ if got == want => None,
        _ => Some(format!(
            "{at}: {:.120} instead of {:.120}",
            got.to_string(),
            want.to_string()
        )),
    }
}

/// Status 200, no `errors`, and `data` equal to the snapshot's; then the calls the request
/// made to sources rather than the cache (`extensions.sources` entries not `HIT`).
pub fn check(op: &Op, status: u16, body: &[u8]) -> Result<u64, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    if status != 200 {
        return Err(format!("HTTP {status}: {:.200}", v.to_string()));
    }
    let data = crate::data(&v)?;
    match difference(data, &op.expected, "/data") {
        None => Ok(v
            .pointer("/extensions/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|x| x["cache"] != "HIT")
            .filter_map(|x| x["calls"].as_u64())
            .sum()),
        Some(d) => Err(format!("differs from queries/{}.snap at {d}", op.name)),
    }
}
