//! cfql's results and errors in PostgreSQL's terms: rows with their types (timestamps as
//! `timestamptz`, JSON columns as `json`), notes as notices, errors with a SQLSTATE.

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::pgwire;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, QueryResponse};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};

use crate::error::Error;

/// The wire columns of `schema` in `format`: Arrow's mapping (arrow-pg), with cfql's JSON
/// columns reported as `json` (the same text on the wire, so drivers decode them as JSON).
pub(super) fn fields(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let mut fields = arrow_schema_to_pg_fields(schema, format, None)?;
    for (i, f) in schema.fields().iter().enumerate() {
        if crate::convert::is_json(f) {
            let info = &fields[i];
            fields[i] = FieldInfo::new(
                info.name().to_string(),
                None,
                None,
                Type::JSON,
                info.format(),
            );
        }
    }
    Ok(fields)
}

/// A result of rows, in the client's formats.
pub(super) fn rows(
    schema: &Schema,
    batches: Vec<RecordBatch>,
    format: &Format,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(fields(schema, format)?);
    let rows: Vec<_> = batches
        .into_iter()
        .flat_map(|b| encode_recordbatch(fields.clone(), b))
        .collect();
    Ok(QueryResponse::new(fields, futures::stream::iter(rows)))
}

/// A notice (`WARNING`): psql prints it on stderr, drivers log or collect it.
pub(super) fn notice(text: &str) -> ErrorInfo {
    ErrorInfo::new("WARNING".into(), "01000".into(), text.to_string())
}

/// An error for the client: cfql's message (which never holds a secret) and the SQLSTATE
/// a driver or BI tool can act on.
pub(super) fn error(e: &Error) -> ErrorInfo {
    let mut message = e.to_string();
    if out_of_memory(e) && !message.contains(crate::memory::OUT_OF_MEMORY) {
        // DataFusion's own words (a sort that may not spill): say which bounds apply.
        message.push_str(
            " (the statement reached its memory bound: cfql serve --statement-memory-limit, or --memory-limit for all statements together)",
        );
    }
    ErrorInfo::new("ERROR".into(), sqlstate(e).into(), message)
}

/// Whether a statement failed for a memory bound: cfql's pools, or DataFusion's operators
/// that gave up because they may not spill to disk.
fn out_of_memory(e: &Error) -> bool {
    let Error::DataFusion(df) = e else {
        return false;
    };
    matches!(
        df.find_root(),
        datafusion::error::DataFusionError::ResourcesExhausted(_)
    ) || {
        let text = df.to_string();
        text.contains(crate::memory::OUT_OF_MEMORY) || text.contains("cannot spill")
    }
}

/// An error with a SQLSTATE of our choosing.
pub(super) fn refusal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

/// cfql's error as a pgwire one.
pub(super) fn wire_error(e: &Error) -> PgWireError {
    PgWireError::UserError(Box::new(error(e)))
}

/// PostgreSQL's class for each kind of cfql error.
fn sqlstate(e: &Error) -> &'static str {
    match e {
        Error::Syntax { .. } => "42601",
        Error::TooComplex(_) => "54001",
        Error::UnknownTable { .. } | Error::UnknownService { .. } => "42P01",
        Error::UnknownColumn { .. } => "42703",
        Error::UnknownMethod { .. } => "42883",
        Error::MissingVariable { .. } | Error::MissingParam { .. } => "42P02",
        Error::UnknownParam { .. }
        | Error::UnknownOption { .. }
        | Error::InvalidValue { .. }
        | Error::TemplateValue { .. }
        | Error::RowsRejected { .. }
        | Error::NotSettable { .. } => "22023",
        Error::NotSupported { .. } | Error::UnsupportedClause { .. } => "0A000",
        Error::Refused(_) => "55000",
        Error::Cancelled { .. } => "57014",
        Error::PartialFailure { detail, .. } if detail.cancelled => "57014",
        Error::RateLimited { .. } | Error::BudgetWait { .. } => "53400",
        Error::OutcomeUnknown { .. } => "40003",
        Error::Network { .. } | Error::Io { .. } => "58030",
        Error::NoCredential | Error::Config(_) | Error::Manifest { .. } => "F0000",
        e if out_of_memory(e) => "53200",
        Error::DataFusion(_) => "42000",
        Error::Internal(_) => "XX000",
        _ => "58000",
    }
}
