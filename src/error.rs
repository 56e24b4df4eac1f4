//! Typed errors of the library; the CLI renders them. No variant ever holds a secret or credential.

use std::path::PathBuf;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;

/// One error reported by the Cloudflare API (`errors[]` of the envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiMessage {
    /// Cloudflare error code, such as 9109.
    pub code: i64,
    /// Cloudflare's message.
    pub message: String,
}

/// What became of one row of a bulk write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// The call took effect and its answer was read.
    Ok,
    /// The API refused the call: nothing changed.
    Failed,
    /// The call was sent but its answer was lost or was a 5xx: it may have taken effect.
    MayHaveTakenEffect,
    /// The statement was cancelled before this call was sent.
    NotAttempted,
}

/// The outcome of one row of a bulk write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOutcome {
    /// 1-based row number in the statement's input.
    pub row: usize,
    /// Object id, when known.
    pub id: Option<String>,
    /// `None` when the call succeeded, else why it did not.
    pub error: Option<String>,
    /// What became of the row.
    pub state: RowState,
}

/// Everything that can go wrong in cfql.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error envelope or status.
    #[error("Cloudflare API error: HTTP {status} on {method} {path}: {}", format_messages(.errors))]
    Api {
        /// The status the API answered with.
        status: u16,
        /// The call's HTTP method (`PUT`), so a caller can tell a read from a write.
        method: String,
        /// The call's path below the base URL (`/user/tokens/abc/value`), never a credential.
        path: String,
        /// The envelope's errors (may be empty when the body was not an envelope).
        errors: Vec<ApiMessage>,
    },
    /// Still rate limited (HTTP 429) after the retry budget was spent.
    #[error(
        "rate limited by Cloudflare on {method} {path} (HTTP 429{}): gave up after {attempts} attempt(s){}; wait and retry, or make fewer calls at once",
        .code.map(|c| format!(", code {c}")).unwrap_or_default(),
        .retry_after.map(|s| format!(" (Retry-After {s} s is beyond the retry budget)")).unwrap_or_default()
    )]
    RateLimited {
        /// The call's HTTP method (`PUT`), so a caller can tell a read from a write.
        method: String,
        /// The call's path below the base URL (`/user/tokens/abc/value`), never a credential.
        path: String,
        /// Cloudflare code, if the body had one.
        code: Option<i64>,
        /// Attempts made.
        attempts: u32,
        /// The last `Retry-After`, in seconds, when the server sent one.
        retry_after: Option<u64>,
    },
    /// The request never got an answer (connection refused, reset, timeout).
    #[error("network error on {method} {url}: {detail}")]
    Network {
        /// The call's HTTP method (`PUT`), so a caller can tell a read from a write.
        method: String,
        /// Base URL plus path (never credentials).
        url: String,
        /// What happened, in the words of the transport or cfql.
        detail: String,
    },
    /// The API answered with a body cfql could not read.
    #[error("unreadable response from {method} {path} (HTTP {status}): {detail}")]
    Decode {
        /// The call's HTTP method (`PUT`), so a caller can tell a read from a write.
        method: String,
        /// The call's path below the base URL (`/user/tokens/abc/value`), never a credential.
        path: String,
        /// The status the API answered with.
        status: u16,
        /// What was wrong with it.
        detail: String,
    },
    /// A call that is not a GET got no answer, a 5xx or an unreadable one: it may have happened.
    #[error(
        "{method} {path}: {detail}; the call may have taken effect on Cloudflare's side. It was not retried. Check with: {check}"
    )]
    OutcomeUnknown {
        /// The call's HTTP method (`PUT`), so a caller can tell a read from a write.
        method: String,
        /// The call's path below the base URL (`/user/tokens/abc/value`), never a credential.
        path: String,
        /// What happened, in the words of the transport or cfql.
        detail: String,
        /// A statement that shows whether it happened.
        check: String,
    },
    /// A table needs a parameter the statement did not supply.
    #[error("{table} needs {param}: {hint}")]
    MissingParam {
        /// The table, as `cloudflare.<service>.<table>`.
        table: String,
        /// The missing parameter.
        param: String,
        /// How to supply it.
        hint: String,
    },
    /// A name in a statement is not a table.
    #[error("table '{name}' not found{} (SHOW RESOURCES lists the tables)", did_you_mean(.suggestion))]
    UnknownTable {
        /// The name as written.
        name: String,
        /// The closest table name, if one is close.
        suggestion: Option<String>,
    },
    /// A name is not a service (`SHOW RESOURCES IN x`).
    #[error("unknown service '{name}' (services: {})", .services.join(", "))]
    UnknownService {
        /// The name as written.
        name: String,
        /// The services there are.
        services: Vec<String>,
    },
    /// A column a statement names does not exist where it is used.
    #[error("{}unknown column '{column}'{} (columns: {})", prefix(.context), did_you_mean(.suggestion), .columns.join(", "))]
    UnknownColumn {
        /// Where (`RETURNING of cloudflare.user.tokens`), when it helps.
        context: Option<String>,
        /// The name as written.
        column: String,
        /// The closest column, if one is close.
        suggestion: Option<String>,
        /// The columns there are.
        columns: Vec<String>,
    },
    /// A write names a column it may not set (INSERT) or change (UPDATE).
    #[error("{statement}: column '{column}' cannot be {}; {}({}: {})", .action.past(), did_you_mean_then(.suggestion), .action.adjective(), .allowed.join(", "))]
    NotSettable {
        /// `INSERT INTO cloudflare.user.tokens` or `UPDATE ...`.
        statement: String,
        /// Whether the column was set on create or changed by an update.
        action: SetAction,
        /// The column.
        column: String,
        /// The closest column that can be set.
        suggestion: Option<String>,
        /// The columns that can be.
        allowed: Vec<String>,
    },
    /// EXEC names a method the resource does not have.
    #[error("{table} has no method '{method}'; {}(EXEC methods: {}; SHOW METHODS IN {table} lists all)", did_you_mean_then(.suggestion), if .methods.is_empty() { "none".to_string() } else { .methods.join(", ") })]
    UnknownMethod {
        /// The table, as `cloudflare.<service>.<table>`.
        table: String,
        /// The method as written.
        method: String,
        /// The closest method name.
        suggestion: Option<String>,
        /// The EXEC methods there are.
        methods: Vec<String>,
    },
    /// EXEC passes a parameter the method does not take.
    #[error("{statement}: unknown parameter @{param}; {}(parameters: {})", did_you_mean_then(&.suggestion.as_ref().map(|s| format!("@{s}"))), .params.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(", "))]
    UnknownParam {
        /// `EXEC cloudflare.user.tokens.roll`.
        statement: String,
        /// The parameter as written.
        param: String,
        /// The closest parameter.
        suggestion: Option<String>,
        /// The parameters the method takes.
        params: Vec<String>,
    },
    /// A table has no method for this kind of statement.
    #[error("{table} does not support {verb}; its methods are: {}", .methods.join(", "))]
    NotSupported {
        /// The table, as `cloudflare.<service>.<table>`.
        table: String,
        /// SELECT, INSERT, UPDATE, DELETE or EXEC.
        verb: String,
        /// Its methods, as `name (VERB)`.
        methods: Vec<String>,
    },
    /// Rows of a write failed validation: nothing was sent.
    #[error("{statement} refused, nothing was {}: {}", .action.outcome(), .rows.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    RowsRejected {
        /// `INSERT INTO cloudflare.user.tokens`, `UPDATE ...`.
        statement: String,
        /// What the statement would have done.
        action: SetAction,
        /// Each rejected row with its problems.
        rows: Vec<RejectedRow>,
    },
    /// `SET` names an option cfql does not have.
    #[error("unknown option {name} (options: {})", .options.join(", "))]
    UnknownOption {
        /// The option as written.
        name: String,
        /// The options there are.
        options: Vec<String>,
    },
    /// A value is not acceptable where it is used.
    #[error("{place}: {problem}")]
    InvalidValue {
        /// Where the value is (`SET cfql.dry_run`, `@@json`, `column expires_on`).
        place: String,
        /// What is wrong with it and what is expected.
        problem: String,
    },
    /// The statement would have to wait longer than its ceiling for the API budget.
    #[error(
        "{why}: the statement would have to wait {} for the API budget, more than the {} allowed (budget_wait_secs); run it later or raise the ceiling",
        crate::budget::human(*.needed),
        crate::budget::human(*.ceiling)
    )]
    BudgetWait {
        /// How long the next call would have to wait.
        needed: std::time::Duration,
        /// The ceiling.
        ceiling: std::time::Duration,
        /// Why: the budget is spent, or a 429.
        why: String,
    },
    /// Some scopes of a fan-out failed; the query stopped rather than return partial rows.
    #[error(
        "{table}: {failed} of {total} scopes failed; the query was stopped rather than return partial rows (fanout_errors = \"warn\" in the profile returns the others' rows with warnings):\n  {}",
        .causes.join("\n  ")
    )]
    FanOut {
        /// The table, as `cloudflare.<service>.<table>`.
        table: String,
        /// Scopes that failed.
        failed: usize,
        /// Scopes read.
        total: usize,
        /// One line per distinct cause: count, cause, example scopes.
        causes: Vec<String>,
    },
    /// A listing has more pages than `max_pages` allows (or a server never stops paging).
    #[error(
        "{endpoint}: {} more than max_pages ({max}); narrow the query with WHERE, or raise max_pages in the profile",
        .pages.map(|p| format!("the list has {p} pages,")).unwrap_or_else(|| format!("read {max} pages and the API still had more:"))
    )]
    TooManyPages {
        /// The list call.
        endpoint: String,
        /// Pages the API reported, when it said.
        pages: Option<u64>,
        /// The limit.
        max: u64,
    },
    /// A statement uses a clause cfql does not carry out; it is refused, never ignored.
    #[error("{statement} with {clause} is not supported by cfql; nothing was sent. {hint}")]
    UnsupportedClause {
        /// INSERT, UPDATE or DELETE.
        statement: String,
        /// The clause, such as `USING`.
        clause: String,
        /// What to write instead.
        hint: String,
    },
    /// A statement was refused for safety.
    #[error("{0}")]
    Refused(String),
    /// Statement text could not be parsed (the message names the line and column).
    #[error("SQL error: {message}")]
    Syntax {
        /// The parser's message, or what cfql expected.
        message: String,
    },
    /// A `{{ name }}` variable had no value.
    #[error("template variable '{{{{ {name} }}}}' has no value")]
    MissingVariable {
        /// The variable's name, without braces.
        name: String,
    },
    /// A `{{ name }}` value that would change the statement's shape.
    #[error("template variable '{{{{ {name} }}}}': {detail}")]
    TemplateValue {
        /// The variable's name, without braces.
        name: String,
        /// Why its value was refused.
        detail: String,
    },
    /// A provider manifest is invalid.
    #[error("provider manifest {file}: {field}: {message}")]
    Manifest {
        /// Manifest file.
        file: String,
        /// Offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// One connection (credential) of several failed; the statement was stopped rather than
    /// return the other connections' rows alone.
    #[error(
        "connection '{name}' failed: {source}\n(the statement was stopped rather than return the other connections' rows alone; WHERE connection <> '{name}' leaves it out, and fanout_errors = \"warn\" on the aggregate profile returns the others' rows with a warning)"
    )]
    Connection {
        /// The connection (profile) name.
        name: String,
        /// What failed.
        source: Box<Error>,
    },
    /// No credential is configured, and a call was about to be made.
    #[error(
        "no Cloudflare credential: set CLOUDFLARE_API_TOKEN (or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY), or a profile with api_token"
    )]
    NoCredential,
    /// Configuration is missing or invalid.
    #[error("configuration error: {0}")]
    Config(String),
    /// Some rows of a bulk write failed, may have taken effect, or were not attempted
    /// (the statement was cancelled); the rows in `succeeded` took effect.
    #[error("{}", report(.verb, *.failed, *.total, .detail, .outcomes))]
    PartialFailure {
        /// INSERT, UPDATE, DELETE or EXEC.
        verb: String,
        /// Rows that were sent and did not certainly take effect (those that may have included).
        failed: usize,
        /// Rows planned.
        total: usize,
        /// Every row's outcome.
        outcomes: Vec<RowOutcome>,
        /// Result rows of the rows that succeeded (secrets included), so none is lost.
        succeeded: Rows,
        /// Counts and notes beyond `failed`.
        detail: Box<WriteDetail>,
    },
    /// The statement was cancelled before it changed anything (or before a call was sent).
    #[error("cancelled: {what}")]
    Cancelled {
        /// What was not done.
        what: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An error from the query engine.
    #[error("{0}")]
    DataFusion(Box<DataFusionError>),
    /// A statement larger or deeper than cfql plans safely (operators, nesting).
    #[error("{0}")]
    TooComplex(String),
    /// A fault of cfql itself (a statement it builds did not parse): never the input's.
    #[error("internal error in cfql: {0}; nothing was sent (please report it)")]
    Internal(String),
}

/// What a write does to the columns it names: for error wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAction {
    /// INSERT: set on create.
    Create,
    /// UPDATE / REPLACE: changed.
    Change,
}

impl SetAction {
    fn past(self) -> &'static str {
        match self {
            SetAction::Create => "set on create",
            SetAction::Change => "changed",
        }
    }

    fn outcome(self) -> &'static str {
        match self {
            SetAction::Create => "created",
            SetAction::Change => "changed",
        }
    }

    fn adjective(self) -> &'static str {
        match self {
            SetAction::Create => "settable",
            SetAction::Change => "changeable",
        }
    }
}

/// A row of a write that failed validation, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// 1-based row number in the statement's input.
    pub row: usize,
    /// The object's id, for an UPDATE.
    pub id: Option<String>,
    /// What is wrong with the row.
    pub problems: Vec<String>,
}

impl std::fmt::Display for RejectedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "row {} ({id}): {}", self.row, self.problems.join("; ")),
            None => write!(f, "row {}: {}", self.row, self.problems.join("; ")),
        }
    }
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!("; did you mean {s}?"))
        .unwrap_or_default()
}

fn did_you_mean_then(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!("did you mean {s}? "))
        .unwrap_or_default()
}

fn prefix(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!("{s}: ")).unwrap_or_default()
}

/// More about a bulk write that did not fully succeed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteDetail {
    /// Of `failed`, the rows that may have taken effect (answer lost, or a 5xx).
    pub uncertain: usize,
    /// Rows never sent because the statement was cancelled.
    pub not_attempted: usize,
    /// Whether the statement was cancelled.
    pub cancelled: bool,
    /// Notes about single rows (a field that did not convert, the session's own token),
    /// meant for stderr.
    pub warnings: Vec<String>,
    /// The secrets file the rows that took effect were appended to, if any.
    pub secrets_file: Option<PathBuf>,
}

/// Result rows that may hold secrets: usable as `&[RecordBatch]`, while `Debug`
/// prints only their shape, so a logged or unwrapped error never shows a secret.
#[derive(Clone, Default)]
pub struct Rows(pub Vec<RecordBatch>);

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: usize = self.0.iter().map(RecordBatch::num_rows).sum();
        write!(f, "Rows({n} rows, values redacted)")
    }
}

impl std::ops::Deref for Rows {
    type Target = Vec<RecordBatch>;
    fn deref(&self) -> &Vec<RecordBatch> {
        &self.0
    }
}

fn format_messages(errors: &[ApiMessage]) -> String {
    if errors.is_empty() {
        return "no error details in the response".into();
    }
    errors
        .iter()
        .map(|e| format!("code {}: {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn summarize(outcomes: &[RowOutcome]) -> String {
    outcomes
        .iter()
        .filter(|o| o.state != RowState::NotAttempted)
        .filter_map(|o| {
            o.error.as_ref().map(|e| {
                format!(
                    "row {} ({}): {e}",
                    o.row,
                    o.id.as_deref().unwrap_or("no id")
                )
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The one-line account of a write that did not fully succeed: what took effect, what may
/// have, what failed and what was never sent.
fn report(
    verb: &str,
    failed: usize,
    total: usize,
    detail: &WriteDetail,
    outcomes: &[RowOutcome],
) -> String {
    let WriteDetail {
        uncertain,
        not_attempted,
        cancelled,
        ..
    } = *detail;
    let took = total - failed - not_attempted;
    let mut text = if cancelled {
        format!(
            "{verb} cancelled: {took} of {total} rows took effect, {not_attempted} not attempted"
        )
    } else {
        format!("{verb} failed for {failed} of {total} rows ({took} took effect)")
    };
    if cancelled && failed > 0 {
        text.push_str(&format!(", {failed} failed"));
    }
    if uncertain > 0 {
        text.push_str(&format!(
            "; {uncertain} may have taken effect (see each row)"
        ));
    }
    let rows = summarize(outcomes);
    if !rows.is_empty() {
        text.push_str(": ");
        text.push_str(&rows);
    }
    text
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        // Errors raised by cfql inside DataFusion (a scan's HTTP error) come back as
        // themselves, however DataFusion wrapped them on the way.
        match e {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(mine) => *mine,
                Err(other) => match other.downcast::<DataFusionError>() {
                    Ok(df) => Error::from(*df),
                    Err(other) => Error::DataFusion(Box::new(DataFusionError::External(other))),
                },
            },
            DataFusionError::Context(ctx, inner) => match Error::from(*inner) {
                Error::DataFusion(d) => {
                    Error::DataFusion(Box::new(DataFusionError::Context(ctx, d)))
                }
                mine => mine,
            },
            DataFusionError::Shared(arc) => match std::sync::Arc::try_unwrap(arc) {
                Ok(inner) => Error::from(inner),
                Err(arc) => match mine_in(&arc) {
                    Some(mine) => mine.duplicate(),
                    None => Error::DataFusion(Box::new(DataFusionError::Shared(arc))),
                },
            },
            other => Error::DataFusion(Box::new(other)),
        }
    }
}

/// cfql's error inside a DataFusion error that others also hold.
fn mine_in(e: &DataFusionError) -> Option<&Error> {
    match e {
        DataFusionError::External(inner) => inner
            .downcast_ref::<Error>()
            .or_else(|| inner.downcast_ref::<DataFusionError>().and_then(mine_in)),
        DataFusionError::Context(_, inner) => mine_in(inner),
        DataFusionError::Shared(inner) => mine_in(inner),
        _ => None,
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

impl Error {
    /// A syntax error with this message.
    pub(crate) fn syntax(message: impl Into<String>) -> Self {
        Error::Syntax {
            message: message.into(),
        }
    }

    /// A clause cfql does not carry out, refused with what to write instead.
    pub(crate) fn unsupported(statement: &str, clause: &str, hint: &str) -> Self {
        Error::UnsupportedClause {
            statement: statement.into(),
            clause: clause.into(),
            hint: hint.into(),
        }
    }

    /// The Cloudflare error codes carried, if the API answered.
    pub fn api_codes(&self) -> Vec<i64> {
        match self {
            Error::Api { errors, .. } => errors.iter().map(|e| e.code).collect(),
            Error::RateLimited { code, .. } => code.iter().copied().collect(),
            _ => Vec::new(),
        }
    }

    /// A copy of an error the HTTP client returns (a failed GET shared by every caller
    /// that waited on it). Other variants, which the client never returns, keep their text.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Api {
                status,
                method,
                path,
                errors,
            } => Error::Api {
                status: *status,
                method: method.clone(),
                path: path.clone(),
                errors: errors.clone(),
            },
            Error::RateLimited {
                method,
                path,
                code,
                attempts,
                retry_after,
            } => Error::RateLimited {
                method: method.clone(),
                path: path.clone(),
                code: *code,
                attempts: *attempts,
                retry_after: *retry_after,
            },
            Error::Network {
                method,
                url,
                detail,
            } => Error::Network {
                method: method.clone(),
                url: url.clone(),
                detail: detail.clone(),
            },
            Error::Decode {
                method,
                path,
                status,
                detail,
            } => Error::Decode {
                method: method.clone(),
                path: path.clone(),
                status: *status,
                detail: detail.clone(),
            },
            Error::Cancelled { what } => Error::Cancelled { what: what.clone() },
            Error::BudgetWait {
                needed,
                ceiling,
                why,
            } => Error::BudgetWait {
                needed: *needed,
                ceiling: *ceiling,
                why: why.clone(),
            },
            Error::NoCredential => Error::NoCredential,
            Error::Connection { name, source } => Error::Connection {
                name: name.clone(),
                source: Box::new(source.duplicate()),
            },
            // A fan-out's grouped failure reaches the caller through DataFusion's shared
            // errors: it keeps its kind (it is not a configuration error).
            Error::FanOut {
                table,
                failed,
                total,
                causes,
            } => Error::FanOut {
                table: table.clone(),
                failed: *failed,
                total: *total,
                causes: causes.clone(),
            },
            other => Error::Config(other.to_string()),
        }
    }

    /// The error in one line: for a bulk write, the counts without every row's detail
    /// (a printer shows the rows on lines of their own).
    pub fn headline(&self) -> String {
        match self {
            Error::PartialFailure {
                verb,
                failed,
                total,
                detail,
                ..
            } => report(verb, *failed, *total, detail, &[]),
            other => other.to_string(),
        }
    }

    /// What went wrong, without naming the call: errors with the same cause on different
    /// scopes read the same (for grouping fan-out failures).
    pub fn cause(&self) -> String {
        match self {
            Error::Api { status, errors, .. } => {
                format!("HTTP {status}: {}", format_messages(errors))
            }
            Error::RateLimited { code, .. } => {
                format!(
                    "rate limited (HTTP 429{})",
                    code.map(|c| format!(", code {c}")).unwrap_or_default()
                )
            }
            Error::Network { detail, .. } => format!("network error: {detail}"),
            Error::Decode { status, detail, .. } => {
                format!("unreadable response (HTTP {status}): {detail}")
            }
            other => other.to_string(),
        }
    }

    /// HTTP status, if the API answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

/// Result with cfql's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
