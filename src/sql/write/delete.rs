//! DELETE: one DELETE per matching id, with no read when the WHERE pins the ids.

use datafusion::sql::sqlparser::ast::{self, BinaryOperator, TableFactor};

use super::*;
use crate::sql::parse::name_parts;

/// Ids and scopes pinned by a WHERE made only of `col = 'v'` / `col IN (...)` conjuncts.
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
    let mut put = |col: String, vals: Vec<String>| -> bool {
        let is_id = spec.id.as_ref().is_some_and(|i| i.column == col || (i.param == col && spec.column(&col).is_none()));
        if is_id {
            *ids = Some(match ids.take() {
                None => vals,
                Some(old) => old.into_iter().filter(|v| vals.contains(v)).collect(),
            });
            true
        } else if spec.scope(&col).is_some() {
            scopes.insert(col, vals);
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

/// DELETE: one DELETE per matching id; no list call when the WHERE pins the ids.
pub async fn delete(session: &Session, del: &ast::Delete, opts: &WriteOptions<'_>) -> Result<Output> {
    let tables = match &del.from {
        ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
    };
    let Some(TableFactor::Table { name, .. }) = tables.first().map(|t| &t.relation) else {
        return Err(Error::Sql("DELETE needs a table name".into()));
    };
    let resource = resolve_target(session, &name_parts(name))?;
    let method = method_for(&resource, Verb::Delete, true)?;
    let returning = parse_returning(del.returning.as_ref())?;
    let spec = &resource.spec;
    let Some(selection) = &del.selection else {
        if !opts.allow_unfiltered {
            return Err(refuse_unfiltered("DELETE", &resource));
        }
        return delete_by_read(session, &resource, &method, None, &returning, opts).await;
    };
    // Fast path: ids pinned, the scope known without a fan-out, and RETURNING needing nothing read.
    let mut ids = None;
    let mut scopes = BTreeMap::new();
    let needs_read = match &returning {
        Returning::Default => false,
        Returning::Columns(cols) => cols.iter().any(|c| {
            let key = c == "id" || spec.scope(c).is_some() || spec.id.as_ref().is_some_and(|i| &i.param == c);
            !(key || ENVELOPE.iter().any(|(e, _)| e == c))
        }),
    };
    if !needs_read && pinned(&resource, selection, &mut ids, &mut scopes) && ids.is_some() {
        let source = session.engine().scope_source(&resource, &method, &scopes);
        if matches!(source, ScopeSource::Pinned | ScopeSource::DefaultAccount | ScopeSource::Unscoped) {
            let bindings = session.engine().resolve_scopes(&resource, &method, &scopes).await?;
            let mut calls = Vec::new();
            let mut rowno = 0;
            for scope in &bindings {
                for id in ids.iter().flatten() {
                    rowno += 1;
                    let path = Engine::fill_path(&resource, &method, scope, Some(id))?;
                    let req = request(&method, path, None)?;
                    calls.push(PlannedCall { row: rowno, id: Some(id.clone()), scope: scope.clone(), request: req, prior: Map::new() });
                }
            }
            return run_calls(session, &resource, &method, Verb::Delete, calls, &returning, opts).await;
        }
    }
    delete_by_read(session, &resource, &method, Some(selection), &returning, opts).await
}

async fn delete_by_read(
    session: &Session,
    resource: &Resource,
    method: &MethodSpec,
    selection: Option<&Expr>,
    returning: &Returning,
    opts: &WriteOptions<'_>,
) -> Result<Output> {
    let select = format!("SELECT * FROM {}{}", resource.qualified_name(), selection.map(|w| format!(" WHERE {w}")).unwrap_or_default());
    let rows = batch_rows(&session.query(&select).await?);
    let idcol = resource.spec.id.as_ref().map(|i| i.column.clone()).unwrap_or_else(|| "id".into());
    let mut calls = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let current = row_as_object(resource, row);
        let Some(id) = current.get(&idcol).and_then(Value::as_str).map(str::to_string) else { continue };
        let scope = scope_of_row(session.engine(), resource, method, row)?;
        let path = Engine::fill_path(resource, method, &scope, Some(&id))?;
        let req = request(method, path, None)?;
        calls.push(PlannedCall { row: i + 1, id: Some(id), scope, request: req, prior: current });
    }
    run_calls(session, resource, method, Verb::Delete, calls, returning, opts).await
}
