//! The published-figures test: every figure of ../docs/domain.md §2 that the shipped data
//! uses is served through the public GraphQL API exactly as published, marked as real (not
//! demo) and with its source. These are the numbers the Smart Centre shows the public as
//! official, so a regenerated seed, a snapshot or a mapping that shifts one of them must
//! fail here, naming the figure. One query per domain area; the figures are a table.
//!
//! The WBTb list of §2.6 is checked by culture.rs. Not in the data, so not checked here:
//! - §2.1: the 2010 census (674.411), growth 0,67 %/yr and the partial kecamatan counts
//!   (Panggul 81.492, Suruh 26.744, …), which only weight the synthetic kecamatan totals.
//! - §2.2: 2007 (149,10 rb, 22,79 %), the 2006 peak, the national rank, the sample size,
//!   and the other BPS key indicators (IPM, AHH, TPT, TPAK, PDRB, LPE, PDRB/kapita).
//! - §2.3: mean years of schooling 7,56, the 34 SD/SMP with 1–5 new pupils, the five SDN
//!   regrouped in 2020; school counts were never found.
//! - §2.4: Desa Watulimo's 0,75 %, the national SKI 21,5 %, the puskesmas count (the data's
//!   puskesmas are demo), the planned RSUD Watulimo.
//! - §2.5: Karanggongso's usual weekday and weekend counts and the 28 Dec 2025 count.
//! - §2.6: hari jadi, motto and nicknames.
//! - §2.7: the loans, SILPA and the transfer cut. The other outlets' belanja (2,2 T; 2,19 T
//!   with defisit 83,865 M) stand beside the served figures: catalog.rs checks them.
//! - §2.8: the WhatsApp number and "20–30 per month" (the monthly complaints are demo).

use serde_json::Value;

use crate::harness::{TestApp, copy_deployment, repo_root};

/// A value as published.
#[derive(Debug)]
enum Want {
    /// A count or an amount of rupiah: exactly.
    Int(i64),
    /// A published decimal (percent, index, thousands): to 1e-9, relative.
    Dec(f64),
    /// A name, a code or a date.
    Text(&'static str),
}

use Want::{Dec, Int, Text};

/// Where the answer marks a figure as real rather than synthetic.
enum Flag {
    /// `demo: false` on the item holding it.
    Item,
    /// The source flags no single value (BPS answers read `demo: null`); the dataset's
    /// `demo`, at this path under `data`, is false.
    Dataset(&'static str),
    /// Nothing to check: the item's other values are synthetic, so it says `demo: true` (and
    /// its `note`, where it has one, names the real value), or its type has no `demo`.
    Unchecked,
}

/// One figure: the item holding it (a path from `Figures::under`), the item's field, the
/// published value.
type Row = (&'static str, &'static str, Want);

/// Figures read from one place of an answer, with their provenance.
struct Figures {
    /// The section of domain.md they come from.
    section: &'static str,
    /// What they are.
    what: &'static str,
    /// The path under `data` the rows start from.
    under: &'static str,
    rows: &'static [Row],
    flag: Flag,
    /// The item's field naming the source, or with a leading `/` a path under `data`.
    source: Option<&'static str>,
}

/// One domain area: one query and the figures its answer must hold.
struct Area {
    name: &'static str,
    query: &'static str,
    figures: &'static [Figures],
}

const POPULATION: Area = Area {
    name: "population",
    query: "{ regency { population { period total male female demo note } } \
              total: indicator(id: \"population.total\") { \
                observations { regionCode year subPeriod value demo } } \
              sex: indicator(id: \"population.sex\") { \
                observations { regionCode year subPeriod breakdown value demo } } \
              bps: indicator(id: \"population.bps\") { \
                metadata { demo sourceSystem } observations { year value demo } } }",
    figures: &[
        Figures {
            section: "2.1",
            what: "Dukcapil DKB Semester II 2024 (the row's households are demo)",
            under: "regency/population",
            rows: &[
                ("", "period", Text("2024-S2")),
                ("", "total", Int(753_810)),
                ("", "male", Int(378_680)),
                ("", "female", Int(375_130)),
            ],
            flag: Flag::Unchecked,
            source: Some("note"),
        },
        Figures {
            section: "2.1",
            what: "Dukcapil DKB Semester II 2024, per value",
            under: "",
            rows: &[
                (
                    "total/observations[regionCode=35.03,year=2024,subPeriod=2]",
                    "value",
                    Int(753_810),
                ),
                (
                    "sex/observations[regionCode=35.03,year=2024,subPeriod=2,breakdown=Laki-laki]",
                    "value",
                    Int(378_680),
                ),
                (
                    "sex/observations[regionCode=35.03,year=2024,subPeriod=2,breakdown=Perempuan]",
                    "value",
                    Int(375_130),
                ),
            ],
            flag: Flag::Item,
            source: Some("/regency/population/note"),
        },
        Figures {
            section: "2.1",
            what: "BPS mid-year population",
            under: "bps/observations",
            rows: &[
                ("[year=2018]", "value", Int(694_902)),
                ("[year=2019]", "value", Int(696_295)),
                ("[year=2020]", "value", Int(731_125)),
                ("[year=2021]", "value", Int(734_888)),
                ("[year=2022]", "value", Int(739_669)),
                ("[year=2023]", "value", Int(756_109)),
                ("[year=2024]", "value", Int(757_444)),
            ],
            flag: Flag::Dataset("bps/metadata/demo"),
            source: Some("/bps/metadata/sourceSystem"),
        },
    ],
};

const POVERTY: Area = Area {
    name: "poverty",
    query: "{ regency { poverty { rate { year value demo } poorCount { year value demo } \
              povertyLine { year value demo } depth { year value demo } \
              severity { year value demo } } } \
              bps: indicator(id: \"poverty.rate\") { metadata { demo sourceSystem } } }",
    figures: &[Figures {
        section: "2.2",
        what: "BPS poverty, March (P0 %, poor people in thousands, poverty line, P1, P2)",
        under: "regency/poverty",
        rows: &[
            ("rate[year=2018]", "value", Dec(12.02)),
            ("rate[year=2019]", "value", Dec(10.98)),
            ("rate[year=2020]", "value", Dec(11.62)),
            ("rate[year=2021]", "value", Dec(12.14)),
            ("rate[year=2022]", "value", Dec(10.96)),
            ("rate[year=2023]", "value", Dec(10.63)),
            ("rate[year=2024]", "value", Dec(10.50)),
            ("rate[year=2025]", "value", Dec(10.29)),
            ("poorCount[year=2018]", "value", Dec(83.50)),
            ("poorCount[year=2019]", "value", Dec(76.44)),
            ("poorCount[year=2020]", "value", Dec(81.06)),
            ("poorCount[year=2021]", "value", Dec(84.89)),
            ("poorCount[year=2022]", "value", Dec(76.75)),
            ("poorCount[year=2023]", "value", Dec(74.58)),
            ("poorCount[year=2024]", "value", Dec(73.75)),
            ("poorCount[year=2025]", "value", Dec(72.35)),
            ("povertyLine[year=2024]", "value", Int(434_146)),
            ("povertyLine[year=2025]", "value", Int(450_334)),
            ("depth[year=2024]", "value", Dec(1.43)),
            ("depth[year=2025]", "value", Dec(1.09)),
            ("severity[year=2024]", "value", Dec(0.28)),
            ("severity[year=2025]", "value", Dec(0.20)),
        ],
        flag: Flag::Dataset("bps/metadata/demo"),
        source: Some("/bps/metadata/sourceSystem"),
    }],
};

const EDUCATION: Area = Area {
    name: "education",
    query: "{ regency { education { semester level status lowIntakeSchools demo } } }",
    figures: &[Figures {
        section: "2.3",
        // The regency total is real; its split over the kecamatan and the row's other counts
        // are demo, and EducationStats has no source field.
        what: "SPMB 2025/26: SD negeri with at most 3 new pupils",
        under: "regency/education[level=SD,status=NEGERI]",
        rows: &[
            ("", "semester", Text("2025/2026 Ganjil")),
            ("", "lowIntakeSchools", Int(21)),
        ],
        flag: Flag::Unchecked,
        source: None,
    }],
};

const HEALTH: Area = Area {
    name: "health",
    query: "{ regency { stunting { year prevalencePct stunted demo note } \
              stuntingSurvey { year survey prevalencePct demo sourceUrl } \
              health { lokusVillages } } \
              admin: indicator(id: \"health.stunting_admin\") { \
                metadata { sourceSystem } observations { regionCode year value demo } } \
              survey: indicator(id: \"health.stunting_survey\") { \
                metadata { sourceSystem } observations { regionCode year value demo } } \
              healthFacilities { \
                name type class beds districtCode villageCode openedOn demo note } \
              wonocoyo: village(code: \"35.03.01.2004\") { name } }",
    figures: &[
        Figures {
            section: "2.4",
            what: "administrative stunting (e-PPGBM), regency",
            under: "regency/stunting",
            rows: &[
                ("[year=2022]", "prevalencePct", Dec(7.9)),
                ("[year=2022]", "stunted", Int(2_950)),
                ("[year=2023]", "prevalencePct", Dec(6.6)),
                ("[year=2023]", "stunted", Int(2_388)),
            ],
            flag: Flag::Item,
            source: Some("note"),
        },
        Figures {
            section: "2.4",
            what: "administrative stunting 2024 (the row's counts are demo)",
            under: "regency/stunting",
            rows: &[("[year=2024]", "prevalencePct", Dec(6.11))],
            flag: Flag::Unchecked,
            source: Some("note"),
        },
        Figures {
            section: "2.4",
            what: "administrative stunting, per value",
            under: "admin/observations",
            rows: &[
                ("[regionCode=35.03,year=2022]", "value", Dec(7.9)),
                ("[regionCode=35.03,year=2023]", "value", Dec(6.6)),
                ("[regionCode=35.03,year=2024]", "value", Dec(6.11)),
            ],
            flag: Flag::Item,
            source: Some("/admin/metadata/sourceSystem"),
        },
        Figures {
            section: "2.4",
            what: "survey stunting (Kemenkes)",
            under: "regency/stuntingSurvey",
            rows: &[
                ("[year=2023]", "survey", Text("SKI 2023")),
                ("[year=2023]", "prevalencePct", Dec(19.5)),
                ("[year=2024]", "survey", Text("SSGI 2024")),
                ("[year=2024]", "prevalencePct", Dec(15.8)),
            ],
            flag: Flag::Item,
            source: Some("sourceUrl"),
        },
        Figures {
            section: "2.4",
            what: "survey stunting, per value",
            under: "survey/observations",
            rows: &[
                ("[regionCode=35.03,year=2023]", "value", Dec(19.5)),
                ("[regionCode=35.03,year=2024]", "value", Dec(15.8)),
            ],
            flag: Flag::Item,
            source: Some("/survey/metadata/sourceSystem"),
        },
        Figures {
            section: "2.4",
            // Published as "~20 desa lokus"; which villages they are is demo.
            what: "stunting lokus villages",
            under: "regency/health",
            rows: &[("", "lokusVillages", Int(20))],
            flag: Flag::Unchecked,
            source: None,
        },
        Figures {
            section: "2.4",
            what: "government hospitals",
            under: "healthFacilities",
            rows: &[
                ("[name=RSUD dr. Soedomo]", "type", Text("RSUD")),
                ("[name=RSUD dr. Soedomo]", "districtCode", Text("35.03.11")),
                ("[name=RSUD dr. Soedomo]", "class", Text("B")),
                ("[name=RSUD Panggul]", "type", Text("RSUD")),
                ("[name=RSUD Panggul]", "districtCode", Text("35.03.01")),
                ("[name=RSUD Panggul]", "villageCode", Text("35.03.01.2004")),
                ("[name=RSUD Panggul]", "class", Text("C")),
                ("[name=RSUD Panggul]", "beds", Int(50)),
                ("[name=RSUD Panggul]", "openedOn", Text("2023-10-11")),
            ],
            flag: Flag::Item,
            source: Some("note"),
        },
        Figures {
            section: "2.4",
            what: "RSUD Panggul's village code is Desa Wonocoyo (reference data)",
            under: "wonocoyo",
            rows: &[("", "name", Text("Wonocoyo"))],
            flag: Flag::Unchecked,
            source: None,
        },
    ],
};

const TOURISM: Area = Area {
    name: "tourism",
    query: "{ destinations { id name villageCode district { name } demo sourceUrl \
              visits { kind dateFrom dateTo visitors demo sourceUrl } } \
              tourismEventTotals { event destinationsCounted visitors demo sourceUrl } \
              tasikmadu: village(code: \"35.03.08.2012\") { name } }",
    figures: &[
        Figures {
            section: "2.5",
            // "Kec. Watulimo unless noted"; Goa Ngerit (Desa Senden, Kec. Kampak) and the town's
            // Hutan Kota are exceptions domain.md does not note, so their kecamatan is left out.
            what: "destinations and their kecamatan",
            under: "destinations",
            rows: &[
                ("[id=prigi]", "name", Text("Pantai Prigi")),
                ("[id=prigi]", "district/name", Text("Watulimo")),
                (
                    "[id=karanggongso]",
                    "name",
                    Text("Pantai Pasir Putih Karanggongso"),
                ),
                ("[id=karanggongso]", "district/name", Text("Watulimo")),
                ("[id=karanggongso]", "villageCode", Text("35.03.08.2012")),
                ("[id=mutiara]", "name", Text("Pantai Mutiara")),
                ("[id=mutiara]", "district/name", Text("Watulimo")),
                ("[id=cengkrong]", "name", Text("Pantai Cengkrong")),
                ("[id=cengkrong]", "district/name", Text("Watulimo")),
                ("[id=simbaronce]", "name", Text("Pantai Simbaronce")),
                ("[id=simbaronce]", "district/name", Text("Watulimo")),
                ("[id=pelang]", "name", Text("Pantai Pelang")),
                ("[id=pelang]", "district/name", Text("Panggul")),
                ("[id=kebo]", "name", Text("Pantai Kebo")),
                ("[id=kebo]", "district/name", Text("Munjungan")),
                ("[id=goa_lowo]", "name", Text("Goa Lowo")),
                ("[id=goa_lowo]", "district/name", Text("Watulimo")),
                ("[id=goa_ngerit]", "name", Text("Goa Ngerit")),
                ("[id=durensari]", "name", Text("Desa Wisata Durensari")),
                ("[id=durensari]", "district/name", Text("Watulimo")),
                ("[id=phd_nusantara]", "name", Text("PHD Nusantara")),
                ("[id=phd_nusantara]", "district/name", Text("Durenan")),
            ],
            flag: Flag::Item,
            source: Some("sourceUrl"),
        },
        Figures {
            section: "2.5",
            what: "Karanggongso's village code is Desa Tasikmadu (reference data)",
            under: "tasikmadu",
            rows: &[("", "name", Text("Tasikmadu"))],
            flag: Flag::Unchecked,
            source: None,
        },
        Figures {
            section: "2.5",
            what: "Nataru 2024 (14-31 Dec) visitors per destination",
            under: "destinations",
            rows: &[
                (
                    "[id=mutiara]/visits[kind=EVENT]",
                    "dateFrom",
                    Text("2024-12-14"),
                ),
                (
                    "[id=mutiara]/visits[kind=EVENT]",
                    "dateTo",
                    Text("2024-12-31"),
                ),
                ("[id=mutiara]/visits[kind=EVENT]", "visitors", Int(32_806)),
                (
                    "[id=karanggongso]/visits[kind=EVENT]",
                    "visitors",
                    Int(23_696),
                ),
                (
                    "[id=phd_nusantara]/visits[kind=EVENT]",
                    "visitors",
                    Int(5_752),
                ),
                ("[id=kebo]/visits[kind=EVENT]", "visitors", Int(3_474)),
                ("[id=prigi]/visits[kind=EVENT]", "visitors", Int(2_729)),
                ("[id=pelang]/visits[kind=EVENT]", "visitors", Int(1_995)),
                ("[id=goa_lowo]/visits[kind=EVENT]", "visitors", Int(436)),
                ("[id=durensari]/visits[kind=EVENT]", "visitors", Int(215)),
                ("[id=goa_ngerit]/visits[kind=EVENT]", "visitors", Int(62)),
            ],
            flag: Flag::Item,
            source: Some("sourceUrl"),
        },
        Figures {
            section: "2.5",
            what: "Nataru totals",
            under: "tourismEventTotals",
            rows: &[
                ("[event=Nataru 2024]", "visitors", Int(75_376)),
                ("[event=Nataru 2024]", "destinationsCounted", Int(18)),
                ("[event=Nataru 2023]", "visitors", Int(150_957)),
            ],
            flag: Flag::Item,
            source: Some("sourceUrl"),
        },
        Figures {
            section: "2.5",
            what: "Lebaran 2023 visitors per day, 23-25 April",
            under: "destinations[id=karanggongso]/visits",
            rows: &[
                ("[dateFrom=2023-04-23]", "visitors", Int(1_620)),
                ("[dateFrom=2023-04-24]", "visitors", Int(4_514)),
                ("[dateFrom=2023-04-25]", "visitors", Int(4_650)),
            ],
            flag: Flag::Item,
            source: Some("sourceUrl"),
        },
        Figures {
            section: "2.5",
            what: "Lebaran 2023 visitors per day, 23-25 April",
            under: "destinations[id=prigi]/visits",
            rows: &[
                ("[dateFrom=2023-04-23]", "visitors", Int(464)),
                ("[dateFrom=2023-04-24]", "visitors", Int(980)),
                ("[dateFrom=2023-04-25]", "visitors", Int(1_181)),
            ],
            flag: Flag::Item,
            source: Some("sourceUrl"),
        },
        Figures {
            section: "2.5",
            what: "Lebaran 2023 visitors per day, 23-25 April",
            under: "destinations[id=pelang]/visits",
            rows: &[
                ("[dateFrom=2023-04-23]", "visitors", Int(550)),
                ("[dateFrom=2023-04-24]", "visitors", Int(950)),
                ("[dateFrom=2023-04-25]", "visitors", Int(1_000)),
            ],
            flag: Flag::Item,
            source: Some("sourceUrl"),
        },
        Figures {
            section: "2.5",
            what: "Lebaran 2023 visitors per day, 23-25 April",
            under: "destinations[id=goa_lowo]/visits",
            rows: &[
                ("[dateFrom=2023-04-23]", "visitors", Int(50)),
                ("[dateFrom=2023-04-24]", "visitors", Int(93)),
                ("[dateFrom=2023-04-25]", "visitors", Int(75)),
            ],
            flag: Flag::Item,
            source: Some("sourceUrl"),
        },
    ],
};

const CULTURE: Area = Area {
    name: "culture",
    query: "{ traditions { id firstHeld javaneseMonth district { name } village { name } \
              demo sourceUrl } }",
    figures: &[Figures {
        section: "2.6",
        what: "ceremonies: where, in which Javanese month, since when",
        under: "traditions",
        rows: &[
            ("[id=larung_sembonyo]", "district/name", Text("Watulimo")),
            ("[id=larung_sembonyo]", "javaneseMonth", Text("Selo")),
            ("[id=larung_sembonyo]", "firstHeld", Int(1985)),
            ("[id=nyadran_dam_bagong]", "village/name", Text("Ngantru")),
            ("[id=nyadran_dam_bagong]", "javaneseMonth", Text("Selo")),
            ("[id=kupatan_durenan]", "village/name", Text("Durenan")),
            ("[id=kupatan_durenan]", "javaneseMonth", Text("Sawal")),
            ("[id=longkangan]", "village/name", Text("Masaran")),
            ("[id=longkangan]", "javaneseMonth", Text("Selo")),
            ("[id=longkangan]", "firstHeld", Int(1849)),
        ],
        flag: Flag::Item,
        source: Some("sourceUrl"),
    }],
};

/// Rp 1 miliar: the press gives APBD figures in trillions to three decimals.
const BN: i64 = 1_000_000_000;

const BUDGET: Area = Area {
    name: "budget",
    query: "{ budgets { id revenueIdr expenditureIdr demo sourceUrl note } }",
    figures: &[Figures {
        section: "2.7",
        // To the last digit published: 2025 spending is "~2,0 T"; 2026 "~1,866 T", "~1,935 T".
        what: "APBD revenue and spending (Rp)",
        under: "budgets",
        rows: &[
            ("[id=2025-MURNI]", "revenueIdr", Int(1_969 * BN)),
            ("[id=2025-MURNI]", "expenditureIdr", Int(2_000 * BN)),
            ("[id=2025-PERUBAHAN]", "revenueIdr", Int(1_933 * BN)),
            ("[id=2025-PERUBAHAN]", "expenditureIdr", Int(2_016 * BN)),
            ("[id=2026-MURNI]", "revenueIdr", Int(1_866 * BN)),
            ("[id=2026-MURNI]", "expenditureIdr", Int(1_935 * BN)),
        ],
        flag: Flag::Item,
        source: Some("sourceUrl"),
    }],
};

const COMPLAINTS: Area = Area {
    name: "complaints",
    query: "{ complaintVolumesPublished { \
              periodLabel dateFrom dateTo received resolved demo sourceUrl } }",
    figures: &[Figures {
        section: "2.8",
        what: "published complaint volumes",
        under: "complaintVolumesPublished",
        rows: &[
            ("[periodLabel=2020]", "received", Int(339)),
            ("[periodLabel=2020]", "resolved", Int(315)),
            ("[periodLabel=2021]", "received", Int(365)),
            ("[periodLabel=2021]", "resolved", Int(348)),
            ("[periodLabel=2022-01]", "dateTo", Text("2022-01-31")),
            ("[periodLabel=2022-01]", "received", Int(22)),
            ("[periodLabel=2022-01]", "resolved", Int(13)),
            ("[periodLabel=2023-01..04]", "dateFrom", Text("2023-01-01")),
            ("[periodLabel=2023-01..04]", "dateTo", Text("2023-04-30")),
            ("[periodLabel=2023-01..04]", "received", Int(133)),
            ("[periodLabel=2023-01..04]", "resolved", Int(120)),
        ],
        flag: Flag::Item,
        source: Some("sourceUrl"),
    }],
};

const AREAS: &[Area] = &[
    POPULATION, POVERTY, EDUCATION, HEALTH, TOURISM, CULTURE, BUDGET, COMPLAINTS,
];

#[tokio::test(flavor = "multi_thread")]
async fn every_published_figure_is_served_as_published() {
    let dir = copy_deployment(&repo_root());
    let app = TestApp::spawn(dir.path(), &[]).await;
    let mut wrong = Vec::new();
    let mut checked = 0;
    for area in AREAS {
        let r = app.query(area.query).await;
        assert!(r.get("errors").is_none(), "{}: {r}", area.name);
        for figures in area.figures {
            for (item, field, want) in figures.rows {
                checked += 1;
                if let Err(e) = check(&r["data"], figures, item, field, want) {
                    let (section, what) = (figures.section, figures.what);
                    let at = format!("{item} {field}");
                    wrong.push(format!("§{section} {what}: {}: {e}", at.trim_start()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} published figures are not served as published:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// One figure: its value, whether it is marked real, and its source.
fn check(data: &Value, f: &Figures, item: &str, field: &str, want: &Want) -> Result<(), String> {
    let item = find(find(data, f.under)?, item)?;
    let got = find(item, field)?;
    let exact = match *want {
        Int(n) => num(got) == Some(n as f64),
        Dec(x) => num(got).is_some_and(|g| (g - x).abs() <= 1e-9 * x.abs()),
        Text(t) => got.as_str() == Some(t),
    };
    if !exact {
        return Err(format!("published {want:?}, served {got}"));
    }
    match f.flag {
        Flag::Item if item["demo"] != Value::Bool(false) => {
            return Err(format!("flagged demo: {}", item["demo"]));
        }
        Flag::Dataset(dataset) => {
            let demo = find(data, dataset)?;
            if *demo != Value::Bool(false) || item["demo"] == Value::Bool(true) {
                return Err(format!("flagged demo: {}, dataset {demo}", item["demo"]));
            }
        }
        _ => {}
    }
    if let Some(path) = f.source {
        let source = match path.strip_prefix('/') {
            Some(path) => find(data, path)?,
            None => find(item, path)?,
        };
        if source.as_str().is_none_or(str::is_empty) {
            return Err(format!("no source in {path}: {source}"));
        }
    }
    Ok(())
}

/// The value at `path` under `root`: fields separated by `/`, where `list[k=v,...]` (or a
/// bare `[k=v,...]` on the list at hand) is the one item whose fields `k` read `v`.
fn find<'a>(root: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut here = root;
    for step in path.split('/').filter(|s| !s.is_empty()) {
        let (name, filter) = match step.split_once('[') {
            Some((name, rest)) => {
                let Some(filter) = rest.strip_suffix(']') else {
                    return Err(format!("`{step}`: no closing `]`"));
                };
                (name, Some(filter))
            }
            None => (step, None),
        };
        if !name.is_empty() {
            here = here
                .get(name)
                .ok_or_else(|| format!("no `{name}` in the answer (`{path}`)"))?;
        }
        let Some(filter) = filter else { continue };
        let items = here
            .as_array()
            .ok_or_else(|| format!("`{step}` is not a list: {here}"))?;
        let mut hits = items.iter().filter(|i| {
            filter
                .split(',')
                .all(|kv| kv.split_once('=').is_some_and(|(k, v)| reads(&i[k], v)))
        });
        here = match (hits.next(), hits.next()) {
            (Some(one), None) => one,
            (None, _) => return Err(format!("no item has {filter} (`{path}`)")),
            (Some(_), Some(_)) => return Err(format!("several items have {filter} (`{path}`)")),
        };
    }
    Ok(here)
}

/// Whether `v` reads `text`: a string equal to it, or a number written so.
fn reads(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Number(n) => n.to_string() == text,
        _ => false,
    }
}

/// A number served as a JSON number or as a decimal string (the `Rupiah` scalar).
fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
