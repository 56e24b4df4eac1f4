//! The text reports of `cfql check`: a table for a terminal, Markdown, JSON (what a
//! baseline reads back) and JUnit XML; HTML is `html.rs`.

use std::io::Write;

use serde_json::{Value, json};

use super::super::format::{self, Format};
use super::{CheckFormat, Control, Printer, Seen, Status, summary};

/// Writes the report to stdout in `format`.
pub(super) fn write(
    format: CheckFormat,
    files: &[(String, String)],
    controls: &[Control],
    printer: &Printer,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        CheckFormat::Table => write_table(&mut out, controls, printer),
        CheckFormat::Markdown => write_markdown(&mut out, controls),
        CheckFormat::Json => write_json(&mut out, controls),
        CheckFormat::Junit => write_junit(&mut out, files, controls),
        CheckFormat::Html => super::html::write(&mut out, &report_json(controls), controls),
    }?;
    out.flush()
}

fn counts(c: &Control) -> String {
    let n = c.findings();
    let mut s = String::new();
    if n > 0 {
        s.push_str(&format!("  {n} finding(s)"));
    }
    if c.judged {
        s.push_str(&format!(
            ", {} new, {} resolved",
            c.new_findings(),
            c.resolved.len()
        ));
    }
    s
}

fn write_table(
    out: &mut dyn Write,
    controls: &[Control],
    printer: &Printer,
) -> std::io::Result<()> {
    for c in controls {
        writeln!(
            out,
            "{:<5}  [{}] {}  ({}:{}){}",
            c.word().to_uppercase(),
            c.meta.severity.word(),
            c.meta.title,
            c.file,
            c.line,
            counts(c)
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
        for n in &c.notes {
            writeln!(out, "       {n}")?;
        }
    }
    writeln!(out, "{}", summary(controls))
}

fn write_markdown(out: &mut dyn Write, controls: &[Control]) -> std::io::Result<()> {
    let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    writeln!(
        out,
        "| status | severity | control | location | findings |\n|---|---|---|---|---|"
    )?;
    for c in controls {
        writeln!(
            out,
            "| {} | {} | {} | {}:{} | {} |",
            c.word(),
            c.meta.severity.word(),
            esc(&c.meta.title),
            c.file,
            c.line,
            c.findings()
        )?;
    }
    for c in controls {
        match &c.status {
            Status::Alarm(o) => {
                writeln!(
                    out,
                    "\n### {} ({}:{})\n",
                    esc(&c.meta.title),
                    c.file,
                    c.line
                )?;
                if !c.meta.remediation.is_empty() {
                    writeln!(out, "Remediation: {}\n", esc(&c.meta.remediation))?;
                }
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
                esc(&c.meta.title),
                c.file,
                c.line,
                esc(e)
            )?,
            Status::Ok => {}
        }
    }
    writeln!(out, "\n{}", summary(controls))
}

/// The JSON report: one object per control. `findings` are the rows; `fixes` and (with a
/// baseline) `baseline` run beside them, one entry per finding.
pub(super) fn report_json(controls: &[Control]) -> Value {
    let items: Vec<Value> = controls
        .iter()
        .map(|c| {
            let error = match &c.status {
                Status::Error(e) => json!(e),
                _ => Value::Null,
            };
            let mut o = json!({
                "id": c.meta.id, "title": c.meta.title, "severity": c.meta.severity.word(),
                "tags": c.meta.tags, "rationale": c.meta.rationale,
                "remediation": c.meta.remediation, "file": c.file, "line": c.line,
                "status": c.word(), "findings": c.rows, "fixes": c.fixes, "notes": c.notes,
                "error": error,
            });
            if c.judged {
                let seen: Vec<&str> = c
                    .seen
                    .iter()
                    .map(|s| if *s == Seen::New { "new" } else { "known" })
                    .collect();
                let resolved: Vec<Value> = c.resolved.iter().map(|k| resolved_json(k)).collect();
                o["baseline"] = json!(seen);
                o["resolved"] = json!(resolved);
            }
            o
        })
        .collect();
    Value::Array(items)
}

/// A resolved finding's key (`control|kind|id`) as `{kind, id}`.
pub(super) fn resolved_json(key: &str) -> Value {
    let mut parts = key.splitn(3, '|').skip(1);
    json!({"kind": parts.next().unwrap_or_default(), "id": parts.next().unwrap_or_default()})
}

fn write_json(out: &mut dyn Write, controls: &[Control]) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &report_json(controls))
        .map_err(std::io::Error::other)?;
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
                xml(&c.meta.title),
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
pub(super) fn xml(s: &str) -> String {
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
    fn xml_escapes_and_drops_what_xml_cannot_hold() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(
            resolved_json("c|user_token|abc"),
            json!({"kind": "user_token", "id": "abc"})
        );
    }
}
