//! PostgreSQL's names for unnamed result columns: `SELECT count(*), max(name)` answers
//! columns `count` and `max` (DataFusion says `count(*)` and `max(user.tokens.name)`),
//! which drivers, dataframes and BI tools key on (`row["count"]`). Applied to the parsed
//! tree of the outermost SELECT only, as an alias; a name two columns would share is left
//! as DataFusion writes it (DataFusion refuses two columns of one name).

use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, Statement, Value};

/// Gives each unnamed function column of `stmt`'s outermost SELECT its PostgreSQL name.
pub(super) fn postgres_names(stmt: &mut Statement) {
    let Statement::Query(q) = stmt else { return };
    let Some(items) = select_items(q) else { return };
    let proposed: Vec<Option<String>> = items
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => function_name(e),
            _ => None,
        })
        .collect();
    let taken: Vec<String> = items
        .iter()
        .zip(&proposed)
        .filter_map(|(item, p)| p.clone().or_else(|| existing_name(item)))
        .collect();
    for (item, name) in items.iter_mut().zip(proposed) {
        let Some(name) = name else { continue };
        if taken.iter().filter(|t| **t == name).count() > 1 {
            continue;
        }
        if let SelectItem::UnnamedExpr(e) = item {
            let expr = std::mem::replace(e, Expr::value(Value::Null));
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', name),
            };
        }
    }
}

fn select_items(q: &mut Query) -> Option<&mut Vec<SelectItem>> {
    match q.body.as_mut() {
        SetExpr::Select(select) => Some(&mut select.projection),
        _ => None,
    }
}

/// PostgreSQL's name of an unnamed expression that is a function call (through casts and
/// parentheses, as PostgreSQL looks): the function's name.
fn function_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Function(f) => Some(f.name.0.last()?.as_ident()?.value.to_lowercase()),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => function_name(expr),
        _ => None,
    }
}

/// The name a column already has: its alias, or the column it reads.
fn existing_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
            parts.last().map(|i| i.value.clone())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn named(sql: &str) -> String {
        let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        postgres_names(&mut stmt);
        stmt.to_string()
    }

    #[test]
    fn functions_take_their_names_unless_two_would_share_one() {
        assert_eq!(
            named("SELECT count(*), max(name), now()::text, status FROM t"),
            "SELECT count(*) AS \"count\", max(name) AS \"max\", now()::TEXT AS \"now\", status FROM t"
        );
        assert_eq!(
            named("SELECT count(*), count(id), min(x) AS m FROM t"),
            "SELECT count(*), count(id), min(x) AS m FROM t"
        );
        assert_eq!(
            named("SELECT count(*) AS n FROM t"),
            "SELECT count(*) AS n FROM t"
        );
        assert_eq!(
            named("SELECT max(x), y AS max FROM t"),
            "SELECT max(x), y AS max FROM t"
        );
    }
}
