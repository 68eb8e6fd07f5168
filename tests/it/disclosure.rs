//! Disclosure control and provenance (docs/data-trust.md), checked on every path that serves
//! a suppressed count: which paths there are comes from the compiled schema, so a new path
//! to a suppressed type fails here until it is checked. A PUBLIC caller never reads a count
//! from 1 to 4, nor one that a total minus its published siblings or a rate rebuilds; no
//! public figure or list points at a confidential complaint; INTERNAL callers read exact
//! values. Provenance is in provenance.rs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use simpul::access::{Access, View};
use simpul::blueprint::{TypeDefKind, named};

use crate::alerts::{SECRET, post, staff_token};
use crate::harness::{TestApp, copy_deployment, repo_root};

/// The threshold of every `@suppress` in the deployment (checked below).
const BELOW: f64 = 5.0;

fn small(v: &Value) -> bool {
    v.as_f64().is_some_and(|n| (1.0..BELOW).contains(&n))
}

/// The public paths to a suppressed type this file checks, as `Owner.field`.
const CHECKED: &[&str] = &[
    // complaint counts: `complaint_counts_*` and `complaints_*` below
    "District.complaintsByMonth",
    "Regency.complaintsByMonth",
    "Regency.complaintsByCategory",
    // stunting: `a_rate_is_withheld_with_its_count`, and the indicator against the typed path
    "District.stunting",
    "Regency.stunting",
    // observations: complaint and stunting indicators against their typed paths; the other
    // indicators hold no count of people in small areas
    "Indicator.observations",
    "DukcapilIndicator.observations",
    "DinkesIndicator.observations",
    "DisdikporaIndicator.observations",
    "DisparbudIndicator.observations",
    "DpmptspIndicator.observations",
    "PengaduanIndicator.observations",
    "BpkadIndicator.observations",
    "BpsIndicator.observations",
    "PovertyProfile.rate",
    "PovertyProfile.poorCount",
    "PovertyProfile.povertyLine",
    "PovertyProfile.depth",
    "PovertyProfile.severity",
];

async fn trenggalek() -> (tempfile::TempDir, TestApp) {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    (dir, app)
}

fn fields(kind: &TypeDefKind) -> &[simpul::blueprint::FieldDef] {
    match kind {
        TypeDefKind::Object { fields, .. } | TypeDefKind::Interface { fields, .. } => fields,
        _ => &[],
    }
}

#[test]
fn every_public_path_to_a_suppressed_count_is_checked() {
    let bp = simpul::compile::compile_dir_with_env(&repo_root(), &|_: &str| None)
        .expect("the deployment compiles");
    let mut suppressed = BTreeSet::new();
    for t in &bp.types {
        for f in fields(&t.kind) {
            if let Some(s) = &f.suppress {
                assert_eq!(
                    s.below as f64, BELOW,
                    "{}.{}: this file checks below: 5",
                    t.name, f.name
                );
                suppressed.insert(t.name.clone());
            }
        }
    }
    assert!(
        [
            "ComplaintMonth",
            "ComplaintCategoryCount",
            "StuntingStats",
            "Observation",
            "DecileAggregate"
        ]
        .iter()
        .all(|t| suppressed.contains(*t)),
        "{suppressed:?}"
    );
    let public = View::Public;
    let mut paths = BTreeSet::new();
    for t in bp.types.iter().filter(|t| public.reads(&t.access)) {
        for f in fields(&t.kind) {
            if suppressed.contains(named(&f.ty)) && public.reads(&f.access) {
                paths.insert(format!("{}.{}", t.name, f.name));
            }
        }
    }
    let checked: BTreeSet<String> = CHECKED.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        paths, checked,
        "every public path to a suppressed type is checked in this file"
    );
    // DTSEN deciles are never public: INTERNAL and RESTRICTED paths only.
    for t in &bp.types {
        for f in fields(&t.kind) {
            if named(&f.ty) == "DecileAggregate" {
                assert_ne!(f.access, Access::Public, "{}.{}", t.name, f.name);
            }
        }
    }
}

const MEASURES: [&str; 3] = ["received", "resolved", "slaBreached"];

const MONTHS: &str = "{ regency { complaintsByMonth { period received resolved slaBreached avgResolutionDays } \
    y2024: complaintsByCategory(year: 2024) { category received resolved slaBreached } \
    y2025: complaintsByCategory(year: 2025) { category received resolved slaBreached } } \
    districts { code complaintsByMonth { period received resolved slaBreached avgResolutionDays } } \
    indicator(id: \"complaint.received\") { observations { regionCode turtahun: subPeriodLabel value } } }";

/// What one caller reads of the complaint counts: per (region, period) the month row, and
/// per (region, period) the indicator's value.
struct Counts {
    months: BTreeMap<(String, String), Value>,
    indicator: BTreeMap<(String, String), Value>,
    categories: BTreeMap<i64, Vec<Value>>,
}

async fn counts(app: &TestApp, token: Option<&str>) -> Counts {
    let r = post(app, token, MONTHS).await;
    assert!(r.get("errors").is_none(), "{r}");
    let data = &r["data"];
    let mut months = BTreeMap::new();
    for m in data["regency"]["complaintsByMonth"]
        .as_array()
        .expect("months")
    {
        months.insert(
            (
                "35.03".to_string(),
                m["period"].as_str().expect("period").to_string(),
            ),
            m.clone(),
        );
    }
    for d in data["districts"].as_array().expect("districts") {
        let code = d["code"].as_str().expect("code");
        for m in d["complaintsByMonth"].as_array().expect("months") {
            months.insert(
                (
                    code.to_string(),
                    m["period"].as_str().expect("period").to_string(),
                ),
                m.clone(),
            );
        }
    }
    let mut indicator = BTreeMap::new();
    for o in data["indicator"]["observations"]
        .as_array()
        .expect("observations")
    {
        let key = (
            o["regionCode"].as_str().expect("region").to_string(),
            o["turtahun"].as_str().expect("period").to_string(),
        );
        indicator.insert(key, o["value"].clone());
    }
    let categories = [2024, 2025]
        .into_iter()
        .map(|y| {
            (
                y,
                data["regency"][format!("y{y}")]
                    .as_array()
                    .expect("categories")
                    .clone(),
            )
        })
        .collect();
    Counts {
        months,
        indicator,
        categories,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn complaint_counts_hide_small_cells_on_every_path_and_no_total_rebuilds_one() {
    let (_dir, app) = trenggalek().await;
    let public = counts(&app, None).await;
    let staff = counts(&app, Some(&staff_token("disclosure"))).await;
    // A cell whose reports are all confidential is no public row at all.
    assert!(public.months.keys().all(|k| staff.months.contains_key(k)));
    assert!(
        public.months.len() < staff.months.len(),
        "the demo data has such cells"
    );

    let mut hidden = 0;
    for ((region, period), m) in &public.months {
        for measure in MEASURES {
            assert!(!small(&m[measure]), "{region} {period} {measure}: {m}");
        }
        if m["received"].is_null() {
            hidden += 1;
            assert!(
                m["avgResolutionDays"].is_null(),
                "a mean of a withheld count: {m}"
            );
        }
        // The indicator serves the same cell as the typed field, withheld alike.
        assert_eq!(
            public.indicator.get(&(region.clone(), period.clone())),
            Some(&m["received"]),
            "{region} {period}"
        );
        // Staff read every cell exactly.
        let exact = &staff.months[&(region.clone(), period.clone())];
        for measure in MEASURES {
            let n = exact[measure]
                .as_i64()
                .unwrap_or_else(|| panic!("staff {region} {period} {measure}: {exact}"));
            if let Some(p) = m[measure].as_i64() {
                assert!(p <= n, "public {p} > staff {n}");
            }
        }
        assert_eq!(
            staff.indicator[&(region.clone(), period.clone())],
            exact["received"]
        );
    }
    assert!(hidden > 0, "the demo data has small cells to withhold");

    // Within each month, the regency total minus the published districts is 0 or at least 5.
    let periods: BTreeSet<&String> = public.months.keys().map(|(_, p)| p).collect();
    for period in periods {
        for (counts, exact) in [(&public, false), (&staff, true)] {
            let cells: Vec<&Value> = counts
                .months
                .iter()
                .filter(|((r, p), _)| p == period && r != "35.03")
                .map(|(_, m)| m)
                .collect();
            let total = &counts.months[&("35.03".to_string(), period.clone())];
            for measure in MEASURES {
                let Some(total) = total[measure].as_i64() else {
                    continue;
                };
                let published: i64 = cells.iter().filter_map(|m| m[measure].as_i64()).sum();
                let rest = total - published;
                if exact {
                    assert_eq!(
                        rest, 0,
                        "staff: the districts add up to the total, {period} {measure}"
                    );
                } else {
                    assert!(
                        rest == 0 || rest as f64 >= BELOW,
                        "{period} {measure}: total − siblings = {rest}"
                    );
                }
            }
        }
    }

    // Categories: the year's total minus the published categories is 0 or at least 5.
    for (counts, exact) in [(&public, false), (&staff, true)] {
        for (year, categories) in &counts.categories {
            for measure in MEASURES {
                let year_total: Option<i64> = counts
                    .months
                    .iter()
                    .filter(|((r, p), _)| r == "35.03" && p.starts_with(&year.to_string()))
                    .map(|(_, m)| m[measure].as_i64())
                    .sum();
                let Some(total) = year_total else { continue };
                for c in categories {
                    assert!(exact || !small(&c[measure]), "{year} {c}");
                }
                let published: i64 = categories.iter().filter_map(|c| c[measure].as_i64()).sum();
                let rest = total - published;
                assert!(
                    if exact {
                        rest == 0
                    } else {
                        rest == 0 || rest as f64 >= BELOW
                    },
                    "{year} {measure}: total − categories = {rest} (exact: {exact})"
                );
            }
        }
    }
}

/// Months of the demo complaints, 2024-01 to 2025-10.
fn months() -> Vec<String> {
    (2024..=2025)
        .flat_map(|y| (1..=12).map(move |m| format!("{y}-{m:02}")))
        .filter(|p| p.as_str() <= "2025-10")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_public_figure_or_list_points_at_a_confidential_complaint() {
    let (_dir, app) = trenggalek().await;
    let staff = staff_token("disclosure");
    let public_counts = counts(&app, None).await;
    let staff_counts = counts(&app, Some(&staff)).await;
    let opaque = |id: &str| {
        (10..=12).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_uppercase() || ('2'..='9').contains(&c))
    };
    let a_day = |t: &str| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok();
    let mut confidential = 0;
    for period in months() {
        let q = format!("{{ complaints(month: \"{period}\") {{ id receivedOn districtCode }} }}");
        let listed = post(&app, None, &q).await;
        let listed = listed["data"]["complaints"]
            .as_array()
            .unwrap_or_else(|| panic!("{listed}"))
            .clone();
        let mut by_district: BTreeMap<String, i64> = BTreeMap::new();
        for c in &listed {
            let cid = c["id"].as_str().expect("id");
            assert!(opaque(cid), "a public id is opaque: {cid}");
            assert!(
                a_day(c["receivedOn"].as_str().expect("day")),
                "to the day: {c}"
            );
            *by_district
                .entry(c["districtCode"].as_str().expect("district").to_string())
                .or_default() += 1;
        }
        // Every published figure equals what the public list shows: a difference would be
        // a confidential report.
        for ((region, p), m) in public_counts
            .months
            .iter()
            .filter(|((_, p), _)| *p == period)
        {
            let Some(n) = m["received"].as_i64() else {
                continue;
            };
            let shown = match region.as_str() {
                "35.03" => listed.len() as i64,
                d => by_district.get(d).copied().unwrap_or(0),
            };
            assert_eq!(n, shown, "{region} {p}: figure {n}, listed {shown}");
        }
        let all = staff_counts.months[&("35.03".to_string(), period.clone())]["received"]
            .as_i64()
            .expect("staff total");
        assert!(all >= listed.len() as i64);
        confidential += all - listed.len() as i64;
        // The staff list carries the internal ids and the minute; the public schema has no
        // minute at all.
        let minute = format!("{{ complaints(month: \"{period}\") {{ id receivedAt }} }}");
        let public_minute = post(&app, None, &minute).await;
        assert!(
            public_minute["errors"].to_string().contains("receivedAt"),
            "{public_minute}"
        );
        let staff_list = post(&app, Some(&staff), &minute).await;
        let staff_list = staff_list["data"]["complaints"]
            .as_array()
            .expect("list")
            .clone();
        assert_eq!(staff_list.len(), listed.len());
        assert!(
            staff_list
                .iter()
                .all(|c| c["id"].as_str().is_some_and(|i| i.starts_with("ADU-")))
        );
        assert!(
            staff_list
                .iter()
                .all(|c| c["receivedAt"].as_str().is_some_and(|t| t.len() > 10))
        );
    }
    assert!(
        confidential > 0,
        "the demo data has confidential reports the staff count"
    );

    // One complaint by either id: the public id for the public, the internal one for staff.
    let first = post(&app, None, "{ complaints(month: \"2025-10\") { id } }").await;
    let public_id = first["data"]["complaints"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let by = |id: &str| format!("{{ complaint(id: \"{id}\") {{ id summary }} }}");
    let found = post(&app, None, &by(&public_id)).await;
    assert_eq!(
        found["data"]["complaint"]["id"],
        public_id.as_str(),
        "{found}"
    );
    let internal = post(&app, None, &by("ADU-202510-001")).await;
    assert!(
        internal["data"]["complaint"].is_null(),
        "an internal id finds nothing publicly: {internal}"
    );
    let staff_found = post(&app, Some(&staff), &by("ADU-202510-001")).await;
    assert_eq!(
        staff_found["data"]["complaint"]["id"], "ADU-202510-001",
        "{staff_found}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_is_withheld_with_its_count() {
    // Village stunting is INTERNAL; opened to the public in a copy, its small counts and
    // the prevalence that would rebuild them (prevalence × toddlers) are withheld together.
    let dir = copy_deployment(&repo_root());
    let path = dir.path().join("schema.graphql");
    let sdl = std::fs::read_to_string(&path).expect("schema");
    let open = sdl.replace(
        "stunting: [StuntingStats!]! @access(tier: INTERNAL) @sql",
        "stunting: [StuntingStats!]! @sql",
    );
    assert_ne!(sdl, open, "Village.stunting is INTERNAL");
    std::fs::write(&path, open).expect("write schema");
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    let q = "{ regency { villages { code stunting { year toddlersMeasured stunted prevalencePct } } } }";
    let public = post(&app, None, q).await;
    let staff = post(&app, Some(&staff_token("disclosure")), q).await;
    let rows = |r: &Value| -> Vec<Value> {
        r["data"]["regency"]["villages"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .flat_map(|v| v["stunting"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let (public, staff) = (rows(&public), rows(&staff));
    assert_eq!(public.len(), staff.len());
    let mut withheld = 0;
    for (p, s) in public.iter().zip(&staff) {
        if small(&s["stunted"]) {
            withheld += 1;
            assert!(
                p["stunted"].is_null() && p["prevalencePct"].is_null(),
                "{p} (staff {s})"
            );
            assert!(s["prevalencePct"].is_number(), "staff read the rate: {s}");
        } else {
            assert_eq!(p, s);
        }
    }
    assert!(withheld > 0, "the demo villages have small stunting counts");
}

#[tokio::test(flavor = "multi_thread")]
async fn stunting_indicator_and_typed_fields_serve_the_same_cells() {
    let (_dir, app) = trenggalek().await;
    let r = post(
        &app,
        None,
        "{ districts { code stunting { year prevalencePct } } regency { code stunting { year prevalencePct } } \
           indicator(id: \"health.stunting_admin\") { observations { regionCode year value } } }",
    )
    .await;
    assert!(r.get("errors").is_none(), "{r}");
    let mut typed = BTreeMap::new();
    let regions = r["data"]["districts"]
        .as_array()
        .expect("districts")
        .iter()
        .chain([&r["data"]["regency"]]);
    for d in regions {
        let code = d["code"].as_str().expect("code").to_string();
        for s in d["stunting"].as_array().expect("stunting") {
            typed.insert(
                (code.clone(), s["year"].as_i64().expect("year")),
                s["prevalencePct"].clone(),
            );
        }
    }
    let observations = r["data"]["indicator"]["observations"]
        .as_array()
        .expect("observations");
    assert_eq!(observations.len(), typed.len());
    for o in observations {
        let key = (
            o["regionCode"].as_str().expect("region").to_string(),
            o["year"].as_i64().expect("year"),
        );
        assert_eq!(typed.get(&key), Some(&o["value"]), "{key:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lone_small_cell_takes_its_smallest_sibling_with_it() {
    // Three public EDUCATION reports in 2025, every other category five or more: the total
    // minus the others would give 3, so the smallest other category is withheld too.
    let dir = copy_deployment(&repo_root());
    let seed = dir.path().join("data/seeds/pengaduan.sql");
    let mut sql = std::fs::read_to_string(&seed).expect("seed");
    sql.push_str(
        "\nDELETE FROM complaints WHERE category = 'EDUCATION' AND year = 2025 AND id NOT IN \
         (SELECT id FROM (SELECT id FROM complaints WHERE category = 'EDUCATION' AND year = 2025 \
         AND is_confidential = 0 ORDER BY id LIMIT 3) kept);\n",
    );
    std::fs::write(&seed, sql).expect("write seed");
    let app = TestApp::spawn(dir.path(), &[("SIMPUL_JWT_SECRET", SECRET)]).await;
    let q = "{ regency { complaintsByCategory(year: 2025) { category received } } }";
    let public = post(&app, None, q).await;
    let staff = post(&app, Some(&staff_token("disclosure")), q).await;
    let list = |r: &Value| -> BTreeMap<String, Value> {
        r["data"]["regency"]["complaintsByCategory"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|c| {
                (
                    c["category"].as_str().expect("category").to_string(),
                    c["received"].clone(),
                )
            })
            .collect()
    };
    let (public, staff) = (list(&public), list(&staff));
    assert!(public["EDUCATION"].is_null(), "{public:?}");
    assert!(small(&staff["EDUCATION"]), "{staff:?}");
    let others: Vec<&String> = public
        .iter()
        .filter(|(c, v)| v.is_null() && *c != "EDUCATION")
        .map(|(c, _)| c)
        .collect();
    assert_eq!(others.len(), 1, "one complementary cell: {public:?}");
    // It is no small cell itself (the public counts leave confidential reports out, so the
    // staff's figure is an upper bound of what was withheld).
    assert!(
        staff[others[0]].as_f64().is_some_and(|n| n >= BELOW),
        "{staff:?}"
    );
}
