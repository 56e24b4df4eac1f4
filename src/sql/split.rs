//! Splits a script into statements on `;`, outside quotes and comments, keeping each
//! statement's first line number for error messages.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStatement {
    /// 1-based line where the statement starts.
    pub line: usize,
    /// The statement text, without the `;`.
    pub text: String,
}

/// Whether `text` holds anything but white space and comments.
pub fn has_code(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            c if c.is_whitespace() => {}
            _ => return true,
        }
    }
    false
}

/// Where the splitter is: in code, or inside a quote or comment (where `;` is text).
#[derive(PartialEq, Clone, Copy)]
enum Lexical {
    Code,
    Single,
    Double,
    Line,
    Block,
}

impl Lexical {
    /// The state after `c` (followed by `next`) in this state.
    fn after(self, c: char, next: Option<char>) -> Lexical {
        match (self, c) {
            (Lexical::Code, '\'') => Lexical::Single,
            (Lexical::Code, '"') => Lexical::Double,
            (Lexical::Code, '-') if next == Some('-') => Lexical::Line,
            (Lexical::Code, '/') if next == Some('*') => Lexical::Block,
            (Lexical::Single, '\'') | (Lexical::Double, '"') | (Lexical::Line, '\n') => {
                Lexical::Code
            }
            (state, _) => state,
        }
    }
}

/// Splits `script` into statements. Text after the last `;` counts as a statement
/// when it holds code. `complete` tells whether the script ends outside any statement
/// (used by the REPL to know when to run).
pub fn split(script: &str) -> (Vec<ScriptStatement>, bool) {
    let mut out = Vec::new();
    let mut state = Lexical::Code;
    let (mut cur, mut line, mut start_line) = (String::new(), 1, None);
    let chars: Vec<char> = script.chars().collect();
    let mut flush = |cur: &mut String, start_line: &mut Option<usize>, line: usize| {
        if has_code(cur) {
            let line = first_code_line(cur, start_line.unwrap_or(line));
            out.push(ScriptStatement {
                line,
                text: cur.trim().to_string(),
            });
        }
        cur.clear();
        *start_line = None;
    };
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        if state == Lexical::Code && start_line.is_none() && !c.is_whitespace() {
            start_line = Some(line);
        }
        if state == Lexical::Code && c == ';' {
            flush(&mut cur, &mut start_line, line);
            i += 1;
            continue;
        }
        if state == Lexical::Block && c == '*' && next == Some('/') {
            cur.push_str("*/");
            (i, state) = (i + 2, Lexical::Code);
            continue;
        }
        state = state.after(c, next);
        line += usize::from(c == '\n');
        cur.push(c);
        i += 1;
    }
    let complete = !has_code(&cur) && matches!(state, Lexical::Code | Lexical::Line);
    flush(&mut cur, &mut start_line, line);
    (out, complete)
}

/// The line of the first code character, given the line `text` starts on.
fn first_code_line(text: &str, start: usize) -> usize {
    // `start` is where the first non-space character is; comments before the code
    // shift it by their own lines.
    let mut line = start;
    let trimmed = text.trim_start();
    let mut rest = trimmed;
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            let n = r.find('\n').map(|i| i + 1).unwrap_or(r.len());
            line += 1;
            rest = r[n..].trim_start_matches([' ', '\t', '\r']);
            while let Some(r2) = rest.strip_prefix('\n') {
                line += 1;
                rest = r2.trim_start_matches([' ', '\t', '\r']);
            }
        } else if let Some(r) = rest.strip_prefix("/*") {
            let end = r.find("*/").map(|i| i + 2).unwrap_or(r.len());
            line += r[..end].matches('\n').count();
            let after = &r[end..];
            let ws_len = after.len() - after.trim_start().len();
            line += after[..ws_len].matches('\n').count();
            rest = after.trim_start();
        } else {
            return line;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let (s, complete) = split("SELECT 'a;b';\n-- c;\nSELECT 2 /* ; */;\n\n  SELECT\n 3");
        let texts: Vec<_> = s.iter().map(|s| (s.line, s.text.as_str())).collect();
        assert_eq!(
            texts,
            vec![
                (1, "SELECT 'a;b'"),
                (3, "-- c;\nSELECT 2 /* ; */"),
                (5, "SELECT\n 3")
            ]
        );
        assert!(!complete);
        assert!(split("SELECT 1;\n-- done\n").1);
        assert!(!split("SELECT 'x;").1);
    }
}
