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

/// Splits `script` into statements. Text after the last `;` counts as a statement
/// when it holds code. `complete` tells whether the script ends outside any statement
/// (used by the REPL to know when to run).
pub fn split(script: &str) -> (Vec<ScriptStatement>, bool) {
    #[derive(PartialEq)]
    enum St {
        Code,
        Single,
        Double,
        Line,
        Block,
    }
    let mut out = Vec::new();
    let mut state = St::Code;
    let mut cur = String::new();
    let mut line = 1;
    let mut start_line: Option<usize> = None;
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if state == St::Code && start_line.is_none() && !c.is_whitespace() {
            start_line = Some(line);
        }
        match state {
            St::Code => match c {
                '\'' => state = St::Single,
                '"' => state = St::Double,
                '-' if next == Some('-') => state = St::Line,
                '/' if next == Some('*') => state = St::Block,
                ';' => {
                    if has_code(&cur) {
                        out.push(ScriptStatement {
                            line: first_code_line(&cur, start_line.unwrap_or(line)),
                            text: cur.trim().to_string(),
                        });
                    }
                    cur.clear();
                    start_line = None;
                    i += 1;
                    continue;
                }
                _ => {}
            },
            St::Single if c == '\'' => state = St::Code,
            St::Double if c == '"' => state = St::Code,
            St::Line if c == '\n' => state = St::Code,
            St::Block if c == '*' && next == Some('/') => {
                cur.push(c);
                cur.push('/');
                i += 2;
                state = St::Code;
                continue;
            }
            _ => {}
        }
        if c == '\n' {
            line += 1;
        }
        cur.push(c);
        i += 1;
    }
    let complete =
        !has_code(&cur) && state != St::Single && state != St::Double && state != St::Block;
    if has_code(&cur) {
        out.push(ScriptStatement {
            line: first_code_line(&cur, start_line.unwrap_or(line)),
            text: cur.trim().to_string(),
        });
    }
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
