//! What a statement has to tell its caller besides its rows, and as it goes: fan-out scopes skipped, ids
//! named twice, a list that changed while it was read, a dry run's summary. Each statement
//! gets its own [`Notes`] (so statements running at the same time never see each other's),
//! found by the plans through DataFusion's session config; a context that has none (one
//! set up by `cfql::register`, whose caller gets only batches) logs them instead of
//! keeping them, so nothing piles up in a long-running host.

use std::sync::{Arc, Mutex};

use datafusion::prelude::SessionConfig;

/// The notes of one statement.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// `None`: nobody collects them; they go to the log.
    lines: Option<Mutex<Vec<String>>>,
}

impl Notes {
    /// Notes collected for the caller.
    pub(crate) fn collected() -> Arc<Self> {
        Arc::new(Self {
            lines: Some(Mutex::new(Vec::new())),
        })
    }

    /// The notes of a plan run under `config`: the statement's, or a log-only sink.
    pub(crate) fn of(config: &SessionConfig) -> Arc<Self> {
        config.get_extension::<Notes>().unwrap_or_default()
    }

    /// Adds a note (also to the debug log).
    pub(crate) fn add(&self, line: String) {
        match &self.lines {
            Some(lines) => {
                tracing::debug!("{line}");
                lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
            None => tracing::warn!("{line}"),
        }
    }

    /// Takes the notes added so far.
    pub(crate) fn take(&self) -> Vec<String> {
        match &self.lines {
            Some(lines) => std::mem::take(&mut *lines.lock().unwrap_or_else(|p| p.into_inner())),
            None => Vec::new(),
        }
    }
}

/// Called after each page a scan receives: (table, pages so far, rows so far).
pub(crate) type ProgressFn = dyn Fn(&str, u64, u64) + Send + Sync;

/// Where one session's scans report their pages (the CLI's progress line): kept in the
/// session's config, so each session (and each fork) has its own.
#[derive(Default)]
pub(crate) struct Progress {
    listener: Mutex<Option<Arc<ProgressFn>>>,
}

impl Progress {
    /// The progress listener of a plan run under `config`, if its session has one.
    pub(crate) fn of(config: &SessionConfig) -> Option<Arc<Self>> {
        config.get_extension::<Progress>()
    }

    /// Sets (or clears) the listener.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    pub(crate) fn set(&self, f: Option<Arc<ProgressFn>>) {
        *self.listener.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }

    /// Reports a page, if anyone listens.
    pub(crate) fn report(&self, table: &str, pages: u64, rows: u64) {
        let f = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(f) = f {
            f(table, pages, rows);
        }
    }
}

/// Who runs a session's statements, when it is not the local user: the server puts the
/// connecting user and address here (`alice@127.0.0.1:51234`), and the audit log records
/// it with every call a write makes.
#[derive(Debug, Clone)]
pub(crate) struct Origin(pub(crate) String);

impl Origin {
    /// The origin of a plan run under `config`, if its session has one.
    pub(crate) fn of(config: &SessionConfig) -> Option<String> {
        config.get_extension::<Origin>().map(|o| o.0.clone())
    }
}
