//! `{{ name }}` templates (StackQL style): replaced from the caller's variables before parsing.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Where a piece of SQL text stands: what a substituted value would become part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Code,
    SingleQuoted,
    DoubleQuoted,
    LineComment,
    BlockComment,
}

/// The lexical state after `text`, starting in `st`.
fn scan(mut st: Lex, text: &str) -> Lex {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        st = match (st, b[i]) {
            (Lex::Code, b'\'') => Lex::SingleQuoted,
            (Lex::Code, b'"') => Lex::DoubleQuoted,
            (Lex::Code, b'-') if next == Some(b'-') => {
                i += 1;
                Lex::LineComment
            }
            (Lex::Code, b'/') if next == Some(b'*') => {
                i += 1;
                Lex::BlockComment
            }
            // A doubled quote closes and reopens: the state comes back on the next byte.
            (Lex::SingleQuoted, b'\'') | (Lex::DoubleQuoted, b'"') | (Lex::LineComment, b'\n') => {
                Lex::Code
            }
            (Lex::BlockComment, b'*') if next == Some(b'/') => {
                i += 1;
                Lex::Code
            }
            (st, _) => st,
        };
        i += 1;
    }
    st
}

/// A plain literal, safe to stand outside quotes: a number or a bare word.
fn is_plain_literal(v: &str) -> bool {
    let number = {
        let digits = v.strip_prefix('-').unwrap_or(v);
        !digits.is_empty()
            && digits.split('.').count() <= 2
            && digits
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    };
    let word = v
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    number || word
}

/// The text that stands for `value` at a place in state `st`: data, never SQL.
fn substitute(name: &str, value: &str, st: Lex) -> Result<String> {
    let refuse = |detail: &str| {
        Err(Error::TemplateValue {
            name: name.to_string(),
            detail: detail.to_string(),
        })
    };
    match st {
        Lex::SingleQuoted => Ok(value.replace('\'', "''")),
        Lex::DoubleQuoted => Ok(value.replace('"', "\"\"")),
        Lex::LineComment if value.contains(['\n', '\r']) => {
            refuse("it stands in a -- comment, so it may not contain a line break")
        }
        Lex::BlockComment if value.contains("*/") => {
            refuse("it stands in a /* */ comment, so it may not contain */")
        }
        Lex::LineComment | Lex::BlockComment => Ok(value.to_string()),
        Lex::Code if is_plain_literal(value) => Ok(value.to_string()),
        Lex::Code => refuse(&format!(
            "it stands outside quotes, so its value must be a plain number or a bare word (letters, digits, _ and .); put the variable in quotes ('{{{{ {name} }}}}') to pass any text"
        )),
    }
}

/// Replaces every `{{ name }}` in `sql` with its value, as data: escaped inside quotes,
/// and only a plain literal outside them, so a value can never change the statement's
/// shape. A variable without a value fails the statement, naming it, before anything is sent.
pub fn render(sql: &str, vars: &HashMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut st = Lex::Code;
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        let name = rest[start + 2..start + 2 + len].trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-');
        st = scan(st, &rest[..start]);
        out.push_str(&rest[..start]);
        let marker = &rest[start..start + 4 + len];
        if valid {
            let value = vars.get(name).ok_or_else(|| Error::MissingVariable {
                name: name.to_string(),
            })?;
            out.push_str(&substitute(name, value, st)?);
        } else {
            st = scan(st, marker);
            out.push_str(marker);
        }
        rest = &rest[start + 4 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_names_missing() {
        let vars = HashMap::from([("token_id".to_string(), "abc".to_string())]);
        assert_eq!(
            render("WHERE id = '{{ token_id }}'", &vars).unwrap(),
            "WHERE id = 'abc'"
        );
        assert_eq!(render("x {{token_id}} y", &vars).unwrap(), "x abc y");
        let e = render("'{{ name }}'", &vars).unwrap_err();
        assert!(
            matches!(&e, crate::Error::MissingVariable { name } if name == "name"),
            "{e}"
        );
    }

    #[test]
    fn values_are_data_never_sql() {
        let v = |k: &str, val: &str| HashMap::from([(k.to_string(), val.to_string())]);
        let attack = v("days", "7 days' OR 'a' <> '");
        assert_eq!(
            render("x < now() + INTERVAL '{{ days }} days'", &attack).unwrap(),
            "x < now() + INTERVAL '7 days'' OR ''a'' <> '' days'"
        );
        assert_eq!(
            render("WHERE \"{{ days }}\" = 1", &v("days", "a\"b")).unwrap(),
            "WHERE \"a\"\"b\" = 1"
        );
        assert_eq!(render("LIMIT {{ n }}", &v("n", "5")).unwrap(), "LIMIT 5");
        assert_eq!(
            render("LIMIT {{ n }}", &v("n", "-2.5")).unwrap(),
            "LIMIT -2.5"
        );
        assert_eq!(
            render("FROM {{ t }}", &v("t", "cloudflare.user.tokens")).unwrap(),
            "FROM cloudflare.user.tokens"
        );
        for bad in ["1 OR 1=1", "5; DROP", "'x'", "1.2.3", "", "a b"] {
            let e = render("LIMIT {{ n }}", &v("n", bad))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("'{{ n }}'") && e.contains("outside quotes"),
                "{bad}: {e}"
            );
        }
        // After a quoted string that holds an escaped quote, code resumes.
        assert!(render("WHERE a = 'it''s' AND b = {{ n }}", &v("n", "x y")).is_err());
        assert_eq!(
            render("WHERE a = 'it''s {{ n }}'", &v("n", "x y")).unwrap(),
            "WHERE a = 'it''s x y'"
        );
        assert!(render("-- note {{ n }}\nSELECT 1", &v("n", "a\nDELETE")).is_err());
        assert_eq!(
            render("/* {{ n }} */ SELECT 1", &v("n", "any text")).unwrap(),
            "/* any text */ SELECT 1"
        );
    }
}
