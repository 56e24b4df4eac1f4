//! `COPY (query) TO STDOUT` and `COPY table TO STDOUT`: how psql's `\copy ... to`,
//! psycopg's `copy()`, connectorx and polars read in bulk. The query runs as any read
//! does; its rows leave as COPY data in text, CSV or binary, encoded by pgwire's
//! `CopyEncoder` from Arrow by arrow-pg (the same values a SELECT sends). COPY FROM and
//! COPY to a file or program stay refused by the gate.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Expr, Ident,
    ObjectName, Query, SelectItem, SetExpr, Statement, TableFactor,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_postgres::arrow_pg::encoder::encode_value;
use datafusion_postgres::pgwire;
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyCsvOptions, CopyEncoder, CopyResponse, CopyTextOptions, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;

use super::encode::{self, refusal};
use crate::output::Output;

/// How the rows are written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum CopyFormat {
    Text {
        delimiter: char,
        null: String,
    },
    Csv {
        delimiter: char,
        null: String,
        header: bool,
        quote: char,
        escape: char,
    },
    Binary,
}

/// A `COPY ... TO STDOUT`: the query to run and the format of its rows.
pub(super) struct CopyOut {
    pub(super) query: Statement,
    pub(super) format: CopyFormat,
}

/// The query and format of `stmt` when it is a `COPY ... TO STDOUT` (the gate has
/// refused every other COPY before this is asked).
pub(super) fn request(stmt: &Statement) -> PgWireResult<Option<CopyOut>> {
    let Statement::Copy {
        source,
        to: true,
        target: CopyTarget::Stdout,
        options,
        legacy_options,
        ..
    } = stmt
    else {
        return Ok(None);
    };
    let query = match source {
        CopySource::Query(q) => Statement::Query(q.clone()),
        CopySource::Table {
            table_name,
            columns,
        } => Statement::Query(Box::new(select_from(table_name, columns)?)),
    };
    let format = format_of(options, legacy_options)?;
    Ok(Some(CopyOut { query, format }))
}

/// `SELECT <columns or *> FROM <table>` as a tree: a constant skeleton with the client's
/// parsed name and columns put in (never text built from them).
fn select_from(table: &ObjectName, columns: &[Ident]) -> PgWireResult<Query> {
    let skeleton = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT * FROM t")
        .map_err(|e| refusal("XX000", e.to_string()))?;
    let Some(Statement::Query(mut q)) = skeleton.into_iter().next() else {
        return Err(refusal("XX000", "the COPY skeleton is not a query".into()));
    };
    if let SetExpr::Select(select) = q.body.as_mut() {
        if let TableFactor::Table { name, .. } = &mut select.from[0].relation {
            *name = table.clone();
        }
        if !columns.is_empty() {
            select.projection = columns
                .iter()
                .map(|c| SelectItem::UnnamedExpr(Expr::Identifier(c.clone())))
                .collect();
        }
    }
    Ok(*q)
}

fn format_of(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> PgWireResult<CopyFormat> {
    let unsupported = |what: String| {
        refusal(
            "0A000",
            format!(
                "COPY option {what} is not supported by cfql serve (FORMAT text, csv or binary; DELIMITER, NULL, HEADER, QUOTE, ESCAPE)"
            ),
        )
    };
    let (mut kind, mut delimiter, mut null, mut header) = ("text".to_string(), None, None, false);
    let (mut quote, mut escape) = ('"', None);
    for o in options {
        match o {
            CopyOption::Format(f) => kind = f.value.to_lowercase(),
            CopyOption::Delimiter(c) => delimiter = Some(*c),
            CopyOption::Null(n) => null = Some(n.clone()),
            CopyOption::Header(h) => header = *h,
            CopyOption::Quote(c) => quote = *c,
            CopyOption::Escape(c) => escape = Some(*c),
            CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            other => return Err(unsupported(other.to_string())),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => kind = "binary".into(),
            CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
            CopyLegacyOption::Null(n) => null = Some(n.clone()),
            CopyLegacyOption::Csv(csv) => {
                kind = "csv".into();
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => header = true,
                        CopyLegacyCsvOption::Quote(q) => quote = *q,
                        CopyLegacyCsvOption::Escape(e) => escape = Some(*e),
                        other => return Err(unsupported(other.to_string())),
                    }
                }
            }
            other => return Err(unsupported(other.to_string())),
        }
    }
    match kind.as_str() {
        "text" => Ok(CopyFormat::Text {
            delimiter: delimiter.unwrap_or('\t'),
            null: null.unwrap_or_else(|| "\\N".into()),
        }),
        "csv" => Ok(CopyFormat::Csv {
            delimiter: delimiter.unwrap_or(','),
            null: null.unwrap_or_default(),
            header,
            quote,
            escape: escape.unwrap_or(quote),
        }),
        "binary" => Ok(CopyFormat::Binary),
        other => Err(unsupported(format!("FORMAT {other}"))),
    }
}

/// The rows of `out` as a COPY response in `format`.
pub(super) fn response(out: Output, format: &CopyFormat) -> PgWireResult<CopyResponse> {
    let wire = match format {
        CopyFormat::Binary => Format::UnifiedBinary,
        _ => Format::UnifiedText,
    };
    let fields = Arc::new(encode::fields(&out.schema, &wire)?);
    let mut chunks: Vec<PgWireResult<CopyData>> = Vec::new();
    let mut encoder = encoder_for(format, fields.clone());
    for batch in &out.batches {
        encode_batch(&mut encoder, batch, &fields, &mut chunks)?;
    }
    if let CopyFormat::Csv {
        header: true,
        delimiter,
        quote,
        ..
    } = format
    {
        // In the first message, so the row count the client is told stays the rows'.
        let mut first = header_line(&fields, *delimiter, *quote).into_bytes();
        if let Some(Ok(row)) = chunks.first() {
            first.extend_from_slice(&row.data);
            chunks[0] = Ok(CopyData::new(first.into()));
        } else {
            chunks.push(Ok(CopyData::new(first.into())));
        }
    }
    let code = i8::from(matches!(format, CopyFormat::Binary));
    Ok(CopyResponse::new(
        code,
        fields.len(),
        futures::stream::iter(chunks),
    ))
}

fn encoder_for(format: &CopyFormat, fields: Arc<Vec<FieldInfo>>) -> CopyEncoder {
    match format {
        CopyFormat::Text { delimiter, null } => CopyEncoder::new_text(
            fields,
            CopyTextOptions {
                delimiter: delimiter.to_string().into(),
                null_string: null.as_str().into(),
            },
        ),
        CopyFormat::Csv {
            delimiter,
            null,
            quote,
            escape,
            ..
        } => CopyEncoder::new_csv(
            fields,
            CopyCsvOptions {
                delimiter: delimiter.to_string().into(),
                quote: quote.to_string().into(),
                escape: escape.to_string().into(),
                null_string: null.as_str().into(),
                force_quote: Vec::new(),
            },
        ),
        CopyFormat::Binary => CopyEncoder::new_binary(fields),
    }
}

fn encode_batch(
    encoder: &mut CopyEncoder,
    batch: &RecordBatch,
    fields: &[FieldInfo],
    chunks: &mut Vec<PgWireResult<CopyData>>,
) -> PgWireResult<()> {
    let schema = batch.schema();
    for row in 0..batch.num_rows() {
        for (col, array) in batch.columns().iter().enumerate() {
            encode_value(encoder, array, row, schema.field(col), &fields[col])?;
        }
        chunks.push(Ok(encoder.take_copy()));
    }
    Ok(())
}

/// The CSV header: each column's name, quoted when it must be.
fn header_line(fields: &[FieldInfo], delimiter: char, quote: char) -> String {
    let names: Vec<String> = fields
        .iter()
        .map(|f| {
            let name = f.name();
            if name.contains([delimiter, quote, '\n', '\r']) {
                let doubled = name.replace(quote, &format!("{quote}{quote}"));
                format!("{quote}{doubled}{quote}")
            } else {
                name.to_string()
            }
        })
        .collect();
    format!("{}\n", names.join(&delimiter.to_string()))
}
