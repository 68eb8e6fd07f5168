//! Reading what offices export: delimiters, decimal commas, byte-order marks, and every
//! header problem named with its file.

use std::path::Path;

use serde_json::{Value, json};

use super::read::{Files, lost, schema};
use crate::blueprint::settings::{CsvFormat, DecimalMark};

/// Reads `name` holding `bytes` from a fresh deployment folder.
fn read(name: &str, bytes: &[u8], csv: CsvFormat) -> Result<Vec<super::Table>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data");
    std::fs::write(dir.path().join("data").join(name), bytes).expect("write");
    files(dir.path(), &format!("data/{name}"), csv).read_tables()
}

fn files(dir: &Path, path: &str, csv: CsvFormat) -> Files {
    Files {
        dir: dir.to_path_buf(),
        path: dir.join(path),
        csv,
    }
}

fn one(name: &str, bytes: &[u8]) -> super::Table {
    let mut tables = read(name, bytes, CsvFormat::default()).expect("reads");
    assert_eq!(tables.len(), 1);
    tables.remove(0)
}

fn rows(t: &super::Table) -> Value {
    Value::Array(t.rows.iter().map(|r| Value::Array(r.clone())).collect())
}

#[test]
fn an_indonesian_excel_export_reads_as_columns_and_numbers() {
    // Semicolons, decimal commas with thousands points, a BOM, CRLF line ends.
    let t = one(
        "harga.csv",
        "\u{feff}kode;komoditas;harga;stok\r\n0351;Beras, medium;12,5;1.234,5\r\n0352;Gula;13;7\r\n"
            .as_bytes(),
    );
    assert_eq!(t.columns, ["kode", "komoditas", "harga", "stok"]);
    assert_eq!(
        rows(&t),
        json!([
            ["0351", "Beras, medium", 12.5, 1234.5],
            ["0352", "Gula", 13, 7]
        ])
    );
}

#[test]
fn tabs_and_pipes_are_sniffed_and_commas_keep_decimal_points() {
    let t = one("a.csv", b"id\tnilai\n1\t2,5\n");
    assert_eq!(rows(&t), json!([[1, 2.5]]));
    let t = one("b.csv", b"id|nilai\n1|2,5\n");
    assert_eq!(rows(&t), json!([[1, 2.5]]));
    // With commas between cells, a decimal comma needs `decimal = ","`: "2,5" quoted is text.
    let t = one("c.csv", b"id,nilai,kode\n1,10.29,35.03\n2,\"2,5\",35.04\n");
    assert_eq!(rows(&t), json!([[1, 10.29, 35.03], [2, "2,5", 35.04]]));
}

#[test]
fn the_decimal_mark_is_detected_per_column() {
    // "kode" holds region codes with points; "luas" decimal commas: each column as written.
    let t = one(
        "kec.csv",
        b"kode;nama;luas\n35.03.01;Panggul;119,5\n35.03.02;Munjungan;154,8\n",
    );
    assert_eq!(
        rows(&t),
        json!([
            ["35.03.01", "Panggul", 119.5],
            ["35.03.02", "Munjungan", 154.8]
        ])
    );
}

#[test]
fn configured_delimiter_and_decimal_win_over_detection() {
    let csv = CsvFormat {
        delimiter: Some(b';'),
        decimal: Some(DecimalMark::Comma),
    };
    let t = read("x.csv", b"a;b\n1.234;x,y\n", csv).expect("reads");
    assert_eq!(rows(&t[0]), json!([[1234, "x,y"]]));
    let csv = CsvFormat {
        delimiter: None,
        decimal: Some(DecimalMark::Point),
    };
    let t = read("y.csv", b"a;b\n12,5;1\n", csv).expect("reads");
    assert_eq!(rows(&t[0]), json!([["12,5", 1]]));
}

#[test]
fn a_json_export_with_a_bom_reads() {
    let t = one(
        "j.json",
        "\u{feff}[{\"id\": 1, \"nama\": \"Prigi\"}]".as_bytes(),
    );
    assert_eq!(t.columns, ["id", "nama"]);
    assert_eq!(rows(&t), json!([[1, "Prigi"]]));
}

#[test]
fn an_empty_unnamed_column_is_dropped() {
    // A trailing delimiter on every line: a column without a name or data.
    let t = one("t.csv", b"a;b;\n1;2;\n3;4;\n");
    assert_eq!(t.columns, ["a", "b"]);
    assert_eq!(rows(&t), json!([[1, 2], [3, 4]]));
}

/// The error reading `bytes` as `name` (default format).
fn error(name: &str, bytes: &[u8]) -> String {
    read(name, bytes, CsvFormat::default()).expect_err("refused")
}

#[test]
fn header_problems_are_named_with_their_file() {
    assert_eq!(
        error("empty.csv", b""),
        "data/empty.csv: the file is empty: no header row"
    );
    assert_eq!(
        error("bom.csv", b"\xEF\xBB\xBF\r\n"),
        "data/bom.csv: the file is empty: no header row"
    );
    assert_eq!(
        error("gap.csv", b"id;;nama\n1;x;Prigi\n"),
        "data/gap.csv: column 2 of the header is empty but has data; give it a name"
    );
    assert_eq!(
        error("dup.csv", b"id;Nama;nama\n1;a;b\n"),
        "data/dup.csv: duplicate column name \"nama\" (columns 2 and 3); rename one"
    );
}

#[test]
fn a_header_read_as_one_column_says_which_delimiter_to_set() {
    let comma = CsvFormat {
        delimiter: Some(b','),
        decimal: None,
    };
    let e = read("s.csv", b"id;nama;nilai\n1;a;2\n", comma).expect_err("refused");
    assert_eq!(
        e,
        "data/s.csv: the header reads as one column \"id;nama;nilai\" containing ';'; \
         set delimiter = \";\" in [file]"
    );
    let e = read("t.csv", b"id\tnama\n1\ta\n", comma).expect_err("refused");
    assert!(e.contains("set delimiter = \"\\t\""), "{e}");
}

#[test]
fn a_csv_cut_off_mid_row_is_refused() {
    assert_eq!(
        error("cut.csv", b"id;nama;nilai\n1;a;2\n2;b"),
        "data/cut.csv: the last row has 2 of 3 cells and no line end: the file looks cut off"
    );
    // A short last row that ends its line is a row with empty cells.
    let t = one("short.csv", b"id;nama;nilai\n1;a;2\n2;b\n");
    assert_eq!(rows(&t), json!([[1, "a", 2], [2, "b", null]]));
}

#[test]
fn a_half_saved_workbook_is_an_error_of_its_file() {
    let good = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/opd/disdikpora/rekap_dapodik.xlsx"),
    )
    .expect("workbook");
    let e = read("rekap.xlsx", &good[..good.len() / 2], CsvFormat::default()).expect_err("refused");
    assert!(e.starts_with("data/rekap.xlsx: "), "{e}");
}

#[test]
fn a_reload_may_add_but_not_lose_tables_or_columns() {
    let before = vec![
        ("destinations".to_string(), vec!["id".into(), "name".into()]),
        ("visits".to_string(), vec!["id".into()]),
    ];
    let mut grown = before.clone();
    grown[0].1.push("category".into());
    grown.push(("events".into(), vec!["id".into()]));
    assert_eq!(lost(&before, &grown), None);
    // Names compare as SQL compares them.
    let mut upper = before.clone();
    upper[0].1[1] = "NAME".into();
    assert_eq!(lost(&before, &upper), None);
    let cut = vec![
        ("destinations".to_string(), vec!["id".into(), "na".into()]),
        ("visits".to_string(), vec!["id".into()]),
    ];
    let e = lost(&before, &cut).expect("lost a column");
    assert!(
        e.starts_with("table \"destinations\" lost column \"name\""),
        "{e}"
    );
    let e = lost(&before, &before[..1].to_vec()).expect("lost a table");
    assert!(e.starts_with("table \"visits\" is gone"), "{e}");
}

#[test]
fn the_repository_spreadsheets_still_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for path in [
        "data/opd/disparbud",
        "data/opd/dpmptsp",
        "data/opd/disdikpora/rekap_dapodik.xlsx",
    ] {
        let tables = files(root, path, CsvFormat::default())
            .read_tables()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(!schema(&tables).is_empty(), "{path}");
    }
}
