//! cfql's write statements: INSERT (create), UPDATE/REPLACE (read-modify-write), DELETE
//! and EXEC (roll, rotate, refresh). Each module reads its statement's clauses (refusing
//! the ones cfql does not carry out), plans the read that yields its rows through
//! DataFusion, and runs the write plan of [`crate::write`] over it. What DataFusion's DML
//! has no word for is added here: RETURNING, ORDER BY / LIMIT, EXEC and dry runs.

mod delete;
mod exec;
mod insert;
mod returning;
mod update;

pub use delete::delete;
pub use exec::exec;
pub use insert::insert;
pub use update::update;

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::build::PickRows;
use super::query;
use crate::cancel::Cancel;
use crate::connections::Connections;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::provider::Resource;
use crate::write::{Calls, Produce, Target, WriteExec};
use datafusion::sql::sqlparser::ast::{self, Statement};
use returning::{Returning, result_columns};

/// What a write statement needs of the session that runs it: the DataFusion context (the
/// reads that pick its rows are planned there), the engine, and its options. Writes never
/// call back into the `Session`.
pub struct WriteContext<'a> {
    ctx: &'a SessionContext,
    /// The first connection (manifests, settings).
    engine: &'a Arc<Engine>,
    /// Every connection: each call goes through the one its row names.
    connections: &'a Arc<Connections>,
    opts: WriteOptions,
}

/// Options of one write statement.
pub struct WriteOptions {
    /// List the calls instead of making them.
    pub dry_run: bool,
    /// UPDATE/DELETE without WHERE allowed.
    pub allow_unfiltered: bool,
    /// The statement text (for the audit log).
    pub statement: String,
    /// Fires on Ctrl-C / SIGTERM / a client's cancel: no new call starts after it.
    pub cancel: Cancel,
    /// Only find the columns the statement would return (a wire client's Describe): the
    /// statement is read and checked, its reads may run, and no write call is made.
    pub describe_only: bool,
}

impl<'a> WriteContext<'a> {
    /// A context for writes run by a session with `ctx` and `connections`.
    pub fn new(
        ctx: &'a SessionContext,
        connections: &'a Arc<Connections>,
        opts: WriteOptions,
    ) -> Self {
        Self {
            ctx,
            engine: connections.primary(),
            connections,
            opts,
        }
    }

    fn resolve(&self, parts: &[String]) -> Result<Resource> {
        self.engine.registry.resolve_or_suggest(parts)
    }

    /// The physical plan of a query whose rows a write acts on.
    async fn plan(&self, stmt: Statement) -> Result<Arc<dyn ExecutionPlan>> {
        let logical = self.logical(stmt).await?;
        query::physical(self.ctx, logical).await
    }

    /// The logical plan of a query (its WHERE is what a DELETE's shortcut reads).
    async fn logical(&self, stmt: Statement) -> Result<LogicalPlan> {
        query::plan_statement(self.ctx, &self.engine.registry, stmt).await
    }

    /// Runs a read a write depends on (EXEC's subquery params). Nothing was changed yet,
    /// so a cancel stops it at once.
    async fn read(&self, stmt: Statement) -> Result<Vec<RecordBatch>> {
        let run = async {
            let (_, batches) =
                query::query_statement(self.ctx, &self.engine.registry, stmt).await?;
            Ok(batches)
        };
        tokio::select! {
            biased;
            _ = self.opts.cancel.cancelled() => Err(Error::Cancelled { what: "stopped while reading what to change; nothing was changed".into() }),
            r = run => r,
        }
    }

    /// Runs the write plan of `calls` and gathers what it yields: the result rows in the
    /// order of the statement's input, or the error that carries every outcome.
    async fn run(&self, target: Target, calls: Calls, returning: &Returning) -> Result<Output> {
        let produce = if self.opts.dry_run {
            Produce::DryRun
        } else {
            Produce::Rows(result_columns(&target, returning)?)
        };
        let exec = WriteExec::new(
            self.connections.clone(),
            target,
            calls,
            produce,
            &self.opts.statement,
            self.opts.cancel.clone(),
        );
        let schema = exec.schema();
        if self.opts.describe_only {
            return Ok(Output::from_batches(schema, Vec::new()));
        }
        let mut stream = exec.execute(0, self.ctx.task_ctx())?;
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            batches.push(batch.map_err(Error::from)?);
        }
        let mut out = Output::from_batches(schema, batches);
        if let Some(finished) = exec.finished() {
            let mut rows: Vec<(usize, RecordBatch)> =
                finished.sent.into_iter().zip(out.batches).collect();
            rows.sort_by_key(|(row, _)| *row);
            out.batches = rows.into_iter().map(|(_, b)| b).collect();
            out.write = Some(finished.summary);
        }
        Ok(out)
    }
}

fn refuse_unfiltered(verb: &str, resource: &Resource) -> Error {
    Error::Refused(format!(
        "{verb} without WHERE would change every row of {}; add a WHERE clause (WHERE true to mean all), or allow it for the session with SET cfql.allow_unfiltered_writes = true",
        resource.qualified_name()
    ))
}

/// The read that picks the rows of an UPDATE or DELETE: `SELECT *<extra> FROM table [AS
/// alias] [WHERE ...] [ORDER BY ...] [LIMIT n]`, made of the statement's own parsed nodes.
fn pick_rows(
    resource: &Resource,
    alias: Option<&ast::TableAlias>,
    extra: Vec<ast::SelectItem>,
    selection: Option<&ast::Expr>,
    order_by: &[ast::OrderByExpr],
    limit: Option<&ast::Expr>,
) -> Result<Statement> {
    let table = [
        crate::provider::CATALOG,
        &resource.service,
        &resource.spec.name,
    ]
    .map(str::to_string)
    .to_vec();
    PickRows {
        table,
        alias,
        extra,
        selection,
        order_by,
        limit,
    }
    .statement()
}
