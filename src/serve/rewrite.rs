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

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Query, Select, SelectItem, SetExpr, Statement, TableFactor, Value, ValueWithSpan,
    visit_expressions, visit_expressions_mut,
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
        if let Expr::Subquery(q) = e {
            null_correlated_cases(q);
        }
        ControlFlow::<()>::Continue(())
    });
    if let Statement::Query(q) = stmt {
        null_correlated_cases(q);
    }
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
}
