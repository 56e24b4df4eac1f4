//! Running a query through DataFusion with cfql's id-param rewriting and error wording
//! (unknown tables and columns with suggestions): shared by the session's SELECTs and the
//! reads that writes make to pick their rows.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use super::rewrite;
use crate::error::{Error, Result};
use crate::provider::Registry;
use crate::suggest::closest;

/// Plans a parsed query: id params renamed, every table it names checked (an unknown one
/// is [`Error::UnknownTable`] with the closest name, before DataFusion says it its way).
pub async fn plan_statement(
    ctx: &SessionContext,
    registry: &Registry,
    mut stmt: Statement,
) -> Result<LogicalPlan> {
    rewrite::rename_id_params(&mut stmt, registry);
    let stmt = DfStatement::Statement(Box::new(stmt));
    let state = ctx.state();
    for table in state.resolve_table_references(&stmt).map_err(friendly)? {
        // A table function (`generate_series(1, 3)`) is named as a relation too.
        let function =
            table.schema().is_none() && state.table_functions().contains_key(table.table());
        if !function && !ctx.table_exist(table.clone()).unwrap_or(true) {
            let parts: Vec<String> = table.to_vec();
            return Err(registry.unknown_table(&parts));
        }
    }
    // Boxed: DataFusion's planning future is large; keep it off the caller's stack.
    let plan = Box::pin(state.statement_to_plan(stmt))
        .await
        .map_err(friendly)?;
    // `->`'s JSON values leave as JSON text (no client can read the union they are).
    crate::json_text::present(plan).map_err(friendly)
}

/// The physical plan of a logical one (optimised as DataFusion would).
pub async fn physical(ctx: &SessionContext, plan: LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
    ctx.state()
        .create_physical_plan(&plan)
        .await
        .map_err(friendly)
}

/// Plans and runs a parsed query; returns its schema (also for zero rows) and rows.
pub async fn query_statement(
    ctx: &SessionContext,
    registry: &Registry,
    stmt: Statement,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let plan = plan_statement(ctx, registry, stmt).await?;
    run_plan(ctx, plan).await
}

/// Runs a logical plan (a prepared query with its parameters bound); returns its schema
/// and rows.
pub async fn run_plan(
    ctx: &SessionContext,
    plan: LogicalPlan,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let df = ctx.execute_logical_plan(plan).await.map_err(friendly)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(friendly)?;
    Ok((schema, batches))
}

/// Adds suggestions to unknown-column errors (DataFusion's typed `FieldNotFound`).
fn friendly(e: DataFusionError) -> Error {
    if let DataFusionError::SchemaError(se, _) = e.find_root()
        && let datafusion::common::SchemaError::FieldNotFound {
            field,
            valid_fields,
        } = se.as_ref()
    {
        // `t.id` where `t` has no `id` (but another table does): name and suggest with
        // qualifiers, or the message would read "unknown column 'id'; did you mean id?".
        let wanted = field.flat_name();
        let qualified: Vec<String> = valid_fields.iter().map(|c| c.flat_name()).collect();
        let suggestion = match &field.relation {
            Some(_) => closest(&wanted, qualified.iter().map(String::as_str)),
            None => closest(&field.name, valid_fields.iter().map(|c| c.name.as_str())),
        }
        .filter(|s| *s != wanted)
        .map(str::to_string);
        let mut columns: Vec<String> = valid_fields.iter().map(|c| c.name.clone()).collect();
        columns.sort();
        columns.dedup();
        return Error::UnknownColumn {
            context: None,
            column: wanted,
            suggestion,
            columns,
        };
    }
    Error::from(e)
}
