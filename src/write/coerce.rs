//! Checks and converts values to what the API accepts, before any call is made.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::convert::parse_user_time;
use crate::provider::{ColumnSpec, ColumnType};

/// Checks and converts a value for `col` as the API expects it. `Ok(None)`: leave the field out.
pub(crate) fn coerce(col: &ColumnSpec, v: &Value) -> std::result::Result<Option<Value>, String> {
    match (col.ty, v) {
        (_, Value::Null) => Ok(None),
        (ColumnType::Json, Value::String(s)) if s.trim().is_empty() => Ok(None),
        (ColumnType::Json, Value::String(s)) => serde_json::from_str::<Value>(s)
            .map(Some)
            .map_err(|e| format!("column {}: invalid JSON ({e}): {}", col.name, preview(s))),
        (ColumnType::Json, other) => Ok(Some(other.clone())),
        (ColumnType::Timestamp, Value::String(s)) if s.trim().is_empty() => Ok(None),
        (ColumnType::Timestamp, Value::String(s)) => parse_user_time(s)
            .map(|t| Some(json!(t.to_rfc3339_opts(SecondsFormat::Secs, true))))
            .ok_or_else(|| {
                format!(
                    "column {}: '{s}' is not a date-time (use RFC 3339, e.g. 2026-12-31T00:00:00Z)",
                    col.name
                )
            }),
        (ColumnType::Boolean, Value::Bool(b)) => Ok(Some(json!(b))),
        (ColumnType::Boolean, Value::String(s))
            if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
        {
            Ok(Some(json!(s.eq_ignore_ascii_case("true"))))
        }
        (ColumnType::Int64 | ColumnType::Float64, Value::Number(n)) => Ok(Some(json!(n))),
        (ColumnType::Utf8, Value::String(s)) => {
            if !col.enum_values.is_empty() && !col.enum_values.contains(s) {
                return Err(format!(
                    "column {}: '{s}' is not one of {}",
                    col.name,
                    col.enum_values.join(", ")
                ));
            }
            if let Some(max) = col.max_length
                && s.chars().count() > max
            {
                return Err(format!("column {}: longer than {max} characters", col.name));
            }
            Ok(Some(json!(s)))
        }
        (ColumnType::Utf8, Value::Number(n)) => Ok(Some(json!(n.to_string()))),
        (ty, other) => Err(format!(
            "column {}: expected {}, got {other}",
            col.name,
            ty.name()
        )),
    }
}

fn preview(s: &str) -> String {
    let p: String = s.chars().take(40).collect();
    if p.len() < s.len() {
        format!("'{p}...'")
    } else {
        format!("'{p}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_the_column_before_any_call() {
        let mut status = ColumnSpec::named("status", ColumnType::Utf8);
        status.enum_values = vec!["active".into(), "disabled".into()];
        assert_eq!(coerce(&status, &json!("active")), Ok(Some(json!("active"))));
        assert_eq!(
            coerce(&status, &json!("paused")).unwrap_err(),
            "column status: 'paused' is not one of active, disabled"
        );
        let policies = ColumnSpec::named("policies", ColumnType::Json);
        assert_eq!(coerce(&policies, &json!("[1]")), Ok(Some(json!([1]))));
        assert!(
            coerce(&policies, &json!("[1"))
                .unwrap_err()
                .starts_with("column policies: invalid JSON")
        );
        let expires = ColumnSpec::named("expires_on", ColumnType::Timestamp);
        assert_eq!(
            coerce(&expires, &json!("2026-12-31")),
            Ok(Some(json!("2026-12-31T00:00:00Z")))
        );
        assert_eq!(
            coerce(&expires, &Value::Null),
            Ok(None),
            "NULL leaves the field out"
        );
    }
}
