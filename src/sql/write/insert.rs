//! INSERT: one create call per source row (VALUES or SELECT), after every row is validated.

use datafusion::sql::sqlparser::ast::{self, TableObject};

use super::{Returning, WriteContext};
use crate::error::{Error, Result, SetAction};
use crate::output::Output;
use crate::provider::{Resource, Verb};
use crate::sql::parse::name_parts;
use crate::suggest::closest;
use crate::write::{Calls, RowPlan, Target, statement_name};

/// Clauses of INSERT that cfql does not carry out: refused, never ignored.
fn refuse_unsupported(ins: &ast::Insert) -> Result<()> {
    let clause = if ins.on.is_some() {
        "ON CONFLICT / ON DUPLICATE KEY"
    } else if ins.or.is_some() || ins.ignore || ins.replace_into {
        "OR / IGNORE / REPLACE INTO"
    } else if ins.overwrite || ins.partitioned.is_some() || !ins.after_columns.is_empty() {
        "OVERWRITE / PARTITION"
    } else if !ins.assignments.is_empty() {
        "SET assignments"
    } else if ins.output.is_some() {
        "OUTPUT"
    } else if ins.settings.is_some()
        || ins.format_clause.is_some()
        || ins.insert_alias.is_some()
        || ins.priority.is_some()
    {
        "dialect options"
    } else {
        return Ok(());
    };
    Err(Error::unsupported(
        "INSERT",
        clause,
        "Use INSERT INTO table (columns) VALUES (...) | SELECT ... [RETURNING ...].",
    ))
}

/// INSERT: one create call per source row, after every row is validated.
pub async fn insert(cx: &WriteContext<'_>, ins: &ast::Insert) -> Result<Output> {
    refuse_unsupported(ins)?;
    let TableObject::TableName(name) = &ins.table else {
        return Err(Error::Syntax {
            message: "INSERT needs a table name".into(),
        });
    };
    let target = Target::new(cx.resolve(&name_parts(name))?, Verb::Insert, false)?;
    let returning = Returning::parse(ins.returning.as_ref())?;
    let columns = settable_columns(&target, ins)?;
    let source = ins.source.as_ref().ok_or_else(|| Error::Syntax {
        message: "INSERT needs VALUES or SELECT".into(),
    })?;
    let input = cx.plan(ast::Statement::Query(source.clone())).await?;
    let given = input.schema().fields().len();
    if given != columns.len() {
        return Err(Error::Syntax {
            message: format!(
                "{}: {given} values for {} columns; give one value per named column",
                statement_name(&target),
                columns.len()
            ),
        });
    }
    cx.run(
        target,
        Calls::FromInput {
            input,
            rows: RowPlan::Insert { columns },
        },
        &returning,
    )
    .await
}

/// The column list of an INSERT, each one a field the create call takes or a scope.
fn settable_columns(target: &Target, ins: &ast::Insert) -> Result<Vec<String>> {
    let (resource, method) = (&target.resource, &target.method);
    let columns: Vec<String> = ins
        .columns
        .iter()
        .map(|c| {
            name_parts(c)
                .last()
                .cloned()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .collect();
    if columns.is_empty() {
        return Err(Error::Syntax {
            message: format!(
                "INSERT INTO {} needs a column list, e.g. ({})",
                resource.qualified_name(),
                method.body.join(", ")
            ),
        });
    }
    let allowed: Vec<String> = method
        .body
        .iter()
        .chain(resource.spec.scopes.iter().map(|s| &s.column))
        .cloned()
        // Which credential creates the row (several connections): not a field of it.
        .chain([crate::connections::CONNECTION_COLUMN.to_string()])
        .collect();
    if let Some(c) = columns.iter().find(|c| !allowed.contains(c)) {
        return Err(not_settable(resource, c, allowed));
    }
    Ok(columns)
}

fn not_settable(resource: &Resource, column: &str, allowed: Vec<String>) -> Error {
    Error::NotSettable {
        statement: format!("INSERT INTO {}", resource.qualified_name()),
        action: SetAction::Create,
        column: column.to_string(),
        suggestion: closest(column, allowed.iter().map(String::as_str)).map(str::to_string),
        allowed,
    }
}
