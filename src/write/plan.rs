//! Turning rows into calls: one call per row of a write's input, each row validated (types,
//! enums, lengths, required fields, scopes) before any call is made. A row that fails
//! refuses the whole statement, with every problem of every row in one error.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use super::coerce::coerce;
use super::{PlannedCall, RowPlan, Target, set_column};
use crate::connections::{CONNECTION_COLUMN, Connections};
use crate::convert::{batch_rows, batch_values, row_object, value_text};
use crate::engine::{Engine, ScopeBinding, ScopeSource, scope_binding};
use crate::error::{Error, RejectedRow, Result, SetAction};
use crate::http::ApiRequest;
use crate::notes::Notes;
use crate::provider::{ColumnSpec, ColumnType, MethodSpec, Resource};

/// The calls of every row of `batches`, or the error naming every row that is not valid.
pub(super) fn calls_from_rows(
    connections: &Connections,
    target: &Target,
    plan: &RowPlan,
    batches: &[RecordBatch],
) -> Result<Vec<PlannedCall>> {
    let what = statement_name(target);
    // Each row goes through the connection it names (as read, or as given).
    let via = |row: usize, named: Option<&Value>, id: Option<String>| {
        let name = named.and_then(Value::as_str);
        connections.pick(name, &what).map_err(|e| RejectedRow {
            row,
            id,
            problems: vec![e.to_string()],
        })
    };
    let planned: Vec<std::result::Result<PlannedCall, RejectedRow>> = match plan {
        RowPlan::Insert { columns } => batch_values(batches)
            .iter()
            .enumerate()
            .map(|(i, values)| {
                let at = columns.iter().position(|c| c == CONNECTION_COLUMN);
                let engine = via(i + 1, at.map(|k| &values[k]), None)?;
                insert_call(&engine, target, columns, i + 1, values)
            })
            .collect(),
        RowPlan::Update { assigned } => batch_rows(batches)
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let engine = via(i + 1, row.get(CONNECTION_COLUMN), None)?;
                update_call(&engine, target, assigned, i + 1, row)
            })
            .collect(),
        RowPlan::Delete => batch_rows(batches)
            .iter()
            .enumerate()
            .filter_map(
                |(i, row)| match via(i + 1, row.get(CONNECTION_COLUMN), None) {
                    Ok(engine) => delete_row(&engine, target, i + 1, row),
                    Err(e) => Some(Err(e)),
                },
            )
            .collect(),
    };
    let (calls, rejected): (Vec<_>, Vec<_>) =
        planned.into_iter().partition(std::result::Result::is_ok);
    if !rejected.is_empty() {
        let action = if matches!(plan, RowPlan::Insert { .. }) {
            SetAction::Create
        } else {
            SetAction::Change
        };
        return Err(Error::RowsRejected {
            statement: statement_name(target),
            action,
            rows: rejected
                .into_iter()
                .filter_map(std::result::Result::err)
                .collect(),
        });
    }
    Ok(calls
        .into_iter()
        .filter_map(std::result::Result::ok)
        .collect())
}

/// `INSERT INTO cloudflare.user.tokens`, `UPDATE cloudflare.user.tokens`, ...
pub(crate) fn statement_name(target: &Target) -> String {
    let table = target.resource.qualified_name();
    match target.verb_name() {
        "INSERT" => format!("INSERT INTO {table}"),
        "DELETE" => format!("DELETE FROM {table}"),
        verb => format!("{verb} {table}"),
    }
}

/// The create call of one source row: its body (every value checked), its scope.
fn insert_call(
    engine: &Arc<Engine>,
    target: &Target,
    columns: &[String],
    row: usize,
    values: &[Value],
) -> std::result::Result<PlannedCall, RejectedRow> {
    let (resource, method) = (&target.resource, &target.method);
    let reject = |problems| RejectedRow {
        row,
        id: None,
        problems,
    };
    if values.len() != columns.len() {
        return Err(reject(vec![format!(
            "{} values for {} columns",
            values.len(),
            columns.len()
        )]));
    }
    let (body, scope_row, mut problems) = create_body(target, columns, values);
    let scope = scope_of_row(engine, resource, method, &scope_row)
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    let Some(scope) = scope.filter(|_| problems.is_empty()) else {
        return Err(reject(problems));
    };
    let path = Engine::fill_path(resource, method, &scope, None)
        .map_err(|e| reject(vec![e.to_string()]))?;
    let check = create_check(resource, &body, &scope);
    let mut request = request(method, path, Some(body)).map_err(|e| reject(vec![e.to_string()]))?;
    request.check_hint = Some(check);
    Ok(PlannedCall {
        row,
        id: None,
        scope,
        request,
        prior: Map::new(),
        via: engine.clone(),
    })
}

/// The body of a create from one source row (each value checked), its scope columns, and
/// what is wrong with it. NULL means "not given".
fn create_body(
    target: &Target,
    columns: &[String],
    values: &[Value],
) -> (Map<String, Value>, Map<String, Value>, Vec<String>) {
    let (resource, method) = (&target.resource, &target.method);
    let (mut body, mut scope_row, mut problems) = (Map::new(), Map::new(), Vec::new());
    for (c, v) in columns.iter().zip(values).filter(|(_, v)| !v.is_null()) {
        if c == CONNECTION_COLUMN {
            continue; // which credential creates it, not a field of the object
        }
        if resource.spec.scope(c).is_some() {
            scope_row.insert(c.clone(), Value::String(value_text(v)));
        } else if !method.body.contains(c) {
            problems.push(format!("column '{c}' cannot be set on create"));
        } else {
            match coerce(&body_column(resource, method, c), v) {
                Ok(Some(v)) => drop(body.insert(c.clone(), v)),
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
    }
    if let Some(missing) = check_required(resource, method, &|n| body.contains_key(n)) {
        problems.push(format!(
            "{missing} is required (the API needs it to create)"
        ));
    }
    (body, scope_row, problems)
}

/// The statement that finds a create whose answer was lost: by its label (`name`) when
/// the manifest names one.
fn create_check(resource: &Resource, body: &Map<String, Value>, scope: &ScopeBinding) -> String {
    let by_label = resource.spec.label.as_deref().map(|label| {
        let value = body.get(label).and_then(Value::as_str).unwrap_or("");
        format!(" AND {label} = '{}'", value.replace('\'', "''"))
    });
    let filter = format!("{}{}", by_label.unwrap_or_default(), scope_condition(scope));
    format!(
        "SELECT * FROM {}{} (creates are never retried; delete a duplicate if one exists)",
        resource.qualified_name(),
        filter
            .strip_prefix(" AND ")
            .map(|f| format!(" WHERE {f}"))
            .unwrap_or_default()
    )
}

/// The PUT of one row as read: the whole object, with the assigned fields replaced.
fn update_call(
    engine: &Arc<Engine>,
    target: &Target,
    assigned: &[String],
    row: usize,
    read: &Map<String, Value>,
) -> std::result::Result<PlannedCall, RejectedRow> {
    let (resource, method) = (&target.resource, &target.method);
    let current = row_object(&resource.spec.columns, read);
    let id = current
        .get(resource.spec.id_column())
        .and_then(Value::as_str)
        .map(str::to_string);
    let reject = |problems| RejectedRow {
        row,
        id: id.clone(),
        problems,
    };
    let mut body = Map::new();
    let mut problems = Vec::new();
    for field in &method.body {
        let col = body_column(resource, method, field);
        if let Some(k) = assigned.iter().position(|c| c == field) {
            match coerce(&col, read.get(&set_column(k)).unwrap_or(&Value::Null)) {
                Ok(Some(v)) => drop(body.insert(field.clone(), v)),
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        } else if let Some(v) = current.get(field).filter(|v| !v.is_null()) {
            // Values the API reports but refuses to be sent back (`status: expired`).
            if !v
                .as_str()
                .is_some_and(|s| col.read_only_values.iter().any(|r| r == s))
            {
                body.insert(field.clone(), v.clone());
            }
        }
    }
    let scope = scope_of_row(engine, resource, method, read)
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    let (Some(scope), Some(id_value), true) = (scope, id.clone(), problems.is_empty()) else {
        return Err(reject(problems));
    };
    let path = Engine::fill_path(resource, method, &scope, Some(&id_value))
        .map_err(|e| reject(vec![e.to_string()]))?;
    let mut request = request(method, path, Some(body)).map_err(|e| reject(vec![e.to_string()]))?;
    request.check_hint = Some(check_by_id(resource, &scope, &id_value));
    Ok(PlannedCall {
        row,
        id,
        scope,
        request,
        prior: current,
        via: engine.clone(),
    })
}

/// The DELETE of one row as read; a row without an id has nothing to delete.
fn delete_row(
    engine: &Arc<Engine>,
    target: &Target,
    row: usize,
    read: &Map<String, Value>,
) -> Option<std::result::Result<PlannedCall, RejectedRow>> {
    let resource = &target.resource;
    let current = row_object(&resource.spec.columns, read);
    let id = current
        .get(resource.spec.id_column())
        .and_then(Value::as_str)?
        .to_string();
    let reject = |e: Error| RejectedRow {
        row,
        id: Some(id.clone()),
        problems: vec![e.to_string()],
    };
    let call = scope_of_row(engine, resource, &target.method, read)
        .and_then(|scope| delete_call(engine, target, row, &id, &scope, current.clone()))
        .map_err(reject);
    Some(call)
}

fn delete_call(
    via: &Arc<Engine>,
    target: &Target,
    row: usize,
    id: &str,
    scope: &ScopeBinding,
    prior: Map<String, Value>,
) -> Result<PlannedCall> {
    let path = Engine::fill_path(&target.resource, &target.method, scope, Some(id))?;
    let mut request = request(&target.method, path, None)?;
    request.check_hint = Some(check_by_id(&target.resource, scope, id));
    Ok(PlannedCall {
        row,
        id: Some(id.to_string()),
        scope: scope.clone(),
        request,
        prior,
        via: via.clone(),
    })
}

/// The DELETEs of a WHERE that pins the ids (and at most one scope value) and says nothing
/// else (`table::pushdown::pins_only` tells): no list call is needed. `None` when the
/// scopes are not pinned to one value; then the rows are read first, since the shortcut
/// must never match more than the WHERE. `None` too under several connections: which
/// one holds the object is known only by reading it.
pub(crate) async fn pinned_calls(
    connections: &Connections,
    target: &Target,
    ids: &[String],
    scopes: &BTreeMap<String, Vec<String>>,
) -> Result<Option<Vec<PlannedCall>>> {
    if connections.is_several() || scopes.len() > 1 || scopes.values().any(|v| v.len() > 1) {
        return Ok(None);
    }
    let engine = connections.primary();
    // A call by id that cannot check the scope the WHERE names would act on an object of
    // another scope: read the scope's rows first.
    if !scopes.is_empty() && target.resource.spec.scope_blind(&target.method) {
        return Ok(None);
    }
    let source = engine.scope_source(&target.resource, &target.method, scopes, &[]);
    if !matches!(
        source,
        ScopeSource::Pinned | ScopeSource::DefaultAccount | ScopeSource::Unscoped
    ) {
        return Ok(None);
    }
    let mut calls = Vec::new();
    for scope in engine
        // Pinned or default scopes list nothing, so there is nothing to note.
        .resolve_scopes(
            &target.resource,
            &target.method,
            scopes,
            &[],
            &Notes::default(),
        )
        .await?
    {
        for id in ids {
            calls.push(delete_call(
                engine,
                target,
                calls.len() + 1,
                id,
                &scope,
                Map::new(),
            )?);
        }
    }
    Ok(Some(calls))
}

/// The column spec a body field is checked against (a field that is no column, such as
/// an EXEC parameter, by its declared type).
pub(crate) fn body_column(resource: &Resource, method: &MethodSpec, field: &str) -> ColumnSpec {
    resource.spec.column(field).cloned().unwrap_or_else(|| {
        ColumnSpec::named(
            field,
            method
                .param_types
                .get(field)
                .copied()
                .unwrap_or(ColumnType::Utf8),
        )
    })
}

/// The scope a row belongs to, from its scope columns, else the default account.
pub(crate) fn scope_of_row(
    engine: &Engine,
    resource: &Resource,
    method: &MethodSpec,
    row: &Map<String, Value>,
) -> Result<ScopeBinding> {
    let spec = &resource.spec;
    if spec.scopes.is_empty() {
        return Ok(ScopeBinding::none());
    }
    for s in spec.allowed_scopes(method) {
        if let Some(Value::String(v)) = row.get(&s.column) {
            return scope_binding(resource, &s.column, v);
        }
    }
    match engine.scope_source(resource, method, &BTreeMap::new(), &[]) {
        ScopeSource::DefaultAccount => engine.default_scope(resource, method),
        ScopeSource::Missing(e) => Err(e),
        _ => {
            let names: Vec<_> = spec
                .allowed_scopes(method)
                .map(|s| s.column.clone())
                .collect();
            Err(Error::MissingParam {
                table: resource.qualified_name(),
                param: names.join(" or "),
                hint: format!(
                    "give {} a value in the statement, or set the default account (CLOUDFLARE_ACCOUNT_ID)",
                    names.join(" or ")
                ),
            })
        }
    }
}

/// The first required parameter of `method` that `has` does not have (ids and scopes are
/// checked when the path is built).
pub(crate) fn check_required(
    resource: &Resource,
    method: &MethodSpec,
    has: &dyn Fn(&str) -> bool,
) -> Option<String> {
    for req in &method.required {
        let alts: Vec<&str> = req.split('|').collect();
        let is_scope = alts.iter().all(|a| resource.spec.scope(a).is_some());
        let is_id = resource
            .spec
            .id
            .as_ref()
            .is_some_and(|i| alts.contains(&i.param.as_str()));
        if !(is_scope || is_id || alts.iter().any(|a| has(a))) {
            return Some(alts.join(" or "));
        }
    }
    None
}

/// The request of a method call on `path`, with an optional JSON body.
pub(crate) fn request(
    method: &MethodSpec,
    path: String,
    body: Option<Map<String, Value>>,
) -> Result<ApiRequest> {
    let verb = reqwest::Method::from_bytes(method.http.as_bytes()).map_err(|_| {
        Error::Config(format!(
            "method {}: '{}' is not an HTTP method",
            method.name, method.http
        ))
    })?;
    Ok(ApiRequest {
        method: verb,
        path,
        query: Vec::new(),
        body: body.map(Value::Object),
        check_hint: None,
        keep: false,
    })
}

/// ` AND account_id = 'a'` for each scope value of a binding.
fn scope_condition(scope: &ScopeBinding) -> String {
    scope
        .values
        .iter()
        .filter_map(|(c, v)| {
            v.as_ref()
                .map(|v| format!(" AND {c} = '{}'", v.replace('\'', "''")))
        })
        .collect()
}

/// The statement that shows whether a call on object `id` took effect.
fn check_by_id(resource: &Resource, scope: &ScopeBinding, id: &str) -> String {
    format!(
        "SELECT * FROM {} WHERE {} = '{}'{}",
        resource.qualified_name(),
        resource.spec.id_column(),
        id.replace('\'', "''"),
        scope_condition(scope)
    )
}
