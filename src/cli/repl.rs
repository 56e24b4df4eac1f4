//! The REPL: rustyline with multi-line statements (until `;`), completion of keywords,
//! tables and columns, history (mode 0600), backslash commands, and Ctrl-C that cancels
//! the running statement but keeps the session.

use std::borrow::Cow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};

use super::Printer;
use super::format::{Expanded, Format};
use crate::Session;
use crate::sql::split::split;

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ORDER",
    "BY",
    "GROUP",
    "HAVING",
    "LIMIT",
    "DISTINCT",
    "COUNT",
    "AS",
    "ON",
    "JOIN",
    "LEFT",
    "UNION",
    "ALL",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "REPLACE",
    "RETURNING",
    "EXEC",
    "SHOW",
    "SERVICES",
    "RESOURCES",
    "METHODS",
    "DESCRIBE",
    "EXTENDED",
    "EXPLAIN",
    "INTERVAL",
    "now()",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "ASC",
    "DESC",
    "TRUE",
    "FALSE",
];

/// Completion and multi-line validation for the REPL.
pub struct CfqlHelper {
    words: Vec<String>,
}

impl CfqlHelper {
    fn new(session: &Session) -> Self {
        let reg = session.registry();
        let mut words: Vec<String> = KEYWORDS.iter().map(|s| s.to_string()).collect();
        words.extend(reg.all_table_names());
        for s in reg.services() {
            words.push(format!("cloudflare.{}", s.service));
        }
        for r in reg.resources() {
            words.extend(
                r.spec
                    .columns
                    .iter()
                    .filter(|c| !c.secret)
                    .map(|c| c.name.clone()),
            );
            for m in r
                .spec
                .methods
                .iter()
                .filter(|m| m.verb == crate::provider::Verb::Exec)
            {
                words.push(format!("{}.{}", r.qualified_name(), m.name));
            }
        }
        words.sort();
        words.dedup();
        Self { words }
    }
}

impl Completer for CfqlHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map(|i| i + 1)
            .unwrap_or(0);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let lower = word.to_ascii_lowercase();
        let upper_case = word.chars().all(|c| !c.is_alphabetic() || c.is_uppercase());
        let pairs = self
            .words
            .iter()
            .filter(|w| w.to_ascii_lowercase().starts_with(&lower))
            .map(|w| {
                let is_kw = KEYWORDS.contains(&w.as_str());
                let rep = if is_kw && !upper_case {
                    w.to_ascii_lowercase()
                } else {
                    w.clone()
                };
                Pair {
                    display: w.clone(),
                    replacement: rep,
                }
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for CfqlHelper {
    type Hint = String;
}

impl Highlighter for CfqlHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for CfqlHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || input.starts_with('\\') || split(input).1 {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Helper for CfqlHelper {}

/// `$XDG_DATA_HOME/cfql/history`, else `~/.local/share/cfql/history`.
pub fn history_path() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("cfql/history"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/cfql/history"))
}

/// Creates the history file with mode 0600 (or tightens an existing one), never through a link.
fn prepare_history(path: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::private_file::open_append(path, crate::private_file::Shared::Tighten).map(drop)
}

const HELP: &str = "Statements end with ';' and may span lines. Backslash commands:
  \\?              this help
  \\q              quit (or Ctrl-D)
  \\d              list tables
  \\d TABLE        columns of TABLE, with types and key params
  \\format NAME    output format: table, csv, tsv, json, ndjson, markdown
  \\timing         show how long each statement takes, its API calls and cache hits
  \\x [on|off|auto] expanded display (one field per line); auto: when wider than the terminal
Ctrl-C cancels the running statement (its HTTP calls stop) and keeps the session.
Try: SHOW SERVICES;  SELECT name, expires_on FROM cloudflare.user.tokens LIMIT 5;";

/// Runs the REPL until `\q` or Ctrl-D.
pub fn run(
    rt: &tokio::runtime::Runtime,
    session: Arc<Session>,
    format: Format,
    printer: Printer,
) -> ExitCode {
    let (mut rl, history) = match open_editor(&session) {
        Ok(editor) => editor,
        Err(code) => return code,
    };
    // Ctrl-C is caught from here on, so that it cancels a statement instead of ending the REPL.
    let interrupts = match rt.block_on(async { Interrupts::new() }) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: cannot catch Ctrl-C: {e}");
            return ExitCode::from(super::EXIT_FAILED);
        }
    };
    println!(
        "cfql {} — SQL over Cloudflare credentials. \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION")
    );
    let mut repl = Repl {
        rt,
        session,
        printer: Printer { format, ..printer },
        interrupts,
        timing: false,
    };
    loop {
        let line = match rl.readline("cfql> ") {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let _ = rl.history_mut().add(&line);
        let go_on = match text.strip_prefix('\\') {
            Some(cmd) => repl.command(cmd),
            None => {
                split(&line).0.iter().for_each(|st| repl.run(&st.text));
                true
            }
        };
        if !go_on {
            break;
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
        let _ = prepare_history(h);
    }
    ExitCode::SUCCESS
}

/// The line editor with cfql's completion and the history file (0600, no link), if
/// there is one.
fn open_editor(
    session: &Arc<Session>,
) -> Result<(Editor<CfqlHelper, DefaultHistory>, Option<PathBuf>), ExitCode> {
    let mut rl: Editor<CfqlHelper, DefaultHistory> = Editor::new().map_err(|e| {
        eprintln!("error: cannot start the line editor: {e}");
        ExitCode::from(super::EXIT_FAILED)
    })?;
    rl.set_helper(Some(CfqlHelper::new(session)));
    let history = history_path();
    if let Some(h) = &history {
        match prepare_history(h) {
            Ok(()) => {
                let _ = rl.load_history(h);
            }
            Err(e) => eprintln!("warning: history disabled ({}: {e})", h.display()),
        }
    }
    Ok((rl, history))
}

/// The state of one REPL session between lines.
struct Repl<'a> {
    rt: &'a tokio::runtime::Runtime,
    session: Arc<Session>,
    printer: Printer,
    interrupts: Interrupts,
    timing: bool,
}

impl Repl<'_> {
    fn run(&mut self, sql: &str) {
        run_one(
            self.rt,
            &self.session,
            &self.printer,
            &mut self.interrupts,
            sql,
            self.timing,
        );
    }

    /// A backslash command; `false` to leave the REPL.
    fn command(&mut self, cmd: &str) -> bool {
        let mut parts = cmd.split_whitespace();
        match (parts.next().unwrap_or(""), parts.next()) {
            ("q", _) => return false,
            ("?", _) | ("h", _) => println!("{HELP}"),
            ("timing", _) => {
                self.timing = !self.timing;
                println!("timing is {}", if self.timing { "on" } else { "off" });
            }
            ("format", Some(f)) => match f.parse::<Format>() {
                Ok(f) => {
                    self.printer.format = f;
                    println!("format is {}", f.name());
                }
                Err(e) => eprintln!("error: {e}"),
            },
            ("format", None) => {
                println!(
                    "format is {} (\\format NAME to change)",
                    self.printer.format.name()
                )
            }
            ("x", arg) => self.expanded(arg),
            ("d", None) => self.run("SHOW RESOURCES"),
            ("d", Some(t)) => self.run(&format!("DESCRIBE {t}")),
            (other, _) => eprintln!("error: unknown command \\{other} (\\? lists them)"),
        }
        true
    }

    /// `\x [on|off|auto]`: no argument toggles.
    fn expanded(&mut self, arg: Option<&str>) {
        let next = match arg {
            None if self.printer.expanded == Expanded::On => Ok(Expanded::Off),
            None => Ok(Expanded::On),
            Some(a) => a.parse::<Expanded>(),
        };
        match next {
            Ok(x) => {
                self.printer.expanded = x;
                println!(
                    "expanded display is {}",
                    format!("{x:?}").to_ascii_lowercase()
                );
            }
            Err(e) => eprintln!("error: \\x: {e}"),
        }
    }
}

/// SIGINT, caught for the whole REPL session.
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Starts catching SIGINT (must run inside the runtime).
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            Ok(Self {
                signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Forgets an interrupt that arrived while no statement ran.
    fn drain(&mut self) {
        #[cfg(unix)]
        while futures::FutureExt::now_or_never(self.signal.recv()).is_some() {}
    }

    /// Resolves at the next Ctrl-C.
    async fn next(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn run_one(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    printer: &Printer,
    interrupts: &mut Interrupts,
    sql: &str,
    timing: bool,
) {
    let start = Instant::now();
    let (calls_before, hits_before) = session.calls_and_hits();
    let cancel = crate::Cancel::new();
    // Ctrl-C cancels the statement but never drops it: a write must keep the answers of
    // the calls it already sent (their secrets), so the statement is awaited to its end.
    let result = rt.block_on(async {
        interrupts.drain();
        let run = session.execute_with(sql, &cancel);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => break r,
                _ = interrupts.next() => {
                    if !cancel.is_cancelled() {
                        printer.clear_progress();
                        eprintln!("cancelling: no new call will start; waiting for the calls already sent");
                    }
                    cancel.cancel();
                }
            }
        }
    });
    let mut out = std::io::stdout().lock();
    printer.print(&mut out, result, "statement");
    if timing {
        let (calls_now, hits_now) = session.calls_and_hits();
        let (calls, hits) = (calls_now - calls_before, hits_now - hits_before);
        eprintln!(
            "time: {:.3}s, {calls} API call(s), {hits} served from cache",
            start.elapsed().as_secs_f64()
        );
    }
}
