//! `cfql check`: audit gates for CI. Each SELECT of the files (or of a built-in
//! benchmark) is a control, described by the comment block above it; its rows are
//! findings. No rows is `ok`, rows are an `alarm`, a failed statement (or any write: check
//! mode never writes) is an `error`. A baseline marks each finding new or known.

mod baseline;
mod benchmark;
pub(super) mod html;
mod meta;
mod report;

use std::collections::BTreeSet;
use std::process::ExitCode;

use datafusion::sql::sqlparser::ast::Statement;
use serde_json::{Map, Value};

pub use self::meta::Severity;
use super::args::{CheckArgs, CheckFormat, FailOn};
use super::format::json_rows;
use super::{EXIT_FAILED, EXIT_USAGE, Printer};
use crate::sql::parse::CfqlStatement;
use crate::sql::split::{ScriptStatement, split};
use crate::{Output, Session};
use baseline::Baseline;
use meta::{Meta, finding_key};

pub(super) use benchmark::{benchmark_scripts, list};

/// Exit code of a check with an alarm and no error.
pub const EXIT_ALARM: u8 = 3;

/// What a control found.
enum Status {
    Ok,
    Alarm(Output),
    Error(String),
}

/// A finding against the baseline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    New,
    Known,
}

/// One control and its result.
struct Control {
    file: String,
    line: usize,
    meta: Meta,
    status: Status,
    /// The findings as JSON rows (empty unless an alarm).
    rows: Vec<Map<String, Value>>,
    /// The statement fixing each finding, where the control has one.
    fixes: Vec<Option<String>>,
    /// Each finding against the baseline (empty without one).
    seen: Vec<Seen>,
    /// Keys of the baseline's findings of this control that are gone.
    resolved: Vec<String>,
    /// Notes the statement made (a kind of credential left out, a list that changed).
    notes: Vec<String>,
    /// Whether a baseline judged it.
    judged: bool,
}

impl Control {
    fn findings(&self) -> usize {
        self.rows.len()
    }

    fn new_findings(&self) -> usize {
        self.seen.iter().filter(|s| **s == Seen::New).count()
    }

    fn word(&self) -> &'static str {
        match self.status {
            Status::Ok => "ok",
            Status::Alarm(_) => "alarm",
            Status::Error(_) => "error",
        }
    }
}

/// Which controls run, and how the outcome is judged.
struct Selection {
    severity: Option<Severity>,
    tags: Vec<String>,
    baseline: Option<Baseline>,
}

impl Selection {
    fn wants(&self, m: &Meta) -> bool {
        self.severity.is_none_or(|s| m.severity >= s)
            && (self.tags.is_empty() || m.tags.iter().any(|t| self.tags.contains(t)))
    }
}

/// Runs every control of `files` (name, text) and prints the report; returns the exit code.
pub(super) fn run(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    files: &[(String, String)],
    args: &CheckArgs,
    printer: &Printer,
) -> ExitCode {
    let baseline = match args.baseline.as_deref().map(Baseline::load).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let selection = Selection {
        severity: args.severity,
        tags: args.tag.clone(),
        baseline,
    };
    let mut controls = Vec::new();
    for (name, text) in files {
        for st in split(text).0 {
            if let Some(c) = run_statement(rt, session, name, &st, &selection) {
                controls.push(c);
            }
        }
    }
    let written = report::write(args.format, files, &controls, printer);
    if args.format != CheckFormat::Table {
        eprintln!("{}", summary(&controls));
    }
    match written {
        // The reader went away (`| head`): the verdict still stands.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("error: cannot write the report: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
        Ok(()) => {}
    }
    verdict(&controls, args.fail_on)
}

/// 1 for any error; 3 for an alarm (with `--fail-on new`: for a new finding); else 0.
fn verdict(controls: &[Control], fail_on: FailOn) -> ExitCode {
    let error = controls
        .iter()
        .any(|c| matches!(c.status, Status::Error(_)));
    let alarm = match fail_on {
        FailOn::Any => controls.iter().any(|c| c.findings() > 0),
        FailOn::New => controls.iter().any(|c| c.new_findings() > 0),
    };
    if error {
        ExitCode::from(EXIT_FAILED)
    } else if alarm {
        ExitCode::from(EXIT_ALARM)
    } else {
        ExitCode::SUCCESS
    }
}

/// A control for a query (or a failed or refused statement); `None` for set-up statements
/// (`SET`) that ran, and for controls the selection leaves out (nothing is sent for them).
fn run_statement(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    file: &str,
    st: &ScriptStatement,
    selection: &Selection,
) -> Option<Control> {
    let fallback = format!("{file}:{}", st.line);
    let parsed = meta::parse(&st.text, &fallback);
    let meta = match &parsed {
        Ok(m) => m.clone(),
        Err(_) => meta::parse("", &fallback).expect("no fields"),
    };
    // Defaults first: the statement is read with its variables filled in.
    for (k, v) in &meta.vars {
        session.default_var(k, v);
    }
    let statement = session.statement(&st.text);
    let is_query = matches!(
        &statement,
        Ok(CfqlStatement::Query(q)) if matches!(**q, Statement::Query(_))
    );
    if is_query && !selection.wants(&meta) {
        return None;
    }
    // The title as the variables make it ("within {{ days }} days" reads "within 30 days").
    let mut meta = meta;
    meta.title = session.render(&meta.title).unwrap_or(meta.title);
    let control = |status| Some(new_control(file, st.line, meta.clone(), status, Vec::new()));
    if let Err(e) = parsed {
        return control(Status::Error(format!("{fallback}: {e}")));
    }
    let is_control = match statement {
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
    let mut c = match rt.block_on(session.execute(&st.text)) {
        Err(e) => return control(Status::Error(super::render(&e))),
        Ok(_) if !is_control => return None,
        Ok(o) => {
            let notes = o.warnings.clone();
            // A partial answer (fanout_errors = "warn": a scope or a connection left out)
            // cannot say a control passed, nor that its findings are all there is.
            let missing = notes
                .iter()
                .find(|n| n.contains(crate::engine::ROWS_MISSING));
            let status = if let Some(m) = missing {
                Status::Error(format!("the answer is partial: {m}"))
            } else if o.num_rows() == 0 {
                Status::Ok
            } else {
                Status::Alarm(o)
            };
            new_control(file, st.line, meta, status, notes)
        }
    };
    judge(&mut c, selection.baseline.as_ref());
    Some(c)
}

fn new_control(file: &str, line: usize, meta: Meta, status: Status, notes: Vec<String>) -> Control {
    let rows: Vec<Map<String, Value>> = match &status {
        Status::Alarm(o) => json_rows(&o.batches)
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let fixes = rows.iter().map(|r| meta.fix_for(r)).collect();
    Control {
        file: file.to_string(),
        line,
        meta,
        status,
        rows,
        fixes,
        seen: Vec::new(),
        resolved: Vec::new(),
        notes,
        judged: false,
    }
}

/// Marks each finding new or known and lists the baseline's findings that are gone.
fn judge(c: &mut Control, baseline: Option<&Baseline>) {
    let Some(b) = baseline else { return };
    c.judged = true;
    let keys: Vec<String> = c.rows.iter().map(|r| finding_key(&c.meta.id, r)).collect();
    c.seen = keys
        .iter()
        .map(|k| {
            if b.knows(&c.meta.id, k) {
                Seen::Known
            } else {
                Seen::New
            }
        })
        .collect();
    let now: BTreeSet<String> = keys.into_iter().collect();
    c.resolved = b.resolved(&c.meta.id, &now);
}

fn summary(controls: &[Control]) -> String {
    let count = |w: &str| controls.iter().filter(|c| c.word() == w).count();
    let findings: usize = controls.iter().map(Control::findings).sum();
    let judged = controls.iter().any(|c| c.judged);
    let baseline = if judged {
        let new: usize = controls.iter().map(Control::new_findings).sum();
        let resolved: usize = controls.iter().map(|c| c.resolved.len()).sum();
        format!(", {new} new, {resolved} resolved")
    } else {
        String::new()
    };
    format!(
        "{} control{}: {} ok, {} alarm ({findings} finding{}{baseline}), {} error",
        controls.len(),
        if controls.len() == 1 { "" } else { "s" },
        count("ok"),
        count("alarm"),
        if findings == 1 { "" } else { "s" },
        count("error")
    )
}
