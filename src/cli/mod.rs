//! The `cfql` command: a thin client of [`crate::Session`] — batch runner, REPL, demo
//! mode and the standalone simulator.

pub mod args;
mod check;
pub mod format;
mod repl;
#[cfg(feature = "serve")]
mod serve;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};

use self::args::{Cli, Command, SimArgs};
use self::format::{Expanded, Format, Layout};
use crate::error::Error;
use crate::sim::{SeedOptions, SimOptions, Simulator};
use crate::sql::split::split;
use crate::{Config, Output, Session};

/// Exit code of a failed statement.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// Where statements come from.
#[derive(Debug, Clone)]
enum Source {
    Command(usize, String),
    File(PathBuf),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let (cli, matches) = match parse_args() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let sources = ordered_sources(&cli, &matches);
    init_logging();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // The server runs several clients' statements at once: more worker threads than
    // cores, so the operating system shares the cores between a heavy statement and a
    // quick one instead of the quick one waiting for a worker (each statement uses
    // `--partitions` cores).
    #[cfg(feature = "serve")]
    if matches!(cli.command, Some(Command::Serve(_))) {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        builder.worker_threads((4 * cores).max(8));
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match cli.command {
        Some(Command::Sim(ref a)) => rt.block_on(run_sim(a)),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "cfql", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        #[cfg(feature = "serve")]
        Some(Command::Serve(ref a)) => serve::run(&rt, &cli, a),
        Some(Command::Check(ref a)) if a.list => check::list(),
        Some(Command::Check(_)) | None => run_client(&rt, cli, sources),
    }
}

/// The flags, or the exit code when they are `--help`, `--version` or wrong (a usage
/// error is one line).
fn parse_args() -> Result<(Cli, clap::ArgMatches), ExitCode> {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return Err(ExitCode::SUCCESS);
        }
        Err(e) => {
            // clap's first paragraph, on one line: the error and what it names (a
            // missing argument is on the line after "not provided:").
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = match first.join(" ") {
                s if s.is_empty() => "error: invalid arguments".to_string(),
                s => s,
            };
            eprintln!("{first} (cfql --help lists the options)");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => Ok((cli, matches)),
        Err(e) => {
            let _ = e.print();
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// `-c` and `-f` in the order given.
fn ordered_sources(cli: &Cli, matches: &clap::ArgMatches) -> Vec<Source> {
    let mut ordered: Vec<(usize, Source)> = Vec::new();
    if let Some(idx) = matches.indices_of("commands") {
        for (n, (i, c)) in idx.zip(cli.commands.iter()).enumerate() {
            ordered.push((i, Source::Command(n + 1, c.clone())));
        }
    }
    if let Some(idx) = matches.indices_of("files") {
        for (i, f) in idx.zip(cli.files.iter()) {
            ordered.push((i, Source::File(f.clone())));
        }
    }
    ordered.sort_by_key(|(i, _)| *i);
    ordered.into_iter().map(|(_, s)| s).collect()
}

/// Logs on stderr (`CFQL_LOG` sets the filter); colour only for a person at a terminal,
/// so CI logs and files get plain text.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CFQL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour)
        .try_init();
}

async fn run_sim(a: &SimArgs) -> ExitCode {
    let opts = SimOptions {
        listen: a.listen,
        seed: SeedOptions {
            seed: a.seed,
            tokens: a.tokens.max(1),
            accounts: a.accounts,
            account_tokens: a.account_tokens,
            service_tokens: a.service_tokens,
            users: a.users.max(1),
        },
        latency_ms: a.latency_ms,
        faults: a.faults.clone().unwrap_or_default(),
        rate_limit: a.rate_limit.max(1),
        rate_window: Duration::from_secs(a.rate_window.clamp(1, 86_400)),
    };
    if a.tokens > crate::sim::USER_TOKEN_QUOTA || a.account_tokens > crate::sim::ACCOUNT_TOKEN_QUOTA
    {
        eprintln!(
            "note: seeding beyond Cloudflare's quotas ({} user tokens, {} per account); creates past them are refused, as by the real API",
            crate::sim::USER_TOKEN_QUOTA,
            crate::sim::ACCOUNT_TOKEN_QUOTA
        );
    }
    let sim = match Simulator::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", a.listen);
            return ExitCode::from(EXIT_FAILED);
        }
    };
    println!("cfql simulator listening on {}", sim.base_url());
    println!("  export CLOUDFLARE_BASE_URL={}", sim.base_url());
    println!("  export CLOUDFLARE_API_TOKEN={}", sim.admin_token());
    println!(
        "  or: export CLOUDFLARE_EMAIL={} CLOUDFLARE_API_KEY={}",
        sim.email(),
        sim.api_key()
    );
    println!("  accounts: {}", sim.account_ids().join(", "));
    if sim.users() > 1 {
        println!(
            "  {} users; as profiles of ~/.config/cfql/config.toml:",
            sim.users()
        );
        for n in 1..=sim.users() {
            println!(
                "    [user{n}]\n    api_token = \"{}\"\n    base_url = \"{}\"\n    # accounts: {}",
                sim.admin_token_of(n).unwrap_or_default(),
                sim.base_url(),
                sim.accounts_of(n).len()
            );
        }
        let all: Vec<String> = (1..=sim.users()).map(|n| format!("\"user{n}\"")).collect();
        println!("    [all]\n    profiles = [{}]", all.join(", "));
    }
    println!("  request log: http://{}/__sim/requests", sim.addr());
    println!("(these are the simulator's own sample credentials; Ctrl-C stops it)");
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown();
    ExitCode::SUCCESS
}

/// The connections the flags select (`--profile`, repeated or aggregate), each with the
/// flags applied.
fn build_configs(cli: &Cli) -> Result<Vec<(String, Config)>, Error> {
    Config::load_connections(&cli.profile, cli.config.as_deref())?
        .into_iter()
        .map(|(name, c)| Ok((name, apply_flags(cli, c)?)))
        .collect()
}

/// The flags that override a profile, applied to one connection.
fn apply_flags(cli: &Cli, mut c: Config) -> Result<Config, Error> {
    if let Some(u) = &cli.base_url {
        c.base_url = u.clone();
    }
    if let Some(a) = &cli.account_id {
        c.account_id = Some(a.clone());
    }
    if let Some(n) = cli.concurrency {
        if !(1..=crate::config::MAX_CONCURRENCY).contains(&n) {
            return Err(Error::Config(format!(
                "--concurrency must be between 1 and {}, got {n}",
                crate::config::MAX_CONCURRENCY
            )));
        }
        c.concurrency = n;
    }
    if let Some(s) = cli.budget_wait {
        c.budget_wait = Duration::from_secs(s);
    }
    if let Some(s) = cli.cache_ttl {
        c.cache_ttl = Duration::from_secs(s);
    }
    c.check()
        .map_err(|e| Error::Config(format!("{e} (from the flags or profile)")))?;
    c.dry_run |= cli.dry_run;
    c.allow_unfiltered_writes |= cli.allow_unfiltered_writes;
    c.secrets_file = cli.secrets_file.clone().or(c.secrets_file);
    c.audit_log = cli.audit_log.clone().or(c.audit_log);
    for (k, v) in &cli.vars {
        c.vars.insert(k.clone(), v.clone());
    }
    Ok(c)
}

fn run_client(rt: &tokio::runtime::Runtime, cli: Cli, sources: Vec<Source>) -> ExitCode {
    let mut configs = match build_configs(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let check = match &cli.command {
        Some(Command::Check(a)) => Some(a),
        _ => None,
    };
    let sources = match check {
        Some(a) => a.files.iter().cloned().map(Source::File).collect(),
        None => sources,
    };
    // Files are read before anything runs, so a typo in a path runs nothing.
    let mut scripts = match read_scripts(&sources) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(a) = check {
        if a.files.is_empty() && a.benchmark.is_empty() {
            eprintln!(
                "error: cfql check needs -f FILE or --benchmark NAME (cfql check --list shows the built-in controls)"
            );
            return ExitCode::from(EXIT_USAGE);
        }
        match check::benchmark_scripts(&a.benchmark) {
            Ok(b) => scripts.extend(b),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let interactive = sources.is_empty() && std::io::stdin().is_terminal();
    let _sim = if cli.demo {
        match start_demo(rt, &mut configs, interactive) {
            Ok(sim) => Some(sim),
            Err(code) => return code,
        }
    } else {
        None
    };
    let session = match rt.block_on(Session::with_connections(configs)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let printer = make_printer(&cli, &session);
    let format = printer.format;
    if let Some(a) = check {
        return check::run(rt, &session, &scripts, a, &printer);
    }
    if interactive {
        return repl::run(rt, session, format, printer);
    }
    if scripts.is_empty() {
        match read_stdin() {
            Ok(text) => scripts.push(("<stdin>".into(), text)),
            Err(code) => return code,
        }
    }
    run_scripts(rt, &session, &printer, scripts)
}

/// The printer the flags and the terminal ask for: a table on a terminal, CSV in a pipe.
fn make_printer(cli: &Cli, session: &Arc<Session>) -> Printer {
    let stdout_tty = std::io::stdout().is_terminal();
    let format = cli.format.unwrap_or(if stdout_tty {
        Format::Table
    } else {
        Format::Csv
    });
    let expanded = if cli.expanded {
        Expanded::On
    } else {
        Expanded::Auto
    };
    let mut printer = Printer {
        format,
        terminal: stdout_tty,
        expanded,
        progress: None,
    };
    if std::io::stderr().is_terminal() {
        printer.install_progress(session);
    }
    printer.install_notice(session);
    printer
}

/// A script given on standard input.
fn read_stdin() -> Result<String, ExitCode> {
    let mut text = String::new();
    match std::io::stdin().read_to_string(&mut text) {
        Ok(_) => Ok(text),
        Err(e) => {
            eprintln!("error: cannot read standard input: {e}");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// The text of every `-c` and `-f`, in order, as (name for messages, text).
fn read_scripts(sources: &[Source]) -> Result<Vec<(String, String)>, ExitCode> {
    let mut scripts = Vec::new();
    for s in sources {
        match s {
            Source::Command(n, sql) => scripts.push((format!("-c #{n}"), sql.clone())),
            Source::File(p) => match std::fs::read_to_string(p) {
                Ok(t) => scripts.push((p.display().to_string(), t)),
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", p.display());
                    return Err(ExitCode::from(EXIT_USAGE));
                }
            },
        }
    }
    Ok(scripts)
}

/// Starts the embedded simulator with its sample data and points `config` at it.
fn start_demo(
    rt: &tokio::runtime::Runtime,
    configs: &mut [(String, Config)],
    interactive: bool,
) -> Result<Simulator, ExitCode> {
    let opts = SimOptions {
        seed: SeedOptions {
            seed: 42,
            tokens: 40,
            accounts: 3,
            account_tokens: 8,
            service_tokens: 6,
            users: 1,
        },
        ..SimOptions::default()
    };
    match rt.block_on(Simulator::start(opts)) {
        Ok(sim) => {
            for (_, config) in configs.iter_mut() {
                config.base_url = sim.base_url();
                config.credentials = Some(crate::Credentials::ApiToken(sim.admin_token()));
            }
            if interactive {
                eprintln!(
                    "demo: the embedded simulator with sample data at {}",
                    sim.base_url()
                );
            }
            Ok(sim)
        }
        Err(e) => {
            eprintln!("error: cannot start the demo simulator: {e}");
            Err(ExitCode::from(EXIT_FAILED))
        }
    }
}

/// Runs scripts statement by statement, stopping at the first failure or interrupt.
fn run_scripts(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    printer: &Printer,
    scripts: Vec<(String, String)>,
) -> ExitCode {
    let cancel = crate::Cancel::new();
    catch_signals(rt, cancel.clone());
    let mut out = std::io::stdout().lock();
    for (name, text) in scripts {
        for st in split(&text).0 {
            if cancel.is_cancelled() {
                eprintln!(
                    "error: interrupted; {name}:{}: {} and the statements after it were not run",
                    st.line,
                    snippet(&st.text)
                );
                return ExitCode::from(EXIT_FAILED);
            }
            let result = rt.block_on(session.execute_with(&st.text, &cancel));
            match printer.print(
                &mut out,
                result,
                &format!("{name}:{}: {}", st.line, snippet(&st.text)),
            ) {
                Printed::Ok => {}
                Printed::Failed => return ExitCode::from(EXIT_FAILED),
                Printed::OutputClosed => return ExitCode::SUCCESS,
            }
        }
    }
    if cancel.is_cancelled() {
        eprintln!("error: interrupted");
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::SUCCESS
}

/// SIGINT and SIGTERM cancel the running statement instead of killing the process: a
/// write starts no new call, and the answers of the calls already sent (their secrets)
/// are kept, recorded and printed before cfql exits.
fn catch_signals(rt: &tokio::runtime::Runtime, cancel: crate::Cancel) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let _guard = rt.enter();
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            eprintln!(
                "warning: cannot catch SIGINT/SIGTERM; an interrupted write may lose the answers of calls in flight"
            );
            return;
        };
        rt.spawn(async move {
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if !cancel.is_cancelled() {
                    eprintln!("interrupted: no new call will start; waiting for the calls already sent (their results are kept)");
                }
                cancel.cancel();
            }
        });
    }
}

/// The start of a statement, on one line, for error messages.
fn snippet(sql: &str) -> String {
    let code: String = sql
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    if code.chars().count() > 60 {
        format!("`{}...`", code.chars().take(57).collect::<String>())
    } else {
        format!("`{code}`")
    }
}

/// Prints statement results in one format, clearing the progress line first.
#[derive(Clone)]
pub struct Printer {
    /// Output format.
    pub format: Format,
    /// Stdout is a terminal (long table cells are cut, wide tables expanded).
    pub terminal: bool,
    /// When tables are shown one field per line.
    pub expanded: Expanded,
    /// The progress spinner on stderr (created when a scan reaches its second page).
    pub progress: Option<Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>>>,
}

impl Printer {
    /// Shows "table: N pages, M rows" on stderr while a scan pages (stderr a terminal only).
    fn install_progress(&mut self, session: &Session) {
        let slot: Arc<std::sync::Mutex<Option<indicatif::ProgressBar>>> = Arc::default();
        let s = slot.clone();
        session.set_progress(Some(Arc::new(move |table: &str, pages: u64, rows: u64| {
            if pages < 2 {
                return;
            }
            let mut bar = s.lock().unwrap_or_else(|p| p.into_inner());
            let b = bar.get_or_insert_with(|| {
                let b = indicatif::ProgressBar::new_spinner();
                b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                b
            });
            b.set_message(format!("{table}: {pages} pages, {rows} rows"));
            b.tick();
        })));
        self.progress = Some(slot);
    }

    /// Shows a wait for the API budget: on the progress line when one is drawn, else as
    /// one line on stderr (a log or CI output gets one line per wait).
    fn install_notice(&self, session: &Session) {
        let slot = self.progress.clone();
        let on_terminal = std::io::stderr().is_terminal();
        session
            .engine()
            .client
            .budget
            .set_notice(Some(Arc::new(move |line: &str| {
                if on_terminal && let Some(slot) = &slot {
                    let mut bar = slot.lock().unwrap_or_else(|p| p.into_inner());
                    let b = bar.get_or_insert_with(|| {
                        let b = indicatif::ProgressBar::new_spinner();
                        b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                        b.enable_steady_tick(Duration::from_millis(200));
                        b
                    });
                    b.set_message(line.to_string());
                    return;
                }
                eprintln!("{line}");
            })));
    }

    /// The table layout for this output (`cut`: a read on a terminal).
    pub fn layout(&self, cut: bool) -> Layout {
        Layout {
            cut,
            expanded: self.expanded,
            width: if self.terminal {
                terminal_width()
            } else {
                None
            },
        }
    }

    /// Prints notes and warnings on stderr, wrapped to the terminal's width on a terminal.
    fn print_notes(&self, notes: &[String]) {
        let width = if self.terminal {
            terminal_width()
        } else {
            None
        };
        for n in notes {
            match width {
                Some(w) => wrap(n, w).iter().for_each(|l| eprintln!("{l}")),
                None => eprintln!("{n}"),
            }
        }
    }

    /// Clears the progress line, if one is shown.
    pub fn clear_progress(&self) {
        if let Some(slot) = &self.progress
            && let Some(b) = slot.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            b.finish_and_clear();
        }
    }

    /// Prints a statement's result (stdout) or error (stderr, prefixed with `where_`).
    pub fn print(
        &self,
        out: &mut dyn Write,
        result: crate::Result<Output>,
        where_: &str,
    ) -> Printed {
        self.clear_progress();
        match result {
            Ok(o) => {
                // A write's rows hold what it did (and its secrets): never shortened.
                let cut = self.terminal && o.write.is_none();
                let written = write_all(out, self.format, &o.schema, &o.batches, self.layout(cut));
                self.print_notes(&o.warnings);
                match (written, &o.write) {
                    (Ok(()), _) => Printed::Ok,
                    (Err(e), None) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        Printed::OutputClosed
                    }
                    (Err(e), None) => {
                        eprintln!("error: {where_}: cannot write the output: {e}");
                        Printed::Failed
                    }
                    (Err(e), Some(w)) => {
                        eprintln!(
                            "error: {where_}: cannot write the output ({e}): {}",
                            lost_rows(&w.verb, w.took_effect, w.secrets_file.as_deref())
                        );
                        Printed::Failed
                    }
                }
            }
            Err(e @ Error::PartialFailure { .. }) => {
                self.print_partial(out, &e, where_);
                Printed::Failed
            }
            Err(e) => {
                eprintln!("error: {where_}: {}", render(&e));
                Printed::Failed
            }
        }
    }

    /// A bulk write that did not fully succeed: the rows that took effect first (their
    /// secrets must reach the user), then every row's outcome, then the counts.
    fn print_partial(&self, out: &mut dyn Write, e: &Error, where_: &str) {
        let Error::PartialFailure {
            verb,
            failed,
            total,
            outcomes,
            succeeded,
            detail,
        } = e
        else {
            return;
        };
        let crate::WriteDetail {
            not_attempted,
            warnings,
            secrets_file,
            ..
        } = detail.as_ref();
        if let Some(schema) = succeeded.first().map(|b| b.schema())
            && let Err(err) = write_all(out, self.format, &schema, succeeded, self.layout(false))
        {
            let took = total - failed - not_attempted;
            eprintln!(
                "error: cannot write the output ({err}): {}",
                lost_rows(verb, took, secrets_file.as_deref())
            );
        }
        self.print_notes(warnings);
        for o in outcomes {
            let id = o.id.as_deref().unwrap_or("-");
            match (&o.error, o.state) {
                (None, _) => eprintln!("  row {} ({id}): ok", o.row),
                (Some(_), crate::RowState::NotAttempted) => {
                    eprintln!("  row {} ({id}): not attempted (cancelled)", o.row)
                }
                (Some(err), crate::RowState::MayHaveTakenEffect) => {
                    eprintln!("  row {} ({id}): may have taken effect: {err}", o.row)
                }
                (Some(err), _) => eprintln!("  row {} ({id}): error: {err}", o.row),
            }
        }
        eprintln!("error: {where_}: {}", e.headline());
    }
}

/// An error as the command line shows it: the library's words, plus the flag that fixes
/// it where there is one (the library names facts, never flags).
pub(crate) fn render(e: &Error) -> String {
    match e {
        Error::MissingVariable { name } => format!("{e}: pass --var {name}=VALUE"),
        Error::NoCredential => format!("{e} (--profile NAME picks a profile)"),
        Error::RateLimited { .. } => format!("{e} (--concurrency sets how many calls run at once)"),
        _ => e.to_string(),
    }
}

/// What became of a statement's printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printed {
    /// Printed.
    Ok,
    /// The statement failed, or its output could not be written.
    Failed,
    /// The reader went away (`| head -1`): not an error, but stop.
    OutputClosed,
}

/// Writes and flushes a result.
fn write_all(
    out: &mut dyn Write,
    format: Format,
    schema: &crate::arrow::datatypes::SchemaRef,
    batches: &[crate::arrow::record_batch::RecordBatch],
    layout: Layout,
) -> std::io::Result<()> {
    format::write(out, format, schema, batches, layout)?;
    out.flush()
}

/// `text` cut at spaces into lines of at most `width` characters, the later ones
/// indented by two spaces (a word longer than the line stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if line.is_empty() {
            line.push_str(word);
        } else if line.chars().count() + 1 + word.chars().count() <= width {
            line.push(' ');
            line.push_str(word);
        } else {
            lines.push(std::mem::replace(&mut line, format!("  {word}")));
        }
    }
    lines.push(line);
    lines
}

/// Columns of the terminal on stdout, if it is one (`COLUMNS` when the size is unknown).
pub fn terminal_width() -> Option<usize> {
    #[cfg(unix)]
    {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a `winsize` into the pointer given, nothing else.
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
        if ok && ws.ws_col > 0 {
            return Some(ws.ws_col as usize);
        }
    }
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok())
}

/// What the user must know when a write's rows could not be shown.
fn lost_rows(verb: &str, took_effect: usize, secrets_file: Option<&std::path::Path>) -> String {
    let rows = format!("{took_effect} row(s) of this {verb} took effect");
    match secrets_file {
        Some(p) => format!("{rows}; the secrets they returned are in {}", p.display()),
        None => format!(
            "{rows}; any secret they returned could not be shown and is lost (pass --secrets-file to keep secrets on disk as they arrive)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn notes_wrap_at_spaces_with_an_indent() {
        let lines = wrap("note: one two three four five", 12);
        assert_eq!(lines, ["note: one", "  two three", "  four five"]);
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            ["averyveryverylongword", "  x"]
        );
    }
}
