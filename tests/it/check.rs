//! Snapshots of every `simpul check` message: each mistake is reported with its place and a
//! hint, all at once.

use crate::harness::{Backend, copy_deployment, move_to_server, repo_root};

async fn check_output(name: &str) -> String {
    simpul::install_crypto();
    let dir = copy_deployment(&repo_root().join("tests/check").join(name));
    let diags = simpul::check::check(dir.path()).await;
    assert!(!diags.is_empty(), "{name} must have problems");
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_binding_mistake_is_reported_with_its_place() {
    let out = check_output("broken").await;
    insta::assert_snapshot!("check_broken", out);
}

#[tokio::test]
async fn every_outbox_mistake_is_reported_with_its_place() {
    let out = check_output("outbox").await;
    insta::assert_snapshot!("check_outbox", out);
}

#[tokio::test]
async fn a_syntax_error_points_at_its_line() {
    let out = check_output("syntax").await;
    assert!(out.starts_with("schema.graphql:7:"), "{out}");
    insta::assert_snapshot!("check_syntax", out);
}

#[tokio::test]
async fn config_file_mistakes_are_reported_per_file() {
    let out = check_output("config").await;
    insta::assert_snapshot!("check_config", out);
}

#[tokio::test]
async fn the_repository_deployment_has_no_problems() {
    simpul::install_crypto();
    let dir = copy_deployment(&repo_root());
    let diags = simpul::check::check(dir.path()).await;
    assert!(
        diags.is_empty(),
        "{}",
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn sql_the_database_rejects_is_reported_at_its_binding() {
    let out = check_output("sql").await;
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("schema.graphql:"))
            .count(),
        2,
        "{out}"
    );
    insta::assert_snapshot!("check_sql", out);
}

#[tokio::test]
async fn type_interface_union_and_argument_mistakes_are_reported() {
    let out = check_output("more").await;
    insta::assert_snapshot!("check_more", out);
}

/// `simpul check` on a copy of `tests/check/NAME`, its SQLite sources moved to `backend`.
async fn check_on(name: &str, backend: Option<Backend>) -> String {
    simpul::install_crypto();
    let dir = copy_deployment(&repo_root().join("tests/check").join(name));
    let copy = match backend {
        Some(b) => Some(move_to_server(dir.path(), b).await),
        None => None,
    };
    let out = simpul::check::check(dir.path())
        .await
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(copy) = copy {
        copy.drop_all().await;
    }
    out
}

/// Each mistake of tests/check/rows, found against what the database returns.
fn assert_rows_findings(out: &str) {
    for expected in [
        // A text column with '-' and 'n/a' read as Int.
        "District.population is Int, but column `penduduk`",
        "\"-\", \"n/a\"",
        // A date read as Int.
        "District.formed is Int, but column `dibentuk`",
        // A non-null field no column carries.
        "District.area is non-null, but the rows of Query.districts (connector 'db') have no column `area`",
        // A misspelt batch key, with the column it meant.
        "District.villages: batch key `kode_kecamatan` is not a column of its rows",
        "did you mean `kode_kec`?",
        // Codes written two ways: every list would be empty.
        "District.villagesByCode: no value of batch key `kode_kec` meets a value of `kode`",
        // A parent placeholder the parent's rows lack.
        "{{parent.kode_kecamatan}} in District.capital: the rows of Query.districts have no column `kode_kecamatan`",
        // An enum value the data holds and the schema does not declare.
        "Village.status is VillageStatus!, but column `status`",
        "\"DUSUN\"",
        // A scalar binding with two columns and none named like the field.
        "Query.districtCount: its rows have 2 columns and none is named `districtCount`",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[tokio::test]
async fn rows_from_sqlite_are_matched_against_the_fields_that_read_them() {
    let out = check_on("rows", None).await;
    assert_rows_findings(&out);
    insta::assert_snapshot!("check_rows_sqlite", out);
}

#[tokio::test]
async fn rows_from_postgresql_are_matched_against_the_fields_that_read_them() {
    let out = check_on("rows", Some(Backend::Postgres)).await;
    assert_rows_findings(&out);
    insta::assert_snapshot!("check_rows_postgres", out);
}

#[tokio::test]
async fn rows_from_mariadb_are_matched_against_the_fields_that_read_them() {
    let out = check_on("rows", Some(Backend::Mariadb)).await;
    assert_rows_findings(&out);
    insta::assert_snapshot!("check_rows_mariadb", out);
}

#[tokio::test]
async fn spreadsheet_cells_and_api_snapshots_are_read_against_their_fields() {
    let out = check_on("sheet", None).await;
    for expected in [
        "Visit.visitors is Int!, but column `pengunjung` of table kunjungan",
        "\"-\"",
        "Facility.kind is FacilityKind!, but column `jenis` of the rows of Query.facilities",
        "\"PUSTU\"",
        "Facility.address is non-null, but the rows of Query.facilities (connector 'api') have no column `address`",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    insta::assert_snapshot!("check_sheet", out);
}

/// A deployment whose PostgreSQL and MariaDB are a port nobody listens on.
fn unreachable_deployment() -> tempfile::TempDir {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("connectors")).expect("mkdir");
    std::fs::write(
        root.join("connectors/pg.toml"),
        format!(
            "timeout = \"3s\"\n[postgres]\nurl = \"postgres://postgres@127.0.0.1:{}/test\"\n",
            free()
        ),
    )
    .expect("write");
    std::fs::write(
        root.join("connectors/my.toml"),
        format!(
            "timeout = \"3s\"\n[mysql]\nurl = \"mysql://root@127.0.0.1:{}/test\"\n",
            free()
        ),
    )
    .expect("write");
    std::fs::write(
        root.join("schema.graphql"),
        "type Query {\n  a: [Row!]! @sql(connector: \"pg\", query: \"SELECT 1 AS n\")\n  b: [Row!]! @sql(connector: \"my\", query: \"SELECT 1 AS n\")\n}\n\ntype Row {\n  n: Int!\n}\n",
    )
    .expect("write");
    dir
}

#[tokio::test]
async fn an_unreachable_database_is_reported_never_ok() {
    simpul::install_crypto();
    let dir = unreachable_deployment();
    let started = std::time::Instant::now();
    let report = simpul::check::check_dir(dir.path(), true).await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let out: Vec<String> = report.unreachable.iter().map(|d| d.to_string()).collect();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].starts_with("connectors/my.toml:1:1: cannot reach mysql source 'my': ")
            && out[1].starts_with("connectors/pg.toml:1:1: cannot reach postgres source 'pg': ")
            && out.iter().all(|o| o.contains("refused")),
        "{out:?}"
    );
    // A refused connection is said at once, not after the pool's retries.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn check_exits_one_on_an_unreachable_database_unless_offline() {
    let dir = unreachable_deployment();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_simpul"))
            .args(["check", "--dir"])
            .arg(dir.path())
            .args(extra)
            .output()
            .expect("run check")
    };
    let online = run(&[]);
    let out = String::from_utf8_lossy(&online.stdout);
    assert_eq!(online.status.code(), Some(1), "{out}");
    assert!(out.contains("cannot reach postgres source 'pg'"), "{out}");
    assert!(
        out.contains("2 sources not reached (`--offline` accepts that)"),
        "{out}"
    );
    assert!(!out.contains("no problems"), "{out}");

    let offline = run(&["--offline"]);
    let out = String::from_utf8_lossy(&offline.stdout);
    assert_eq!(offline.status.code(), Some(0), "{out}");
    assert!(
        out.contains("ok (--offline): no problems; 2 sources not reached"),
        "{out}"
    );
}

#[test]
fn serve_refuses_what_check_refuses() {
    let dir = copy_deployment(&repo_root().join("tests/check/rows"));
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_simpul"))
        .args(["serve", "--dir"])
        .arg(dir.path())
        .env("SIMPUL_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run serve");
    let err = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success(), "{err}");
    assert!(
        err.contains("District.villages: batch key `kode_kecamatan` is not a column of its rows")
            && err.contains("not starting (run `simpul check`)"),
        "{err}"
    );
}

#[test]
fn explain_says_how_a_field_is_resolved() {
    let run = |field: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_simpul"))
            .args(["check", "--dir"])
            .arg(repo_root())
            .args(["--explain", field])
            .output()
            .expect("run check --explain")
    };
    let out = run("District.villages");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    insta::assert_snapshot!("explain_district_villages", text);
    let unknown = run("Region.nope");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("Region has no field 'nope'"));
}

#[tokio::test]
async fn rule_file_mistakes_are_reported_at_their_place() {
    let out = check_output("rules").await;
    insta::assert_snapshot!("check_rules", out);
}

#[tokio::test]
async fn rule_queries_are_checked_against_the_schema_and_their_paths() {
    let out = check_output("rule_queries").await;
    assert!(out.contains("rules/unknown-field.toml:7:"), "{out}");
    insta::assert_snapshot!("check_rule_queries", out);
}
