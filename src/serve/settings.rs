//! The run-time settings cfql serve reports as PostgreSQL 16 would: one list answers
//! `SHOW name`, `current_setting(name)` and `pg_catalog.pg_settings`, so a client reads
//! the same value whichever way it asks (SQLAlchemy: `SHOW standard_conforming_strings`;
//! pgjdbc: `pg_settings.max_index_keys`; psycopg and DBeaver: `current_setting`).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::scalar::ScalarValue;

/// Settings that datafusion-postgres keeps per connection (a client may SET them);
/// `SHOW` of these is left to its hook.
pub(super) const PER_CONNECTION: &[&str] = &[
    "statement_timeout",
    "application_name",
    "extra_float_digits",
    "transaction_isolation",
    "bytea_output",
    "intervalstyle",
    "search_path",
];

/// Settings with one value for the server: (name as PostgreSQL spells it, value).
fn fixed() -> Vec<(&'static str, String)> {
    vec![
        ("server_version", super::catalog::SERVER_VERSION.to_string()),
        ("server_version_num", super::catalog::server_version_num()),
        ("server_encoding", "UTF8".into()),
        ("client_encoding", "UTF8".into()),
        // cfql's sessions read and print timestamps in UTC (`now()` is a timestamptz).
        ("TimeZone", "UTC".into()),
        ("DateStyle", "ISO, MDY".into()),
        ("standard_conforming_strings", "on".into()),
        ("integer_datetimes", "on".into()),
        ("max_index_keys", "32".into()),
        ("max_identifier_length", "63".into()),
        ("lc_collate", "C".into()),
        ("lc_ctype", "C".into()),
        // The schema unqualified names resolve in first (`current_schema()`); `SHOW`
        // reads the connection's own, which a client may give at start-up.
        ("search_path", "user".into()),
        ("default_transaction_read_only", "off".into()),
        ("is_superuser", "off".into()),
    ]
}

/// The value of setting `name` (case-insensitive), if cfql reports it for the server.
pub(super) fn value(name: &str) -> Option<String> {
    fixed()
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The name `SHOW` prints for setting `name`: PostgreSQL's own spelling.
pub(super) fn canonical(name: &str) -> String {
    fixed()
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_lowercase(), |(n, _)| n.to_string())
}

/// PostgreSQL's error for a setting it does not have (SQLSTATE 42704).
pub(super) fn unknown(name: &str) -> String {
    format!("unrecognized configuration parameter \"{name}\"")
}

/// `current_setting(name)` and `current_setting(name, missing_ok)`.
pub(super) fn current_setting() -> ScalarUDF {
    ScalarUDF::new_from_impl(CurrentSetting {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
            ],
            Volatility::Stable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSetting {
    signature: Signature,
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let missing_ok = matches!(
            args.args.get(1),
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
        );
        let Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name)))) = args.args.first() else {
            return Err(DataFusionError::Plan(
                "current_setting() takes the setting's name as a constant".into(),
            ));
        };
        match value(name) {
            Some(v) => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(v)))),
            None if missing_ok => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            None => Err(DataFusionError::Plan(unknown(name))),
        }
    }
}

/// The columns of `pg_catalog.pg_settings` clients read.
fn pg_settings_schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        text("name"),
        text("setting"),
        text("unit"),
        text("category"),
        text("short_desc"),
        text("context"),
        text("vartype"),
        text("source"),
        text("reset_val"),
        Field::new("sourceline", DataType::Int32, true),
        Field::new("pending_restart", DataType::Boolean, true),
    ]))
}

/// `pg_catalog.pg_settings`: one row per fixed setting.
pub(super) fn pg_settings() -> DfResult<RecordBatch> {
    let rows = fixed();
    let names: Vec<&str> = rows.iter().map(|(n, _)| *n).collect();
    let values: Vec<&str> = rows.iter().map(|(_, v)| v.as_str()).collect();
    let none = || Arc::new(StringArray::from(vec![None::<&str>; rows.len()])) as ArrayRef;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(values.clone())),
        none(),
        none(),
        none(),
        Arc::new(StringArray::from(vec!["internal"; rows.len()])),
        Arc::new(StringArray::from(vec!["string"; rows.len()])),
        Arc::new(StringArray::from(vec!["default"; rows.len()])),
        Arc::new(StringArray::from(values)),
        Arc::new(Int32Array::from(vec![None; rows.len()])),
        Arc::new(BooleanArray::from(vec![false; rows.len()])),
    ];
    Ok(RecordBatch::try_new(pg_settings_schema(), columns)?)
}
