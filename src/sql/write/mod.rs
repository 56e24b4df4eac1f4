//! Writes: INSERT (create), UPDATE/REPLACE (read-modify-write), DELETE and EXEC
//! (roll, rotate, refresh). Every row is validated before the first call; each call's
//! outcome is reported; secrets reach the result (and the secrets file) but never logs.
//! This module holds what the statements share: planned calls, RETURNING, running the
//! calls with per-row outcomes; each statement lives in its own module.

mod coerce;
mod delete;
mod exec;
mod insert;
mod record;
mod run;
mod update;

pub use delete::delete;
pub use exec::exec;
pub use insert::insert;
pub use update::update;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::prelude::SessionContext;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{self, Expr, SelectItem};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::info::text_batch;
use super::parse::{closest, unknown_table};
use super::values::cell_json;
use crate::cancel::Cancel;
use crate::engine::{Engine, ScopeBinding, ScopeSource, scope_binding};
use crate::error::{Error, Result, RowOutcome};
use crate::http::ApiRequest;
use crate::output::Output;
use crate::provider::{ColumnSpec, ColumnType, MethodSpec, Resource, ResponseShape, Verb};
use crate::table::convert::schema_of;
use run::run_calls;

/// Envelope members RETURNING may name (StackQL style).
const ENVELOPE: &[(&str, ColumnType)] =
    &[("success", ColumnType::Boolean), ("errors", ColumnType::Json), ("messages", ColumnType::Json), ("result", ColumnType::Json)];

/// What a write needs of the session: the DataFusion context (the reads that pick the
/// rows run there) and the engine. Writes never call back into the `Session`.
pub struct WriteContext<'a> {
    ctx: &'a SessionContext,
    engine: &'a Arc<Engine>,
}

impl<'a> WriteContext<'a> {
    /// A context for writes run by a session with `ctx` and `engine`.
    pub fn new(ctx: &'a SessionContext, engine: &'a Arc<Engine>) -> Self {
        Self { ctx, engine }
    }

    /// The engine (client, manifests, configuration).
    pub fn engine(&self) -> &Arc<Engine> {
        self.engine
    }

    async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        crate::sql::query::query(self.ctx, &self.engine.registry, sql).await
    }
}

/// Options of one write.
pub struct WriteOptions<'a> {
    /// List the calls instead of making them.
    pub dry_run: bool,
    /// UPDATE/DELETE without WHERE allowed.
    pub allow_unfiltered: bool,
    /// The statement text (for the audit log).
    pub statement: &'a str,
    /// Fires on Ctrl-C / SIGTERM / a client's cancel: no new call starts after it.
    pub cancel: Cancel,
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

fn resolve_target(session: &WriteContext<'_>, parts: &[String]) -> Result<Resource> {
    let reg = &session.engine().registry;
    reg.resolve(parts).ok_or_else(|| unknown_table(reg, parts))
}

fn method_for(resource: &Resource, verb: Verb, by_id: bool) -> Result<MethodSpec> {
    resource.spec.method(verb, by_id).cloned().ok_or_else(|| {
        let verbs: Vec<_> = resource.spec.methods.iter().map(|m| format!("{} ({})", m.name, m.verb.sql())).collect();
        Error::InvalidInput(format!("{} does not support {}; its methods are: {}", resource.qualified_name(), verb.sql(), verbs.join(", ")))
    })
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

/// Column specs of the result of a write.
fn result_columns(resource: &Resource, method: &MethodSpec, verb: Verb, returning: &Returning) -> Result<Vec<ColumnSpec>> {
    let spec = &resource.spec;
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
                    out.push(ColumnSpec::named(name, *ty));
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

/// Runs a read that a write depends on. Cancel stops it at once: nothing was changed yet.
async fn read(session: &WriteContext<'_>, sql: &str, cancel: &Cancel) -> Result<Vec<RecordBatch>> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Error::Cancelled { what: "stopped while reading what to change; nothing was changed".into() }),
        r = session.query(sql) => r,
    }
}

/// The request of a method call on `path`, with an optional JSON body.
fn request(method: &MethodSpec, path: String, body: Option<Map<String, Value>>) -> Result<ApiRequest> {
    Ok(ApiRequest { method: http_method(method)?, path, query: Vec::new(), body: body.map(Value::Object), check_hint: None })
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

/// The read that picks the rows of an UPDATE or DELETE: its WHERE, ORDER BY and LIMIT.
struct ReadSpec<'a> {
    alias: Option<String>,
    selection: Option<&'a Expr>,
    order_limit: String,
}

impl ReadSpec<'_> {
    /// `SELECT *<extra> FROM table [AS alias] [WHERE ...] [ORDER BY ...] [LIMIT n]`.
    fn select(&self, resource: &Resource, extra: &str) -> String {
        format!(
            "SELECT *{extra} FROM {}{}{}{}",
            resource.qualified_name(),
            self.alias.as_ref().map(|a| format!(" AS {a}")).unwrap_or_default(),
            self.selection.map(|w| format!(" WHERE {w}")).unwrap_or_default(),
            self.order_limit
        )
    }
}

fn unsupported(statement: &str, clause: &str, hint: &str) -> Error {
    Error::UnsupportedClause { statement: statement.into(), clause: clause.into(), hint: hint.into() }
}

/// ` ORDER BY ... LIMIT n` of an UPDATE or DELETE, for the read that picks its rows.
fn order_and_limit(order_by: &[ast::OrderByExpr], limit: Option<&Expr>) -> String {
    let mut text = String::new();
    if !order_by.is_empty() {
        text.push_str(&format!(" ORDER BY {}", order_by.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")));
    }
    if let Some(l) = limit {
        text.push_str(&format!(" LIMIT {l}"));
    }
    text
}

/// The statement that shows whether a call on object `id` took effect.
fn check_by_id(resource: &Resource, scope: &ScopeBinding, id: &str) -> String {
    let idcol = resource.spec.id.as_ref().map(|i| i.column.as_str()).unwrap_or("id");
    let scopes: String = scope.values.iter().filter_map(|(c, v)| v.as_ref().map(|v| format!(" AND {c} = '{v}'"))).collect();
    format!("SELECT * FROM {} WHERE {idcol} = '{}'{scopes}", resource.qualified_name(), id.replace('\'', "''"))
}

fn refuse_unfiltered(verb: &str, resource: &Resource) -> Error {
    Error::Refused(format!(
        "{verb} without WHERE would change every row of {}; add a WHERE clause (WHERE true to mean all), or allow it for the session with SET cfql.allow_unfiltered_writes = true",
        resource.qualified_name()
    ))
}
