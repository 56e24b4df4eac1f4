//! DELETE: one DELETE per matching id, with no read when the WHERE pins the ids.

use datafusion::sql::sqlparser::ast::{self, TableFactor};

use super::{Returning, WriteContext, pick_rows, refuse_unfiltered};
use crate::error::{Error, Result};
use crate::output::Output;
use crate::provider::Verb;
use crate::sql::parse::name_parts;
use crate::table::dml::where_of;
use crate::table::pushdown::pins_only;
use crate::write::{Calls, RowPlan, Target, pinned_calls};

/// Clauses of DELETE that cfql does not carry out: refused, never ignored.
fn refuse_unsupported(del: &ast::Delete, tables: &[ast::TableWithJoins]) -> Result<()> {
    let hint = "Pick the rows with WHERE (a subquery works: WHERE id IN (SELECT ...))";
    if !del.tables.is_empty() || tables.len() != 1 || !tables[0].joins.is_empty() {
        return Err(Error::unsupported(
            "DELETE",
            "several tables or a join",
            hint,
        ));
    }
    if del.using.is_some() {
        return Err(Error::unsupported("DELETE", "USING", hint));
    }
    if del.output.is_some() {
        return Err(Error::unsupported("DELETE", "OUTPUT", "Use RETURNING."));
    }
    Ok(())
}

/// DELETE: one DELETE per matching id; no list call when the WHERE pins the ids (and at
/// most one scope). ORDER BY and LIMIT pick the rows: the WHERE's matches in that order.
pub async fn delete(cx: &WriteContext<'_>, del: &ast::Delete) -> Result<Output> {
    let tables = match &del.from {
        ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
    };
    refuse_unsupported(del, tables)?;
    let TableFactor::Table { name, alias, .. } = &tables[0].relation else {
        return Err(Error::Syntax {
            message: "DELETE needs a table name".into(),
        });
    };
    let target = Target::new(cx.resolve(&name_parts(name))?, Verb::Delete, true)?;
    let returning = Returning::parse(del.returning.as_ref())?;
    if del.selection.is_none() && !cx.opts.allow_unfiltered {
        return Err(refuse_unfiltered("DELETE", &target.resource));
    }
    let read = pick_rows(
        &target.resource,
        alias.as_ref(),
        Vec::new(),
        del.selection.as_ref(),
        &del.order_by,
        del.limit.as_ref(),
    )?;
    let logical = cx.logical(read).await?;
    // The shortcut: the WHERE pins ids and says nothing else, and nothing else (ORDER BY,
    // LIMIT, a RETURNING column) needs the rows read. The same analysis serves a DELETE
    // that DataFusion hands to the table (`table::dml`).
    let shortcut = del.selection.is_some()
        && del.order_by.is_empty()
        && del.limit.is_none()
        && !returning.needs_read(&target);
    if shortcut
        && let Some(pins) = where_of(&logical).and_then(|f| pins_only(&target.resource.spec, &f))
        && let Some(ids) = &pins.ids
        && let Some(calls) = pinned_calls(cx.connections, &target, ids, &pins.scopes).await?
    {
        return cx.run(target, Calls::Planned(calls), &returning).await;
    }
    let input = super::query::physical(cx.ctx, logical).await?;
    cx.run(
        target,
        Calls::FromInput {
            input,
            rows: RowPlan::Delete,
        },
        &returning,
    )
    .await
}
