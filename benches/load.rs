//! Load benchmarks: Simpul (the release binary, as its own process) against a bare axum
//! baseline that answers the same bytes, with in-process loopback upstreams and an
//! in-process load generator. Everything is on 127.0.0.1.
//!
//! ```text
//! cargo bench --bench load [-- --duration 10s --warmup 1s --connections 100 --only a,b --starts 5]
//! ```
//!
//! Workloads (`--only` takes their ids; `start` is the startup measurement):
//!
//! | id  | query                                                          | deployment |
//! |-----|----------------------------------------------------------------|------------|
//! | a   | `{ posts { id userId title user { id name email } } }`, batched | benches/deployments/blog |
//! | a2  | a with `@cache(ttl: "1s")` on both bindings (a′)               | benches/deployments/blog_cached |
//! | av  | a sent with a variable (`posts(first: $first)`)                 | benches/deployments/blog |
//! | ai  | a with `user @include(if: $withUser)`                          | benches/deployments/blog |
//! | ain | a as an INTERNAL caller (a bearer token verified per request)  | benches/deployments/blog |
//! | u   | a union: 100 posts and 10 users in one list, by `... on`       | benches/deployments/blog |
//! | b   | `{ posts { title } }`                                          | benches/deployments/blog |
//! | c   | `{ greet }` (`@const`)                                         | benches/deployments/blog |
//! | d   | the README's dashboard front page (regency → districts → ...) | repository root |
//! | e   | 157 villages, three batched bound fields each                  | repository root (fallback benches/deployments/villages) |
//! | f   | `{ items { id name value } }`, 10,000 items                    | benches/deployments/blog |
//! | f1k | the same with 1,000 items                                      | benches/deployments/blog |
//!
//! Each workload's answer is checked before anything is timed; Simpul's answer is then
//! registered with the baseline, which serves those exact bytes. Every run is bounded by
//! `--duration`; the Simpul processes are stopped at the end and on a panic.
//!
//! `--no-response-cache` turns the whole-response cache off (`[cache] response = false`) in
//! every deployment, to measure what the engine costs when no answer is replayed.
//!
//! `--otlp` sets `OTEL_EXPORTER_OTLP_ENDPOINT` to the bench's upstream, which accepts and
//! counts the exports: the cost of tracing every request.
//!
//! `--only soak` runs the soak, on a scratch copy of the repository-root deployment
//! with an admin token: `--soak-duration` (default 2m) of the operations of queries/ over
//! `--soak-connections` (default 64) connections, each answer checked against its
//! queries/NAME.snap, a fifth of the requests hung up on mid-request, and the whole cache
//! invalidated every second so calls keep reaching the sources. It samples Simpul's RSS, and
//! at the end reads `/readyz`: the run fails on a wrong or missing answer, an answer past the
//! request timeout, or a source that is not UP or still holds a call, permit or connection
//! 10 s after the traffic. The soak runs only when `--only` names it, and for 3 s (4
//! connections, invalidations every 250 ms) in the smoke run of `cargo test --benches`.
//!
//! Options for profiling: `--no-baseline`, and `--simpul-wrapper "CMD ARGS"` to start Simpul
//! under a profiler, e.g. `--simpul-wrapper "valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out"`
//! (Simpul is stopped with SIGTERM, so the profiler writes its output).

#[path = "load/baseline.rs"]
mod baseline;
#[path = "load/client.rs"]
mod client;
#[path = "load/dashboard.rs"]
mod dashboard;
#[path = "load/procs.rs"]
mod procs;
#[path = "load/soak.rs"]
mod soak;
#[path = "load/soak_report.rs"]
mod soak_report;
#[path = "load/upstream.rs"]
mod upstream;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use client::{Run, Target};
use procs::Proc;
use upstream::Upstream;

const DISTRICTS: usize = 14;
const VILLAGES: usize = 157;

// ---------------------------------------------------------------------------------------
// Options

struct Options {
    duration: Duration,
    warmup: Duration,
    connections: usize,
    only: Option<Vec<String>>,
    starts: usize,
    baseline: bool,
    response_cache: bool,
    /// Export traces (OTLP/HTTP) to the bench's upstream, every request sampled.
    otlp: bool,
    wrapper: Vec<String>,
    /// The short smoke run of `cargo test --benches`.
    quick: bool,
    soak_duration: Duration,
    soak_connections: usize,
}

const USAGE: &str = "usage: cargo bench --bench load [-- --duration 10s] [--warmup 1s] \
[--connections 100] [--only a,a2,av,ai,ain,u,b,c,d,e,f,f1k,start,soak] [--starts 5] [--no-baseline] \
[--no-response-cache] [--otlp] [--simpul-wrapper \"CMD ARGS\"] [--soak-duration 2m] \
[--soak-connections 64] [--quick]";

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration '{s}'"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in '{s}' (ms, s or m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn canonical_id(id: &str) -> Option<&'static str> {
    Some(match id.trim() {
        "a" => "a",
        "a2" | "a'" | "a′" | "ac" => "a2",
        "av" => "av",
        "ai" => "ai",
        "ain" => "ain",
        "u" => "u",
        "b" => "b",
        "c" => "c",
        "d" => "d",
        "e" => "e",
        "f" => "f",
        "f1k" => "f1k",
        "start" => "start",
        "soak" => "soak",
        _ => return None,
    })
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        // `cargo bench` passes --bench; without it the target was built as a test
        // (`cargo test --benches`): then only a short smoke run.
        let quick = !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--quick");
        let mut o = Options {
            duration: Duration::from_secs(if quick { 0 } else { 10 }),
            warmup: Duration::from_secs(if quick { 0 } else { 1 }),
            connections: if quick { 4 } else { 100 },
            only: None,
            starts: if quick { 1 } else { 5 },
            baseline: true,
            response_cache: true,
            otlp: false,
            wrapper: Vec::new(),
            quick,
            soak_duration: Duration::from_secs(if quick { 3 } else { 120 }),
            soak_connections: if quick { 4 } else { 64 },
        };
        if quick {
            o.duration = Duration::from_millis(300);
        }
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match name {
                "--bench" | "--quick" => {}
                "--duration" => o.duration = parse_duration(&value()?)?,
                "--warmup" => o.warmup = parse_duration(&value()?)?,
                "--connections" => {
                    o.connections = value()?
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("--connections must be a positive number")?;
                }
                "--soak-duration" => o.soak_duration = parse_duration(&value()?)?,
                "--soak-connections" => {
                    o.soak_connections = value()?
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("--soak-connections must be a positive number")?;
                }
                "--starts" => {
                    o.starts = value()?.parse().map_err(|_| "--starts must be a number")?;
                }
                "--only" => {
                    let ids = value()?
                        .split(',')
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| {
                            canonical_id(s)
                                .map(str::to_string)
                                .ok_or_else(|| format!("unknown workload '{s}'"))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    o.only = Some(ids);
                }
                "--no-baseline" => o.baseline = false,
                "--no-response-cache" => o.response_cache = false,
                "--otlp" => o.otlp = true,
                "--simpul-wrapper" => {
                    o.wrapper = value()?.split_whitespace().map(str::to_string).collect();
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                // Filters cargo may pass to any bench binary.
                other if !other.starts_with('-') => {}
                other => return Err(format!("unknown option '{other}'\n{USAGE}")),
            }
        }
        Ok(o)
    }

    /// The smoke run soaks for seconds, so its samples and invalidations come faster.
    fn soak_settings(&self) -> soak::Settings {
        let every = |quick_ms, full| {
            if self.quick {
                Duration::from_millis(quick_ms)
            } else {
                full
            }
        };
        soak::Settings {
            duration: self.soak_duration,
            connections: self.soak_connections,
            invalidate_every: every(250, Duration::from_secs(1)),
            sample_every: every(250, Duration::from_secs(5)),
        }
    }

    /// Whether `--only` asks for `id` (every workload without it; the soak, which takes
    /// minutes, only when named, or briefly in the smoke run).
    fn selected(&self, id: &str) -> bool {
        match &self.only {
            Some(ids) => ids.iter().any(|i| i == id),
            None => id != "soak" || self.quick,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Deployments and workloads

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Deployment {
    Blog,
    BlogCached,
    Trenggalek,
    Villages,
}

impl Deployment {
    fn name(self) -> &'static str {
        match self {
            Deployment::Blog => "benches/deployments/blog",
            Deployment::BlogCached => "benches/deployments/blog_cached",
            Deployment::Trenggalek => "repository root (Trenggalek)",
            Deployment::Villages => "benches/deployments/villages",
        }
    }

    /// Whether its upstream is the counting loopback API (else SQLite or files).
    fn counted(self) -> bool {
        matches!(self, Deployment::Blog | Deployment::BlogCached)
    }
}

type Check = fn(&Value) -> Result<usize, String>;

struct Candidate {
    deployment: Deployment,
    query: &'static str,
    check: Check,
    /// The request's `variables`, as JSON text.
    variables: Option<&'static str>,
    /// Sent with an INTERNAL bearer token.
    internal: bool,
}

struct Workload {
    id: &'static str,
    label: &'static str,
    /// The query as shown in the report.
    what: &'static str,
    /// Tried in order; the first whose answer passes its check is measured.
    candidates: Vec<Candidate>,
}

fn workloads() -> Vec<Workload> {
    let one = |deployment, query, check: Check| {
        vec![Candidate {
            deployment,
            query,
            check,
            variables: None,
            internal: false,
        }]
    };
    let with = |query, variables, internal| {
        vec![Candidate {
            deployment: Deployment::Blog,
            query,
            check: check_posts_with_users,
            variables,
            internal,
        }]
    };
    vec![
        Workload {
            id: "a",
            label: "a",
            what: "100 posts + batched authors, no cache",
            candidates: one(
                Deployment::Blog,
                "{ posts { id userId title user { id name email } } }",
                check_posts_with_users,
            ),
        },
        Workload {
            id: "a2",
            label: "a′",
            what: "a with @cache(ttl: \"1s\") on both bindings",
            candidates: one(
                Deployment::BlogCached,
                "{ posts { id userId title user { id name email } } }",
                check_posts_with_users,
            ),
        },
        Workload {
            id: "av",
            label: "a·vars",
            what: "a sent with a variable",
            candidates: with(
                "query Posts($first: Int) { posts(first: $first) { id userId title user { id name email } } }",
                Some(r#"{"first": 100}"#),
                false,
            ),
        },
        Workload {
            id: "ai",
            label: "a·@include",
            what: "a with user @include(if: $withUser)",
            candidates: with(
                "query Posts($withUser: Boolean!) { posts { id userId title user @include(if: $withUser) { id name email } } }",
                Some(r#"{"withUser": true}"#),
                false,
            ),
        },
        Workload {
            id: "ain",
            label: "a·INTERNAL",
            what: "a with an INTERNAL bearer token",
            candidates: with(
                "{ posts { id userId title user { id name email } } }",
                None,
                true,
            ),
        },
        Workload {
            id: "u",
            label: "u",
            what: "a union of 100 posts and 10 users",
            candidates: one(
                Deployment::Blog,
                "{ feed { __typename ... on Post { id title } ... on User { id name } } }",
                check_feed,
            ),
        },
        Workload {
            id: "b",
            label: "b",
            what: "{ posts { title } }",
            candidates: one(Deployment::Blog, "{ posts { title } }", check_titles),
        },
        Workload {
            id: "c",
            label: "c",
            what: "{ greet } (@const)",
            candidates: one(Deployment::Blog, "{ greet }", check_greet),
        },
        Workload {
            id: "d",
            label: "d",
            what: "dashboard (README front page): regency → 14 districts → population, complaints; poverty; catalog",
            candidates: vec![
                // The dashboard front page of the README.
                Candidate {
                    deployment: Deployment::Trenggalek,
                    query: "{ regency { name population { total } poverty { rate { year value } } \
                            districts { name population { total } complaintsByMonth { period received } } } \
                            catalog { coveragePct liveCoveragePct } }",
                    check: check_dashboard_readme,
                    variables: None,
                    internal: false,
                },
                Candidate {
                    deployment: Deployment::Trenggalek,
                    query: "{ regency { code name population { total male female households } \
                            poverty { rate { year value } poorCount { year value } } \
                            districts { code name population { total male female density } } } }",
                    check: check_dashboard,
                    variables: None,
                    internal: false,
                },
                Candidate {
                    deployment: Deployment::Trenggalek,
                    query: "{ regency { districts { code name villages { code name } } } }",
                    check: check_districts_villages,
                    variables: None,
                    internal: false,
                },
            ],
        },
        Workload {
            id: "e",
            label: "e",
            what: "157 villages × 3 batched bound fields",
            candidates: vec![
                Candidate {
                    deployment: Deployment::Trenggalek,
                    query: "{ regency { villages { code name codes { kemendagriPlain } \
                            district { code name } population { total } } } }",
                    check: check_villages_repo,
                    variables: None,
                    internal: false,
                },
                Candidate {
                    deployment: Deployment::Villages,
                    query: "{ villages { code name codes { codePlain } district { code name } \
                            regency { code name } } }",
                    check: check_villages_bench,
                    variables: None,
                    internal: false,
                },
            ],
        },
        Workload {
            id: "f",
            label: "f",
            what: "{ items { id name value } }, 10,000 items",
            candidates: one(
                Deployment::Blog,
                "{ items { id name value } }",
                check_items_10k,
            ),
        },
        Workload {
            id: "f1k",
            label: "f1k",
            what: "{ items1k { id name value } }, 1,000 items",
            candidates: one(
                Deployment::Blog,
                "{ items1k { id name value } }",
                check_items_1k,
            ),
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Answer checks: each returns the number of items in the answer.

fn data(v: &Value) -> Result<&Value, String> {
    if let Some(errors) = v.get("errors").and_then(Value::as_array)
        && !errors.is_empty()
    {
        let first = errors[0]
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("?");
        return Err(format!("{} error(s), first: {first}", errors.len()));
    }
    v.get("data")
        .filter(|d| !d.is_null())
        .ok_or_else(|| "no data".to_string())
}

fn list<'a>(v: &'a Value, pointer: &str, len: usize) -> Result<&'a Vec<Value>, String> {
    let items = v
        .pointer(pointer)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{pointer} is not a list"))?;
    if items.len() != len {
        return Err(format!(
            "{pointer} has {} entries, expected {len}",
            items.len()
        ));
    }
    Ok(items)
}

fn int(v: &Value, pointer: &str) -> Result<i64, String> {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("{pointer} is not an integer in {v}"))
}

fn text<'a>(v: &'a Value, pointer: &str) -> Result<&'a str, String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{pointer} is not a string in {v}"))
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// The `[auth] jwt_secret` of the blog deployment (a bench secret, nothing to protect).
const BENCH_SECRET: &str = "load-bench-secret-0123456789abcdef0123";

/// `Authorization: Bearer` with an INTERNAL token for [`BENCH_SECRET`].
fn internal_token() -> hyper::header::HeaderValue {
    let token = simpul::auth::mint(
        BENCH_SECRET,
        simpul::access::Tier::Internal,
        None,
        Some("bench"),
        Duration::from_secs(24 * 3600),
        None,
        None,
    )
    .expect("mint a bench token");
    hyper::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header value")
}

fn check_feed(v: &Value) -> Result<usize, String> {
    let entries = list(
        data(v)?,
        "/feed",
        (upstream::POSTS + upstream::USERS) as usize,
    )?;
    let mut posts = 0;
    for e in entries {
        match text(e, "/__typename")? {
            "Post" => {
                let id = int(e, "/id")?;
                ensure(text(e, "/title")? == format!("post {id}"), || {
                    format!("post {id} title")
                })?;
                posts += 1;
            }
            "User" => {
                let id = int(e, "/id")?;
                ensure(text(e, "/name")? == format!("User {id}"), || {
                    format!("user {id} name")
                })?;
            }
            other => return Err(format!("an entry of type {other}")),
        }
    }
    ensure(posts == upstream::POSTS as usize, || {
        format!("{posts} posts")
    })?;
    Ok(entries.len())
}

fn check_posts_with_users(v: &Value) -> Result<usize, String> {
    let posts = list(data(v)?, "/posts", upstream::POSTS as usize)?;
    for (i, p) in posts.iter().enumerate() {
        let id = int(p, "/id")?;
        let user_id = int(p, "/userId")?;
        ensure(id == i as i64 + 1, || format!("post {i} has id {id}"))?;
        ensure(user_id == (id - 1) / 10 + 1, || {
            format!("post {id} has userId {user_id}")
        })?;
        ensure(text(p, "/title")? == format!("post {id}"), || {
            format!("post {id} title")
        })?;
        let uid = int(p, "/user/id")?;
        ensure(uid == user_id, || {
            format!("post {id}: user.id {uid} != userId {user_id}")
        })?;
        ensure(text(p, "/user/name")? == format!("User {user_id}"), || {
            format!("post {id}: user.name")
        })?;
        ensure(
            text(p, "/user/email")? == format!("user{user_id}@example.org"),
            || format!("post {id}: user.email"),
        )?;
    }
    Ok(posts.len())
}

fn check_titles(v: &Value) -> Result<usize, String> {
    let posts = list(data(v)?, "/posts", upstream::POSTS as usize)?;
    for (i, p) in posts.iter().enumerate() {
        ensure(
            p.as_object().is_some_and(|o| o.len() == 1)
                && text(p, "/title")? == format!("post {}", i + 1),
            || format!("post {i} is {p}"),
        )?;
    }
    Ok(posts.len())
}

fn check_greet(v: &Value) -> Result<usize, String> {
    let greet = text(data(v)?, "/greet")?;
    ensure(greet == "Hello World!", || format!("greet is {greet:?}"))?;
    Ok(1)
}

/// The regency's population and its poverty rate series, in both dashboard queries.
fn check_regency_figures(d: &Value) -> Result<(), String> {
    ensure(int(d, "/regency/population/total")? > 0, || {
        "regency population".to_string()
    })?;
    let rate = d
        .pointer("/regency/poverty/rate")
        .and_then(Value::as_array)
        .ok_or("no poverty rate series")?;
    ensure(!rate.is_empty(), || "empty poverty rate series".to_string())?;
    for r in rate {
        int(r, "/year")?;
        r.get("value")
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("poverty value in {r}"))?;
    }
    Ok(())
}

fn check_dashboard(v: &Value) -> Result<usize, String> {
    let d = data(v)?;
    ensure(text(d, "/regency/code")? == "35.03", || {
        "regency code".to_string()
    })?;
    check_regency_figures(d)?;
    let districts = list(d, "/regency/districts", DISTRICTS)?;
    for x in districts {
        let code = text(x, "/code")?;
        ensure(code.starts_with("35.03."), || {
            format!("district code {code}")
        })?;
        ensure(int(x, "/population/total")? > 0, || {
            format!("district {code} population")
        })?;
    }
    Ok(districts.len())
}

fn check_dashboard_readme(v: &Value) -> Result<usize, String> {
    let d = data(v)?;
    ensure(text(d, "/regency/name")? == "Kabupaten Trenggalek", || {
        "regency name".to_string()
    })?;
    check_regency_figures(d)?;
    let districts = list(d, "/regency/districts", DISTRICTS)?;
    let mut months = 0;
    for x in districts {
        let name = text(x, "/name")?;
        ensure(int(x, "/population/total")? > 0, || {
            format!("district {name} population")
        })?;
        let series = x
            .get("complaintsByMonth")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("district {name} complaintsByMonth"))?;
        for m in series {
            text(m, "/period")?;
            // Small counts are suppressed (null) for the public.
            ensure(
                m.get("received")
                    .is_some_and(|r| r.is_null() || r.as_i64().is_some_and(|n| n >= 0)),
                || format!("district {name} complaints {m}"),
            )?;
        }
        months += series.len();
    }
    ensure(months > 0, || "no complaint months".to_string())?;
    let coverage = d
        .pointer("/catalog/coveragePct")
        .and_then(Value::as_f64)
        .ok_or("catalog coveragePct")?;
    ensure((0.0..=100.0).contains(&coverage), || {
        format!("coverage {coverage}")
    })?;
    Ok(districts.len())
}

fn check_districts_villages(v: &Value) -> Result<usize, String> {
    let districts = list(data(v)?, "/regency/districts", DISTRICTS)?;
    let mut villages = 0;
    for x in districts {
        let code = text(x, "/code")?;
        let vs = x
            .get("villages")
            .and_then(Value::as_array)
            .ok_or("villages")?;
        for village in vs {
            ensure(text(village, "/code")?.starts_with(code), || {
                format!("village {village} outside {code}")
            })?;
        }
        villages += vs.len();
    }
    ensure(villages == VILLAGES, || format!("{villages} villages"))?;
    Ok(villages)
}

fn check_village_common(x: &Value, plain_pointer: &str) -> Result<String, String> {
    let code = text(x, "/code")?;
    ensure(code.len() == 13 && code.starts_with("35.03."), || {
        format!("village code {code}")
    })?;
    ensure(text(x, plain_pointer)? == code.replace('.', ""), || {
        format!("village {code} plain code")
    })?;
    ensure(text(x, "/district/code")? == &code[..8], || {
        format!("village {code} district")
    })?;
    Ok(code.to_string())
}

fn check_villages_repo(v: &Value) -> Result<usize, String> {
    let villages = list(data(v)?, "/regency/villages", VILLAGES)?;
    for x in villages {
        let code = check_village_common(x, "/codes/kemendagriPlain")?;
        ensure(int(x, "/population/total")? > 0, || {
            format!("village {code} population")
        })?;
    }
    Ok(villages.len())
}

fn check_villages_bench(v: &Value) -> Result<usize, String> {
    let villages = list(data(v)?, "/villages", VILLAGES)?;
    for x in villages {
        let code = check_village_common(x, "/codes/codePlain")?;
        ensure(text(x, "/regency/code")? == "35.03", || {
            format!("village {code} regency")
        })?;
    }
    Ok(villages.len())
}

fn check_items(v: &Value, field: &str, n: usize) -> Result<usize, String> {
    let items = list(data(v)?, field, n)?;
    for (i, x) in items.iter().enumerate() {
        let id = i as i64 + 1;
        ensure(
            int(x, "/id")? == id
                && text(x, "/name")? == format!("item {id}")
                && x.get("value").and_then(Value::as_f64) == Some(id as f64 * 0.5),
            || format!("item {i} is {x}"),
        )?;
    }
    Ok(items.len())
}

fn check_items_10k(v: &Value) -> Result<usize, String> {
    check_items(v, "/items", upstream::ITEMS as usize)
}

fn check_items_1k(v: &Value) -> Result<usize, String> {
    check_items(v, "/items1k", 1_000)
}

// ---------------------------------------------------------------------------------------
// Running

struct Bench {
    // Dropped first: stops the baseline before its scratch directory goes.
    baseline: Option<Proc>,
    opts: Options,
    simpul_bin: PathBuf,
    scratch: tempfile::TempDir,
    upstream: Upstream,
    runs: usize,
}

/// Numbers of one timed run against one server.
struct Measure {
    run: Run,
    cpu_us_per_req: f64,
    peak_rss: u64,
}

struct Outcome {
    label: &'static str,
    what: &'static str,
    deployment: Option<Deployment>,
    query: &'static str,
    notes: Vec<String>,
    failure: Option<String>,
    items: usize,
    /// GraphQL values (objects and leaves) in the answer's `data`.
    values: usize,
    /// Upstream (or connector) calls made by the first, cold request.
    cold_calls: Option<u64>,
    /// Upstream calls per request under load (counted deployments only).
    load_calls: Option<f64>,
    baseline: Option<Measure>,
    simpul: Option<Measure>,
}

struct Startup {
    first: Duration,
    samples: Vec<Duration>,
}

impl Bench {
    /// Every deployment runs from a scratch copy, with the `simpul.toml` the options ask for.
    fn dir(&self, d: Deployment) -> PathBuf {
        let name = match d {
            Deployment::Blog => "blog",
            Deployment::BlogCached => "blog_cached",
            Deployment::Trenggalek => "trenggalek",
            Deployment::Villages => "villages",
        };
        self.scratch.path().join(name)
    }

    fn spawn_simpul(&mut self, dir: &Path, env: &[(&str, &str)]) -> Proc {
        self.runs += 1;
        let addr = procs::free_addr();
        let mut cmd = match self.opts.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.simpul_bin);
                c
            }
            None => Command::new(&self.simpul_bin),
        };
        cmd.arg("serve")
            .arg("--dir")
            .arg(dir)
            .arg("--listen")
            .arg(addr.to_string())
            .env_clear()
            .env("BLOG_URL", self.upstream.url())
            .envs(env.iter().copied());
        if self.opts.otlp {
            cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", self.upstream.url());
        }
        for keep in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        let log = self
            .scratch
            .path()
            .join(format!("simpul-{}.log", self.runs));
        let grace = if self.opts.wrapper.is_empty() {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(300)
        };
        Proc::spawn("simpul", cmd, addr, &log, grace)
    }

    fn ready_timeout(&self) -> Duration {
        if self.opts.wrapper.is_empty() {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(600)
        }
    }

    async fn startup(&mut self) -> Startup {
        let dir = self.dir(Deployment::Trenggalek);
        let timeout = self.ready_timeout();
        let mut times = Vec::new();
        for _ in 0..=self.opts.starts {
            let mut p = self.spawn_simpul(&dir, &[]);
            // Measured from just before the spawn.
            let started = std::time::Instant::now();
            p.wait_ready("/readyz", timeout).await;
            times.push(started.elapsed());
            tokio::task::block_in_place(|| p.stop());
        }
        let first = times.remove(0);
        Startup {
            first,
            samples: times,
        }
    }

    /// The soak, on its own Simpul process and scratch copy of the repository root.
    async fn soak(&mut self, settings: &soak::Settings) -> soak::Soak {
        let dir = self.scratch.path().join("soak");
        let mut simpul = self.spawn_simpul(&dir, &[(soak::TOKEN_ENV, soak::TOKEN)]);
        simpul.wait_ready("/readyz", self.ready_timeout()).await;
        let soaked = soak::run(&simpul, &repo_root(), settings).await;
        tokio::task::block_in_place(|| simpul.stop());
        soaked
    }

    async fn run_workload(&mut self, w: &Workload) -> Outcome {
        let mut out = Outcome {
            label: w.label,
            what: w.what,
            deployment: None,
            query: "",
            notes: Vec::new(),
            failure: None,
            items: 0,
            values: 0,
            cold_calls: None,
            load_calls: None,
            baseline: None,
            simpul: None,
        };
        for cand in &w.candidates {
            let dir = self.dir(cand.deployment);
            let mut simpul = self.spawn_simpul(&dir, &[]);
            simpul.wait_ready("/readyz", self.ready_timeout()).await;
            let request = match cand.variables {
                Some(v) => {
                    json!({ "query": cand.query, "variables": serde_json::from_str::<Value>(v).expect("variables") })
                }
                None => json!({ "query": cand.query }),
            };
            let request = Bytes::from(request.to_string());
            let auth = cand.internal.then(internal_token);
            let before = self.upstream.calls();
            let answer = client::once_as(simpul.addr, auth.clone(), "/graphql", request.clone())
                .await
                .unwrap_or_else(|e| panic!("POST /graphql to Simpul failed: {e}"));
            let cold = self.upstream.calls() - before;
            let checked = match serde_json::from_slice::<Value>(&answer.body) {
                Err(e) => Err(format!("answer is not JSON ({e})")),
                Ok(_) if answer.status != StatusCode::OK => Err(format!("HTTP {}", answer.status)),
                Ok(v) => (cand.check)(&v).map(|items| (items, v)),
            };
            let (items, value) = match checked {
                Ok(x) => x,
                Err(why) => {
                    let why = format!("{}: {why}", cand.deployment.name());
                    eprintln!("  {}: answer check failed: {why}", w.label);
                    out.notes.push(format!("check failed on {why}"));
                    out.failure = Some(why);
                    continue;
                }
            };
            if w.id == "a" {
                // Operations never seen before (the same query under another text): each is
                // validated, compiled and run, one after another on an idle server.
                let mut times = Vec::new();
                for i in 0..20 {
                    let body = json!({ "query": format!("{}\n# first sight {i}", cand.query) });
                    let started = std::time::Instant::now();
                    let a = client::once_as(
                        simpul.addr,
                        None,
                        "/graphql",
                        Bytes::from(body.to_string()),
                    )
                    .await
                    .expect("first-sight request");
                    assert_eq!(a.status, StatusCode::OK, "first-sight answer");
                    times.push(started.elapsed());
                }
                times.sort();
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                let note = format!(
                    "first sight of a new operation: median {:.2} ms, max {:.2} ms (20 texts)",
                    ms(times[times.len() / 2]),
                    ms(times[times.len() - 1])
                );
                eprintln!("  {note}");
                out.notes.push(note);
            }
            out.failure = None;
            out.deployment = Some(cand.deployment);
            out.query = cand.query;
            out.items = items;
            out.values = value.get("data").map_or(0, count_values);
            out.cold_calls = Some(if cand.deployment.counted() {
                cold
            } else {
                connector_calls(&value)
            });
            let content_type = answer
                .headers
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string();
            let target = Target {
                addr: simpul.addr,
                body: request.clone(),
                expect_len: answer.body.len(),
                slack: 32,
                auth,
            };
            if self.baseline.is_some() {
                out.baseline = Some(
                    self.measure_baseline(&request, &answer.body, &content_type)
                        .await,
                );
            }
            let conns = self.opts.connections;
            if !self.opts.warmup.is_zero() {
                client::load(&target, conns, self.opts.warmup).await;
            }
            let cpu0 = simpul.cpu_time();
            let calls0 = self.upstream.calls();
            let run = client::load(&target, conns, self.opts.duration).await;
            let cpu = simpul.cpu_time().saturating_sub(cpu0);
            let calls = self.upstream.calls() - calls0;
            let requests = run.ok.max(1) as f64;
            if cand.deployment.counted() {
                out.load_calls = Some(calls as f64 / requests);
            }
            out.simpul = Some(Measure {
                cpu_us_per_req: cpu.as_secs_f64() * 1e6 / requests,
                peak_rss: simpul.peak_rss(),
                run,
            });
            tokio::task::block_in_place(|| simpul.stop());
            break;
        }
        out
    }

    async fn measure_baseline(&mut self, request: &Bytes, response: &Bytes, ct: &str) -> Measure {
        let Some(baseline) = self.baseline.as_ref() else {
            unreachable!("measure_baseline without a baseline");
        };
        let canned = baseline::Canned {
            request: String::from_utf8(request.to_vec()).expect("request is UTF-8"),
            response: String::from_utf8(response.to_vec()).expect("Simpul answered UTF-8"),
            content_type: ct.to_string(),
        };
        let reg = client::once(
            baseline.addr,
            Method::POST,
            "/__register",
            Bytes::from(serde_json::to_vec(&canned).expect("serialize")),
        )
        .await
        .expect("register with the baseline");
        assert_eq!(reg.status, StatusCode::NO_CONTENT, "baseline registration");
        let echo = client::once(baseline.addr, Method::POST, "/graphql", request.clone())
            .await
            .expect("baseline answer");
        assert!(
            echo.status == StatusCode::OK && echo.body == *response,
            "the baseline does not answer Simpul's bytes"
        );
        let target = Target {
            addr: baseline.addr,
            body: request.clone(),
            expect_len: response.len(),
            slack: 0,
            auth: None,
        };
        let conns = self.opts.connections;
        if !self.opts.warmup.is_zero() {
            client::load(&target, conns, self.opts.warmup).await;
        }
        let cpu0 = baseline.cpu_time();
        let run = client::load(&target, conns, self.opts.duration).await;
        let cpu = baseline.cpu_time().saturating_sub(cpu0);
        Measure {
            cpu_us_per_req: cpu.as_secs_f64() * 1e6 / run.ok.max(1) as f64,
            peak_rss: baseline.peak_rss(),
            run,
        }
    }
}

/// Objects and leaves in `v` (lists are not counted): what the executor resolves.
fn count_values(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.iter().map(count_values).sum(),
        Value::Object(o) => 1 + o.values().map(count_values).sum::<usize>(),
        _ => 1,
    }
}

/// Sum of `extensions.sources[].calls`: the connector calls Simpul made for one request.
fn connector_calls(v: &Value) -> u64 {
    v.pointer("/extensions/sources")
        .and_then(Value::as_array)
        .map_or(0, |s| {
            s.iter()
                .filter_map(|x| x.get("calls").and_then(Value::as_u64))
                .sum()
        })
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a deployment's files (`simpul.toml`, `schema.graphql`, `connectors/`, `rules/`,
/// `data/`), leaving out SQLite files created from seeds.
fn copy_deployment(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create the scratch deployment");
    for name in [
        "simpul.toml",
        "schema.graphql",
        "connectors",
        "rules",
        "data",
    ] {
        let from = src.join(name);
        if from.exists() {
            copy_tree(&from, &dst.join(name));
        }
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    if src.is_dir() {
        std::fs::create_dir_all(dst).expect("mkdir");
        for entry in std::fs::read_dir(src).expect("read_dir").flatten() {
            let name = entry.file_name();
            let n = name.to_string_lossy();
            if n.ends_with(".db") || n.contains(".db-") || n.contains(".seeding-") {
                continue;
            }
            copy_tree(&entry.path(), &dst.join(&name));
        }
    } else {
        std::fs::copy(src, dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    }
}

// ---------------------------------------------------------------------------------------
// Report

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim())
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cores} cores ({model}), {:.1} GiB memory, Linux {}",
        mem_kb as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0 / 1024.0)
}

fn ms(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

fn rate(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

fn report(opts: &Options, outcomes: &[Outcome], startup: Option<&Startup>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "machine: {}", machine());
    if outcomes.is_empty() && startup.is_none() {
        return s;
    }
    let _ = writeln!(
        s,
        "settings: {} connections, {:?} per target per workload after {:?} warm-up{}",
        opts.connections,
        opts.duration,
        opts.warmup,
        if opts.wrapper.is_empty() {
            String::new()
        } else {
            format!(", Simpul under `{}`", opts.wrapper.join(" "))
        }
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| workload | server | req/s | p50 ms | p99 ms | CPU µs/req | upstream calls/req (cold; under load) | peak RSS MB | × baseline | bad answers |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---|---:|---:|---:|");
    for o in outcomes {
        if let Some(f) = &o.failure {
            let _ = writeln!(
                s,
                "| {} | – | – | – | – | – | – | – | – | check failed: {f} |",
                o.label
            );
            continue;
        }
        let base_rate = o.baseline.as_ref().map(|b| b.run.rate());
        if let Some(b) = &o.baseline {
            let _ = writeln!(
                s,
                "| {} | baseline | {} | {} | {} | {:.1} | – | {} | 1.00 | {} |",
                o.label,
                rate(b.run.rate()),
                ms(b.run.quantile_ms(0.5)),
                ms(b.run.quantile_ms(0.99)),
                b.cpu_us_per_req,
                mb(b.peak_rss),
                b.run.wrong + b.run.failed,
            );
        }
        if let Some(m) = &o.simpul {
            let calls = match (o.cold_calls, o.load_calls) {
                (Some(c), Some(l)) => format!("{c}; {l:.3}"),
                (Some(c), None) => format!("{c} (SQL/file); –"),
                _ => "–".into(),
            };
            let ratio = base_rate.map_or("–".into(), |b| format!("{:.2}", m.run.rate() / b));
            let _ = writeln!(
                s,
                "| {} | Simpul | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
                o.label,
                rate(m.run.rate()),
                ms(m.run.quantile_ms(0.5)),
                ms(m.run.quantile_ms(0.99)),
                m.cpu_us_per_req,
                calls,
                mb(m.peak_rss),
                ratio,
                m.run.wrong + m.run.failed,
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "| workload | what | deployment | query |");
    let _ = writeln!(s, "|---|---|---|---|");
    for o in outcomes {
        let _ = writeln!(
            s,
            "| {} | {} | {} | `{}` |",
            o.label,
            o.what,
            o.deployment.map_or("–", Deployment::name),
            o.query
        );
    }
    for o in outcomes {
        for n in &o.notes {
            let _ = writeln!(s, "\nnote ({}): {n}", o.label);
        }
    }

    let per_item: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o.label, "e" | "f" | "f1k"))
        .filter_map(|o| o.simpul.as_ref().map(|m| (o, m)))
        .collect();
    if !per_item.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| workload | items/answer | Simpul CPU µs/item | wall µs/item (1 / (req/s × items)) | values/answer | Simpul CPU µs/value |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
        for (o, m) in &per_item {
            let items = o.items.max(1) as f64;
            let _ = writeln!(
                s,
                "| {} | {} | {:.3} | {:.3} | {} | {:.3} |",
                o.label,
                o.items,
                m.cpu_us_per_req / items,
                1e6 / (m.run.rate() * items),
                o.values,
                m.cpu_us_per_req / o.values.max(1) as f64
            );
        }
    }

    if let Some(st) = startup {
        let mut sorted = st.samples.clone();
        sorted.sort();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "start to /readyz 200, Trenggalek deployment: median {:.1} ms of {} starts ({}); first start, creating the SQLite files from the seeds: {:.1} ms",
            median.as_secs_f64() * 1e3,
            sorted.len(),
            sorted
                .iter()
                .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", "),
            st.first.as_secs_f64() * 1e3
        );
    }

    // The issue's targets.
    let find = |label: &str| {
        outcomes
            .iter()
            .find(|o| o.label == label && o.failure.is_none())
    };
    let ratio = |o: &Outcome| -> Option<f64> {
        Some(o.simpul.as_ref()?.run.rate() / o.baseline.as_ref()?.run.rate())
    };
    let mut targets: Vec<(String, String, bool)> = Vec::new();
    if let Some(a) = find("a") {
        if let (Some(r), Some(m)) = (ratio(a), a.simpul.as_ref()) {
            let p99 = m.run.quantile_ms(0.99);
            targets.push((
                "(a) ≥ 0.45× baseline and p99 ≤ 10 ms".into(),
                format!("{r:.2}×, p99 {} ms", ms(p99)),
                r >= 0.45 && p99 <= 10.0,
            ));
        }
        if let (Some(c), Some(l)) = (a.cold_calls, a.load_calls) {
            targets.push((
                "(a) ≤ 2 upstream calls/request cold, far fewer than 1 under load (≤ 0.1)".into(),
                format!("{c} cold; {l:.3} under load"),
                c <= 2 && l <= 0.1,
            ));
        }
        if let Some(m) = &a.simpul {
            targets.push((
                "(a) peak RSS ≤ 64 MB".into(),
                format!("{} MB", mb(m.peak_rss)),
                m.peak_rss <= 64 * 1024 * 1024,
            ));
        }
    }
    for (label, min) in [("a′", 0.8), ("b", 0.8), ("c", 0.9)] {
        if let Some(r) = find(label).and_then(ratio) {
            targets.push((
                format!("({label}) ≥ {min}× baseline"),
                format!("{r:.2}×"),
                r >= min,
            ));
        }
    }
    if let Some(st) = startup {
        let mut sorted = st.samples.clone();
        sorted.sort();
        if let Some(median) = sorted.get(sorted.len() / 2) {
            let t = median.as_secs_f64() * 1e3;
            targets.push((
                "start to /readyz ≤ 300 ms".into(),
                format!("{t:.1} ms"),
                t <= 300.0,
            ));
        }
    }
    if let (Some(e), Some(f)) = (find("e"), find("f"))
        && let (Some(me), Some(mf)) = (&e.simpul, &f.simpul)
    {
        let pe = me.cpu_us_per_req / e.items.max(1) as f64;
        let pf = mf.cpu_us_per_req / f.items.max(1) as f64;
        // Read as "no more than 10% above": a long list must not cost more per item.
        targets.push((
            "(f) time per item ≤ 1.1 × (e)'s (Simpul CPU per item)".into(),
            format!(
                "e {pe:.3} µs, f {pf:.3} µs ({:+.0}%)",
                (pf / pe - 1.0) * 100.0
            ),
            pf <= pe * 1.10,
        ));
    }
    if !targets.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "| target | this run | |");
        let _ = writeln!(s, "|---|---|---|");
        for (t, v, ok) in targets {
            let _ = writeln!(s, "| {t} | {v} | {} |", met(ok));
        }
    }
    s
}

// ---------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-baseline") {
        let addr: SocketAddr = args
            .get(i + 1)
            .and_then(|a| a.parse().ok())
            .expect("--serve-baseline ADDR");
        baseline::serve(addr);
        return ExitCode::SUCCESS;
    }
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(opts))
}

/// Every load comes from 127.0.0.1: one client to the rate limits. A budget no load here
/// reaches keeps their check on the measured path without refusing anything.
fn budget_for_one_address(dir: &Path) {
    let file = dir.join("simpul.toml");
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    text.push_str(
        "\n[security.rate_limits]\npublic = \"100000000/s\"\ninternal = \"100000000/s\"\nrestricted = \"100000000/s\"\n",
    );
    std::fs::write(&file, text).expect("write the scratch simpul.toml");
}

async fn run(opts: Options) -> ExitCode {
    let root = repo_root();
    let scratch = tempfile::tempdir().expect("scratch directory");
    copy_deployment(&root, &scratch.path().join("trenggalek"));
    let response = if opts.response_cache {
        ""
    } else {
        "[cache]\nresponse = false\n"
    };
    // Workload ain sends a staff token; the others none.
    let auth = format!("[auth]\njwt_secret = \"{BENCH_SECRET}\"\n");
    for (from, to, toml) in [
        ("benches/deployments/blog", "blog", auth),
        (
            "benches/deployments/blog_cached",
            "blog_cached",
            String::new(),
        ),
    ] {
        let dir = scratch.path().join(to);
        copy_deployment(&root.join(from), &dir);
        std::fs::write(dir.join("simpul.toml"), format!("{toml}{response}"))
            .expect("write the scratch simpul.toml");
    }
    if !opts.response_cache {
        std::fs::write(scratch.path().join("trenggalek/simpul.toml"), response)
            .expect("write trenggalek/simpul.toml");
    }
    if opts.selected("soak") {
        let dir = scratch.path().join("soak");
        copy_deployment(&root, &dir);
        std::fs::write(dir.join("simpul.toml"), soak::simpul_toml(response))
            .expect("write soak/simpul.toml");
        budget_for_one_address(&dir);
    }
    for name in ["trenggalek", "blog", "blog_cached"] {
        budget_for_one_address(&scratch.path().join(name));
    }
    let villages = scratch.path().join("villages");
    copy_tree(&root.join("benches/deployments/villages"), &villages);
    budget_for_one_address(&villages);
    std::fs::create_dir_all(villages.join("data")).expect("mkdir");
    std::fs::copy(
        root.join("data/seeds/wilayah.sql"),
        villages.join("data/wilayah.sql"),
    )
    .expect("copy data/seeds/wilayah.sql");

    let upstream = Upstream::start().await;
    // The baseline only serves the workloads (not the start-up or the soak).
    let baseline = if opts.baseline && workloads().iter().any(|w| opts.selected(w.id)) {
        let addr = procs::free_addr();
        let mut cmd = Command::new(std::env::current_exe().expect("current executable"));
        cmd.arg("--serve-baseline").arg(addr.to_string());
        let mut p = Proc::spawn(
            "baseline",
            cmd,
            addr,
            &scratch.path().join("baseline.log"),
            Duration::from_secs(10),
        );
        p.wait_ready("/readyz", Duration::from_secs(30)).await;
        Some(p)
    } else {
        None
    };
    // Cargo builds the binary (release settings, the bench profile) before any bench runs.
    let simpul_bin = PathBuf::from(env!("CARGO_BIN_EXE_simpul"));
    eprintln!("simpul: {}", simpul_bin.display());
    eprintln!("upstream: {}", upstream.url());
    let mut bench = Bench {
        opts,
        simpul_bin,
        scratch,
        upstream,
        baseline,
        runs: 0,
    };

    let startup = if bench.opts.selected("start") {
        eprintln!(
            "start: {} starts of the Trenggalek deployment",
            bench.opts.starts + 1
        );
        Some(bench.startup().await)
    } else {
        None
    };
    let mut outcomes = Vec::new();
    for w in workloads() {
        if !bench.opts.selected(w.id) {
            continue;
        }
        eprintln!("{}: {}", w.label, w.what);
        let o = bench.run_workload(&w).await;
        if let Some(m) = &o.simpul {
            eprintln!(
                "  Simpul {} req/s, p99 {} ms{}",
                rate(m.run.rate()),
                ms(m.run.quantile_ms(0.99)),
                o.baseline
                    .as_ref()
                    .map(|b| format!(" (baseline {} req/s)", rate(b.run.rate())))
                    .unwrap_or_default()
            );
        }
        if bench.opts.otlp {
            eprintln!(
                "  OTLP exports received so far: {}",
                bench.upstream.exports()
            );
        }
        outcomes.push(o);
    }
    if let Some(mut b) = bench.baseline.take() {
        tokio::task::block_in_place(|| b.stop());
    }
    let soak_settings = bench.opts.soak_settings();
    let soaked = if bench.opts.selected("soak") {
        eprintln!(
            "soak: {:?} of queries/ over {} connections",
            soak_settings.duration, soak_settings.connections
        );
        Some(bench.soak(&soak_settings).await)
    } else {
        None
    };
    println!("\n{}", report(&bench.opts, &outcomes, startup.as_ref()));
    let mut failed = outcomes.iter().any(|o| o.failure.is_some());
    if let Some(s) = &soaked {
        println!("{}", soak_report::report(s, &soak_settings));
        for why in soak_report::failures(s) {
            eprintln!("soak failed: {why}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
