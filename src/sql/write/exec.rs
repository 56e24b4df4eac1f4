//! EXEC of lifecycle methods (roll, rotate, refresh); a subquery param runs the method once per value.

use datafusion::sql::sqlparser::ast;

use super::coerce::coerce;
use super::*;
use crate::sql::parse::ExecStatement;

/// Values of an EXEC param: a literal, a scalar expression, or every row of a subquery.
async fn param_values(session: &WriteContext<'_>, e: &Expr, cancel: &Cancel) -> Result<Vec<Value>> {
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
    let batches = read(session, &sql, cancel).await?;
    Ok(batches_positional(&batches).into_iter().filter_map(|r| r.into_iter().next()).collect())
}

/// EXEC of a lifecycle method; a subquery param runs it once per value.
pub async fn exec(session: &WriteContext<'_>, ex: &ExecStatement, opts: &WriteOptions<'_>) -> Result<Output> {
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
        if values.iter().any(|(p, _)| p == &canonical) {
            return Err(Error::InvalidInput(format!(
                "EXEC {table}.{}: @{canonical} is given twice; give each parameter once (a subquery runs the method once per row)",
                method.name
            )));
        }
        values.push((canonical, param_values(session, expr, &opts.cancel).await?));
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
            let text = param_values(session, e, &opts.cancel).await?.into_iter().next().unwrap_or(Value::Null);
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
        let id_value = id_param.as_deref().and_then(pick);
        if id_value.as_ref().is_some_and(Value::is_null) {
            let idp = id_param.as_deref().unwrap_or("id");
            return Err(Error::InvalidInput(format!(
                "EXEC {table}.{}: @{idp} is NULL in row {} of its values; nothing was sent (filter NULLs out of the subquery)",
                method.name,
                i + 1
            )));
        }
        let id = id_value.map(|v| crate::table::convert::value_text(&v));
        let path = Engine::fill_path(&resource, &method, &scope, id.as_deref())?;
        let mut body = base_body.clone();
        for b in &method.body {
            if let Some(v) = pick(b).filter(|v| !v.is_null()) {
                let ty = method.param_types.get(b).copied().unwrap_or(ColumnType::Utf8);
                let col = spec.column(b).cloned().unwrap_or_else(|| ColumnSpec::named(b, ty));
                if let Some(v) = coerce(&col, &v).map_err(Error::InvalidInput)? {
                    body.insert(b.clone(), v);
                }
            }
        }
        let idp = id_param.clone().unwrap_or_default();
        let mut req = request(&method, path, Some(body))?;
        req.check_hint = Some(format!(
            "the previous secret may already be invalid; run EXEC {table}.{} @{idp}='{}' again to get a new one",
            method.name,
            id.as_deref().unwrap_or("<id>")
        ));
        calls.push(PlannedCall { row: i + 1, id, scope, request: req, prior: Map::new() });
    }
    let returning = Returning::Default;
    run_calls(session, &resource, &method, Verb::Exec, calls, &returning, opts).await
}
