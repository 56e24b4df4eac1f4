//! Command-line arguments (clap).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::format::Format;
use crate::sim::FaultSpec;

/// SQL over Cloudflare API tokens and Access service tokens.
#[derive(Debug, Parser)]
#[command(
    name = "cfql",
    version,
    about = "SQL over Cloudflare API tokens and Access service tokens",
    after_help = "Examples:
  cfql --demo -c \"SELECT name, expires_on FROM cloudflare.user.tokens WHERE expires_on < now() + INTERVAL '30 days'\"
  cfql -f examples/expiring_credentials.sql --format csv
  cfql --var token_id=0123abcd... -c \"EXEC cloudflare.user.tokens.update_value @token_id='{{ token_id }}'\" --secrets-file new.jsonl
  echo 'SHOW SERVICES;' | cfql --demo
  cfql sim --listen 127.0.0.1:8787 --tokens 1000

Credentials: CLOUDFLARE_API_TOKEN, or CLOUDFLARE_EMAIL + CLOUDFLARE_API_KEY; CLOUDFLARE_ACCOUNT_ID
sets the default account; CLOUDFLARE_BASE_URL the API. A profile of ~/.config/cfql/config.toml
(--profile) supplies the same; the environment wins over the file.
Exit codes: 0 success, 1 a statement failed (or the run was interrupted), 2 usage or
configuration error; `cfql check`: 0 every control ok, 3 some alarm and no error, 1 an error."
)]
pub struct Cli {
    /// Run this SQL (repeatable; runs in order with --file).
    /// Example: -c "SELECT count(*) FROM cloudflare.user.tokens"
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub commands: Vec<String>,

    /// Run the statements of this file (repeatable).
    /// Example: -f examples/unused_tokens.sql
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Output format: table, csv, tsv, json, ndjson, markdown (default: table on a terminal, csv otherwise).
    /// Example: --format json
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Template variable for {{ name }} (repeatable).
    /// Example: --var days=7
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var, global = true)]
    pub vars: Vec<(String, String)>,

    /// List the HTTP calls writes would make; send no mutating call.
    /// Example: cfql --dry-run -f examples/rotate_expiring.sql --var days=7
    #[arg(long)]
    pub dry_run: bool,

    /// Also append secrets returned by create, roll and rotate to FILE (JSON lines, mode 0600).
    /// Example: --secrets-file rotated.jsonl
    #[arg(long, value_name = "FILE", global = true)]
    pub secrets_file: Option<PathBuf>,

    /// Record every mutating call in FILE (JSON lines, no secrets).
    /// Example: --audit-log audit.jsonl
    #[arg(long, value_name = "FILE", global = true)]
    pub audit_log: Option<PathBuf>,

    /// Profile of ~/.config/cfql/config.toml (credentials, base URL, account, limits).
    /// Give it several times, or name an aggregate profile (profiles = [...]) or a
    /// pattern, to read through several credentials at once: every table then has a
    /// `connection` column naming the profile each row came through.
    /// Example: --profile prod --profile staging
    #[arg(long, value_name = "NAME", global = true)]
    pub profile: Vec<String>,

    /// Config file instead of ~/.config/cfql/config.toml.
    /// Example: --config ./cfql.toml --profile ci
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// API base URL (overrides CLOUDFLARE_BASE_URL and the profile).
    /// Example: --base-url http://127.0.0.1:8787/client/v4
    #[arg(long, value_name = "URL", global = true)]
    pub base_url: Option<String>,

    /// Default account for account-scoped tables (overrides CLOUDFLARE_ACCOUNT_ID).
    /// Example: --account-id 0123456789abcdef0123456789abcdef
    #[arg(long, value_name = "ID", global = true)]
    pub account_id: Option<String>,

    /// HTTP calls in flight at once (default 16).
    /// Example: --concurrency 4
    #[arg(long, value_name = "N", global = true)]
    pub concurrency: Option<usize>,

    /// Longest a statement waits in all for the API budget (Cloudflare's 1,200 calls per
    /// 5 minutes) before it fails; 0 fails at once (default 900).
    /// Example: --budget-wait 60
    #[arg(long, value_name = "SECS", global = true)]
    pub budget_wait: Option<u64>,

    /// How long GET answers are reused within this run (default 60; 0 turns the cache off).
    /// Example: --cache-ttl 0
    #[arg(long, value_name = "SECS", global = true)]
    pub cache_ttl: Option<u64>,

    /// Allow UPDATE/DELETE without WHERE for this run.
    /// Example: cfql --allow-unfiltered-writes -c "DELETE FROM cloudflare.user.tokens" --dry-run
    #[arg(long)]
    pub allow_unfiltered_writes: bool,

    /// Expanded output (one field per line) for tables; default: only when a table is wider
    /// than the terminal. Example: --expanded
    #[arg(long)]
    pub expanded: bool,

    /// Start the embedded simulator with sample data and run against it.
    /// Example: cfql --demo -c "SELECT * FROM cloudflare.audit.credentials"
    #[arg(long, global = true)]
    pub demo: bool,

    /// Subcommand.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Cloudflare API simulator standalone (prints its base URL and credentials).
    Sim(SimArgs),
    /// Audit gate: each SELECT of the files is a control, its rows are findings.
    Check(CheckArgs),
    /// Serve the catalog over the PostgreSQL wire protocol (psql, JDBC, BI tools).
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// Print shell completions. Example: cfql completions bash > ~/.local/share/bash-completion/completions/cfql
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `cfql check` options (credentials, --var, --profile and --demo as for a run).
#[derive(Debug, Args)]
#[command(
    after_help = "Each SELECT is a control, titled by the first line of the comment block above it
(else FILE:LINE), described by `-- @id:`, `@severity:`, `@tags:`, `@rationale:`,
`@remediation:`, `@fix:` and `@var:` lines in that block (see the README). No rows: ok.
Rows: alarm, and the rows are its findings. A failed statement, or any write (INSERT,
UPDATE, DELETE, EXEC: nothing is sent), is an error. SET and template variables work as
in scripts.
Exit codes: 0 all ok, 3 at least one alarm (with --fail-on new: one new finding) and no
error, 1 any error, 2 usage.
Examples: cfql check --demo --benchmark credentials --format html > report.html
          cfql check --benchmark credentials --baseline last.json --fail-on new
          cfql check --demo -f examples/expiring_credentials.sql --format junit > report.xml"
)]
pub struct CheckArgs {
    /// A file of controls (repeatable). Example: -f examples/unused_tokens.sql
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// A built-in benchmark to run (repeatable): credentials. Example: --benchmark credentials
    #[arg(long, value_name = "NAME")]
    pub benchmark: Vec<String>,
    /// List the built-in benchmarks' controls (id, severity, tags, title) and exit.
    #[arg(long)]
    pub list: bool,
    /// Run only controls of this severity or worse: critical, high, medium, low.
    /// Example: --severity high
    #[arg(long, value_name = "LEVEL")]
    pub severity: Option<super::check::Severity>,
    /// Run only controls with this tag (repeatable: any of them). Example: --tag expiry
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// An earlier `--format json` report: each finding is marked new or known, and the
    /// earlier findings that are gone are listed as resolved. Example: --baseline last.json
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Which findings make the exit code 3: any (default), or new (those not in --baseline).
    #[arg(long, value_name = "WHICH", default_value = "any")]
    pub fail_on: FailOn,
    /// Report format: table, json, junit, markdown, html (default table).
    /// Example: --format html > report.html
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: CheckFormat,
}

/// Which findings fail `cfql check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Every finding.
    Any,
    /// Findings not in the baseline.
    New,
}

/// Report formats of `cfql check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// Each control's status, then its findings as a table.
    Table,
    /// One object per control, findings as JSON rows.
    Json,
    /// JUnit XML: a testsuite per file, a testcase per control.
    Junit,
    /// Markdown: a summary table, then each alarm's findings.
    Markdown,
    /// One self-contained HTML page (inline CSS and SVG): a summary chart, then each
    /// control with its rationale, findings and remediation.
    Html,
}

/// `cfql serve` options (credentials, --profile, --base-url, --demo, --secrets-file and
/// --audit-log as for a run).
#[cfg(feature = "serve")]
#[derive(Debug, Args)]
#[command(after_help = "Clients connect with dbname=cloudflare, e.g.
  psql \"host=127.0.0.1 port=5433 dbname=cloudflare user=cfql\"
The password comes from CFQL_SERVE_PASSWORD or --password-file, never from a flag; with one
set, clients authenticate with SCRAM-SHA-256. Off loopback, TLS and a password are required.
Read-only unless --allow-writes. Example: cfql serve --demo")]
pub struct ServeArgs {
    /// Address to listen on. Example: --listen 0.0.0.0:5433 (needs TLS and a password)
    #[arg(long, default_value = "127.0.0.1:5433", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// User name clients log in as (checked when a password is set).
    #[arg(long, default_value = "cfql", value_name = "NAME")]
    pub user: String,
    /// File whose first line is the password (instead of CFQL_SERVE_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Run cfql's writes (INSERT, UPDATE, REPLACE, DELETE, EXEC) for clients.
    #[arg(long)]
    pub allow_writes: bool,
    /// Logged-in connections served at once; more are refused (0: no limit).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_connections: usize,
    /// Connections still logging in, at once (they never hold a --max-connections slot).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_startups: usize,
    /// Seconds a client may take to log in before it is disconnected.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub startup_timeout: u64,
    /// Default statement_timeout of every connection, in milliseconds (0: none); a
    /// client's SET statement_timeout overrides it.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub statement_timeout: u64,
    /// Memory DataFusion may hold for all statements together, in MiB.
    #[arg(long, default_value_t = 2048, value_name = "MIB")]
    pub memory_limit: usize,
    /// Memory one statement may hold, in MiB (also the largest value repeat() and lpad() may build).
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub statement_memory_limit: usize,
    /// The longest statement text read, in bytes.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_statement_bytes: usize,
    /// Cores one statement may use, so several clients share the machine.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub partitions: usize,
    /// Seconds a stopping server waits for running statements and writes in flight.
    #[arg(long, default_value_t = 90, value_name = "SECS")]
    pub drain_timeout: u64,
}

/// `cfql sim` options.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// User-owned API tokens.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub tokens: usize,
    /// Accounts.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub accounts: usize,
    /// Account-owned API tokens per account.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub account_tokens: usize,
    /// Access service tokens per account.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub service_tokens: usize,

    /// Users, each with their own credential and user tokens: account i belongs to user
    /// i mod N, and the first account is shared with the second user. Each user's
    /// credential is printed as a ready profile.
    /// Example: cfql sim --users 3 --accounts 30
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub users: usize,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub latency_ms: u64,
    /// Seed of the sample data.
    #[arg(long, default_value_t = 42, value_name = "N")]
    pub seed: u64,
    /// Faults, e.g. "latency=20,429=0.05,500#3,drop-after@PUT:/user/tokens/{token_id}/value#1,seed=7".
    #[arg(long, value_name = "SPEC", value_parser = parse_faults)]
    pub faults: Option<FaultSpec>,
    /// Emulated rate limit: calls per credential per window (past it, one window of 429).
    #[arg(long, default_value_t = 1200, value_name = "N")]
    pub rate_limit: usize,
    /// Window of the emulated rate limit, in seconds (tests shrink Cloudflare's 300).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub rate_window: u64,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got '{s}'")),
    }
}

fn parse_faults(s: &str) -> Result<FaultSpec, String> {
    FaultSpec::parse(s).map_err(|e| e.to_string())
}
