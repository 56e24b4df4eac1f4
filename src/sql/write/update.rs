//! UPDATE / REPLACE: read the matching objects, apply the assignments, PUT each whole object.

use datafusion::sql::sqlparser::ast::{self, TableFactor};

use super::coerce::coerce;
use super::*;
use crate::sql::parse::name_parts;

/// Clauses of UPDATE that cfql does not carry out: refused, never ignored.
fn refuse_unsupported(up: &ast::Update) -> Result<()> {
    let hint = "Pick the rows with WHERE (a subquery works: WHERE id IN (SELECT ...))";
    if up.from.is_some() {
        return Err(unsupported("UPDATE", "FROM", hint));
    }
    if !up.table.joins.is_empty() {
        return Err(unsupported("UPDATE", "a join", hint));
    }
    if up.or.is_some() {
        return Err(unsupported("UPDATE", "OR <conflict resolution>", "Remove it."));
    }
    if up.output.is_some() {
        return Err(unsupported("UPDATE", "OUTPUT", "Use RETURNING."));
    }
    Ok(())
}

/// UPDATE / REPLACE: read each matching object, apply the assignments, PUT the whole object.
pub async fn update(session: &WriteContext<'_>, up: &ast::Update, opts: &WriteOptions<'_>) -> Result<Output> {
    refuse_unsupported(up)?;
    let TableFactor::Table { name, alias, .. } = &up.table.relation else { return Err(Error::Sql("UPDATE needs a table name".into())) };
    let resource = resolve_target(session, &name_parts(name))?;
    let method = method_for(&resource, Verb::Update, true)?;
    let returning = parse_returning(up.returning.as_ref())?;
    if up.selection.is_none() && !opts.allow_unfiltered {
        return Err(refuse_unfiltered("UPDATE", &resource));
    }
    let spec = &resource.spec;
    let mut assigned: Vec<(String, String)> = Vec::new();
    for a in &up.assignments {
        let col = match &a.target {
            ast::AssignmentTarget::ColumnName(n) => name_parts(n).last().cloned().unwrap_or_default().to_ascii_lowercase(),
            other => return Err(Error::Sql(format!("cannot assign to {other}"))),
        };
        if !method.body.contains(&col) {
            let hint = closest(&col, method.body.iter().map(String::as_str)).map(|s| format!("did you mean {s}? ")).unwrap_or_default();
            return Err(Error::InvalidInput(format!(
                "UPDATE {}: column '{col}' cannot be changed; {hint}(changeable: {})",
                resource.qualified_name(),
                method.body.join(", ")
            )));
        }
        if assigned.iter().any(|(c, _)| c == &col) {
            return Err(Error::InvalidInput(format!("UPDATE {}: column '{col}' is assigned twice", resource.qualified_name())));
        }
        assigned.push((col, a.value.to_string()));
    }
    let sets: Vec<String> = assigned.iter().enumerate().map(|(i, (_, e))| format!(", {e} AS __cfql_set_{i}")).collect();
    let picks = ReadSpec {
        alias: alias.as_ref().map(|a| a.name.to_string()),
        selection: up.selection.as_ref(),
        order_limit: order_and_limit(&up.order_by, up.limit.as_ref()),
    };
    let select = picks.select(&resource, &sets.concat());
    let rows = batch_rows(&read(session, &select, &opts.cancel).await?);
    let idcol = spec.id.as_ref().map(|i| i.column.clone()).unwrap_or_else(|| "id".into());
    let mut errors = Vec::new();
    let mut calls = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let rowno = i + 1;
        let current = row_as_object(&resource, row);
        let id = current.get(&idcol).and_then(Value::as_str).map(str::to_string);
        let mut body = Map::new();
        let mut row_errors = Vec::new();
        for field in &method.body {
            let col = spec.column(field).cloned().unwrap_or_else(|| ColumnSpec::named(field, ColumnType::Utf8));
            if let Some(k) = assigned.iter().position(|(c, _)| c == field) {
                match coerce(&col, &row[&format!("__cfql_set_{k}")]) {
                    Ok(Some(v)) => {
                        body.insert(field.clone(), v);
                    }
                    Ok(None) => {}
                    Err(e) => row_errors.push(e),
                }
            } else if let Some(v) = current.get(field).filter(|v| !v.is_null()) {
                if v.as_str().is_some_and(|s| col.read_only_values.iter().any(|r| r == s)) {
                    continue;
                }
                body.insert(field.clone(), v.clone());
            }
        }
        let scope = scope_of_row(session.engine(), &resource, &method, row);
        match (&scope, &id, row_errors.is_empty()) {
            (Ok(scope), Some(id), true) => {
                let path = Engine::fill_path(&resource, &method, scope, Some(id))?;
                let mut req = request(&method, path, Some(body))?;
                req.check_hint = Some(check_by_id(&resource, scope, id));
                calls.push(PlannedCall { row: rowno, id: Some(id.clone()), scope: scope.clone(), request: req, prior: current });
            }
            _ => {
                if let Err(e) = &scope {
                    row_errors.push(e.to_string());
                }
                errors.push(format!("row {rowno} ({}): {}", id.as_deref().unwrap_or("no id"), row_errors.join("; ")));
            }
        }
    }
    if !errors.is_empty() {
        return Err(Error::InvalidInput(format!(
            "UPDATE {} refused, nothing was changed: {}",
            resource.qualified_name(),
            errors.join("; ")
        )));
    }
    run_calls(session, &resource, &method, Verb::Update, calls, &returning, opts).await
}
