//! The HTML report: one self-contained page (inline CSS and SVG; no script runs, no font,
//! image or style is fetched) a security lead can read: a summary of controls by status
//! and findings by severity drawn as a chart, then each control with its severity,
//! rationale, findings, remediation and fix statements. The JSON report rides along in a
//! `<script type="application/json">` block, so the page is also a baseline.

use std::io::Write;

use serde_json::Value;

use super::meta::Severity;
use super::{Control, Seen, Status};

/// Where the embedded JSON report starts and ends.
const JSON_OPEN: &str = r#"<script type="application/json" id="cfql-report">"#;
const JSON_CLOSE: &str = "</script>";

/// The JSON report inside an HTML report, if `text` is one.
pub fn embedded_json(text: &str) -> Option<&str> {
    let start = text.find(JSON_OPEN)? + JSON_OPEN.len();
    let len = text[start..].find(JSON_CLOSE)?;
    Some(&text[start..start + len])
}

/// Text escaped for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1f2937;background:#f8fafc}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 4px}h2{font-size:1.2rem;margin:28px 0 8px}
.sub{color:#6b7280;margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px;min-width:110px}
.card b{display:block;font-size:1.6rem}
section.control{background:#fff;border:1px solid #e5e7eb;border-left-width:6px;border-radius:8px;padding:14px 18px;margin:14px 0}
section.control[data-status=ok]{border-left-color:#16a34a}
section.control[data-status=error]{border-left-color:#6b7280}
section.control[data-severity=critical][data-status=alarm]{border-left-color:#7f1d1d}
section.control[data-severity=high][data-status=alarm]{border-left-color:#dc2626}
section.control[data-severity=medium][data-status=alarm]{border-left-color:#d97706}
section.control[data-severity=low][data-status=alarm]{border-left-color:#2563eb}
h3{margin:0 0 6px;font-size:1.05rem}
.badge{display:inline-block;border-radius:4px;padding:1px 7px;font-size:.75rem;font-weight:600;color:#fff;margin-right:6px;vertical-align:middle}
.critical{background:#7f1d1d}.high{background:#dc2626}.medium{background:#d97706}.low{background:#2563eb}
.ok{background:#16a34a}.alarm{background:#b91c1c}.error{background:#6b7280}.new{background:#9333ea}.known{background:#9ca3af}
.meta{color:#6b7280;font-size:.85rem;margin:0 0 8px}
table{border-collapse:collapse;font-size:.85rem;margin:8px 0;display:block;overflow-x:auto}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;white-space:nowrap}
th{background:#f3f4f6}
pre{background:#f3f4f6;padding:8px;border-radius:6px;overflow-x:auto;font-size:.8rem}
.note{color:#92400e;font-size:.85rem}
";

/// Writes the page. `report` is the JSON report of the same controls.
pub(super) fn write(
    out: &mut dyn Write,
    report: &Value,
    controls: &[Control],
) -> std::io::Result<()> {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>cfql check report</title><style>{STYLE}</style></head><body><main>"
    )?;
    let when = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    writeln!(
        out,
        "<h1>cfql check</h1><p class=\"sub\">{} control(s), run {when}</p>",
        controls.len()
    )?;
    summary(out, controls)?;
    let mut order: Vec<&Control> = controls.iter().collect();
    // What needs action first: errors and alarms by severity, then what passed.
    order.sort_by_key(|c| {
        (
            matches!(c.status, Status::Ok),
            std::cmp::Reverse(c.meta.severity),
        )
    });
    writeln!(out, "<h2>Controls</h2>")?;
    for c in order {
        control(out, c)?;
    }
    // `<` never appears raw in the JSON, so nothing in a finding can end the block.
    let json = report.to_string().replace('<', "\\u003c");
    writeln!(out, "{JSON_OPEN}{json}{JSON_CLOSE}\n</main></body></html>")
}

fn summary(out: &mut dyn Write, controls: &[Control]) -> std::io::Result<()> {
    let count = |w: &str| controls.iter().filter(|c| c.word() == w).count();
    let findings: usize = controls.iter().map(Control::findings).sum();
    writeln!(out, "<h2>Summary</h2><div class=\"cards\" id=\"summary\">")?;
    for (key, label, n) in [
        ("controls", "controls", controls.len()),
        ("ok", "ok", count("ok")),
        ("alarm", "alarm", count("alarm")),
        ("error", "error", count("error")),
        ("findings", "findings", findings),
    ] {
        writeln!(
            out,
            "<div class=\"card\"><b data-count=\"{key}\">{n}</b>{label}</div>"
        )?;
    }
    if controls.iter().any(|c| c.judged) {
        let new: usize = controls.iter().map(Control::new_findings).sum();
        let resolved: usize = controls.iter().map(|c| c.resolved.len()).sum();
        writeln!(
            out,
            "<div class=\"card\"><b data-count=\"new\">{new}</b>new</div>\
             <div class=\"card\"><b data-count=\"resolved\">{resolved}</b>resolved</div>"
        )?;
    }
    writeln!(out, "</div>")?;
    chart(out, controls)
}

/// Bars of findings per severity, with the number of alarmed controls beside each.
fn chart(out: &mut dyn Write, controls: &[Control]) -> std::io::Result<()> {
    let per = |s: Severity| -> (usize, usize) {
        let cs = controls.iter().filter(|c| c.meta.severity == s);
        let alarms = cs.clone().filter(|c| c.findings() > 0).count();
        (alarms, cs.map(Control::findings).sum())
    };
    let max = Severity::ALL
        .iter()
        .map(|s| per(*s).1)
        .max()
        .unwrap_or(0)
        .max(1);
    writeln!(
        out,
        "<h2>Findings by severity</h2><svg role=\"img\" aria-label=\"Findings by severity\" \
         width=\"760\" height=\"150\" viewBox=\"0 0 760 150\" xmlns=\"http://www.w3.org/2000/svg\">"
    )?;
    let colors = ["#7f1d1d", "#dc2626", "#d97706", "#2563eb"];
    for (i, s) in Severity::ALL.iter().enumerate() {
        let (alarms, findings) = per(*s);
        let y = 10 + i * 34;
        let w = findings * 360 / max;
        writeln!(
            out,
            "<g data-severity=\"{sev}\" data-findings=\"{findings}\" data-alarms=\"{alarms}\">\
             <text x=\"0\" y=\"{ty}\" font-size=\"14\">{sev}</text>\
             <rect x=\"80\" y=\"{y}\" width=\"{w}\" height=\"24\" rx=\"3\" fill=\"{color}\"/>\
             <text x=\"{tx}\" y=\"{ty}\" font-size=\"13\">{findings} finding(s) in {alarms} control(s)</text></g>",
            sev = s.word(),
            ty = y + 17,
            tx = 88 + w,
            color = colors[i],
        )?;
    }
    writeln!(out, "</svg>")
}

fn control(out: &mut dyn Write, c: &Control) -> std::io::Result<()> {
    let m = &c.meta;
    writeln!(
        out,
        "<section class=\"control\" id=\"{id}\" data-status=\"{st}\" data-severity=\"{sev}\" data-findings=\"{n}\">\
         <h3><span class=\"badge {sev}\">{sev}</span><span class=\"badge {st}\">{st}</span>{title}</h3>\
         <p class=\"meta\">{id} &middot; {tags} &middot; {file}:{line}</p>",
        id = esc(&m.id),
        st = c.word(),
        sev = m.severity.word(),
        n = c.findings(),
        title = esc(&m.title),
        tags = esc(&m.tags.join(", ")),
        file = esc(&c.file),
        line = c.line,
    )?;
    if !m.rationale.is_empty() {
        writeln!(out, "<p>{}</p>", esc(&m.rationale))?;
    }
    match &c.status {
        Status::Error(e) => writeln!(out, "<pre>error: {}</pre>", esc(e))?,
        Status::Alarm(o) => {
            let cols: Vec<String> = o.schema.fields().iter().map(|f| f.name().clone()).collect();
            findings(out, c, &cols)?;
            if !m.remediation.is_empty() {
                writeln!(out, "<p><b>Remediation:</b> {}</p>", esc(&m.remediation))?;
            }
        }
        Status::Ok => {}
    }
    if !c.resolved.is_empty() {
        let ids: Vec<String> = c
            .resolved
            .iter()
            .map(|k| esc(k.split_once('|').map_or(k.as_str(), |x| x.1)))
            .collect();
        writeln!(
            out,
            "<p data-resolved=\"{}\">Resolved since the baseline: {}</p>",
            ids.len(),
            ids.join(", ")
        )?;
    }
    for n in &c.notes {
        writeln!(out, "<p class=\"note\">{}</p>", esc(n))?;
    }
    writeln!(out, "</section>")
}

fn findings(out: &mut dyn Write, c: &Control, cols: &[String]) -> std::io::Result<()> {
    let judged = !c.seen.is_empty();
    let fixes = c.fixes.iter().any(Option::is_some);
    write!(out, "<table class=\"findings\"><thead><tr>")?;
    if judged {
        write!(out, "<th>baseline</th>")?;
    }
    for col in cols {
        write!(out, "<th>{}</th>", esc(col))?;
    }
    if fixes {
        write!(out, "<th>fix</th>")?;
    }
    writeln!(out, "</tr></thead><tbody>")?;
    for (i, row) in c.rows.iter().enumerate() {
        write!(out, "<tr class=\"finding\">")?;
        if let Some(s) = c.seen.get(i) {
            let w = if *s == Seen::New { "new" } else { "known" };
            write!(out, "<td><span class=\"badge {w}\">{w}</span></td>")?;
        }
        for col in cols {
            let text = match row.get(col) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            };
            write!(out, "<td>{}</td>", esc(&text))?;
        }
        if fixes {
            let f = c.fixes.get(i).cloned().flatten().unwrap_or_default();
            write!(out, "<td><code>{}</code></td>", esc(&f))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody></table>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_the_json_is_found_again() {
        assert_eq!(esc("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
        let page = format!("<p>x</p>{JSON_OPEN}[1,\"\\u003c/script>\"]{JSON_CLOSE}");
        assert_eq!(embedded_json(&page), Some("[1,\"\\u003c/script>\"]"));
    }
}
