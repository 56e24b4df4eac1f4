//! JSON objects from the API to Arrow record batches, column by column as the manifest types them.

use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder, new_null_array,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::provider::{ColumnSpec, ColumnType};

/// Field metadata key marking a text column that holds JSON (printers nest it in JSON output).
pub const JSON_METADATA: &str = "cfql.json";

/// Field metadata key marking a column that holds a secret (printers never shorten it).
pub const SECRET_METADATA: &str = "cfql.secret";

/// The Arrow schema of these columns (all nullable; JSON columns marked with [`JSON_METADATA`]).
pub fn schema_of<'a>(cols: impl IntoIterator<Item = &'a ColumnSpec>) -> SchemaRef {
    Arc::new(Schema::new(
        cols.into_iter()
            .map(|c| {
                let mut meta = std::collections::HashMap::new();
                if c.ty == ColumnType::Json {
                    meta.insert(JSON_METADATA.to_string(), "true".to_string());
                }
                if c.secret {
                    meta.insert(SECRET_METADATA.to_string(), "true".to_string());
                }
                Field::new(&c.name, c.ty.arrow(), true).with_metadata(meta)
            })
            .collect::<Vec<_>>(),
    ))
}

/// Parses an RFC 3339 date-time (with or without fractional seconds) to µs since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_micros())
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
fn cell<'a>(obj: &'a Value, col: &ColumnSpec, scope: &'a [(String, Option<String>)]) -> Option<std::borrow::Cow<'a, Value>> {
    if col.scope
        && let Some((_, v)) = scope.iter().find(|(c, _)| c == &col.name)
    {
        return v.as_ref().map(|s| std::borrow::Cow::Owned(Value::String(s.clone())));
    }
    match obj.get(&col.name) {
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
    RecordBatch::try_new_with_options(schema.clone(), arrays, &opts).map_err(|e| Error::DataFusion(Box::new(e.into())))
}

/// The Arrow array of one column over `rows`; `Err` describes the first value the column's
/// type cannot hold.
fn column_array(col: &ColumnSpec, rows: &[Value], scope: &[(String, Option<String>)]) -> std::result::Result<ArrayRef, String> {
    let bad = |v: &Value, what: &str| format!("column {}: expected {what}, got {v}", col.name);
    Ok(match col.ty {
        ColumnType::Utf8 => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
            for r in rows {
                b.append_option(cell(r, col, scope).map(|v| value_text(&v)));
            }
            Arc::new(b.finish())
        }
        ColumnType::Json => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 64);
            for r in rows {
                b.append_option(cell(r, col, scope).map(|v| normalise(&v, col).to_string()));
            }
            Arc::new(b.finish())
        }
        ColumnType::Timestamp => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
            for r in rows {
                match cell(r, col, scope) {
                    None => b.append_null(),
                    Some(v) => b.append_value(v.as_str().and_then(parse_timestamp).ok_or_else(|| bad(&v, "an RFC 3339 date-time"))?),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Int64 => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for r in rows {
                match cell(r, col, scope) {
                    None => b.append_null(),
                    Some(v) => b.append_value(v.as_i64().ok_or_else(|| bad(&v, "an integer"))?),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Float64 => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for r in rows {
                match cell(r, col, scope) {
                    None => b.append_null(),
                    Some(v) => b.append_value(v.as_f64().ok_or_else(|| bad(&v, "a number"))?),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for r in rows {
                match cell(r, col, scope) {
                    None => b.append_null(),
                    Some(v) => b.append_value(v.as_bool().ok_or_else(|| bad(&v, "true or false"))?),
                }
            }
            Arc::new(b.finish())
        }
    })
}
