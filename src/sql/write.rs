//! Writes: INSERT (create), UPDATE/REPLACE (read-modify-write), DELETE and EXEC
//! (roll, rotate, refresh). Every row is validated before the first call; each call's
//! outcome is reported; secrets reach the result (and the secrets file) but never logs.

use std::collections::BTreeMap;
use std::io::Write as _;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{self, BinaryOperator, Expr, SelectItem, TableFactor, TableObject};
use futures::StreamExt;
use futures::stream;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::info::text_batch;
use super::parse::{ExecStatement, closest, name_parts, unknown_table};
use super::values::cell_json;
use crate::engine::{Engine, ScopeBinding, ScopeSource, scope_binding};
use crate::error::{Error, Result, RowOutcome};
use crate::http::ApiRequest;
use crate::provider::{ColumnSpec, ColumnType, MethodSpec, Resource, ResponseShape, Verb};
use crate::session::{Output, Session};
use crate::table::convert::{rows_to_batch, schema_of};

/// Envelope members RETURNING may name (StackQL style).
const ENVELOPE: &[(&str, ColumnType)] =
    &[("success", ColumnType::Boolean), ("errors", ColumnType::Json), ("messages", ColumnType::Json), ("result", ColumnType::Json)];

/// Options of one write.
pub struct WriteOptions<'a> {
    /// List the calls instead of making them.
    pub dry_run: bool,
    /// UPDATE/DELETE without WHERE allowed.
    pub allow_unfiltered: bool,
    /// The statement text (for the audit log).
    pub statement: &'a str,
}

/// One call a write will make.
struct PlannedCall {
    row: usize,
    id: Option<String>,
    scope: ScopeBinding,
    request: ApiRequest,
    /// The object as read before the call (UPDATE, DELETE), merged under the response.
    prior: Map<String, Value>,
}

enum Returning {
    Default,
    Columns(Vec<String>),
}

fn parse_returning(items: Option<&Vec<SelectItem>>) -> Result<Returning> {
    let Some(items) = items else { return Ok(Returning::Default) };
    let mut cols = Vec::new();
    for it in items {
        match it {
            SelectItem::Wildcard(_) => cols.push("*".to_string()),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => cols.push(i.value.to_ascii_lowercase()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => {
                cols.push(p.last().map(|i| i.value.to_ascii_lowercase()).unwrap_or_default())
            }
            other => return Err(Error::Sql(format!("RETURNING takes column names or *, found {other}"))),
        }
    }
    Ok(Returning::Columns(cols))
}

fn resolve_target(session: &Session, parts: &[String]) -> Result<Resource> {
    let reg = &session.engine().registry;
    reg.resolve(parts).ok_or_else(|| unknown_table(reg, parts))
}

fn method_for(resource: &Resource, verb: Verb, by_id: bool) -> Result<MethodSpec> {
    resource.spec.method(verb, by_id).cloned().ok_or_else(|| {
        let verbs: Vec<_> = resource.spec.methods.iter().map(|m| format!("{} ({})", m.name, m.verb.sql())).collect();
        Error::InvalidInput(format!("{} does not support {}; its methods are: {}", resource.qualified_name(), verb.sql(), verbs.join(", ")))
    })
}

/// Checks and converts a value for `col` as the API expects it. `Ok(None)`: leave the field out.
fn coerce(col: &ColumnSpec, v: &Value) -> std::result::Result<Option<Value>, String> {
    match (col.ty, v) {
        (_, Value::Null) => Ok(None),
        (ColumnType::Json, Value::String(s)) if s.trim().is_empty() => Ok(None),
        (ColumnType::Json, Value::String(s)) => {
            serde_json::from_str::<Value>(s).map(Some).map_err(|e| format!("column {}: invalid JSON ({e}): {}", col.name, preview(s)))
        }
        (ColumnType::Json, other) => Ok(Some(other.clone())),
        (ColumnType::Timestamp, Value::String(s)) if s.trim().is_empty() => Ok(None),
        (ColumnType::Timestamp, Value::String(s)) => parse_time(s)
            .map(|t| Some(json!(t.to_rfc3339_opts(SecondsFormat::Secs, true))))
            .ok_or_else(|| format!("column {}: '{s}' is not a date-time (use RFC 3339, e.g. 2026-12-31T00:00:00Z)", col.name)),
        (ColumnType::Boolean, Value::Bool(b)) => Ok(Some(json!(b))),
        (ColumnType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => {
            Ok(Some(json!(s.eq_ignore_ascii_case("true"))))
        }
        (ColumnType::Int64 | ColumnType::Float64, Value::Number(n)) => Ok(Some(json!(n))),
        (ColumnType::Utf8, Value::String(s)) => {
            if !col.enum_values.is_empty() && !col.enum_values.contains(s) {
                return Err(format!("column {}: '{s}' is not one of {}", col.name, col.enum_values.join(", ")));
            }
            if let Some(max) = col.max_length
                && s.chars().count() > max
            {
                return Err(format!("column {}: longer than {max} characters", col.name));
            }
            Ok(Some(json!(s)))
        }
        (ColumnType::Utf8, Value::Number(n)) => Ok(Some(json!(n.to_string()))),
        (ty, other) => Err(format!("column {}: expected {}, got {other}", col.name, ty.name())),
    }
}

fn preview(s: &str) -> String {
    let p: String = s.chars().take(40).collect();
    if p.len() < s.len() { format!("'{p}...'") } else { format!("'{p}'") }
}

/// RFC 3339, or `YYYY-MM-DD[ HH:MM:SS]` taken as UTC.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
        return Some(t.and_utc());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// Rows of batches as (column name, JSON value) maps.
fn batch_rows(batches: &[RecordBatch]) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        for i in 0..b.num_rows() {
            let mut m = Map::new();
            for (f, a) in schema.fields().iter().zip(b.columns()) {
                m.insert(f.name().clone(), cell_json(a, i));
            }
            out.push(m);
        }
    }
    out
}

/// The object of a read row as the API would send it: JSON columns parsed back.
fn row_as_object(resource: &Resource, row: &Map<String, Value>) -> Map<String, Value> {
    let mut m = Map::new();
    for c in &resource.spec.columns {
        if let Some(v) = row.get(&c.name) {
            let v = match (c.ty, v) {
                (ColumnType::Json, Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
                _ => v.clone(),
            };
            m.insert(c.name.clone(), v);
        }
    }
    m
}

/// The scope a row belongs to, from its scope columns, else the default account.
fn scope_of_row(engine: &Engine, resource: &Resource, method: &MethodSpec, row: &Map<String, Value>) -> Result<ScopeBinding> {
    let spec = &resource.spec;
    if spec.scopes.is_empty() {
        return Ok(ScopeBinding::none());
    }
    for s in &spec.scopes {
        if !method.scopes.is_empty() && !method.scopes.contains(&s.column) {
            continue;
        }
        if let Some(Value::String(v)) = row.get(&s.column) {
            return scope_binding(resource, &s.column, v);
        }
    }
    match engine.scope_source(resource, method, &BTreeMap::new()) {
        ScopeSource::DefaultAccount => scope_binding(resource, "account_id", engine.config.account_id.as_deref().unwrap_or_default()),
        ScopeSource::Missing(e) => Err(e),
        _ => {
            let names: Vec<_> = spec.scopes.iter().map(|s| s.column.clone()).collect();
            Err(Error::MissingParam {
                table: resource.qualified_name(),
                param: names.join(" or "),
                hint: format!("give {} a value in the statement, or set CLOUDFLARE_ACCOUNT_ID", names.join(" or ")),
            })
        }
    }
}

fn check_required(resource: &Resource, method: &MethodSpec, has: &dyn Fn(&str) -> bool) -> Option<String> {
    for req in &method.required {
        let alts: Vec<&str> = req.split('|').collect();
        let is_scope = alts.iter().all(|a| resource.spec.scope(a).is_some());
        let is_id = resource.spec.id.as_ref().is_some_and(|i| alts.contains(&i.param.as_str()));
        if is_scope || is_id {
            continue; // checked when the path is built
        }
        if !alts.iter().any(|a| has(a)) {
            return Some(alts.join(" or "));
        }
    }
    None
}

fn audit(engine: &Engine, statement: &str, call: &PlannedCall, outcome: std::result::Result<u16, &Error>) {
    let Some(path) = &engine.config.audit_log else { return };
    let line = json!({
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "statement": statement,
        "method": call.request.method.as_str(),
        "path": call.request.path,
        "status": match outcome { Ok(s) => json!(s), Err(e) => json!(e.http_status()) },
        "object_id": call.id,
        "ok": outcome.is_ok(),
        "error": outcome.err().map(|e| e.to_string()),
    });
    if let Err(e) = append_line(path, &line) {
        engine.warn(format!("warning: cannot write the audit log {}: {e}", path.display()));
    }
}

/// Appends a JSON line to a file created with mode 0600.
pub fn append_line(path: &std::path::Path, line: &Value) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    writeln!(f, "{line}")
}

fn save_secrets(engine: &Engine, resource: &Resource, obj: &Map<String, Value>) -> Result<()> {
    let Some(path) = &engine.config.secrets_file else { return Ok(()) };
    let secrets: Vec<_> = resource.spec.columns.iter().filter(|c| c.secret).filter_map(|c| obj.get(&c.name).map(|v| (c, v))).collect();
    if secrets.is_empty() || secrets.iter().all(|(_, v)| v.is_null()) {
        return Ok(());
    }
    let mut line = json!({
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "table": resource.qualified_name(),
        "id": obj.get("id"),
        "name": obj.get("name"),
    });
    for s in &resource.spec.scopes {
        if let Some(v) = obj.get(&s.column).filter(|v| !v.is_null()) {
            line[&s.column] = v.clone();
        }
    }
    for (c, v) in secrets {
        line[&c.name] = v.clone();
    }
    append_line(path, &line).map_err(|source| Error::Io { path: path.clone(), source })
}

/// Column specs of the result of a write.
fn result_columns(resource: &Resource, method: &MethodSpec, verb: Verb, returning: &Returning) -> Result<Vec<ColumnSpec>> {
    let spec = &resource.spec;
    let pseudo = |name: &str, ty: ColumnType| ColumnSpec {
        name: name.into(),
        ty,
        description: String::new(),
        secret: false,
        scope: false,
        rename_keys: Default::default(),
        enum_values: Vec::new(),
        max_length: None,
        read_only_values: Vec::new(),
    };
    let key_cols = || -> Vec<ColumnSpec> {
        spec.columns.iter().filter(|c| c.scope || spec.id.as_ref().is_some_and(|i| i.column == c.name)).cloned().collect()
    };
    match returning {
        Returning::Default => Ok(match (verb, method.response) {
            (Verb::Delete, _) => {
                let mut cols = key_cols();
                if let Some(n) = spec.column("name") {
                    cols.push(n.clone());
                }
                cols
            }
            (_, ResponseShape::Value) => {
                let mut cols = key_cols();
                if let Some(c) = method.result_column.as_deref().and_then(|c| spec.column(c)) {
                    cols.push(c.clone());
                }
                cols
            }
            (Verb::Update, _) => spec.readable_columns().cloned().collect(),
            _ => spec.columns.clone(),
        }),
        Returning::Columns(names) => {
            let mut out = Vec::new();
            for n in names {
                if n == "*" {
                    out.extend(spec.columns.iter().cloned());
                } else if let Some(c) = spec.column(n) {
                    out.push(c.clone());
                } else if let Some((name, ty)) = ENVELOPE.iter().find(|(e, _)| e == n) {
                    out.push(pseudo(name, *ty));
                } else if spec.id.as_ref().is_some_and(|i| &i.param == n) {
                    let mut c = spec.column(&spec.id.as_ref().expect("checked").column).cloned().expect("validated");
                    c.name = n.clone();
                    out.push(c);
                } else {
                    let names = spec.columns.iter().map(|c| c.name.as_str()).chain(ENVELOPE.iter().map(|e| e.0));
                    let hint = closest(n, names).map(|s| format!("; did you mean {s}?")).unwrap_or_default();
                    return Err(Error::InvalidInput(format!("RETURNING: {} has no column '{n}'{hint}", resource.qualified_name())));
                }
            }
            Ok(out)
        }
    }
}

/// Runs the planned calls (or lists them, in a dry run) and builds the result.
async fn run_calls(
    session: &Session,
    resource: &Resource,
    method: &MethodSpec,
    verb: Verb,
    calls: Vec<PlannedCall>,
    returning: &Returning,
    opts: &WriteOptions<'_>,
) -> Result<Output> {
    let engine = session.engine().clone();
    if opts.dry_run {
        let rows = calls
            .iter()
            .map(|c| {
                vec![
                    c.row.to_string(),
                    c.request.method.to_string(),
                    c.request.display_path(),
                    c.request.body.as_ref().map(|b| b.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        let batch = text_batch(&["row", "method", "path", "body"], rows)?;
        let mut out = Output::from_batches(batch.schema(), vec![batch]);
        out.warnings.push(format!("dry run: {} call(s) listed, none sent", calls.len()));
        return Ok(out);
    }
    let cols = result_columns(resource, method, verb, returning)?;
    let schema: SchemaRef = schema_of(&cols);
    let total = calls.len();
    let conc = engine.config.concurrency.max(1);
    let table = resource.qualified_name();
    let results: Vec<(PlannedCall, Result<crate::http::ApiResponse>)> = stream::iter(calls)
        .map(|c| {
            let engine = engine.clone();
            async move {
                let r = engine.client.call(&c.request).await;
                (c, r)
            }
        })
        .buffered(conc)
        .collect()
        .await;
    let mut outcomes = Vec::new();
    let mut batches = Vec::new();
    let mut failed = 0;
    for (call, r) in results {
        audit(&engine, opts.statement, &call, r.as_ref().map(|x| x.status));
        match r {
            Ok(resp) => {
                let mut obj = call.prior.clone();
                match (method.response, &resp.result) {
                    (ResponseShape::Value, v) => {
                        if let Some(c) = &method.result_column {
                            obj.insert(c.clone(), v.clone());
                        }
                    }
                    (_, Value::Object(m)) => {
                        for (k, v) in m {
                            obj.insert(k.clone(), v.clone());
                        }
                    }
                    _ => {}
                }
                if let (Some(id), Some(idspec)) = (&call.id, &resource.spec.id) {
                    obj.entry(idspec.column.clone()).or_insert_with(|| json!(id));
                    obj.insert(idspec.param.clone(), json!(id));
                }
                for (col, v) in &call.scope.values {
                    if let Some(v) = v {
                        obj.insert(col.clone(), json!(v));
                    }
                }
                obj.insert("success".into(), json!(true));
                obj.insert("errors".into(), json!([]));
                obj.insert("messages".into(), resp.messages.clone());
                obj.insert("result".into(), resp.result.clone());
                let id = obj.get("id").and_then(Value::as_str).map(str::to_string).or(call.id.clone());
                let saved = save_secrets(&engine, resource, &obj);
                let value = Value::Object(obj);
                let batch = rows_to_batch(&schema, &cols, std::slice::from_ref(&value), &call.scope.values, &table)?;
                batches.push(batch);
                outcomes.push(RowOutcome { row: call.row, id, error: None });
                if let Err(e) = saved {
                    engine.warn(format!(
                        "warning: the secret of row {} was NOT written to the secrets file: {e}; it is in the result above",
                        call.row
                    ));
                }
            }
            Err(e) => {
                failed += 1;
                outcomes.push(RowOutcome { row: call.row, id: call.id.clone(), error: Some(e.to_string()) });
                if total == 1 {
                    return Err(e);
                }
            }
        }
    }
    if failed > 0 {
        return Err(Error::PartialFailure {
            verb: match verb {
                Verb::Insert => "INSERT",
                Verb::Update => "UPDATE",
                Verb::Delete => "DELETE",
                _ => "EXEC",
            }
            .into(),
            failed,
            total,
            outcomes,
            succeeded: crate::error::Rows(batches),
        });
    }
    Ok(Output::from_batches(schema, batches))
}

/// INSERT: one create call per source row, after every row validated.
pub async fn insert(session: &Session, ins: &ast::Insert, opts: &WriteOptions<'_>) -> Result<Output> {
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
    let batches = session.query(&source.to_string()).await?;
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
                    scope_row.insert(c.clone(), Value::String(super::super::table::convert::value_text(v)));
                }
                continue;
            }
            let col = spec.column(c).cloned().unwrap_or_else(|| plain_column(c));
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
        let req = ApiRequest {
            method: http_method(&method)?,
            path,
            query: Vec::new(),
            body: Some(Value::Object(body)),
            check_hint: Some(format!(
                "SELECT * FROM {} WHERE name = '{}'{} (creates are never retried; delete a duplicate if one exists)",
                resource.qualified_name(),
                name.replace('\'', "''"),
                scope.values.iter().filter_map(|(c, v)| v.as_ref().map(|v| format!(" AND {c} = '{v}'"))).collect::<String>()
            )),
        };
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

fn plain_column(name: &str) -> ColumnSpec {
    ColumnSpec {
        name: name.into(),
        ty: ColumnType::Utf8,
        description: String::new(),
        secret: false,
        scope: false,
        rename_keys: Default::default(),
        enum_values: Vec::new(),
        max_length: None,
        read_only_values: Vec::new(),
    }
}

fn batches_positional(batches: &[RecordBatch]) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            out.push(b.columns().iter().map(|a| cell_json(a, i)).collect());
        }
    }
    out
}

fn http_method(m: &MethodSpec) -> Result<Method> {
    Method::from_bytes(m.http.as_bytes()).map_err(|_| Error::Config(format!("bad HTTP method {}", m.http)))
}

fn refuse_unfiltered(verb: &str, resource: &Resource) -> Error {
    Error::Refused(format!(
        "{verb} without WHERE would change every row of {}; add a WHERE clause (WHERE true to mean all), or allow it for the session with SET cfql.allow_unfiltered_writes = true",
        resource.qualified_name()
    ))
}

/// UPDATE / REPLACE: read each matching object, apply the assignments, PUT the whole object.
pub async fn update(session: &Session, up: &ast::Update, opts: &WriteOptions<'_>) -> Result<Output> {
    let TableFactor::Table { name, .. } = &up.table.relation else { return Err(Error::Sql("UPDATE needs a table name".into())) };
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
        assigned.push((col, a.value.to_string()));
    }
    let sets: Vec<String> = assigned.iter().enumerate().map(|(i, (_, e))| format!(", {e} AS __cfql_set_{i}")).collect();
    let select = format!(
        "SELECT *{} FROM {}{}",
        sets.concat(),
        resource.qualified_name(),
        up.selection.as_ref().map(|w| format!(" WHERE {w}")).unwrap_or_default()
    );
    let rows = batch_rows(&session.query(&select).await?);
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
            let col = spec.column(field).cloned().unwrap_or_else(|| plain_column(field));
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
                let req = ApiRequest {
                    method: http_method(&method)?,
                    path,
                    query: Vec::new(),
                    body: Some(Value::Object(body)),
                    check_hint: None,
                };
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
                    let req = ApiRequest { method: http_method(&method)?, path, query: Vec::new(), body: None, check_hint: None };
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
        let req = ApiRequest { method: http_method(method)?, path, query: Vec::new(), body: None, check_hint: None };
        calls.push(PlannedCall { row: i + 1, id: Some(id), scope, request: req, prior: current });
    }
    run_calls(session, resource, method, Verb::Delete, calls, returning, opts).await
}

/// Values of an EXEC param: a literal, a scalar expression, or every row of a subquery.
async fn param_values(session: &Session, e: &Expr) -> Result<Vec<Value>> {
    if let Expr::Value(v) = e {
        return Ok(vec![match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => json!(s),
            ast::Value::Number(n, _) => serde_json::from_str(n).unwrap_or(json!(n)),
            ast::Value::Boolean(b) => json!(b),
            ast::Value::Null => Value::Null,
            other => json!(other.to_string()),
        }]);
    }
    let sql = match e {
        Expr::Subquery(q) => q.to_string(),
        other => format!("SELECT {other}"),
    };
    let batches = session.query(&sql).await?;
    Ok(batches_positional(&batches).into_iter().filter_map(|r| r.into_iter().next()).collect())
}

/// EXEC of a lifecycle method; a subquery param runs it once per value.
pub async fn exec(session: &Session, ex: &ExecStatement, opts: &WriteOptions<'_>) -> Result<Output> {
    let reg = &session.engine().registry;
    let mut parts = ex.name.clone();
    if parts.first().is_some_and(|p| p.eq_ignore_ascii_case(crate::provider::CATALOG)) {
        parts.remove(0);
    }
    if parts.len() != 3 {
        return Err(Error::Sql(format!("EXEC needs cloudflare.<service>.<resource>.<method>, got '{}'", ex.name.join("."))));
    }
    let resource = reg.resolve(&parts[..2]).ok_or_else(|| unknown_table(reg, &parts[..2]))?;
    let spec = &resource.spec;
    let method = spec.methods.iter().find(|m| m.verb == Verb::Exec && m.answers_to(&parts[2])).cloned().ok_or_else(|| {
        let names: Vec<_> = spec.methods.iter().filter(|m| m.verb == Verb::Exec).map(|m| m.name.clone()).collect();
        let all: Vec<_> =
            spec.methods.iter().filter(|m| m.verb == Verb::Exec).flat_map(|m| std::iter::once(&m.name).chain(&m.aliases)).collect();
        let hint = closest(&parts[2].to_ascii_lowercase(), all.iter().map(|s| s.as_str()))
            .map(|s| format!("did you mean {s}? "))
            .unwrap_or_default();
        Error::InvalidInput(format!(
            "{} has no method '{}'; {hint}(EXEC methods: {}; SHOW METHODS IN {} lists all)",
            resource.qualified_name(),
            parts[2],
            if names.is_empty() { "none".into() } else { names.join(", ") },
            resource.qualified_name()
        ))
    })?;
    let table = resource.qualified_name();
    let id_param = spec.id.as_ref().map(|i| i.param.clone());
    // Every param's values; at most one may have several (a subquery).
    let mut values: Vec<(String, Vec<Value>)> = Vec::new();
    for (name, expr) in &ex.params {
        let canonical =
            if Some(name) == spec.id.as_ref().map(|i| &i.column) { id_param.clone().unwrap_or_else(|| name.clone()) } else { name.clone() };
        let known = Some(&canonical) == id_param.as_ref()
            || spec.scope(&canonical).is_some()
            || method.body.contains(&canonical)
            || method.optional.contains(&canonical);
        if !known {
            let mut accepted: Vec<String> = id_param.iter().cloned().collect();
            accepted.extend(spec.scopes.iter().map(|s| s.column.clone()));
            accepted.extend(method.body.iter().cloned());
            let hint = closest(&canonical, accepted.iter().map(String::as_str)).map(|s| format!("did you mean @{s}? ")).unwrap_or_default();
            return Err(Error::InvalidInput(format!(
                "EXEC {table}.{}: unknown parameter @{name}; {hint}(parameters: {})",
                method.name,
                accepted.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(", ")
            )));
        }
        values.push((canonical, param_values(session, expr).await?));
    }
    let multi: Vec<_> = values.iter().filter(|(_, v)| v.len() != 1).map(|(n, _)| n.clone()).collect();
    if multi.len() > 1 {
        return Err(Error::InvalidInput(format!(
            "EXEC: only one parameter may be a subquery with several rows (got {})",
            multi.join(", ")
        )));
    }
    let has = |n: &str| values.iter().any(|(p, _)| p == n);
    if let Some(idp) = &id_param
        && method.required.contains(idp)
        && !has(idp)
    {
        return Err(Error::MissingParam {
            table: format!("EXEC {table}.{}", method.name),
            param: idp.clone(),
            hint: format!("add @{idp}='<id>' (or @{idp} = (SELECT id FROM {table} WHERE ...))"),
        });
    }
    if let Some(missing) = check_required(&resource, &method, &has) {
        return Err(Error::MissingParam {
            table: format!("EXEC {table}.{}", method.name),
            param: missing.clone(),
            hint: format!("add @{missing}='...'"),
        });
    }
    let base_body = match &ex.json {
        None => Map::new(),
        Some(e) => {
            let text = param_values(session, e).await?.into_iter().next().unwrap_or(Value::Null);
            match text.as_str().map(serde_json::from_str::<Value>) {
                Some(Ok(Value::Object(m))) => m,
                Some(Ok(_)) => return Err(Error::InvalidInput("@@json must be a JSON object".into())),
                Some(Err(err)) => return Err(Error::InvalidInput(format!("@@json is not valid JSON: {err}"))),
                None => return Err(Error::InvalidInput("@@json takes a JSON object in quotes: @@json='{...}'".into())),
            }
        }
    };
    let n = values.iter().map(|(_, v)| v.len()).find(|&l| l != 1).unwrap_or(1);
    let mut calls = Vec::new();
    for i in 0..n {
        let pick = |name: &str| -> Option<Value> {
            values.iter().find(|(p, _)| p == name).map(|(_, v)| if v.len() == 1 { v[0].clone() } else { v[i].clone() })
        };
        let mut scope_row = Map::new();
        for s in &spec.scopes {
            if let Some(v) = pick(&s.column).filter(|v| !v.is_null()) {
                scope_row.insert(s.column.clone(), Value::String(crate::table::convert::value_text(&v)));
            }
        }
        let scope = scope_of_row(session.engine(), &resource, &method, &scope_row)?;
        let id = id_param.as_deref().and_then(pick).map(|v| crate::table::convert::value_text(&v));
        let path = Engine::fill_path(&resource, &method, &scope, id.as_deref())?;
        let mut body = base_body.clone();
        for b in &method.body {
            if let Some(v) = pick(b).filter(|v| !v.is_null()) {
                let ty = method.param_types.get(b).copied().unwrap_or(ColumnType::Utf8);
                let col = spec.column(b).cloned().unwrap_or_else(|| ColumnSpec { ty, ..plain_column(b) });
                if let Some(v) = coerce(&col, &v).map_err(Error::InvalidInput)? {
                    body.insert(b.clone(), v);
                }
            }
        }
        let idp = id_param.clone().unwrap_or_default();
        let req = ApiRequest {
            method: http_method(&method)?,
            path,
            query: Vec::new(),
            body: Some(Value::Object(body)),
            check_hint: Some(format!(
                "the previous secret may already be invalid; run EXEC {table}.{} @{idp}='{}' again to get a new one",
                method.name,
                id.as_deref().unwrap_or("<id>")
            )),
        };
        calls.push(PlannedCall { row: i + 1, id, scope, request: req, prior: Map::new() });
    }
    let returning = Returning::Default;
    run_calls(session, &resource, &method, Verb::Exec, calls, &returning, opts).await
}
