//! Reading a `[file]` source's files into tables: CSV (delimiter and decimal mark as set or
//! detected), XLSX/XLS/ODS (a table per sheet) and JSON (an array of objects), each header
//! checked, and the schema a reload must keep.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use super::text::{cell_with, column_mark, sniff_delimiter, strip_bom};
use crate::blueprint::settings::{CsvFormat, DecimalMark};

/// A loaded table: column names and rows of cells.
#[derive(Debug, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Each table's name and columns, as SQL sees them (names compared without case).
pub type Schema = Vec<(String, Vec<String>)>;

/// What a file source reads: `path` (a file or a folder of them) inside the deployment
/// `dir`, and how its CSV files are written.
#[derive(Clone, Debug)]
pub struct Files {
    pub dir: PathBuf,
    pub path: PathBuf,
    pub csv: CsvFormat,
}

impl Files {
    /// `file` as messages name it: relative to the deployment, never a server's full path.
    pub fn shown(&self, file: &Path) -> String {
        file.strip_prefix(&self.dir)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    fn list(&self) -> Vec<PathBuf> {
        if self.path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&self.path)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            v.retain(|p| {
                matches!(
                    extension(p).as_str(),
                    "csv" | "xlsx" | "xls" | "ods" | "json"
                )
            });
            v.sort();
            v
        } else {
            vec![self.path.clone()]
        }
    }

    /// Each file's modification time and size: a change to any of them is a change.
    pub fn fingerprint(&self) -> Vec<(PathBuf, SystemTime, u64)> {
        self.list()
            .into_iter()
            .filter_map(|f| {
                let m = std::fs::metadata(&f).ok()?;
                Some((f, m.modified().ok()?, m.len()))
            })
            .collect()
    }

    /// Reads every table of the files.
    pub fn read_tables(&self) -> Result<Vec<Table>, String> {
        let list = self.list();
        if list.first().is_none_or(|f| !f.exists()) {
            return Err(format!(
                "{}: no CSV, XLSX or JSON file found",
                self.shown(&self.path)
            ));
        }
        let mut tables = Vec::new();
        for f in list {
            let shown = self.shown(&f);
            let stem = f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("data")
                .to_string();
            match extension(&f).as_str() {
                "csv" => tables.push(read_csv(&f, &shown, stem, self.csv)?),
                "json" => tables.push(read_json(&f, &shown, stem)?),
                "xlsx" | "xls" | "ods" => tables.extend(read_workbook(&f, &shown, self.csv)?),
                other => return Err(format!("{shown}: unsupported file type '{other}'")),
            }
        }
        Ok(tables)
    }
}

fn extension(p: &Path) -> String {
    p.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

pub fn schema(tables: &[Table]) -> Schema {
    tables
        .iter()
        .map(|t| (t.name.clone(), t.columns.clone()))
        .collect()
}

/// What `after` lost of `before`: a table or a column gone. A reload that shrinks the
/// schema is almost always a file caught half-written, so it is refused.
pub fn lost(before: &Schema, after: &Schema) -> Option<String> {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    for (table, columns) in before {
        let Some((_, now)) = after.iter().find(|(t, _)| same(t, table)) else {
            return Some(format!(
                "table \"{table}\" is gone; the last good load had it (a file cut off or \
                 half-saved? restart the gateway to drop a table on purpose)"
            ));
        };
        let gone: Vec<&str> = columns
            .iter()
            .filter(|c| !now.iter().any(|n| same(n, c)))
            .map(String::as_str)
            .collect();
        if !gone.is_empty() {
            return Some(format!(
                "table \"{table}\" lost column{} \"{}\" that the last good load had (a \
                 file cut off or half-saved? restart the gateway to drop a column on purpose)",
                if gone.len() == 1 { "" } else { "s" },
                gone.join("\", \"")
            ));
        }
    }
    None
}

/// Checks a header: every column with data has a name, and no name is used twice (SQL
/// names ignore case). Returns the columns to keep: a column with neither a name nor data
/// (a trailing delimiter, a formatted empty cell) is dropped.
fn header(
    shown: &str,
    columns: &[String],
    has_data: impl Fn(usize) -> bool,
) -> Result<Vec<usize>, String> {
    let mut keep: Vec<usize> = Vec::with_capacity(columns.len());
    for (i, name) in columns.iter().enumerate() {
        if name.is_empty() {
            if has_data(i) {
                return Err(format!(
                    "{shown}: column {} of the header is empty but has data; give it a name",
                    i + 1
                ));
            }
            continue;
        }
        if let Some(&j) = keep
            .iter()
            .find(|&&j| columns.get(j).is_some_and(|c| c.eq_ignore_ascii_case(name)))
        {
            return Err(format!(
                "{shown}: duplicate column name \"{name}\" (columns {} and {}); rename one",
                j + 1,
                i + 1
            ));
        }
        keep.push(i);
    }
    if keep.is_empty() {
        return Err(format!("{shown}: the header row has no column names"));
    }
    Ok(keep)
}

fn read_csv(path: &Path, shown: &str, name: String, format: CsvFormat) -> Result<Table, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let text = strip_bom(&bytes);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(format!("{shown}: the file is empty: no header row"));
    }
    let delimiter = format.delimiter.unwrap_or_else(|| sniff_delimiter(text));
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text);
    let columns: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("{shown}: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    if let [only] = columns.as_slice() {
        for (other, written) in [(b';', ";"), (b'\t', "\\t"), (b'|', "|"), (b',', ",")] {
            if other != delimiter && only.as_bytes().contains(&other) {
                return Err(format!(
                    "{shown}: the header reads as one column \"{only}\" containing \
                     '{written}'; set delimiter = \"{written}\" in [file]"
                ));
            }
        }
    }
    let mut records = Vec::new();
    for rec in rdr.records() {
        records.push(rec.map_err(|e| format!("{shown}: {e}"))?);
    }
    if let Some(last) = records.last()
        && last.len() < columns.len()
        && !text.ends_with(b"\n")
        && !text.ends_with(b"\r")
    {
        return Err(format!(
            "{shown}: the last row has {} of {} cells and no line end: the file looks cut off",
            last.len(),
            columns.len()
        ));
    }
    let keep = header(shown, &columns, |i| {
        records
            .iter()
            .any(|r| r.get(i).is_some_and(|c| !c.is_empty()))
    })?;
    let marks: Vec<DecimalMark> = keep
        .iter()
        .map(|&i| match format.decimal {
            Some(mark) => mark,
            None if delimiter == b',' => DecimalMark::Point,
            None => column_mark(records.iter().filter_map(|r| r.get(i))),
        })
        .collect();
    let rows = records
        .iter()
        .map(|rec| {
            keep.iter()
                .zip(&marks)
                .map(|(&i, &mark)| rec.get(i).map_or(Value::Null, |t| cell_with(t, mark)))
                .collect()
        })
        .collect();
    Ok(Table {
        name,
        columns: keep
            .iter()
            .filter_map(|&i| columns.get(i).cloned())
            .collect(),
        rows,
    })
}

fn read_json(path: &Path, shown: &str, name: String) -> Result<Table, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let value: Value =
        serde_json::from_slice(strip_bom(&bytes)).map_err(|e| format!("{shown}: {e}"))?;
    let Value::Array(items) = value else {
        return Err(format!("{shown}: expected an array of objects"));
    };
    let mut columns: Vec<String> = Vec::new();
    for item in &items {
        if let Value::Object(m) = item {
            for k in m.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let rows = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| match item.get(c) {
                    Some(v @ (Value::Array(_) | Value::Object(_))) => Value::from(v.to_string()),
                    Some(v) => v.clone(),
                    None => Value::Null,
                })
                .collect()
        })
        .collect();
    Ok(Table {
        name,
        columns,
        rows,
    })
}

fn read_workbook(path: &Path, shown: &str, format: CsvFormat) -> Result<Vec<Table>, String> {
    use calamine::{Data, Reader, open_workbook_auto};
    let mut wb = open_workbook_auto(path).map_err(|e| format!("{shown}: {e}"))?;
    // Text cells follow an explicit decimal mark; numbers in a workbook are numbers already.
    let mark = format.decimal.unwrap_or(DecimalMark::Point);
    let mut tables = Vec::new();
    for sheet in wb.sheet_names() {
        let range = wb
            .worksheet_range(&sheet)
            .map_err(|e| format!("{shown} sheet {sheet}: {e}"))?;
        let mut rows_iter = range.rows();
        let Some(header_row) = rows_iter.next() else {
            continue;
        };
        let columns: Vec<String> = header_row
            .iter()
            .map(|c| c.to_string().trim().to_string())
            .collect();
        let data: Vec<&[Data]> = rows_iter
            .filter(|r| r.iter().any(|c| !matches!(c, Data::Empty)))
            .collect();
        let keep = header(&format!("{shown} sheet {sheet}"), &columns, |i| {
            data.iter()
                .any(|r| r.get(i).is_some_and(|c| !matches!(c, Data::Empty)))
        })?;
        let rows = data
            .iter()
            .map(|r| {
                keep.iter()
                    .map(|&i| match r.get(i) {
                        None | Some(Data::Empty) | Some(Data::Error(_)) => Value::Null,
                        Some(Data::Int(n)) => Value::from(*n),
                        Some(Data::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => {
                            Value::from(*f as i64)
                        }
                        Some(Data::Float(f)) => Value::from(*f),
                        Some(Data::Bool(b)) => Value::from(*b),
                        Some(Data::String(s)) => cell_with(s, mark),
                        Some(Data::DateTime(d)) => d
                            .as_datetime()
                            .map(|d| Value::from(d.format("%Y-%m-%d").to_string()))
                            .unwrap_or(Value::Null),
                        Some(other) => Value::from(other.to_string()),
                    })
                    .collect()
            })
            .collect();
        tables.push(Table {
            name: sheet,
            columns: keep
                .iter()
                .filter_map(|&i| columns.get(i).cloned())
                .collect(),
            rows,
        });
    }
    Ok(tables)
}
