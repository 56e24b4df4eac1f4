//! Arrow <-> JSON, both ways, in one place: API objects to Arrow batches (column by column
//! as the manifest types them), Arrow cells back to JSON (request bodies, EXEC params, the
//! rows a write changes, JSON output), and the one parser of date-times. The markers a
//! printer reads off a field (JSON column, secret column) are defined here too.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray, new_null_array,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::provider::{ColumnSpec, ColumnType};

/// Field metadata key marking a text column that holds JSON (printers nest it in JSON output):
/// Arrow's extension-type key, with the value [`JSON_EXTENSION`]. A cast (`policies::text`)
/// drops an extension type, so the cast column is plain text, as in PostgreSQL.
pub const JSON_METADATA: &str = "ARROW:extension:name";

/// Arrow's canonical extension type for JSON text, the value of [`JSON_METADATA`].
pub const JSON_EXTENSION: &str = "arrow.json";

/// The metadata of a JSON column.
pub fn json_metadata() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([(JSON_METADATA.to_string(), JSON_EXTENSION.to_string())])
}

/// Whether `field` holds JSON text.
#[cfg_attr(not(any(feature = "cli", feature = "serve")), allow(dead_code))] // printers only
pub fn is_json(field: &Field) -> bool {
    field
        .metadata()
        .get(JSON_METADATA)
        .is_some_and(|v| v == JSON_EXTENSION)
}

/// Field metadata key marking a column that holds a secret (printers never shorten it).
pub const SECRET_METADATA: &str = "cfql.secret";

/// The Arrow schema of these columns (all nullable; JSON columns marked with [`JSON_METADATA`]).
pub fn schema_of<'a>(cols: impl IntoIterator<Item = &'a ColumnSpec>) -> SchemaRef {
    Arc::new(Schema::new(
        cols.into_iter()
            .map(|c| {
                let mut meta = std::collections::HashMap::new();
                if c.ty == ColumnType::Json {
                    meta.extend(json_metadata());
                }
                if c.secret {
                    meta.insert(SECRET_METADATA.to_string(), "true".to_string());
                }
                Field::new(&c.name, c.ty.arrow(), true).with_metadata(meta)
            })
            .collect::<Vec<_>>(),
    ))
}

/// Parses an RFC 3339 date-time (with or without fractional seconds) to µs since the
/// epoch: what the API sends.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// A date-time a user typed: RFC 3339, or `YYYY-MM-DD[ HH:MM:SS]` taken as UTC.
pub fn parse_user_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Some(t.and_utc());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// RFC 3339 text (`2026-01-01T00:00:00Z`) of µs since the epoch.
pub fn rfc3339_micros(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// Renames object keys (old spellings to current ones), at the top level of `v`.
fn normalise(v: &Value, col: &ColumnSpec) -> Value {
    match v {
        Value::Object(m) if !col.rename_keys.is_empty() => {
            let mut out = serde_json::Map::new();
            for (k, val) in m {
                let key = col.rename_keys.get(k).cloned().unwrap_or_else(|| k.clone());
                out.insert(key, val.clone());
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Text of a value for a text column: strings as they are, anything else as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value for one cell: scope columns come from `scope`, the rest from the object.
fn cell<'a>(
    obj: &'a Value,
    col: &ColumnSpec,
    scope: &'a [(String, Option<String>)],
) -> Option<std::borrow::Cow<'a, Value>> {
    if col.scope
        && let Some((_, v)) = scope.iter().find(|(c, _)| c == &col.name)
    {
        return v
            .as_ref()
            .map(|s| std::borrow::Cow::Owned(Value::String(s.clone())));
    }
    let found = match &col.from {
        Some(path) => path.split('.').try_fold(obj, |at, key| at.get(key)),
        None => obj.get(&col.name),
    };
    match found {
        None | Some(Value::Null) => None,
        Some(v) => Some(std::borrow::Cow::Borrowed(v)),
    }
}

/// Builds a batch of `rows` for `cols` (which match `schema` in order). `method` and
/// `endpoint` name the call the rows came from, for errors.
pub fn rows_to_batch(
    schema: &SchemaRef,
    cols: &[ColumnSpec],
    rows: &[Value],
    scope: &[(String, Option<String>)],
    method: &str,
    endpoint: &str,
) -> Result<RecordBatch> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for col in cols {
        let array = column_array(col, rows, scope).map_err(|detail| Error::Decode {
            method: method.into(),
            path: endpoint.into(),
            status: 200,
            detail,
        })?;
        arrays.push(array);
    }
    batch(schema, arrays, rows.len())
}

/// One row of a write's result. A call that took effect must never be reported as failed
/// because of its answer's shape, so a cell the manifest type cannot hold becomes NULL and
/// is described in the returned list instead of failing the row.
pub fn row_lenient(
    schema: &SchemaRef,
    cols: &[ColumnSpec],
    obj: &Value,
    scope: &[(String, Option<String>)],
) -> Result<(RecordBatch, Vec<String>)> {
    let rows = std::slice::from_ref(obj);
    let mut problems = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for col in cols {
        arrays.push(column_array(col, rows, scope).unwrap_or_else(|detail| {
            problems.push(detail);
            new_null_array(&col.ty.arrow(), 1)
        }));
    }
    Ok((batch(schema, arrays, 1)?, problems))
}

fn batch(schema: &SchemaRef, arrays: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    let opts = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &opts)
        .map_err(|e| Error::DataFusion(Box::new(e.into())))
}

/// The Arrow array of one column over `rows`; `Err` describes the first value the column's
/// type cannot hold.
fn column_array(
    col: &ColumnSpec,
    rows: &[Value],
    scope: &[(String, Option<String>)],
) -> std::result::Result<ArrayRef, String> {
    let text = |f: &dyn Fn(&Value) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| cell(r, col, scope).map(|v| f(&v))),
        ))
    };
    Ok(match col.ty {
        ColumnType::Utf8 => text(&value_text),
        ColumnType::Json => text(&|v| normalise(v, col).to_string()),
        ColumnType::Timestamp => {
            let micros = typed(col, rows, scope, "an RFC 3339 date-time", |v| {
                v.as_str().and_then(parse_timestamp)
            })?;
            Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC"))
        }
        ColumnType::Date => {
            let days = typed(col, rows, scope, "a date (YYYY-MM-DD)", |v| {
                let d = chrono::NaiveDate::parse_from_str(v.as_str()?, "%Y-%m-%d").ok()?;
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
                i32::try_from((d - epoch).num_days()).ok()
            })?;
            Arc::new(datafusion::arrow::array::Date32Array::from(days))
        }
        ColumnType::Int64 => Arc::new(Int64Array::from(typed(
            col,
            rows,
            scope,
            "an integer",
            Value::as_i64,
        )?)),
        ColumnType::Float64 => Arc::new(Float64Array::from(typed(
            col,
            rows,
            scope,
            "a number",
            Value::as_f64,
        )?)),
        ColumnType::Boolean => Arc::new(BooleanArray::from(typed(
            col,
            rows,
            scope,
            "true or false",
            Value::as_bool,
        )?)),
    })
}

/// The cells of a typed column; `Err` names the first value `get` cannot read as `what`.
fn typed<T>(
    col: &ColumnSpec,
    rows: &[Value],
    scope: &[(String, Option<String>)],
    what: &str,
    get: impl Fn(&Value) -> Option<T>,
) -> std::result::Result<Vec<Option<T>>, String> {
    rows.iter()
        .map(|r| match cell(r, col, scope) {
            None => Ok(None),
            Some(v) => get(&v)
                .map(Some)
                .ok_or_else(|| format!("column {}: expected {what}, got {v}", col.name)),
        })
        .collect()
}

/// The JSON value of row `i` of `array` (`Null` for SQL NULL). Timestamps become RFC 3339 text.
pub fn cell_json(array: &ArrayRef, i: usize) -> Value {
    if array.is_null(i) || array.data_type() == &DataType::Null {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => json!(array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => json!(array.as_string::<i64>().value(i)),
        DataType::Utf8View => json!(array.as_string_view().value(i)),
        DataType::Boolean => json!(array.as_boolean().value(i)),
        DataType::Int64 => json!(array.as_primitive::<Int64Type>().value(i)),
        DataType::Float64 => json!(array.as_primitive::<Float64Type>().value(i)),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => {
            let text = display(array, i);
            text.parse::<i64>().map(|n| json!(n)).unwrap_or(json!(text))
        }
        DataType::Timestamp(unit, _) => json!(rfc3339_micros(timestamp_micros(array, *unit, i))),
        _ => json!(display(array, i)),
    }
}

fn timestamp_micros(array: &ArrayRef, unit: TimeUnit, i: usize) -> i64 {
    match unit {
        TimeUnit::Second => array
            .as_primitive::<TimestampSecondType>()
            .value(i)
            .saturating_mul(1_000_000),
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .value(i)
            .saturating_mul(1_000),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(i),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(i) / 1_000,
    }
}

fn display(array: &ArrayRef, i: usize) -> String {
    ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
        .map(|f| f.value(i).to_string())
        .unwrap_or_default()
}

/// The schema of a batch of text columns.
pub fn text_schema(headers: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        headers
            .iter()
            .map(|h| Field::new(*h, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// A batch of text columns (catalog statements, dry runs).
pub fn text_batch(headers: &[&str], rows: Vec<Vec<String>>) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = (0..headers.len())
        .map(|i| {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(text_schema(headers), cols)
        .map_err(|e| Error::DataFusion(Box::new(e.into())))
}

/// Rows of batches as (column name, JSON value) maps.
pub fn batch_rows(batches: &[RecordBatch]) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        for i in 0..b.num_rows() {
            out.push(
                schema
                    .fields()
                    .iter()
                    .zip(b.columns())
                    .map(|(f, a)| (f.name().clone(), cell_json(a, i)))
                    .collect(),
            );
        }
    }
    out
}

/// Rows of batches as positional JSON values (INSERT sources, EXEC subqueries).
pub fn batch_values(batches: &[RecordBatch]) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            out.push(b.columns().iter().map(|a| cell_json(a, i)).collect());
        }
    }
    out
}

/// The object of a row read from a table, as the API would send it: JSON columns parsed
/// back from their text.
pub fn row_object(cols: &[ColumnSpec], row: &Map<String, Value>) -> Map<String, Value> {
    let mut m = Map::new();
    for c in cols {
        if let Some(v) = row.get(&c.name) {
            let v = match (c.ty, v) {
                (ColumnType::Json, Value::String(s)) => {
                    serde_json::from_str(s).unwrap_or(Value::String(s.clone()))
                }
                _ => v.clone(),
            };
            m.insert(c.name.clone(), v);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_goes_to_arrow_and_back_unchanged() {
        let cols = vec![
            ColumnSpec::named("name", ColumnType::Utf8),
            ColumnSpec::named("policies", ColumnType::Json),
            ColumnSpec::named("expires_on", ColumnType::Timestamp),
            ColumnSpec::named("enabled", ColumnType::Boolean),
            ColumnSpec::named("count", ColumnType::Int64),
        ];
        let schema = schema_of(&cols);
        let obj = json!({"name": "ci", "policies": [{"effect": "allow"}], "expires_on": "2026-12-31T00:00:00Z", "enabled": true, "count": 3});
        let batch =
            rows_to_batch(&schema, &cols, std::slice::from_ref(&obj), &[], "GET", "/t").unwrap();
        let back = row_object(&cols, &batch_rows(&[batch])[0]);
        assert_eq!(Value::Object(back), obj);
    }

    #[test]
    fn a_cell_that_does_not_fit_is_named_with_the_call() {
        let cols = vec![ColumnSpec::named("expires_on", ColumnType::Timestamp)];
        let e = rows_to_batch(
            &schema_of(&cols),
            &cols,
            &[json!({"expires_on": "soon"})],
            &[],
            "GET",
            "/user/tokens",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unreadable response from GET /user/tokens (HTTP 200): column expires_on: expected an RFC 3339 date-time, got \"soon\""
        );
    }

    #[test]
    fn user_times_accept_dates_and_rfc3339() {
        assert_eq!(
            parse_user_time("2026-12-31").unwrap().to_rfc3339(),
            "2026-12-31T00:00:00+00:00"
        );
        assert_eq!(
            parse_user_time("2026-12-31 10:00:00").unwrap().to_rfc3339(),
            "2026-12-31T10:00:00+00:00"
        );
        assert_eq!(
            parse_user_time("2026-12-31T10:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-12-31T08:00:00+00:00"
        );
        assert!(parse_user_time("tomorrow").is_none());
    }
}
