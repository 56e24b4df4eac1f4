//! UPDATE / REPLACE: read the matching objects (WHERE, ORDER BY, LIMIT), apply the
//! assignments, PUT each whole object.

use datafusion::sql::sqlparser::ast::{self, TableFactor};

use super::{Returning, WriteContext, pick_rows, refuse_unfiltered};
use crate::error::{Error, Result, SetAction};
use crate::output::Output;
use crate::provider::Verb;
use crate::sql::parse::name_parts;
use crate::suggest::closest;
use crate::write::{Calls, RowPlan, Target, set_column};

/// Clauses of UPDATE that cfql does not carry out: refused, never ignored.
fn refuse_unsupported(up: &ast::Update) -> Result<()> {
    let hint = "Pick the rows with WHERE (a subquery works: WHERE id IN (SELECT ...))";
    if up.from.is_some() {
        return Err(Error::unsupported("UPDATE", "FROM", hint));
    }
    if !up.table.joins.is_empty() {
        return Err(Error::unsupported("UPDATE", "a join", hint));
    }
    if up.or.is_some() {
        return Err(Error::unsupported(
            "UPDATE",
            "OR <conflict resolution>",
            "Remove it.",
        ));
    }
    if up.output.is_some() {
        return Err(Error::unsupported("UPDATE", "OUTPUT", "Use RETURNING."));
    }
    Ok(())
}

/// UPDATE / REPLACE: read each matching object, apply the assignments, PUT the whole object.
pub async fn update(cx: &WriteContext<'_>, up: &ast::Update) -> Result<Output> {
    refuse_unsupported(up)?;
    let TableFactor::Table { name, alias, .. } = &up.table.relation else {
        return Err(Error::Syntax {
            message: "UPDATE needs a table name".into(),
        });
    };
    let target = Target::new(cx.resolve(&name_parts(name))?, Verb::Update, true)?;
    let returning = Returning::parse(up.returning.as_ref())?;
    if up.selection.is_none() && !cx.opts.allow_unfiltered {
        return Err(refuse_unfiltered("UPDATE", &target.resource));
    }
    let assignments = assignments(&target, &up.assignments)?;
    // Each new value is computed by the read, per row, as `<expr> AS __cfql_set_<i>`.
    let sets = assignments
        .iter()
        .enumerate()
        .map(|(i, (_, e))| ast::SelectItem::ExprWithAlias {
            expr: (*e).clone(),
            alias: ast::Ident::new(set_column(i)),
        })
        .collect();
    let read = pick_rows(
        &target.resource,
        alias.as_ref(),
        sets,
        up.selection.as_ref(),
        &up.order_by,
        up.limit.as_ref(),
    )?;
    let input = cx.plan(read).await?;
    let assigned = assignments.into_iter().map(|(c, _)| c).collect();
    cx.run(
        target,
        Calls::FromInput {
            input,
            rows: RowPlan::Update { assigned },
        },
        &returning,
    )
    .await
}

/// The assignments as (column, value expression), each column one the update call takes,
/// none twice.
fn assignments<'a>(
    target: &Target,
    given: &'a [ast::Assignment],
) -> Result<Vec<(String, &'a ast::Expr)>> {
    let (resource, method) = (&target.resource, &target.method);
    let mut out: Vec<(String, &ast::Expr)> = Vec::new();
    for a in given {
        let col = match &a.target {
            ast::AssignmentTarget::ColumnName(n) => name_parts(n)
                .last()
                .cloned()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            other => {
                return Err(Error::Syntax {
                    message: format!("cannot assign to {other}"),
                });
            }
        };
        if !method.body.contains(&col) {
            return Err(Error::NotSettable {
                statement: format!("UPDATE {}", resource.qualified_name()),
                action: SetAction::Change,
                suggestion: closest(&col, method.body.iter().map(String::as_str))
                    .map(str::to_string),
                column: col,
                allowed: method.body.clone(),
            });
        }
        if out.iter().any(|(c, _)| c == &col) {
            return Err(Error::Syntax {
                message: format!(
                    "UPDATE {}: column '{col}' is assigned twice",
                    resource.qualified_name()
                ),
            });
        }
        out.push((col, &a.value));
    }
    Ok(out)
}
