//! `{{ name }}` templates (StackQL style): replaced from the caller's variables before parsing.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Where a piece of SQL text stands: what a substituted value would become part of. Every
/// string form of PostgreSQL's dialect (as sqlparser reads it) has its own state, since
/// each ends, and escapes, differently.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lex {
    Code,
    /// `'...'` (also `N'`, `B'`, `X'`): a quote ends it unless doubled.
    SingleQuoted,
    /// `E'...'`: a backslash escapes the next character as well.
    EscapeQuoted,
    /// `U&'...'`: a quote ends it unless doubled; a backslash starts a Unicode escape.
    UnicodeQuoted,
    /// `"..."`: a quoted identifier.
    DoubleQuoted,
    /// `$tag$...$tag$`: ends at its tag, escapes nothing.
    DollarQuoted(String),
    LineComment,
    /// `/* ... */`, which nest.
    BlockComment(usize),
}

/// Whether `c` continues a word (so a quote after it is not a prefixed string's).
fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The tag of a dollar quote opening at `b[i]` (`$tag$`, the tag maybe empty).
fn dollar_tag(b: &[u8], i: usize) -> Option<String> {
    let rest = &b[i + 1..];
    let len = rest.iter().position(|&c| c == b'$')?;
    let tag = &rest[..len];
    let starts_ok = tag.first().is_none_or(|c| !c.is_ascii_digit());
    (starts_ok && tag.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_'))
        .then(|| String::from_utf8_lossy(tag).into_owned())
}

/// The state a quote at `b[i]` opens in code: its prefix (`E`, `U&`) decides the form.
fn opened_by_quote(b: &[u8], i: usize) -> Lex {
    let before = |k: usize| i.checked_sub(k).map(|j| b[j]);
    let starts_word = |k: usize| before(k).is_none_or(|c| !is_word_byte(c));
    match (before(2), before(1)) {
        (_, Some(b'e' | b'E')) if starts_word(2) => Lex::EscapeQuoted,
        (Some(b'u' | b'U'), Some(b'&')) if starts_word(3) => Lex::UnicodeQuoted,
        _ => Lex::SingleQuoted,
    }
}

/// The lexical state after `text`, starting in `st`.
fn scan(mut st: Lex, text: &str) -> Lex {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        let mut step = 1;
        st = match (st, b[i]) {
            (Lex::Code, b'\'') => opened_by_quote(b, i),
            (Lex::Code, b'"') => Lex::DoubleQuoted,
            (Lex::Code, b'$') if i == 0 || !is_word_byte(b[i - 1]) => match dollar_tag(b, i) {
                Some(tag) => {
                    step = tag.len() + 2;
                    Lex::DollarQuoted(tag)
                }
                None => Lex::Code,
            },
            (Lex::Code, b'-') if next == Some(b'-') => {
                step = 2;
                Lex::LineComment
            }
            (Lex::Code, b'/') if next == Some(b'*') => {
                step = 2;
                Lex::BlockComment(1)
            }
            // A doubled quote stands for one and the string goes on.
            (q @ (Lex::SingleQuoted | Lex::EscapeQuoted | Lex::UnicodeQuoted), b'\'') => {
                if next == Some(b'\'') {
                    step = 2;
                    q
                } else {
                    Lex::Code
                }
            }
            (Lex::EscapeQuoted, b'\\') => {
                step = 2;
                Lex::EscapeQuoted
            }
            (Lex::DoubleQuoted, b'"') => {
                if next == Some(b'"') {
                    step = 2;
                    Lex::DoubleQuoted
                } else {
                    Lex::Code
                }
            }
            (Lex::DollarQuoted(tag), b'$') => {
                let close = format!("${tag}$");
                if b[i..].starts_with(close.as_bytes()) {
                    step = close.len();
                    Lex::Code
                } else {
                    Lex::DollarQuoted(tag)
                }
            }
            (Lex::LineComment, b'\n') => Lex::Code,
            (Lex::BlockComment(d), b'/') if next == Some(b'*') => {
                step = 2;
                Lex::BlockComment(d + 1)
            }
            (Lex::BlockComment(d), b'*') if next == Some(b'/') => {
                step = 2;
                if d == 1 {
                    Lex::Code
                } else {
                    Lex::BlockComment(d - 1)
                }
            }
            (st, _) => st,
        };
        i += step;
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

/// The text that stands for `value` at a place in state `st`: data, never SQL. `touches`
/// says whether the text right before or after the variable is a quote, `$` or `&`, or
/// a `-` before a negative number (a bare word there would become a string's prefix or a
/// dollar quote's tag, a minus the start of a comment).
fn substitute(name: &str, value: &str, st: &Lex, touches: bool) -> Result<String> {
    let refuse = |detail: &str| {
        Err(Error::TemplateValue {
            name: name.to_string(),
            detail: detail.to_string(),
        })
    };
    match st {
        Lex::SingleQuoted => Ok(value.replace('\'', "''")),
        Lex::EscapeQuoted | Lex::UnicodeQuoted => {
            Ok(value.replace('\\', "\\\\").replace('\'', "''"))
        }
        Lex::DoubleQuoted => Ok(value.replace('"', "\"\"")),
        Lex::DollarQuoted(_) if value.contains('$') => {
            refuse("it stands in a $$-quoted string, so it may not contain $ (or put it in '...')")
        }
        Lex::DollarQuoted(_) => Ok(value.to_string()),
        Lex::LineComment if value.contains(['\n', '\r']) => {
            refuse("it stands in a -- comment, so it may not contain a line break")
        }
        Lex::BlockComment(_) if value.contains("*/") || value.contains("/*") => {
            refuse("it stands in a /* */ comment, so it may not contain /* or */")
        }
        Lex::LineComment | Lex::BlockComment(_) => Ok(value.to_string()),
        Lex::Code if touches => refuse(
            "it stands outside quotes right next to a quote, $ or &; put a space between them, or the variable inside the quotes",
        ),
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
            let special = |c: Option<u8>| matches!(c, Some(b'\'' | b'"' | b'$' | b'&'));
            let after = rest.as_bytes().get(start + 4 + len).copied();
            let last = out.as_bytes().last().copied();
            // `-{{ n }}` with n = -5 would open a `--` comment.
            let dash = last == Some(b'-') && value.starts_with('-');
            let touches = special(last) || special(after) || dash;
            out.push_str(&substitute(name, value, &st, touches)?);
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

    /// Each string form escapes what ends it; a form that cannot escape refuses.
    #[test]
    fn every_string_form_keeps_its_value() {
        let v = |val: &str| HashMap::from([("x".to_string(), val.to_string())]);
        let attack = r"\' OR true --";
        assert_eq!(
            render("a = '{{ x }}' AND b", &v(attack)).unwrap(),
            r"a = '\'' OR true --' AND b"
        );
        assert_eq!(
            render("a = E'{{ x }}' AND b", &v(attack)).unwrap(),
            r"a = E'\\'' OR true --' AND b"
        );
        assert_eq!(
            render("a = U&'{{ x }}' AND b", &v(attack)).unwrap(),
            r"a = U&'\\'' OR true --' AND b"
        );
        // An escaped quote inside an E-string does not end it.
        assert_eq!(
            render(r"a = E'it\'s {{ x }}'", &v("y")).unwrap(),
            r"a = E'it\'s y'"
        );
        // A word ending in e is no E-string's prefix.
        assert_eq!(
            render("a = name'{{ x }}'", &v(attack)).unwrap(),
            r"a = name'\'' OR true --'"
        );
        assert_eq!(
            render("a = $$ {{ x }} $$", &v("it's")).unwrap(),
            "a = $$ it's $$"
        );
        for dollar in ["$$ OR true --", "a$", "$"] {
            let e = render("a = $t$ {{ x }} $t$", &v(dollar))
                .unwrap_err()
                .to_string();
            assert_contains(&e, "$$-quoted string");
        }
        // Nested comments: an opener in a value would hide the rest of the statement.
        let e = render("/* {{ x }} */ DELETE", &v("/*"))
            .unwrap_err()
            .to_string();
        assert_contains(&e, "may not contain /* or */");
        assert!(render("/* /* */ {{ x }} */ SELECT 1", &v("a b")).is_ok());
        // Outside quotes, next to a quote, $ or &, a bare word is refused.
        for t in [
            "{{ x }}'a'",
            "U{{ x }}'a'",
            "${{ x }}$ 'a' $E$",
            "a = {{ x }}$b$",
        ] {
            let e = render(t, &v("E")).unwrap_err().to_string();
            assert_contains(&e, "right next to a quote, $ or &");
        }
        assert_eq!(render("x = '' {{ x }}", &v("E")).unwrap(), "x = '' E");
        assert!(render("0-{{ x }} AND id = 'a'", &v("-5")).is_err());
        assert_eq!(render("0 - {{ x }}", &v("-5")).unwrap(), "0 - -5");
    }

    fn assert_contains(text: &str, part: &str) {
        assert!(text.contains(part), "expected {part:?} in {text}");
    }
}
