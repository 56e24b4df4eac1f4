//! What a statement returns: its rows, schema and notes, and for a write what took effect.
//! Shared by the session, the write path and the CLI's printer.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

/// The result of one statement. `Debug` shows its shape, never its values (a
/// write's result holds secrets).
#[derive(Clone)]
pub struct Output {
    /// Schema of the rows (also for zero rows).
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// Notes for the user (dry-run summary, fan-out warnings), meant for stderr.
    pub warnings: Vec<String>,
    /// Set for a write that took effect: a printer that cannot show the rows must say
    /// what took effect and where the secrets went.
    pub write: Option<WriteSummary>,
}

/// What a write statement did, for the caller to report when its rows cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    /// INSERT, UPDATE, DELETE or EXEC.
    pub verb: String,
    /// Rows that took effect.
    pub took_effect: usize,
    /// The secrets file the returned secrets were appended to, if any.
    pub secrets_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cols: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|c| c.name().as_str())
            .collect();
        f.debug_struct("Output")
            .field("columns", &cols)
            .field("rows", &self.num_rows())
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl Output {
    /// An output of these batches.
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        Self {
            schema,
            batches,
            warnings: Vec::new(),
            write: None,
        }
    }

    /// Total rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}
