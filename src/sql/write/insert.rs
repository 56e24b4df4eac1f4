//! INSERT: one create call per source row, after every row is validated.

use datafusion::sql::sqlparser::ast::{self, TableObject};

use super::coerce::coerce;
use super::*;
use crate::sql::parse::name_parts;

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
    } else if ins.settings.is_some() || ins.format_clause.is_some() || ins.insert_alias.is_some() || ins.priority.is_some() {
        "dialect options"
    } else {
        return Ok(());
    };
    Err(unsupported("INSERT", clause, "Use INSERT INTO table (columns) VALUES (...) | SELECT ... [RETURNING ...]."))
}

/// INSERT: one create call per source row, after every row validated.
pub async fn insert(session: &WriteContext<'_>, ins: &ast::Insert, opts: &WriteOptions<'_>) -> Result<Output> {
    refuse_unsupported(ins)?;
    let TableObject::TableName(name) = &ins.table else { return Err(Error::Sql("INSERT needs a table name".into())) };
    let resource = resolve_target(session, &name_parts(name))?;
    let method = method_for(&resource, Verb::Insert, false)?;
    let returning = parse_returning(ins.returning.as_ref())?;
    let spec = &resource.spec;
    let columns: Vec<String> = ins.columns.iter().map(|c| name_parts(c).last().cloned().unwrap_or_default().to_ascii_lowercase()).collect();
    if columns.is_empty() {
        return Err(Error::Sql(format!(
            "INSERT INTO {} needs a column list, e.g. ({})",
            resource.qualified_name(),
            method.body.join(", ")
        )));
    }
    for c in &columns {
        let ok = method.body.contains(c) || spec.scope(c).is_some();
        if !ok {
            let cands = method.body.iter().map(String::as_str).chain(spec.scopes.iter().map(|s| s.column.as_str()));
            let hint = closest(c, cands).map(|s| format!("did you mean {s}? ")).unwrap_or_default();
            return Err(Error::InvalidInput(format!(
                "INSERT INTO {}: column '{c}' cannot be set on create; {hint}(settable: {})",
                resource.qualified_name(),
                method.body.iter().chain(spec.scopes.iter().map(|s| &s.column)).cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let source = ins.source.as_ref().ok_or_else(|| Error::Sql("INSERT needs VALUES or SELECT".into()))?;
    let batches = read(session, &source.to_string(), &opts.cancel).await?;
    let rows = batches_positional(&batches);
    let mut errors = Vec::new();
    let mut calls = Vec::new();
    for (i, values) in rows.iter().enumerate() {
        let rowno = i + 1;
        if values.len() != columns.len() {
            errors.push(format!("row {rowno}: {} values for {} columns", values.len(), columns.len()));
            continue;
        }
        let mut body = Map::new();
        let mut scope_row = Map::new();
        let mut row_errors = Vec::new();
        for (c, v) in columns.iter().zip(values) {
            if spec.scope(c).is_some() {
                if !v.is_null() {
                    scope_row.insert(c.clone(), Value::String(crate::table::convert::value_text(v)));
                }
                continue;
            }
            let col = spec.column(c).cloned().unwrap_or_else(|| ColumnSpec::named(c, ColumnType::Utf8));
            match coerce(&col, v) {
                Ok(Some(v)) => {
                    body.insert(c.clone(), v);
                }
                Ok(None) => {}
                Err(e) => row_errors.push(e),
            }
        }
        if let Some(missing) = check_required(&resource, &method, &|n| body.contains_key(n)) {
            row_errors.push(format!("{missing} is required (the API needs it to create)"));
        }
        let scope = match scope_of_row(session.engine(), &resource, &method, &scope_row) {
            Ok(s) => Some(s),
            Err(e) => {
                row_errors.push(e.to_string());
                None
            }
        };
        if !row_errors.is_empty() {
            errors.push(format!("row {rowno}: {}", row_errors.join("; ")));
            continue;
        }
        let scope = scope.expect("no errors");
        let path = Engine::fill_path(&resource, &method, &scope, None)?;
        let name = body.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let mut req = request(&method, path, Some(body))?;
        req.check_hint = Some(format!(
            "SELECT * FROM {} WHERE name = '{}'{} (creates are never retried; delete a duplicate if one exists)",
            resource.qualified_name(),
            name.replace('\'', "''"),
            scope.values.iter().filter_map(|(c, v)| v.as_ref().map(|v| format!(" AND {c} = '{v}'"))).collect::<String>()
        ));
        calls.push(PlannedCall { row: rowno, id: None, scope, request: req, prior: Map::new() });
    }
    if !errors.is_empty() {
        return Err(Error::InvalidInput(format!(
            "INSERT INTO {} refused, nothing was created: {}",
            resource.qualified_name(),
            errors.join("; ")
        )));
    }
    run_calls(session, &resource, &method, Verb::Insert, calls, &returning, opts).await
}
