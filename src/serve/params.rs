//! Parameters (`$1`) of a statement DataFusion does not plan itself (cfql's writes, EXEC):
//! the statement is read with its placeholders in, then each placeholder of the parsed
//! tree is replaced by the value the client bound, as a node (a string literal holding the
//! text exactly): a value never passes through SQL text, so no quote, backslash or comment
//! in it can change the statement. Queries keep real parameters (DataFusion plans them,
//! and pushdown sees the bound value).

use datafusion::sql::sqlparser::ast::{Expr, Value};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use datafusion_postgres::pgwire;
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::error::PgWireResult;

use super::encode::refusal;
use crate::sql::build::string_literal;

/// The number of each `$n` in `text`, read by the tokenizer (never inside a string or
/// a comment).
fn placeholders(text: &str) -> Vec<usize> {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, text).tokenize() else {
        return Vec::new();
    };
    tokens
        .iter()
        .filter_map(|t| match t {
            Token::Placeholder(p) => p.strip_prefix('$')?.parse().ok(),
            _ => None,
        })
        .collect()
}

/// How many parameters `text` takes (the highest `$n`).
pub(super) fn count(text: &str) -> usize {
    placeholders(text).into_iter().max().unwrap_or(0)
}

/// A stand-in for each of `count` parameters (`'0'`): enough to find the columns a
/// statement returns before its values are bound (a NULL would be refused where cfql
/// requires a value, such as EXEC's parameters).
pub(super) fn stand_ins(count: usize) -> Vec<Expr> {
    vec![string_literal("0"); count]
}

/// The portal's bound values, one parse-tree node each (put in place of the placeholders
/// by [`crate::sql::parse::CfqlStatement::bind`]): text as a string literal holding it
/// exactly, binary integers and booleans as such, NULL as NULL.
pub(super) fn values<S: Clone>(portal: &Portal<S>, count: usize) -> PgWireResult<Vec<Expr>> {
    (0..count).map(|idx| value(portal, idx)).collect()
}

fn value<S: Clone>(portal: &Portal<S>, idx: usize) -> PgWireResult<Expr> {
    let Some(raw) = portal.parameters.get(idx) else {
        return Err(refusal("08P01", format!("no value bound for ${}", idx + 1)));
    };
    let Some(bytes) = raw else {
        return Ok(Expr::value(Value::Null));
    };
    if !portal.parameter_format.is_binary(idx) {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| refusal("22021", format!("${} is not UTF-8", idx + 1)))?;
        return Ok(string_literal(text));
    }
    let ty = portal
        .statement
        .parameter_types
        .get(idx)
        .cloned()
        .flatten()
        // The server said TEXT (`get_parameter_types`); a client that sent no types of
        // its own encoded what it was told.
        .unwrap_or(Type::TEXT);
    binary_value(bytes, &ty).ok_or_else(|| {
        refusal(
            "0A000",
            format!(
                "${} was sent in binary as {}: send this statement's parameters as text",
                idx + 1,
                ty.name()
            ),
        )
    })
}

fn binary_value(b: &[u8], ty: &Type) -> Option<Expr> {
    let int = |n: i64| Some(Expr::value(Value::Number(n.to_string(), false)));
    match (ty, b.len()) {
        (t, 1) if *t == Type::BOOL => Some(Expr::value(Value::Boolean(b[0] != 0))),
        (t, 2) if *t == Type::INT2 => int(i16::from_be_bytes(b.try_into().ok()?).into()),
        (t, 4) if *t == Type::INT4 => int(i32::from_be_bytes(b.try_into().ok()?).into()),
        (t, 8) if *t == Type::INT8 => int(i64::from_be_bytes(b.try_into().ok()?)),
        (t, _) if *t == Type::TEXT || *t == Type::VARCHAR => {
            Some(string_literal(std::str::from_utf8(b).ok()?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_outside_strings_only() {
        let sql = "EXEC t.m @id=$1, @name='$2 it''s' -- $3\n, @x = $2";
        let found = placeholders(sql);
        assert_eq!(found, vec![1, 2]);
        assert_eq!(count(sql), 2);
    }
}
