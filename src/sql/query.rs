//! Running a query through DataFusion with cfql's id-param rewriting and error wording
//! (unknown tables and columns with suggestions): shared by the session's SELECTs and the
//! reads that writes make to pick their rows.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use super::parse::{self, CfqlStatement, closest, unknown_table};
use super::rewrite;
use crate::error::{Error, Result};
use crate::provider::Registry;

/// Runs a query given as SQL text; anything but a query is an error.
pub async fn query(ctx: &SessionContext, registry: &Registry, sql: &str) -> Result<Vec<RecordBatch>> {
    match parse::parse(sql, registry)? {
        CfqlStatement::Query(s) => Ok(query_statement(ctx, registry, *s).await?.1),
        _ => Err(Error::Sql(format!("expected a query, got: {sql}"))),
    }
}

/// Plans and runs a parsed query; returns its schema (also for zero rows) and rows.
pub async fn query_statement(ctx: &SessionContext, registry: &Registry, mut stmt: Statement) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    rewrite::rename_id_params(&mut stmt, registry);
    let friendly = |e| friendly(registry, e);
    let state = ctx.state();
    let plan = state.statement_to_plan(DfStatement::Statement(Box::new(stmt))).await.map_err(friendly)?;
    let df = ctx.execute_logical_plan(plan).await.map_err(friendly)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(friendly)?;
    Ok((schema, batches))
}

/// Adds suggestions to unknown-table and unknown-column errors.
fn friendly(registry: &Registry, e: DataFusionError) -> Error {
    let text = e.to_string();
    if let Some(rest) = text.split("table '").nth(1)
        && let Some(name) = rest.split('\'').next()
        && text.contains("not found")
    {
        let parts: Vec<String> = name.split('.').map(str::to_string).collect();
        return unknown_table(registry, &parts);
    }
    if let DataFusionError::SchemaError(se, _) = e.find_root()
        && let datafusion::common::SchemaError::FieldNotFound { field, valid_fields } = se.as_ref()
    {
        let names: Vec<String> = valid_fields.iter().map(|c| c.name.clone()).collect();
        let hint = closest(&field.name, names.iter().map(String::as_str));
        let mut uniq = names.clone();
        uniq.sort();
        uniq.dedup();
        return Error::InvalidInput(format!(
            "unknown column '{}'{} (columns: {})",
            field.name,
            hint.map(|h| format!("; did you mean {h}?")).unwrap_or_default(),
            uniq.join(", ")
        ));
    }
    Error::from(e)
}
