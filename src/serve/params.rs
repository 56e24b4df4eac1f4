//! Parameters (`$1`) of a statement DataFusion does not plan itself (cfql's writes, EXEC):
//! each placeholder is replaced in the text by the value the client bound, as a quoted
//! literal, before cfql reads it. Queries keep real parameters (DataFusion plans them, and
//! pushdown sees the bound value).

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use datafusion_postgres::pgwire;
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::error::PgWireResult;

use super::encode::refusal;

/// Where each `$n` sits in `text`: (byte range, n).
fn placeholders(text: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, text).tokenize_with_location() else {
        return Vec::new();
    };
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |line: u64, col: u64| -> usize {
        let start = line_starts[(line as usize).saturating_sub(1).min(line_starts.len() - 1)];
        text[start..]
            .char_indices()
            .nth((col as usize).saturating_sub(1))
            .map_or(text.len(), |(i, _)| start + i)
    };
    tokens
        .iter()
        .filter_map(|t| match &t.token {
            Token::Placeholder(p) => {
                let n: usize = p.strip_prefix('$')?.parse().ok()?;
                let from = offset(t.span.start.line, t.span.start.column);
                Some((from..from + p.len(), n))
            }
            _ => None,
        })
        .collect()
}

/// How many parameters `text` takes (the highest `$n`).
pub(super) fn count(text: &str) -> usize {
    placeholders(text)
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0)
}

/// `text` with each placeholder replaced by a stand-in text value (`'0'`): enough to find
/// the columns a statement returns before its values are bound (a NULL would be refused
/// where cfql requires a value, such as EXEC's parameters).
pub(super) fn stand_ins(text: &str) -> String {
    splice(text, |_| Ok("'0'".to_string())).unwrap_or_else(|_| text.to_string())
}

/// `text` with each placeholder replaced by the portal's bound value.
pub(super) fn bind<S: Clone>(text: &str, portal: &Portal<S>) -> PgWireResult<String> {
    splice(text, |n| literal(portal, n - 1))
}

fn splice(text: &str, value: impl Fn(usize) -> PgWireResult<String>) -> PgWireResult<String> {
    let mut out = text.to_string();
    let mut found = placeholders(text);
    found.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    for (range, n) in found {
        out.replace_range(range, &value(n)?);
    }
    Ok(out)
}

/// The SQL literal of parameter `idx`: text values quoted (quotes doubled), binary
/// integers and booleans as such.
fn literal<S: Clone>(portal: &Portal<S>, idx: usize) -> PgWireResult<String> {
    let Some(raw) = portal.parameters.get(idx) else {
        return Err(refusal("08P01", format!("no value bound for ${}", idx + 1)));
    };
    let Some(bytes) = raw else {
        return Ok("NULL".to_string());
    };
    if !portal.parameter_format.is_binary(idx) {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| refusal("22021", format!("${} is not UTF-8", idx + 1)))?;
        return Ok(format!("'{}'", text.replace('\'', "''")));
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
    binary_literal(bytes, &ty).ok_or_else(|| {
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

fn binary_literal(b: &[u8], ty: &Type) -> Option<String> {
    let int = |n: i64| Some(n.to_string());
    match (ty, b.len()) {
        (t, 1) if *t == Type::BOOL => Some(if b[0] != 0 { "TRUE" } else { "FALSE" }.into()),
        (t, 2) if *t == Type::INT2 => int(i16::from_be_bytes(b.try_into().ok()?).into()),
        (t, 4) if *t == Type::INT4 => int(i32::from_be_bytes(b.try_into().ok()?).into()),
        (t, 8) if *t == Type::INT8 => int(i64::from_be_bytes(b.try_into().ok()?)),
        (t, _) if *t == Type::TEXT || *t == Type::VARCHAR => {
            let s = std::str::from_utf8(b).ok()?;
            Some(format!("'{}'", s.replace('\'', "''")))
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
        let found: Vec<usize> = placeholders(sql).into_iter().map(|(_, n)| n).collect();
        assert_eq!(found, vec![1, 2]);
        assert_eq!(count(sql), 2);
        assert_eq!(
            stand_ins(sql),
            "EXEC t.m @id='0', @name='$2 it''s' -- $3\n, @x = '0'"
        );
    }
}
