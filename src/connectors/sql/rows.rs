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
                "BOOL" => row
                    .try_get::<bool, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "INT2" => row
                    .try_get::<i16, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "INT4" => row
                    .try_get::<i32, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "INT8" => row
                    .try_get::<i64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "FLOAT4" => row
                    .try_get::<f32, _>(i)
                    .map(|f| Value::from(f64::from(f)))
                    .unwrap_or(Value::Null),
                "FLOAT8" => row
                    .try_get::<f64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "NUMERIC" => row
                    .try_get::<sqlx::types::Decimal, _>(i)
                    .map(decimal)
                    .unwrap_or(Value::Null),
                "JSON" | "JSONB" => row.try_get::<Value, _>(i).unwrap_or(Value::Null),
                "DATE" => row
                    .try_get::<chrono::NaiveDate, _>(i)
                    .map(|d| Value::from(d.to_string()))
                    .unwrap_or(Value::Null),
                "TIMESTAMP" => row
                    .try_get::<chrono::NaiveDateTime, _>(i)
                    .map(|d| Value::from(d.format("%Y-%m-%dT%H:%M:%S").to_string()))
                    .unwrap_or(Value::Null),
                "TIMESTAMPTZ" => row
                    .try_get::<chrono::DateTime<chrono::Utc>, _>(i)
                    .map(|d| Value::from(d.to_rfc3339()))
                    .unwrap_or(Value::Null),
                _ => row
                    .try_get::<String, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
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
                "BOOLEAN" => row
                    .try_get::<bool, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => row
                    .try_get::<i64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                t if t.ends_with("UNSIGNED") => row
                    .try_get::<u64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "FLOAT" => row
                    .try_get::<f32, _>(i)
                    .map(|f| Value::from(f64::from(f)))
                    .unwrap_or(Value::Null),
                "DOUBLE" => row
                    .try_get::<f64, _>(i)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                "DECIMAL" => row
                    .try_get::<sqlx::types::Decimal, _>(i)
                    .map(decimal)
                    .unwrap_or(Value::Null),
                "JSON" => row.try_get::<Value, _>(i).unwrap_or(Value::Null),
                "DATE" => row
                    .try_get::<chrono::NaiveDate, _>(i)
                    .map(|d| Value::from(d.to_string()))
                    .unwrap_or(Value::Null),
                "DATETIME" | "TIMESTAMP" => row
                    .try_get::<chrono::NaiveDateTime, _>(i)
                    .map(|d| Value::from(d.format("%Y-%m-%dT%H:%M:%S").to_string()))
                    .unwrap_or(Value::Null),
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

/// DECIMAL/NUMERIC as a JSON number (GraphQL Float), integral values as integers.
fn decimal(d: sqlx::types::Decimal) -> Value {
    use std::str::FromStr;
    let text = d.normalize().to_string();
    if let Ok(i) = i64::from_str(&text) {
        return Value::from(i);
    }
    f64::from_str(&text).map(Value::from).unwrap_or(Value::Null)
}
