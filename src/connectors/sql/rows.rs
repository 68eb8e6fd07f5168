//! Rows of the three databases as JSON objects: column name to value, typed by the
//! column's declared type (numbers stay numbers, dates become ISO text).

use serde_json::{Map, Value};
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};

pub(super) fn pg_row(row: &PgRow) -> Value {
    let mut map = Map::with_capacity(row.columns().len());
    for (i, col) in row.columns().iter().enumerate() {
        let null = row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true);
        let v = if null {
            Value::Null
        } else {
            match col.type_info().name() {
                "BOOL" => cell::<_, bool>(row, i, Value::from),
                "INT2" => cell::<_, i16>(row, i, Value::from),
                "INT4" => cell::<_, i32>(row, i, Value::from),
                "INT8" => cell::<_, i64>(row, i, Value::from),
                "FLOAT4" => cell::<_, f32>(row, i, |f| Value::from(f64::from(f))),
                "FLOAT8" => cell::<_, f64>(row, i, Value::from),
                "NUMERIC" => cell::<_, sqlx::types::Decimal>(row, i, decimal),
                "JSON" | "JSONB" => row.try_get::<Value, _>(i).unwrap_or(Value::Null),
                "DATE" => cell::<_, chrono::NaiveDate>(row, i, |d| Value::from(d.to_string())),
                "TIMESTAMP" => cell::<_, chrono::NaiveDateTime>(row, i, |d| {
                    Value::from(d.format("%Y-%m-%dT%H:%M:%S").to_string())
                }),
                "TIMESTAMPTZ" => cell::<_, chrono::DateTime<chrono::Utc>>(row, i, |d| {
                    Value::from(d.to_rfc3339())
                }),
                _ => cell::<_, String>(row, i, Value::from),
            }
        };
        map.insert(col.name().to_string(), v);
    }
    Value::Object(map)
}

pub(super) fn mysql_row(row: &MySqlRow) -> Value {
    let mut map = Map::with_capacity(row.columns().len());
    for (i, col) in row.columns().iter().enumerate() {
        let null = row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true);
        let v = if null {
            Value::Null
        } else {
            let ty = col.type_info().name();
            match ty {
                "BOOLEAN" => cell::<_, bool>(row, i, Value::from),
                "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => {
                    cell::<_, i64>(row, i, Value::from)
                }
                t if t.ends_with("UNSIGNED") => cell::<_, u64>(row, i, Value::from),
                "FLOAT" => cell::<_, f32>(row, i, |f| Value::from(f64::from(f))),
                "DOUBLE" => cell::<_, f64>(row, i, Value::from),
                "DECIMAL" => cell::<_, sqlx::types::Decimal>(row, i, decimal),
                "JSON" => row.try_get::<Value, _>(i).unwrap_or(Value::Null),
                "DATE" => cell::<_, chrono::NaiveDate>(row, i, |d| Value::from(d.to_string())),
                "DATETIME" | "TIMESTAMP" => cell::<_, chrono::NaiveDateTime>(row, i, |d| {
                    Value::from(d.format("%Y-%m-%dT%H:%M:%S").to_string())
                }),
                _ => row
                    .try_get::<String, _>(i)
                    .map(Value::from)
                    .or_else(|_| {
                        row.try_get::<Vec<u8>, _>(i)
                            .map(|b| Value::from(String::from_utf8_lossy(&b).into_owned()))
                    })
                    .unwrap_or(Value::Null),
            }
        };
        map.insert(col.name().to_string(), v);
    }
    Value::Object(map)
}

pub(super) fn sqlite_row(row: &SqliteRow) -> Value {
    let mut map = Map::with_capacity(row.columns().len());
    for (i, col) in row.columns().iter().enumerate() {
        let v = match row.try_get_raw(i) {
            Ok(raw) if !raw.is_null() => match raw.type_info().name() {
                "INTEGER" => row
                    .try_get_unchecked::<i64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "REAL" => row
                    .try_get_unchecked::<f64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "BLOB" => row
                    .try_get_unchecked::<Vec<u8>, _>(i)
                    .map(|b| Value::from(String::from_utf8_lossy(&b).into_owned()))
                    .unwrap_or(Value::Null),
                _ => row
                    .try_get_unchecked::<String, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            },
            _ => Value::Null,
        };
        map.insert(col.name().to_string(), v);
    }
    Value::Object(map)
}

/// Column `i` of `row` decoded as `T` and turned into JSON; null when it does not decode.
fn cell<'r, R, T>(row: &'r R, i: usize, json: impl FnOnce(T) -> Value) -> Value
where
    R: Row,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    row.try_get::<T, _>(i).map(json).unwrap_or(Value::Null)
}

/// DECIMAL/NUMERIC as a JSON number (GraphQL Float), integral values as integers.
fn decimal(d: sqlx::types::Decimal) -> Value {
    use std::str::FromStr;
    let text = d.normalize().to_string();
    if let Ok(i) = i64::from_str(&text) {
        return Value::from(i);
    }
    f64::from_str(&text).map(Value::from).unwrap_or(Value::Null)
}
