//! `cfql check`: audit gates for CI. Each SELECT of the files is a control titled by the
//! comment block above it; its rows are findings. No rows is `ok`, rows are an `alarm`, a
//! failed statement (or any write: check mode never writes) is an `error`.

use std::io::Write;
use std::process::ExitCode;

use datafusion::sql::sqlparser::ast::Statement;
use serde_json::{Value, json};

use super::args::CheckFormat;
use super::format::{self, Format, json_rows};
use super::{EXIT_FAILED, Printer};
use crate::sql::parse::CfqlStatement;
use crate::sql::split::{ScriptStatement, split};
use crate::{Output, Session};

/// Exit code of a check with an alarm and no error.
pub const EXIT_ALARM: u8 = 3;

/// What a control found.
enum Status {
    Ok,
    Alarm(Output),
    Error(String),
}

/// One control and its result.
struct Control {
    file: String,
    line: usize,
    title: String,
    status: Status,
}

impl Control {
    fn findings(&self) -> usize {
        match &self.status {
            Status::Alarm(o) => o.num_rows(),
            _ => 0,
        }
    }

    fn word(&self) -> &'static str {
        match self.status {
            Status::Ok => "ok",
            Status::Alarm(_) => "alarm",
            Status::Error(_) => "error",
        }
    }
}

/// Runs every control of `files` (name, text) and prints the report; returns the exit code.
pub(super) fn run(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    files: &[(String, String)],
    format: CheckFormat,
    printer: &Printer,
) -> ExitCode {
    let mut controls = Vec::new();
    for (name, text) in files {
        for st in split(text).0 {
            if let Some(c) = run_statement(rt, session, name, &st) {
                controls.push(c);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let written = match format {
        CheckFormat::Table => write_table(&mut out, &controls, printer),
        CheckFormat::Markdown => write_markdown(&mut out, &controls),
        CheckFormat::Json => write_json(&mut out, &controls),
        CheckFormat::Junit => write_junit(&mut out, files, &controls),
    };
    let summary = summary(&controls);
    if format != CheckFormat::Table {
        eprintln!("{summary}");
    }
    match written.and_then(|()| out.flush()) {
        // The reader went away (`| head`): the verdict still stands.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("error: cannot write the report: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
        Ok(()) => {}
    }
    if controls
        .iter()
        .any(|c| matches!(c.status, Status::Error(_)))
    {
        ExitCode::from(EXIT_FAILED)
    } else if controls
        .iter()
        .any(|c| matches!(c.status, Status::Alarm(_)))
    {
        ExitCode::from(EXIT_ALARM)
    } else {
        ExitCode::SUCCESS
    }
}

/// A control for a query (or a failed or refused statement); `None` for set-up statements
/// (`SET`, `CREATE VIEW`) that ran.
fn run_statement(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    file: &str,
    st: &ScriptStatement,
) -> Option<Control> {
    // The title as the variables make it ("within {{ days }} days" reads "within 30 days").
    let rendered = ScriptStatement {
        line: st.line,
        text: session.render(&st.text).unwrap_or_else(|_| st.text.clone()),
    };
    let (title, line) = title_and_line(file, &rendered);
    let control = |status| {
        Some(Control {
            file: file.to_string(),
            line,
            title: title.clone(),
            status,
        })
    };
    let is_control = match session.statement(&st.text) {
        Err(e) => return control(Status::Error(super::render(&e))),
        Ok(s) if s.is_write() || matches!(s, CfqlStatement::ExplainWrite(_)) => {
            return control(Status::Error(
                "check mode never writes: a write (INSERT, UPDATE, DELETE, EXEC) is refused, and nothing was sent".into(),
            ));
        }
        Ok(CfqlStatement::SetOption { .. }) => false,
        Ok(CfqlStatement::Query(q)) => matches!(*q, Statement::Query(_)),
        Ok(_) => true,
    };
    match rt.block_on(session.execute(&st.text)) {
        Err(e) => control(Status::Error(super::render(&e))),
        Ok(_) if !is_control => None,
        Ok(o) if o.num_rows() == 0 => control(Status::Ok),
        Ok(o) => control(Status::Alarm(o)),
    }
}

/// The first line of the comment block right above the statement (the splitter's line is
/// already the line where the statement's code starts); `FILE:LINE` when there is none.
fn title_and_line(file: &str, st: &ScriptStatement) -> (String, usize) {
    let mut comments: Vec<String> = Vec::new();
    for l in st.text.lines() {
        let t = l.trim();
        if let Some(c) = t.strip_prefix("--") {
            comments.push(c.trim().to_string());
        } else if !t.is_empty() {
            break;
        } else if !comments.is_empty() {
            comments.clear(); // a blank line ends a block that is not right above
        }
    }
    let title = comments
        .into_iter()
        .find(|c| !c.is_empty())
        .unwrap_or_else(|| format!("{file}:{}", st.line));
    (title, st.line)
}

fn summary(controls: &[Control]) -> String {
    let count = |w: &str| controls.iter().filter(|c| c.word() == w).count();
    let findings: usize = controls.iter().map(Control::findings).sum();
    format!(
        "{} control{}: {} ok, {} alarm ({findings} finding{}), {} error",
        controls.len(),
        if controls.len() == 1 { "" } else { "s" },
        count("ok"),
        count("alarm"),
        if findings == 1 { "" } else { "s" },
        count("error")
    )
}

fn write_table(
    out: &mut dyn Write,
    controls: &[Control],
    printer: &Printer,
) -> std::io::Result<()> {
    for c in controls {
        let n = c.findings();
        writeln!(
            out,
            "{:<5}  {}  ({}:{}){}",
            c.word().to_uppercase(),
            c.title,
            c.file,
            c.line,
            if n > 0 {
                format!("  {n} finding(s)")
            } else {
                String::new()
            }
        )?;
        match &c.status {
            Status::Alarm(o) => format::write(
                out,
                Format::Table,
                &o.schema,
                &o.batches,
                printer.layout(printer.terminal),
            )?,
            Status::Error(e) => writeln!(out, "       {e}")?,
            Status::Ok => {}
        }
    }
    writeln!(out, "{}", summary(controls))
}

fn write_markdown(out: &mut dyn Write, controls: &[Control]) -> std::io::Result<()> {
    let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    writeln!(
        out,
        "| status | control | location | findings |\n|---|---|---|---|"
    )?;
    for c in controls {
        writeln!(
            out,
            "| {} | {} | {}:{} | {} |",
            c.word(),
            esc(&c.title),
            c.file,
            c.line,
            c.findings()
        )?;
    }
    for c in controls {
        match &c.status {
            Status::Alarm(o) => {
                writeln!(out, "\n### {} ({}:{})\n", esc(&c.title), c.file, c.line)?;
                format::write(
                    out,
                    Format::Markdown,
                    &o.schema,
                    &o.batches,
                    Default::default(),
                )?;
            }
            Status::Error(e) => writeln!(
                out,
                "\n### {} ({}:{})\n\nerror: {}",
                esc(&c.title),
                c.file,
                c.line,
                esc(e)
            )?,
            Status::Ok => {}
        }
    }
    writeln!(out, "\n{}", summary(controls))
}

fn write_json(out: &mut dyn Write, controls: &[Control]) -> std::io::Result<()> {
    let items: Vec<Value> = controls
        .iter()
        .map(|c| {
            let findings = match &c.status {
                Status::Alarm(o) => json_rows(&o.batches),
                _ => Vec::new(),
            };
            let error = match &c.status {
                Status::Error(e) => json!(e),
                _ => Value::Null,
            };
            json!({"title": c.title, "file": c.file, "line": c.line, "status": c.word(), "findings": findings, "error": error})
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &items).map_err(std::io::Error::other)?;
    writeln!(out)
}

/// JUnit XML, the report format CI systems display: a testsuite per file, a testcase
/// per control, `<failure>` holding an alarm's findings, `<error>` an error.
fn write_junit(
    out: &mut dyn Write,
    files: &[(String, String)],
    controls: &[Control],
) -> std::io::Result<()> {
    let count = |cs: &[&Control], w: &str| cs.iter().filter(|c| c.word() == w).count();
    let all: Vec<&Control> = controls.iter().collect();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="cfql check" tests="{}" failures="{}" errors="{}">"#,
        all.len(),
        count(&all, "alarm"),
        count(&all, "error")
    )?;
    for (file, _) in files {
        let cs: Vec<&Control> = controls.iter().filter(|c| &c.file == file).collect();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}">"#,
            xml(file),
            cs.len(),
            count(&cs, "alarm"),
            count(&cs, "error")
        )?;
        for c in cs {
            write!(
                out,
                r#"    <testcase name="{}" classname="{}" file="{}" line="{}""#,
                xml(&c.title),
                xml(file),
                xml(file),
                c.line
            )?;
            match &c.status {
                Status::Ok => writeln!(out, "/>")?,
                Status::Alarm(o) => {
                    let text = datafusion::arrow::util::pretty::pretty_format_batches(&o.batches)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    writeln!(out, ">")?;
                    writeln!(
                        out,
                        r#"      <failure type="alarm" message="{} finding(s)">{}</failure>"#,
                        o.num_rows(),
                        xml(&text)
                    )?;
                    writeln!(out, "    </testcase>")?;
                }
                Status::Error(e) => {
                    writeln!(out, ">")?;
                    writeln!(out, r#"      <error type="error" message="{}"/>"#, xml(e))?;
                    writeln!(out, "    </testcase>")?;
                }
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// Text escaped for XML 1.0 (characters XML cannot hold at all are dropped).
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_comment_block_right_above() {
        let st = |text: &str| ScriptStatement {
            line: 3,
            text: text.into(),
        };
        assert_eq!(
            title_and_line("a.sql", &st("-- Expiring soon\n-- more words\nSELECT 1")),
            ("Expiring soon".into(), 3)
        );
        assert_eq!(
            title_and_line("a.sql", &st("\n-- old note\n\nSELECT 1")),
            ("a.sql:3".into(), 3)
        );
        assert_eq!(
            title_and_line("a.sql", &st("SELECT 1")),
            ("a.sql:3".into(), 3)
        );
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
