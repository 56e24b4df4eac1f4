//! Statements cfql builds for itself (the read that picks a write's rows, a scalar
//! `SELECT <expr>`, the server's rewritten LIKE patterns): a constant skeleton parsed from
//! cfql's own text, its holes filled with the user's parsed nodes. A user's value never
//! passes through SQL text here: printing a parsed string and reading it back is not
//! faithful (sqlparser prints `\'` inside a string unescaped, which reads back as the end
//! of the string), so a statement is never rebuilt that way (ARCHITECTURE.md, invariants).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, LimitClause, ObjectName, OrderBy, OrderByExpr, OrderByKind, Query, SelectItem,
    SetExpr, Statement, TableAlias, TableFactor, Value, VisitMut, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};

/// Parses one of cfql's own constant statements (never user text).
pub(crate) fn skeleton(sql: &'static str) -> Result<Query> {
    let internal = |what: &str| Error::Internal(format!("skeleton {sql:?}: {what}"));
    let mut stmts =
        Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| internal(&e.to_string()))?;
    match stmts.pop() {
        Some(Statement::Query(q)) if stmts.is_empty() => Ok(*q),
        _ => Err(internal("not one query")),
    }
}

/// Parses one of cfql's own constant expressions (never user text).
#[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
pub fn skeleton_expr(sql: &'static str) -> Result<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| Error::Internal(format!("skeleton {sql:?}: {e}")))
}

/// Replaces the skeleton's own placeholders (`$1`, `$2`, ...) with `holes` (`$1` is
/// `holes[0]`). Nodes put in are not visited again, so a placeholder of the user's own
/// (a prepared statement's `$1`) inside a hole stays as it is.
#[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
pub fn fill(expr: &mut Expr, holes: &[Expr]) {
    let _ = visit_expressions_mut(expr, |e| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
            && let Some(hole) = p
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| holes.get(n.checked_sub(1)?))
        {
            *e = hole.clone();
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Puts `values` in place of the placeholders `$1`, `$2`, ... of a parsed statement: a
/// bound parameter becomes a node of the tree, never text. A placeholder without a value
/// is an error naming it.
#[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
pub fn bind<N: VisitMut>(node: &mut N, values: &[Expr]) -> Result<()> {
    let missing = visit_expressions_mut(node, |e| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
        {
            let n = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok());
            match n.and_then(|n| values.get(n.checked_sub(1)?)) {
                Some(value) => *e = value.clone(),
                None => return ControlFlow::Break(p.clone()),
            }
        }
        ControlFlow::Continue(())
    });
    match missing {
        ControlFlow::Break(p) => Err(Error::InvalidValue {
            place: format!("parameter {p}"),
            problem: format!("no value was bound for it ({} given)", values.len()),
        }),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// A string literal holding `text` exactly, whatever it contains.
#[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
pub fn string_literal(text: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(text.to_string()))
}

/// `SELECT <expr>`: the value of a scalar expression (an EXEC parameter).
pub fn select_expr(expr: &Expr) -> Result<Statement> {
    let mut q = skeleton("SELECT NULL")?;
    let select = select_of(&mut q)?;
    select.projection = vec![SelectItem::UnnamedExpr(expr.clone())];
    Ok(Statement::Query(Box::new(q)))
}

/// The parts of the read that picks the rows of an UPDATE or DELETE, each a node of the
/// user's statement.
pub struct PickRows<'a> {
    /// The table's name parts (`cloudflare`, service, resource).
    pub table: Vec<String>,
    /// The statement's alias of the table.
    pub alias: Option<&'a TableAlias>,
    /// Columns read beside `*` (an UPDATE's new values).
    pub extra: Vec<SelectItem>,
    /// The WHERE.
    pub selection: Option<&'a Expr>,
    /// ORDER BY.
    pub order_by: &'a [OrderByExpr],
    /// LIMIT.
    pub limit: Option<&'a Expr>,
}

impl PickRows<'_> {
    /// `SELECT *, <extra> FROM <table> [AS alias] [WHERE] [ORDER BY] [LIMIT]`.
    pub fn statement(self) -> Result<Statement> {
        let mut q = skeleton("SELECT * FROM t")?;
        let select = select_of(&mut q)?;
        select.projection.extend(self.extra);
        select.selection = self.selection.cloned();
        let Some(TableFactor::Table { name, alias, .. }) =
            select.from.first_mut().map(|t| &mut t.relation)
        else {
            return Err(Error::Internal(
                "skeleton SELECT * FROM t has no table".into(),
            ));
        };
        *name = ObjectName::from(self.table.into_iter().map(Ident::new).collect::<Vec<_>>());
        *alias = self.alias.cloned();
        if !self.order_by.is_empty() {
            q.order_by = Some(OrderBy {
                kind: OrderByKind::Expressions(self.order_by.to_vec()),
                interpolate: None,
            });
        }
        q.limit_clause = self.limit.map(|l| LimitClause::LimitOffset {
            limit: Some(l.clone()),
            offset: None,
            limit_by: Vec::new(),
        });
        Ok(Statement::Query(Box::new(q)))
    }
}

fn select_of(q: &mut Query) -> Result<&mut datafusion::sql::sqlparser::ast::Select> {
    match q.body.as_mut() {
        SetExpr::Select(s) => Ok(s),
        _ => Err(Error::Internal("skeleton is not a SELECT".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_take_nodes_and_user_placeholders_stay() {
        let mut e = skeleton_expr("replace($1, $2)").unwrap();
        let user = skeleton_expr("$1 || 'x'").unwrap();
        fill(&mut e, &[user, string_literal(r"\' OR true --")]);
        let Expr::Function(f) = &e else {
            panic!("{e:?}")
        };
        let text = format!("{f}");
        assert!(text.starts_with("replace($1 || 'x', "), "{text}");
        // The value is one string node holding the backslash and the quote.
        let mut found = None;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(&e, |x| {
            if let Expr::Value(v) = x
                && let Value::SingleQuotedString(s) = &v.value
                && s.contains("OR")
            {
                found = Some(s.clone());
            }
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(found.as_deref(), Some(r"\' OR true --"));
    }
}
