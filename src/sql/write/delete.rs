//! DELETE: one DELETE per matching id, with no read when the WHERE pins the ids.

use datafusion::sql::sqlparser::ast::{self, BinaryOperator, TableFactor};

use super::*;
use crate::sql::parse::name_parts;

/// Ids and scopes pinned by a WHERE made only of `col = 'v'` / `col IN (...)` conjuncts.
/// A column pinned twice keeps only the values both conditions allow.
fn pinned(resource: &Resource, e: &Expr, ids: &mut Option<Vec<String>>, scopes: &mut BTreeMap<String, Vec<String>>) -> bool {
    let spec = &resource.spec;
    let lit = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    let colname = |e: &Expr| match e {
        Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_ascii_lowercase()),
        _ => None,
    };
    let intersect = |old: Option<Vec<String>>, vals: Vec<String>| match old {
        None => vals,
        Some(old) => old.into_iter().filter(|v| vals.contains(v)).collect(),
    };
    let mut put = |col: String, vals: Vec<String>| -> bool {
        let is_id = spec.id.as_ref().is_some_and(|i| i.column == col || (i.param == col && spec.column(&col).is_none()));
        if is_id {
            *ids = Some(intersect(ids.take(), vals));
            true
        } else if spec.scope(&col).is_some() {
            let merged = intersect(scopes.remove(&col), vals);
            scopes.insert(col, merged);
            true
        } else {
            false
        }
    };
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            pinned(resource, left, ids, scopes) && pinned(resource, right, ids, scopes)
        }
        Expr::Nested(inner) => pinned(resource, inner, ids, scopes),
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => match (colname(left), lit(right)) {
            (Some(c), Some(v)) => put(c, vec![v]),
            _ => false,
        },
        Expr::InList { expr, list, negated: false } => {
            let vals: Option<Vec<String>> = list.iter().map(lit).collect();
            match (colname(expr), vals) {
                (Some(c), Some(v)) => put(c, v),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Clauses of DELETE that cfql does not carry out: refused, never ignored.
fn refuse_unsupported(del: &ast::Delete, tables: &[ast::TableWithJoins]) -> Result<()> {
    let hint = "Pick the rows with WHERE (a subquery works: WHERE id IN (SELECT ...))";
    if !del.tables.is_empty() || tables.len() != 1 || !tables[0].joins.is_empty() {
        return Err(unsupported("DELETE", "several tables or a join", hint));
    }
    if del.using.is_some() {
        return Err(unsupported("DELETE", "USING", hint));
    }
    if del.output.is_some() {
        return Err(unsupported("DELETE", "OUTPUT", "Use RETURNING."));
    }
    Ok(())
}

/// DELETE: one DELETE per matching id; no list call when the WHERE pins the ids (and at
/// most one scope). ORDER BY and LIMIT pick the rows: the WHERE's matches in that order.
pub async fn delete(session: &WriteContext<'_>, del: &ast::Delete, opts: &WriteOptions<'_>) -> Result<Output> {
    let tables = match &del.from {
        ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
    };
    refuse_unsupported(del, tables)?;
    let TableFactor::Table { name, alias, .. } = &tables[0].relation else {
        return Err(Error::Sql("DELETE needs a table name".into()));
    };
    let resource = resolve_target(session, &name_parts(name))?;
    let method = method_for(&resource, Verb::Delete, true)?;
    let returning = parse_returning(del.returning.as_ref())?;
    let spec = &resource.spec;
    let read = ReadSpec {
        alias: alias.as_ref().map(|a| a.name.to_string()),
        selection: del.selection.as_ref(),
        order_limit: order_and_limit(&del.order_by, del.limit.as_ref()),
    };
    let Some(selection) = &del.selection else {
        if !opts.allow_unfiltered {
            return Err(refuse_unfiltered("DELETE", &resource));
        }
        return delete_by_read(session, &resource, &method, &read, &returning, opts).await;
    };
    // Fast path: ids pinned, at most one scope value, no ORDER BY / LIMIT, and RETURNING
    // needing nothing read. When unsure, read first: the shortcut never matches more.
    let mut ids = None;
    let mut scopes = BTreeMap::new();
    let needs_read = !read.order_limit.is_empty()
        || match &returning {
            Returning::Default => false,
            Returning::Columns(cols) => cols.iter().any(|c| {
                let key = c == "id" || spec.scope(c).is_some() || spec.id.as_ref().is_some_and(|i| &i.param == c);
                !(key || ENVELOPE.iter().any(|(e, _)| e == c))
            }),
        };
    if !needs_read && pinned(&resource, selection, &mut ids, &mut scopes) && ids.is_some() && scopes_single(&scopes) {
        let source = session.engine().scope_source(&resource, &method, &scopes);
        if matches!(source, ScopeSource::Pinned | ScopeSource::DefaultAccount | ScopeSource::Unscoped) {
            let bindings = session.engine().resolve_scopes(&resource, &method, &scopes).await?;
            let mut calls = Vec::new();
            for scope in &bindings {
                for id in ids.iter().flatten() {
                    calls.push(delete_call(&resource, &method, calls.len() + 1, id, scope, Map::new())?);
                }
            }
            return run_calls(session, &resource, &method, Verb::Delete, calls, &returning, opts).await;
        }
    }
    delete_by_read(session, &resource, &method, &read, &returning, opts).await
}

/// At most one scope column pinned, to at most one value.
fn scopes_single(scopes: &BTreeMap<String, Vec<String>>) -> bool {
    scopes.len() <= 1 && scopes.values().all(|v| v.len() <= 1)
}

fn delete_call(
    resource: &Resource,
    method: &MethodSpec,
    row: usize,
    id: &str,
    scope: &ScopeBinding,
    prior: Map<String, Value>,
) -> Result<PlannedCall> {
    let path = Engine::fill_path(resource, method, scope, Some(id))?;
    let mut request = request(method, path, None)?;
    request.check_hint = Some(check_by_id(resource, scope, id));
    Ok(PlannedCall { row, id: Some(id.to_string()), scope: scope.clone(), request, prior })
}

async fn delete_by_read(
    session: &WriteContext<'_>,
    resource: &Resource,
    method: &MethodSpec,
    spec: &ReadSpec<'_>,
    returning: &Returning,
    opts: &WriteOptions<'_>,
) -> Result<Output> {
    let rows = batch_rows(&read(session, &spec.select(resource, ""), &opts.cancel).await?);
    let idcol = resource.spec.id.as_ref().map(|i| i.column.clone()).unwrap_or_else(|| "id".into());
    let mut calls = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let current = row_as_object(resource, row);
        let Some(id) = current.get(&idcol).and_then(Value::as_str).map(str::to_string) else { continue };
        let scope = scope_of_row(session.engine(), resource, method, row)?;
        calls.push(delete_call(resource, method, i + 1, &id, &scope, current)?);
    }
    run_calls(session, resource, method, Verb::Delete, calls, returning, opts).await
}
