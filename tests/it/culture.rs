//! The culture data against the published facts (../docs/domain.md §2.6, sources in
//! data/README.md): the eight national WBTb items with their year where a source states
//! it, and every dated ceremony on the weekday and pasaran its row names, computed here
//! from the date rather than trusted.

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use crate::harness::{TestApp, copy_deployment, repo_root};

const WEEKDAYS: [&str; 7] = [
    "Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu",
];
const PASARAN: [&str; 5] = ["Legi", "Pahing", "Pon", "Wage", "Kliwon"];

/// "Jumat Kliwon" for a date: the Gregorian weekday and the five-day pasaran cycle, whose
/// day 0 (1 January 1900, a Monday) was Pahing.
fn weton(date: NaiveDate) -> String {
    let epoch = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a date");
    let days = (date - epoch).num_days();
    let pasaran = PASARAN[(days + 1).rem_euclid(5) as usize];
    let weekday = WEEKDAYS[date.weekday().num_days_from_monday() as usize];
    format!("{weekday} {pasaran}")
}

#[test]
fn the_calendar_matches_the_published_ceremony_days() {
    // domain.md §2.6: the 2019 and 2024 Nyadran Dam Bagong fell on these Jumat Kliwon;
    // 17 August 1945 was a Jumat Legi.
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
    assert_eq!(weton(day(2019, 7, 19)), "Jumat Kliwon");
    assert_eq!(weton(day(2024, 6, 7)), "Jumat Kliwon");
    assert_eq!(weton(day(1945, 8, 17)), "Jumat Legi");
    assert_eq!(
        weton(day(2025, 5, 16)),
        "Jumat Pon",
        "the date the data once had"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn traditions_carry_the_published_heritage_and_calendar() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[]).await;
    let r = app
        .query(
            "{ traditions { id name kind pasaranDay heritageStatus heritageYear sourceUrl \
               district { name } events { date pasaranDay javaneseMonth } } }",
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let traditions = r["data"]["traditions"].as_array().expect("a list");

    let wbtb: Vec<&Value> = traditions
        .iter()
        .filter(|t| t["heritageStatus"] == "Warisan Budaya Takbenda Indonesia")
        .collect();
    let mut names: Vec<&str> = wbtb.iter().filter_map(|t| t["id"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "baritan",
            "kupatan_durenan",
            "larung_sembonyo",
            "lodho_ayam",
            "longkangan",
            "ngetung_batih",
            "nyadran_dam_bagong",
            "sinongkelan"
        ],
        "Trenggalek's eight national WBTb items"
    );
    let year = |id: &str| {
        wbtb.iter()
            .find(|t| t["id"] == id)
            .map(|t| t["heritageYear"].clone())
    };
    assert_eq!(year("longkangan"), Some(2025.into()));
    assert_eq!(year("nyadran_dam_bagong"), Some(2024.into()));
    assert_eq!(year("ngetung_batih"), Some(2023.into()));
    assert_eq!(year("sinongkelan"), Some(2021.into()));
    assert_eq!(year("lodho_ayam"), Some(2016.into()));
    for t in traditions {
        let source = t["sourceUrl"].as_str().unwrap_or_default();
        assert!(
            source.starts_with("https://"),
            "{} names its source",
            t["id"]
        );
    }

    let nyadran = traditions
        .iter()
        .find(|t| t["id"] == "nyadran_dam_bagong")
        .expect("Nyadran Dam Bagong");
    assert_eq!(nyadran["pasaranDay"], "Jumat Kliwon");
    let mut dated = 0;
    for t in traditions {
        for e in t["events"].as_array().into_iter().flatten() {
            let Some(named) = e["pasaranDay"].as_str() else {
                continue;
            };
            let date = NaiveDate::parse_from_str(e["date"].as_str().unwrap_or(""), "%Y-%m-%d")
                .unwrap_or_else(|_| panic!("{}: a date in {e}", t["id"]));
            assert_eq!(weton(date), named, "{} on {date}", t["id"]);
            assert_eq!(
                t["pasaranDay"].as_str(),
                Some(named),
                "{}: each event on the tradition's day",
                t["id"]
            );
            dated += 1;
        }
    }
    assert!(dated >= 2, "the agenda has dated ceremonies to check");
}
