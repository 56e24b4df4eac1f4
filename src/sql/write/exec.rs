//! EXEC of lifecycle methods (roll, rotate, refresh); a subquery param runs the method once per value.

use datafusion::sql::sqlparser::ast::{self, Expr};
use serde_json::{Map, Value, json};

use super::{Returning, WriteContext};
use crate::connections::CONNECTION_COLUMN;
use crate::convert::{batch_values, value_text};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::provider::{MethodSpec, Registry, Resource, Verb};
use crate::sql::build::select_expr;
use crate::sql::parse::ExecStatement;
use crate::suggest::closest;
use crate::write::coerce::coerce;
use crate::write::{
    Calls, PlannedCall, Target, body_column, check_required, request, scope_of_row,
};

/// Values of an EXEC param: a literal, a scalar expression, or every row of a subquery.
/// A string in any of its forms is taken as written; anything else is computed by
/// DataFusion from its parsed form (`SELECT <expr>`, or the subquery itself).
async fn param_values(cx: &WriteContext<'_>, e: &Expr) -> Result<Vec<Value>> {
    if let Expr::Value(v) = e {
        let literal = match &v.value {
            ast::Value::Number(n, _) => Some(serde_json::from_str(n).unwrap_or(json!(n))),
            ast::Value::Boolean(b) => Some(json!(b)),
            ast::Value::Null => Some(Value::Null),
            ast::Value::SingleQuotedString(s)
            | ast::Value::DoubleQuotedString(s)
            | ast::Value::EscapedStringLiteral(s)
            | ast::Value::UnicodeStringLiteral(s)
            | ast::Value::NationalStringLiteral(s) => Some(json!(s)),
            ast::Value::DollarQuotedString(d) => Some(json!(d.value)),
            _ => None,
        };
        if let Some(value) = literal {
            return Ok(vec![value]);
        }
    }
    let read = match e {
        Expr::Subquery(q) => ast::Statement::Query(q.clone()),
        other => select_expr(other)?,
    };
    let batches = cx.read(read).await?;
    Ok(batch_values(&batches)
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect())
}

/// EXEC of a lifecycle method; a subquery param runs it once per value.
pub async fn exec(cx: &WriteContext<'_>, ex: &ExecStatement) -> Result<Output> {
    let (resource, method) = exec_method(&cx.engine.registry, ex)?;
    let statement = format!("EXEC {}.{}", resource.qualified_name(), method.name);
    // Before any read: under several connections the EXEC must say which one acts.
    if !ex.params.iter().any(|(n, _)| n == CONNECTION_COLUMN) {
        cx.connections.pick(None, &statement)?;
    }
    let params = Params::read(cx, &resource, &method, ex).await?;
    params.check_required(&resource, &method)?;
    let base_body = json_body(cx, ex).await?;
    let mut calls = Vec::new();
    for row in 0..params.rows() {
        let named = params.pick(CONNECTION_COLUMN, row);
        let engine = cx
            .connections
            .pick(named.as_ref().and_then(Value::as_str), &statement)?;
        calls.push(plan_call(
            &engine, &resource, &method, &params, row, &base_body,
        )?);
    }
    let target = Target {
        resource,
        method,
        verb: Verb::Exec,
    };
    cx.run(target, Calls::Planned(calls), &Returning::Default)
        .await
}

/// The resource and the method an EXEC names (`cloudflare.` optional), with a suggestion
/// when the method is unknown.
fn exec_method(reg: &Registry, ex: &ExecStatement) -> Result<(Resource, MethodSpec)> {
    let mut parts = ex.name.clone();
    if parts
        .first()
        .is_some_and(|p| p.eq_ignore_ascii_case(crate::provider::CATALOG))
    {
        parts.remove(0);
    }
    if parts.len() != 3 {
        return Err(Error::Syntax {
            message: format!(
                "EXEC needs cloudflare.<service>.<resource>.<method>, got '{}'",
                ex.name.join(".")
            ),
        });
    }
    let resource = reg.resolve_or_suggest(&parts[..2])?;
    let spec = &resource.spec;
    let exec_methods = || spec.methods.iter().filter(|m| m.verb == Verb::Exec);
    let Some(method) = exec_methods().find(|m| m.answers_to(&parts[2])).cloned() else {
        let all: Vec<_> = exec_methods()
            .flat_map(|m| std::iter::once(&m.name).chain(&m.aliases))
            .collect();
        return Err(Error::UnknownMethod {
            table: resource.qualified_name(),
            method: parts[2].clone(),
            suggestion: closest(
                &parts[2].to_ascii_lowercase(),
                all.iter().map(|s| s.as_str()),
            )
            .map(str::to_string),
            methods: exec_methods().map(|m| m.name.clone()).collect(),
        });
    };
    Ok((resource, method))
}

/// Every `@param` of an EXEC with its values: one each, except at most one subquery.
struct Params {
    table: String,
    method: String,
    id_param: Option<String>,
    values: Vec<(String, Vec<Value>)>,
}

impl Params {
    async fn read(
        cx: &WriteContext<'_>,
        resource: &Resource,
        method: &MethodSpec,
        ex: &ExecStatement,
    ) -> Result<Self> {
        let spec = &resource.spec;
        let id_param = spec.id.as_ref().map(|i| i.param.clone());
        let mut me = Self {
            table: resource.qualified_name(),
            method: method.name.clone(),
            id_param,
            values: Vec::new(),
        };
        for (name, expr) in &ex.params {
            let is_id_column = Some(name) == spec.id.as_ref().map(|i| &i.column);
            let canonical = if is_id_column {
                me.id_param.clone().unwrap_or_else(|| name.clone())
            } else {
                name.clone()
            };
            me.check_known(resource, method, name, &canonical)?;
            if me.has(&canonical) {
                return Err(Error::Syntax {
                    message: format!(
                        "EXEC {}.{}: @{canonical} is given twice; give each parameter once (a subquery runs the method once per row)",
                        me.table, me.method
                    ),
                });
            }
            let values = param_values(cx, expr).await?;
            me.values.push((canonical, values));
        }
        let multi: Vec<_> = me
            .values
            .iter()
            .filter(|(_, v)| v.len() != 1)
            .map(|(n, _)| n.clone())
            .collect();
        if multi.len() > 1 {
            return Err(Error::Syntax {
                message: format!(
                    "EXEC: only one parameter may be a subquery with several rows (got {})",
                    multi.join(", ")
                ),
            });
        }
        Ok(me)
    }

    fn check_known(
        &self,
        resource: &Resource,
        method: &MethodSpec,
        name: &str,
        canonical: &String,
    ) -> Result<()> {
        let spec = &resource.spec;
        let known = Some(canonical) == self.id_param.as_ref()
            || canonical == CONNECTION_COLUMN
            || spec.scope(canonical).is_some()
            || method.body.contains(canonical)
            || method.optional.contains(canonical);
        if known {
            return Ok(());
        }
        let mut accepted: Vec<String> = self.id_param.iter().cloned().collect();
        accepted.extend(spec.scopes.iter().map(|s| s.column.clone()));
        accepted.extend(method.body.iter().cloned());
        Err(Error::UnknownParam {
            statement: format!("EXEC {}.{}", self.table, self.method),
            param: name.to_string(),
            suggestion: closest(canonical, accepted.iter().map(String::as_str)).map(str::to_string),
            params: accepted,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(p, _)| p == name)
    }

    /// The id param and every required body param must be given.
    fn check_required(&self, resource: &Resource, method: &MethodSpec) -> Result<()> {
        let (table, m) = (&self.table, &self.method);
        if let Some(idp) = &self.id_param
            && method.required.contains(idp)
            && !self.has(idp)
        {
            return Err(Error::MissingParam {
                table: format!("EXEC {table}.{m}"),
                param: idp.clone(),
                hint: format!("add @{idp}='<id>' (or @{idp} = (SELECT id FROM {table} WHERE ...))"),
            });
        }
        match check_required(resource, method, &|n| self.has(n)) {
            Some(missing) => Err(Error::MissingParam {
                table: format!("EXEC {table}.{m}"),
                param: missing.clone(),
                hint: format!("add @{missing}='...'"),
            }),
            None => Ok(()),
        }
    }

    /// Calls to make: the subquery's row count, else one.
    fn rows(&self) -> usize {
        self.values
            .iter()
            .map(|(_, v)| v.len())
            .find(|&l| l != 1)
            .unwrap_or(1)
    }

    /// The value of `name` in call `row` (a single value serves every row).
    fn pick(&self, name: &str, row: usize) -> Option<Value> {
        self.values.iter().find(|(p, _)| p == name).map(|(_, v)| {
            if v.len() == 1 {
                v[0].clone()
            } else {
                v[row].clone()
            }
        })
    }
}

/// The body given with `@@json='{...}'`, else empty.
async fn json_body(cx: &WriteContext<'_>, ex: &ExecStatement) -> Result<Map<String, Value>> {
    let Some(e) = &ex.json else {
        return Ok(Map::new());
    };
    let text = param_values(cx, e)
        .await?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    let problem = match text.as_str().map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(m))) => return Ok(m),
        Some(Ok(_)) => "must be a JSON object".to_string(),
        Some(Err(err)) => format!("is not valid JSON: {err}"),
        None => "takes a JSON object in quotes: @@json='{...}'".to_string(),
    };
    Err(Error::InvalidValue {
        place: "@@json".into(),
        problem,
    })
}

/// The call of one row: its scope, id (never NULL), path and body.
fn plan_call(
    engine: &std::sync::Arc<Engine>,
    resource: &Resource,
    method: &MethodSpec,
    params: &Params,
    row: usize,
    base_body: &Map<String, Value>,
) -> Result<PlannedCall> {
    let spec = &resource.spec;
    let mut scope_row = Map::new();
    for s in &spec.scopes {
        if let Some(v) = params.pick(&s.column, row).filter(|v| !v.is_null()) {
            scope_row.insert(s.column.clone(), Value::String(value_text(&v)));
        }
    }
    let scope = scope_of_row(engine, resource, method, &scope_row)?;
    let idp = params.id_param.as_deref().unwrap_or("id");
    let id_value = params.id_param.as_deref().and_then(|p| params.pick(p, row));
    if id_value.as_ref().is_some_and(Value::is_null) {
        return Err(Error::InvalidValue {
            place: format!("EXEC {}.{}", params.table, params.method),
            problem: format!(
                "@{idp} is NULL in row {} of its values; nothing was sent (filter NULLs out of the subquery)",
                row + 1
            ),
        });
    }
    let id = id_value.map(|v| value_text(&v));
    let path = Engine::fill_path(resource, method, &scope, id.as_deref())?;
    let body = exec_body(resource, method, params, row, base_body)?;
    let mut request = request(method, path, Some(body))?;
    request.check_hint = Some(format!(
        "the previous secret may already be invalid; run EXEC {}.{} @{idp}='{}' again to get a new one",
        params.table,
        params.method,
        id.as_deref().unwrap_or("<id>")
    ));
    Ok(PlannedCall {
        row: row + 1,
        id,
        scope,
        request,
        prior: Map::new(),
        via: engine.clone(),
    })
}

/// The body of one call: `@@json`'s object, with the method's body params of this row
/// (each value checked) on top.
fn exec_body(
    resource: &Resource,
    method: &MethodSpec,
    params: &Params,
    row: usize,
    base_body: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    let mut body = base_body.clone();
    for b in &method.body {
        let Some(v) = params.pick(b, row).filter(|v| !v.is_null()) else {
            continue;
        };
        let checked = coerce(&body_column(resource, method, b), &v).map_err(|problem| {
            Error::InvalidValue {
                place: format!("EXEC {}.{}", params.table, params.method),
                problem,
            }
        })?;
        if let Some(v) = checked {
            body.insert(b.clone(), v);
        }
    }
    Ok(body)
}
