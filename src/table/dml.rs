//! DataFusion's DML on the resource tables: `INSERT`, `UPDATE` and `DELETE` run through
//! any `SessionContext` that `cfql::register` set up, as the same write plan cfql's own
//! statements use ([`crate::write::WriteExec`]), with the same validation, safety rules
//! and per-row outcomes. DataFusion's DML returns a `count`; what it cannot carry is
//! handled here so that nothing is lost or widened:
//!
//! - DataFusion hands a table only the WHERE predicates it can split off the plan, and it
//!   would drop a subquery's (after decorrelation) without a word, which would widen the
//!   write. [`DmlGuard`] refuses any UPDATE or DELETE on a cfql table whose WHERE is not
//!   plain predicates on that table's own columns, before anything runs.
//! - A create returns its secret only in the answer; a `count` cannot carry it, so an
//!   INSERT into a table with secret columns needs a secrets file (`Config::secrets_file`).
//! - No WHERE (or `WHERE true`, which the optimiser removes) is refused unless
//!   `Config::allow_unfiltered_writes`.

use std::sync::Arc;

use datafusion::catalog::Session as DfSession;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Expr, LogicalPlan, WriteOp};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;

use super::{ResourceTable, pushdown};
use crate::cancel::Cancel;
use crate::error::Error;
use crate::provider::Verb;
use crate::write::{Calls, Produce, RowPlan, Target, WriteExec, pinned_calls, set_column};

impl ResourceTable {
    /// `INSERT INTO t ...` through DataFusion: one create per input row.
    pub(super) async fn dml_insert(
        &self,
        input: Arc<dyn ExecutionPlan>,
        op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if op != InsertOp::Append {
            return Err(Error::unsupported(
                "INSERT",
                &format!("{op}"),
                "Use INSERT INTO table (columns) VALUES (...).",
            )
            .into());
        }
        let target = Target::new(self.resource.clone(), Verb::Insert, false)?;
        if target.returns_secrets()
            && self.engine.config.secrets_file.is_none()
            && !self.engine.config.dry_run
        {
            return Err(Error::Refused(format!(
                "INSERT INTO {} through a DataFusion context returns only a count, so the new secrets would be lost; set Config::secrets_file (they are appended there as each create returns), or run the INSERT with cfql::Session, which returns them as rows",
                target.resource.qualified_name()
            ))
            .into());
        }
        let columns = input
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        Ok(self.write_plan(
            target,
            Calls::FromInput {
                input,
                rows: RowPlan::Insert { columns },
            },
        ))
    }

    /// `DELETE FROM t WHERE ...` through DataFusion: by id without a read when the WHERE
    /// pins the ids, else the matching rows are read first.
    pub(super) async fn dml_delete(
        &self,
        state: &dyn DfSession,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let target = Target::new(self.resource.clone(), Verb::Delete, true)?;
        self.refuse_unfiltered("DELETE", &filters)?;
        if let Some(pins) = pushdown::pins_only(&self.resource.spec, &filters)
            && let Some(ids) = &pins.ids
            && let Some(calls) = pinned_calls(&self.connections, &target, ids, &pins.scopes).await?
        {
            return Ok(self.write_plan(target, Calls::Planned(calls)));
        }
        let input = self.matching_rows(state, &filters).await?;
        Ok(self.write_plan(
            target,
            Calls::FromInput {
                input,
                rows: RowPlan::Delete,
            },
        ))
    }

    /// `UPDATE t SET ... WHERE ...` through DataFusion: read, apply, PUT each object.
    pub(super) async fn dml_update(
        &self,
        state: &dyn DfSession,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let target = Target::new(self.resource.clone(), Verb::Update, true)?;
        self.refuse_unfiltered("UPDATE", &filters)?;
        if let Some((col, _)) = assignments
            .iter()
            .find(|(c, _)| !target.method.body.contains(c))
        {
            return Err(Error::NotSettable {
                statement: format!("UPDATE {}", target.resource.qualified_name()),
                action: crate::error::SetAction::Change,
                column: col.clone(),
                suggestion: None,
                allowed: target.method.body.clone(),
            }
            .into());
        }
        let rows = self.matching_rows(state, &filters).await?;
        let df_schema = DFSchema::try_from(self.schema.clone())?;
        let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = Vec::new();
        for (i, field) in self.schema.fields().iter().enumerate() {
            exprs.push((
                Arc::new(datafusion::physical_expr::expressions::Column::new(
                    field.name(),
                    i,
                )),
                field.name().clone(),
            ));
        }
        for (i, (_, value)) in assignments.iter().enumerate() {
            exprs.push((
                state.create_physical_expr(value.clone(), &df_schema)?,
                set_column(i),
            ));
        }
        let input: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(exprs, rows)?);
        let assigned = assignments.into_iter().map(|(c, _)| c).collect();
        Ok(self.write_plan(
            target,
            Calls::FromInput {
                input,
                rows: RowPlan::Update { assigned },
            },
        ))
    }

    /// The rows the WHERE matches: the scan (ids, scopes and API filters pushed down, all
    /// inexactly) under a filter that applies every predicate exactly.
    async fn matching_rows(
        &self,
        state: &dyn DfSession,
        filters: &[Expr],
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        use datafusion::catalog::TableProvider;
        let scan = self.scan(state, None, filters, None).await?;
        let Some(predicate) = conjunction(filters.iter().cloned()) else {
            return Ok(scan);
        };
        let df_schema = DFSchema::try_from(self.schema.clone())?;
        let predicate = state.create_physical_expr(predicate, &df_schema)?;
        Ok(Arc::new(FilterExec::try_new(predicate, scan)?))
    }

    fn refuse_unfiltered(&self, verb: &str, filters: &[Expr]) -> DfResult<()> {
        if filters.is_empty() && !self.engine.config.allow_unfiltered_writes {
            return Err(Error::Refused(format!(
                "{verb} without WHERE would change every row of {}; add a WHERE clause, or set Config::allow_unfiltered_writes",
                self.resource.qualified_name()
            ))
            .into());
        }
        Ok(())
    }

    fn write_plan(&self, target: Target, calls: Calls) -> Arc<dyn ExecutionPlan> {
        let produce = if self.engine.config.dry_run {
            Produce::DryRun
        } else {
            Produce::Count
        };
        let statement = format!(
            "{} {} (DataFusion DML)",
            target.verb_name(),
            target.resource.qualified_name()
        );
        Arc::new(WriteExec::new(
            self.connections.clone(),
            target,
            calls,
            produce,
            &statement,
            Cancel::new(),
        ))
    }
}

/// The WHERE of a plan that reads one table (`[Projection] Filter* [SubqueryAlias]
/// TableScan`): its predicates split at AND, qualifiers stripped. `None` for any other
/// shape, or when a predicate holds a subquery: then the predicates alone do not say
/// which rows match.
pub(crate) fn where_of(plan: &LogicalPlan) -> Option<Vec<Expr>> {
    let mut node = plan;
    if let LogicalPlan::Projection(p) = node {
        if p.expr.iter().any(has_subquery) {
            return None;
        }
        node = p.input.as_ref();
    }
    let mut predicates = Vec::new();
    while let LogicalPlan::Filter(f) = node {
        if has_subquery(&f.predicate) {
            return None;
        }
        predicates.extend(
            split_conjunction(&f.predicate)
                .into_iter()
                .map(|e| unqualified(e.clone())),
        );
        node = f.input.as_ref();
    }
    if let LogicalPlan::SubqueryAlias(a) = node {
        node = a.input.as_ref();
    }
    match node {
        LogicalPlan::TableScan(scan) => {
            predicates.extend(
                scan.filters
                    .iter()
                    .flat_map(split_conjunction)
                    .map(|e| unqualified(e.clone())),
            );
            Some(predicates)
        }
        _ => None,
    }
}

fn has_subquery(e: &Expr) -> bool {
    e.exists(|e| {
        Ok(matches!(
            e,
            Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::ScalarSubquery(_)
                | Expr::OuterReferenceColumn(..)
        ))
    })
    .unwrap_or(true)
}

fn unqualified(e: Expr) -> Expr {
    e.transform(|e| match e {
        Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
            Column::new_unqualified(c.name),
        ))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
    .unwrap_or_else(|e| {
        Expr::Literal(
            datafusion::common::ScalarValue::Utf8(Some(e.to_string())),
            None,
        )
    })
}

/// Refuses, before anything runs, an UPDATE or DELETE on a cfql table whose rows its
/// predicates alone do not pick (a subquery, a join): see the module comment.
#[derive(Debug, Default)]
pub(crate) struct DmlGuard;

impl AnalyzerRule for DmlGuard {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.apply(|node| {
            if let LogicalPlan::Dml(dml) = node
                && matches!(dml.op, WriteOp::Delete | WriteOp::Update)
                && datafusion::datasource::source_as_provider(&dml.target).is_ok_and(|p| p.is::<ResourceTable>())
                && where_of(&dml.input).is_none()
            {
                return Err(DataFusionError::Plan(format!(
                    "{} on {} through a DataFusion context takes a WHERE of plain conditions on the table's own columns (no subquery or join): DataFusion hands a table only those, and cfql will not guess which rows the rest meant. Nothing was sent; run it with cfql::Session, which supports WHERE id IN (SELECT ...)",
                    dml.op.name(),
                    dml.table_name
                )));
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "cfql_dml_guard"
    }
}
