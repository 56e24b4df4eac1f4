//! PostgreSQL syntax that drivers send about the catalog and DataFusion cannot run,
//! rewritten after datafusion-pg-catalog's own rewrites. Only statements that read no
//! cfql table get these (and those) rewrites, so a query over the Cloudflare tables is
//! never changed behind its author's back.
//!
//! - `LIKE ... ESCAPE 'c'` with an escape other than the backslash (SQLAlchemy lists
//!   schemas with `NOT LIKE 'pg/_%' ESCAPE '/'`) becomes a backslash escape.
//! - A `CASE` in the select list around a correlated scalar subquery (SQLAlchemy's
//!   `get_columns` reads each column's default, identity and collation so) is NULL, as
//!   datafusion-pg-catalog makes a bare one: DataFusion cannot run it, and cfql's columns
//!   have no default, identity or collation of their own.
//! - `(expr).field` (pgjdbc's `(_pg_expandarray(i.indkey)).n`) is `get_field(expr, 'field')`.
//! - `generate_subscripts(a, 1)` (SQLAlchemy's `get_pk_constraint`, beside `unnest(a)`)
//!   is `unnest(range(1, cardinality(a) + 1))`: the subscripts of a one-dimensional array
//!   (cfql has no other). The dimension stays in the expression, times 0, so that a
//!   parameter given for it keeps its type and its number.
//! - A `regproc` column compared with `0` (ADBC's `typreceive != 0` at connect) is
//!   compared with `'-'`, which is how the catalog spells "no function"; compared with
//!   `'pg_catalog.array_in'::regproc` (which datafusion-pg-catalog makes a subquery of
//!   `pg_proc` oids; pgjdbc's type cache) it is compared with the name `'array_in'`.
//! - A correlated scalar subquery standing as a condition of a WHERE (pgjdbc's
//!   `getTypeInfo` and psql's / pgcli's `\dT`: `t.typrelid = 0 OR (SELECT c.relkind = 'c'
//!   FROM pg_class c WHERE c.oid = t.typrelid)`) is the `IN` it means there, where NULL
//!   and false both reject the row: `t.typrelid IN (SELECT c.oid ... WHERE c.relkind = 'c')`.
//! - `x::regtype::text` (pgcli's function list) is `format_type(x, NULL)`, the type's
//!   name (datafusion-pg-catalog's `regtype` is the number, which pgcli cannot read).
//! - `ARRAY(SELECT x ...)` (psql's `\du`) is `(SELECT array_agg(x) ...)`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, Ident, Join, JoinOperator, ObjectName, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAliasColumnDef, TableFactor, Value,
    ValueWithSpan, VisitMut, VisitorMut, visit_expressions, visit_expressions_mut,
};

use crate::sql::build::{fill, skeleton_expr, string_literal};

/// Rewrites what DataFusion cannot run in `stmt`.
pub(super) fn rewrite(stmt: &mut Statement) {
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } = e
            && let Some(esc) = escape_char.as_ref().and_then(|v| match &v.value {
                Value::SingleQuotedString(s) if s.chars().count() == 1 && s != "\\" => {
                    Some(s.clone())
                }
                _ => None,
            })
            && let Some(p) = backslash_escaped(pattern, &esc)
        {
            **pattern = p;
            *escape_char = None;
        }
        if let Expr::Subquery(q) | Expr::Exists { subquery: q, .. } = e {
            null_correlated_cases(q);
            conditions_in(q);
        }
        if let Some(new) = field_access(e)
            .or_else(|| subscripts(e))
            .or_else(|| array_of_subquery(e))
            .or_else(|| regtype_text(e))
        {
            *e = new;
        }
        regproc_zero(e);
        ControlFlow::<()>::Continue(())
    });
    if let Statement::Query(q) = stmt {
        null_correlated_cases(q);
        conditions_in(q);
        name_nulls(q);
    }
    let _ = stmt.visit(&mut LateralUnnest);
    let _ = stmt.visit(&mut UnnestColumnNames);
}

/// Turns `t AS a CROSS JOIN UNNEST(a.c) AS u` into a derived table (see the module doc).
struct LateralUnnest;

impl VisitorMut for LateralUnnest {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        let SetExpr::Select(sel) = q.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        for from in &mut sel.from {
            let Some(i) = from
                .joins
                .iter()
                .position(|j| lateral_of(&from.relation, j).is_some())
            else {
                continue;
            };
            let join = from.joins.remove(i);
            if let Some(derived) = lateral_of(&from.relation, &join) {
                from.relation = derived;
            } else {
                from.joins.insert(i, join);
            }
        }
        ControlFlow::Continue(())
    }
}

/// The derived table standing for `relation` CROSS JOIN `join`, when `join` unnests a
/// column of `relation`.
fn lateral_of(relation: &TableFactor, join: &Join) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        alias: Some(alias),
        args: None,
        ..
    } = relation
    else {
        return None;
    };
    if !matches!(join.join_operator, JoinOperator::CrossJoin(_)) {
        return None;
    }
    let TableFactor::UNNEST {
        alias: Some(u),
        array_exprs,
        with_offset: false,
        with_ordinality: false,
        ..
    } = &join.relation
    else {
        return None;
    };
    // `a.c`, or a bare `c` (ADBC's `UNNEST(conkey)`), read from `relation`.
    let own = match array_exprs.as_slice() {
        [Expr::CompoundIdentifier(c)] => {
            c.len() == 2 && c[0].value.eq_ignore_ascii_case(&alias.name.value)
        }
        [Expr::Identifier(_)] => true,
        _ => false,
    };
    if !own || !u.columns.is_empty() {
        return None;
    }
    let mut q = crate::sql::build::skeleton("SELECT a.*, unnest($1) AS u FROM t AS a").ok()?;
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return None;
    };
    if let [
        SelectItem::QualifiedWildcard(kind, _),
        SelectItem::ExprWithAlias { expr, alias: out },
    ] = sel.projection.as_mut_slice()
    {
        *kind =
            SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(vec![alias.name.clone()]));
        fill(expr, &[array_exprs[0].clone()]);
        *out = u.name.clone();
    } else {
        return None;
    }
    if let TableFactor::Table {
        name: n, alias: a, ..
    } = &mut sel.from.first_mut()?.relation
    {
        *n = name.clone();
        *a = Some(alias.clone());
    }
    Some(TableFactor::Derived {
        lateral: false,
        subquery: Box::new(q),
        alias: Some(alias.clone()),
        sample: None,
    })
}

/// Names the single column of `UNNEST(a) AS u` after `u`.
struct UnnestColumnNames;

impl VisitorMut for UnnestColumnNames {
    type Break = ();

    fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::UNNEST {
            alias: Some(alias),
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } = f
            && array_exprs.len() == 1
            && alias.columns.is_empty()
        {
            alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
        }
        ControlFlow::Continue(())
    }
}

/// Gives the unnamed `NULL` columns of `q`'s SELECT names of their own.
fn name_nulls(q: &mut Query) {
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return;
    };
    let is_null = |i: &SelectItem| matches!(i, SelectItem::UnnamedExpr(Expr::Value(v)) if v.value == Value::Null);
    if sel.projection.iter().filter(|i| is_null(i)).count() < 2 {
        return;
    }
    let mut n = 0;
    for item in &mut sel.projection {
        if is_null(item) {
            n += 1;
            let name = if n == 1 {
                "?column?".to_string()
            } else {
                format!("?column?_{n}")
            };
            *item = SelectItem::ExprWithAlias {
                expr: Expr::Value(ValueWithSpan::from(Value::Null)),
                alias: Ident::with_quote('"', name),
            };
        }
    }
}

/// `(expr).key` as `get_field(expr, 'key')` (a column's own `a.b` is left alone).
fn field_access(e: &Expr) -> Option<Expr> {
    let Expr::CompoundFieldAccess { root, access_chain } = e else {
        return None;
    };
    if !matches!(root.as_ref(), Expr::Nested(_) | Expr::Function(_)) {
        return None;
    }
    let mut at = (**root).clone();
    for access in access_chain {
        let AccessExpr::Dot(Expr::Identifier(key)) = access else {
            return None;
        };
        let mut call = skeleton_expr("get_field($1, $2)").ok()?;
        fill(&mut call, &[at, string_literal(&key.value)]);
        at = call;
    }
    Some(at)
}

/// The function `e` calls, lower-cased and without a schema, with its plain arguments.
fn call(e: &Expr) -> Option<(String, Vec<Expr>)> {
    let Expr::Function(f) = e else { return None };
    let name = f.name.0.last()?.as_ident()?.value.to_lowercase();
    let FunctionArguments::List(list) = &f.args else {
        return Some((name, vec![]));
    };
    let args = list
        .args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect();
    Some((name, args))
}

/// `generate_subscripts(a, 1)` as `unnest(range(1, cardinality(a) + 1))`.
fn subscripts(e: &Expr) -> Option<Expr> {
    let (name, args) = call(e)?;
    let [array, dimension] = args.as_slice() else {
        return None;
    };
    if name != "generate_subscripts" {
        return None;
    }
    let mut new = skeleton_expr(
        "unnest(range(1, CAST(cardinality($1) AS BIGINT) + 1 + 0 * CAST($2 AS BIGINT)))",
    )
    .ok()?;
    fill(&mut new, &[array.clone(), dimension.clone()]);
    Some(new)
}

/// `ARRAY(SELECT x ...)` as `(SELECT array_agg(x) ...)`.
fn array_of_subquery(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else { return None };
    let name = f.name.0.last()?.as_ident()?.value.to_lowercase();
    let FunctionArguments::Subquery(q) = &f.args else {
        return None;
    };
    if name != "array" {
        return None;
    }
    let mut q = q.clone();
    q.order_by = None;
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return None;
    };
    let [SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. }] =
        sel.projection.as_mut_slice()
    else {
        return None;
    };
    let mut agg = skeleton_expr("array_agg($1)").ok()?;
    fill(&mut agg, std::slice::from_ref(x));
    *x = agg;
    Some(Expr::Subquery(q))
}

/// `x::regtype::text` as `format_type(x, NULL)`.
fn regtype_text(e: &Expr) -> Option<Expr> {
    let Expr::Cast {
        expr: inner,
        data_type: DataType::Text,
        ..
    } = e
    else {
        return None;
    };
    let Expr::Cast {
        expr: x,
        data_type: DataType::Custom(name, _),
        ..
    } = inner.as_ref()
    else {
        return None;
    };
    let ty = name.0.last()?.as_ident()?.value.to_lowercase();
    if ty != "regtype" {
        return None;
    }
    let mut call = skeleton_expr("format_type($1, NULL)").ok()?;
    fill(&mut call, &[(**x).clone()]);
    Some(call)
}

/// The catalog's `regproc` columns (a function's name, `-` for none).
const REGPROC_COLUMNS: &[&str] = &[
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
    "typsubscript",
];

/// `typreceive != 0` as `typreceive != '-'`.
fn regproc_zero(e: &mut Expr) {
    let Expr::BinaryOp { left, op, right } = e else {
        return;
    };
    if !matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
        return;
    }
    let is_regproc = |x: &Expr| match x {
        Expr::Identifier(i) => REGPROC_COLUMNS.contains(&i.value.to_lowercase().as_str()),
        Expr::CompoundIdentifier(p) => p
            .last()
            .is_some_and(|i| REGPROC_COLUMNS.contains(&i.value.to_lowercase().as_str())),
        _ => false,
    };
    let is_zero = |x: &Expr| matches!(x, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n == "0"));
    let named = |x: &Expr| {
        if is_zero(x) {
            return Some("-".to_string());
        }
        proc_name_of_oid(x)
    };
    if is_regproc(left)
        && let Some(n) = named(right)
    {
        **right = string_literal(&n);
    } else if is_regproc(right)
        && let Some(n) = named(left)
    {
        **left = string_literal(&n);
    }
}

/// The function name `(SELECT oid FROM pg_catalog.pg_proc WHERE proname = 'pg_catalog.f')`
/// looks up (`f`).
fn proc_name_of_oid(e: &Expr) -> Option<String> {
    let Expr::Subquery(q) = e else { return None };
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    let [from] = sel.from.as_slice() else {
        return None;
    };
    let TableFactor::Table { name, .. } = &from.relation else {
        return None;
    };
    let table = name.0.last()?.as_ident()?.value.to_lowercase();
    let Some(Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    }) = &sel.selection
    else {
        return None;
    };
    let is_proname =
        matches!(left.as_ref(), Expr::Identifier(i) if i.value.eq_ignore_ascii_case("proname"));
    let Expr::Value(v) = right.as_ref() else {
        return None;
    };
    let Value::SingleQuotedString(text) = &v.value else {
        return None;
    };
    (table == "pg_proc" && is_proname).then(|| text.rsplit('.').next().unwrap_or(text).to_string())
}

/// In the WHERE of `q`'s SELECT, each correlated scalar subquery that stands as a
/// condition (under AND / OR only) becomes the `IN` it means there.
fn conditions_in(q: &mut Query) {
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return;
    };
    if let Some(w) = sel.selection.as_mut() {
        conditions_in_expr(w);
    }
}

fn conditions_in_expr(e: &mut Expr) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And | BinaryOperator::Or,
            right,
        } => {
            conditions_in_expr(left);
            conditions_in_expr(right);
        }
        Expr::Nested(inner) => conditions_in_expr(inner),
        Expr::Subquery(q) => {
            if let Some(new) = scalar_test_as_in(q) {
                *e = new;
            }
        }
        _ => {}
    }
}

/// `(SELECT <test> FROM t a WHERE a.k = <outer>)` as `<outer> IN (SELECT a.k FROM t a
/// WHERE <test>)`, when its WHERE is that one equality with one side of its own.
fn scalar_test_as_in(q: &Query) -> Option<Expr> {
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    let [SelectItem::UnnamedExpr(test)] = sel.projection.as_slice() else {
        return None;
    };
    let [from] = sel.from.as_slice() else {
        return None;
    };
    let TableFactor::Table { alias, name, .. } = &from.relation else {
        return None;
    };
    if !from.joins.is_empty()
        || !matches!(&sel.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
    {
        return None;
    }
    let local = alias
        .as_ref()
        .map(|a| a.name.value.to_lowercase())
        .or_else(|| {
            name.0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.to_lowercase())
        })?;
    let Some(Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    }) = &sel.selection
    else {
        return None;
    };
    let own = |x: &Expr| matches!(x, Expr::CompoundIdentifier(p) if p.len() == 2 && p[0].value.to_lowercase() == local);
    let outer = |x: &Expr| matches!(x, Expr::CompoundIdentifier(p) if p.len() >= 2 && p[0].value.to_lowercase() != local);
    let (key, outer_key) = if own(left) && outer(right) {
        (left, right)
    } else if own(right) && outer(left) {
        (right, left)
    } else {
        return None;
    };
    let mut inner = q.clone();
    let SetExpr::Select(isel) = inner.body.as_mut() else {
        return None;
    };
    isel.projection = vec![SelectItem::UnnamedExpr((**key).clone())];
    isel.selection = Some(test.clone());
    Some(Expr::InSubquery {
        expr: outer_key.clone(),
        subquery: Box::new(inner),
        negated: false,
    })
}

/// Replaces each select-list `CASE` of `q` that holds a correlated subquery by NULL.
fn null_correlated_cases(q: &mut Query) {
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return;
    };
    for item in &mut sel.projection {
        let e = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        if matches!(e, Expr::Case { .. }) && holds_correlated_subquery(e) {
            *e = Expr::Value(ValueWithSpan::from(Value::Null));
        }
    }
}

fn holds_correlated_subquery(e: &Expr) -> bool {
    visit_expressions(e, |e| match e {
        Expr::Subquery(q) if matches!(q.body.as_ref(), SetExpr::Select(s) if correlated(s)) => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Whether the WHERE of `sel` names a table its FROM does not have (an outer one).
fn correlated(sel: &Select) -> bool {
    let mut local: Vec<String> = Vec::new();
    let mut add = |f: &TableFactor| {
        if let TableFactor::Table { name, alias, .. } = f {
            local.push(name.to_string().to_lowercase());
            if let Some(last) = name.0.last() {
                local.push(last.to_string().to_lowercase());
            }
            if let Some(a) = alias {
                local.push(a.name.value.to_lowercase());
            }
        }
    };
    for t in &sel.from {
        add(&t.relation);
        t.joins.iter().for_each(|j| add(&j.relation));
    }
    let Some(selection) = &sel.selection else {
        return false;
    };
    visit_expressions(selection, |e| match e {
        Expr::CompoundIdentifier(parts) if parts.len() > 1 => {
            let qualifier: Vec<String> = parts[..parts.len() - 1]
                .iter()
                .map(|p| p.value.to_lowercase())
                .collect();
            let last = qualifier.last().cloned().unwrap_or_default();
            if local.contains(&qualifier.join(".")) || local.contains(&last) {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// `pattern` with escape `esc` turned into DataFusion's backslash escape (a backslash of
/// its own doubled first), computed at run time so it works on a bound parameter too. The
/// pattern and the escape are put in as nodes, never as text.
fn backslash_escaped(pattern: &Expr, esc: &str) -> Option<Expr> {
    let mut e = skeleton_expr(r"replace(replace(($1), '\', '\\'), $2, '\')").ok()?;
    fill(&mut e, &[pattern.clone(), string_literal(esc)]);
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        rewrite(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn a_like_escape_other_than_backslash_becomes_a_backslash_escape() {
        assert_eq!(
            rewritten("SELECT nspname FROM n WHERE nspname NOT LIKE $1 || '%' ESCAPE '/'"),
            r"SELECT nspname FROM n WHERE nspname NOT LIKE replace(replace(($1 || '%'), '\', '\\'), '/', '\')"
        );
    }

    #[test]
    fn only_a_case_around_a_correlated_subquery_is_null() {
        assert_eq!(
            rewritten(
                "SELECT CASE WHEN a.d THEN (SELECT d.x FROM d WHERE d.id = a.id) ELSE NULL END AS x FROM a"
            ),
            "SELECT NULL AS x FROM a"
        );
        let kept =
            "SELECT CASE WHEN a.d THEN (SELECT d.x FROM d WHERE d.id = 1) ELSE NULL END FROM a";
        assert_eq!(rewritten(kept), kept);
    }

    #[test]
    fn driver_catalog_forms_become_what_datafusion_runs() {
        assert_eq!(
            rewritten("SELECT (_pg_expandarray(i.indkey)).n FROM pg_index i"),
            "SELECT get_field((_pg_expandarray(i.indkey)), 'n') FROM pg_index i"
        );
        assert_eq!(
            rewritten("SELECT unnest(k) AS a, generate_subscripts(k, $1) AS o FROM t"),
            "SELECT unnest(k) AS a, unnest(range(1, CAST(cardinality(k) AS BIGINT) + 1 + 0 * CAST($1 AS BIGINT))) AS o FROM t"
        );
        assert_eq!(
            rewritten("SELECT oid FROM pg_type WHERE typreceive != 0 AND 0 = typsend"),
            "SELECT oid FROM pg_type WHERE typreceive <> '-' AND '-' = typsend"
        );
        assert_eq!(
            rewritten(
                "SELECT t.typname FROM pg_type t WHERE t.typrelid = 0 OR (SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)"
            ),
            "SELECT t.typname FROM pg_type t WHERE t.typrelid = 0 OR t.typrelid IN (SELECT c.oid FROM pg_class c WHERE c.relkind = 'c')"
        );
        assert_eq!(
            rewritten(
                "SELECT r.rolname, ARRAY(SELECT b.rolname FROM m b WHERE b.x = r.oid) AS memberof FROM r"
            ),
            "SELECT r.rolname, (SELECT array_agg(b.rolname) FROM m b WHERE b.x = r.oid) AS memberof FROM r"
        );
        assert_eq!(
            rewritten(
                "SELECT attr.attname FROM pg_constraint AS con CROSS JOIN UNNEST(conkey) AS conkeys JOIN a AS attr ON attr.attnum = conkeys"
            ),
            "SELECT attr.attname FROM (SELECT con.*, unnest(conkey) AS conkeys FROM pg_constraint AS con) AS con JOIN a AS attr ON attr.attnum = conkeys"
        );
        assert_eq!(
            rewritten("SELECT NULL, NULL, x FROM t"),
            "SELECT NULL AS \"?column?\", NULL AS \"?column?_2\", x FROM t"
        );
        assert_eq!(
            rewritten("SELECT p.prorettype::regtype::text FROM pg_proc p"),
            "SELECT format_type(p.prorettype, NULL) FROM pg_proc p"
        );
    }

    #[test]
    fn a_scalar_subquery_under_not_or_in_the_select_list_is_left_alone() {
        let kept = "SELECT (SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid) FROM pg_type t WHERE NOT (SELECT c.relkind = 'c' FROM pg_class c WHERE c.oid = t.typrelid)";
        assert_eq!(rewritten(kept), kept);
    }
}
