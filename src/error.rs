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

/// The outcome of one row of a bulk write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOutcome {
    /// 1-based row number in the statement's input.
    pub row: usize,
    /// Object id, when known.
    pub id: Option<String>,
    /// `None` when the call succeeded, else why it failed.
    pub error: Option<String>,
}

/// Everything that can go wrong in cfql.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error envelope or status.
    #[error("Cloudflare API error: HTTP {status} on {method} {path}: {}", format_messages(.errors))]
    Api {
        /// HTTP status.
        status: u16,
        /// HTTP method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// The envelope's errors (may be empty when the body was not an envelope).
        errors: Vec<ApiMessage>,
    },
    /// Still rate limited (HTTP 429) after the retry budget was spent.
    #[error(
        "rate limited by Cloudflare on {method} {path} (HTTP 429{}): gave up after {attempts} attempt(s){}; wait and retry, or lower --concurrency / the rate limit in the config",
        .code.map(|c| format!(", code {c}")).unwrap_or_default(),
        .retry_after.map(|s| format!(" (Retry-After {s} s is beyond the retry budget)")).unwrap_or_default()
    )]
    RateLimited {
        /// HTTP method.
        method: String,
        /// Path below the base URL.
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
        /// HTTP method.
        method: String,
        /// Base URL plus path (never credentials).
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The API answered with a body cfql could not read.
    #[error("unreadable response from {method} {path} (HTTP {status}): {detail}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// HTTP status.
        status: u16,
        /// What was wrong with it.
        detail: String,
    },
    /// A non-idempotent call (create, roll, rotate) got no answer: it may have happened.
    #[error(
        "{method} {path} got no answer ({detail}); the call may have taken effect on Cloudflare's side. It was not retried. Check with: {check}"
    )]
    OutcomeUnknown {
        /// HTTP method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// What went wrong.
        detail: String,
        /// A statement that shows whether it happened.
        check: String,
    },
    /// A table needs a parameter the statement did not supply.
    #[error("{table} needs {param}: {hint}")]
    MissingParam {
        /// The table.
        table: String,
        /// The missing parameter.
        param: String,
        /// How to supply it.
        hint: String,
    },
    /// A value in a statement is not acceptable.
    #[error("{0}")]
    InvalidInput(String),
    /// A statement was refused for safety.
    #[error("{0}")]
    Refused(String),
    /// Statement text could not be parsed.
    #[error("SQL error: {0}")]
    Sql(String),
    /// A `{{ name }}` variable had no value.
    #[error("template variable '{{{{ {name} }}}}' has no value: pass --var {name}=VALUE")]
    MissingVariable {
        /// The variable.
        name: String,
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
    /// Configuration is missing or invalid.
    #[error("configuration error: {0}")]
    Config(String),
    /// Some rows of a bulk write failed; the others took effect.
    #[error("{verb} failed for {failed} of {total} rows: {}", summarize(.outcomes))]
    PartialFailure {
        /// INSERT, UPDATE, DELETE or EXEC.
        verb: String,
        /// Rows that failed.
        failed: usize,
        /// Rows attempted.
        total: usize,
        /// Every row's outcome.
        outcomes: Vec<RowOutcome>,
        /// Result rows of the rows that succeeded (secrets included), so none is lost.
        succeeded: Rows,
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
    errors.iter().map(|e| format!("code {}: {}", e.code, e.message)).collect::<Vec<_>>().join("; ")
}

fn summarize(outcomes: &[RowOutcome]) -> String {
    outcomes
        .iter()
        .filter_map(|o| o.error.as_ref().map(|e| format!("row {} ({}): {e}", o.row, o.id.as_deref().unwrap_or("no id"))))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        // Errors raised by cfql inside DataFusion (a scan's HTTP error) come back as themselves.
        match e {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(mine) => *mine,
                Err(other) => Error::DataFusion(Box::new(DataFusionError::External(other))),
            },
            DataFusionError::Context(ctx, inner) => match Error::from(*inner) {
                Error::DataFusion(d) => Error::DataFusion(Box::new(DataFusionError::Context(ctx, d))),
                mine => mine,
            },
            DataFusionError::Shared(arc) => match std::sync::Arc::try_unwrap(arc) {
                Ok(inner) => Error::from(inner),
                Err(arc) => Error::DataFusion(Box::new(DataFusionError::Shared(arc))),
            },
            other => Error::DataFusion(Box::new(other)),
        }
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

impl Error {
    /// The Cloudflare error codes carried, if the API answered.
    pub fn api_codes(&self) -> Vec<i64> {
        match self {
            Error::Api { errors, .. } => errors.iter().map(|e| e.code).collect(),
            Error::RateLimited { code, .. } => code.iter().copied().collect(),
            _ => Vec::new(),
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
