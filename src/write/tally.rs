//! The outcomes of a write as they return: each call's audit line, its secrets (synced to
//! the secrets file before the next outcome), its result row (sent on at once), and at the
//! end the account of what took effect, what may have, and what was never sent.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value, json};

use super::exec::Sink;
use super::record::Recorder;
use super::{PlannedCall, Target};
use crate::convert::{row_lenient, schema_of};
use crate::engine::Engine;
use crate::error::{Error, Result, RowOutcome, RowState, WriteDetail};
use crate::http::ApiResponse;
use crate::notes::Notes;
use crate::output::WriteSummary;
use crate::provider::{ColumnSpec, Resource, ResponseShape, Verb};

/// A write in which every call took effect.
pub(crate) struct Finished {
    pub(crate) summary: WriteSummary,
    /// The input row of each row the stream yielded, in the order yielded (outcomes come
    /// in the order calls return; a caller that shows them all at the end sorts by this).
    pub(crate) sent: Vec<usize>,
}

/// The outcomes of a write as they return.
pub(super) struct Tally<'a> {
    target: &'a Target,
    cols: Vec<ColumnSpec>,
    /// Where each row goes the moment it is built (cfql's statements), if anywhere.
    sink: Option<&'a Sink>,
    schema: SchemaRef,
    recorder: &'a Recorder,
    total: usize,
    rows: Vec<(usize, RecordBatch)>,
    /// The input row of each row sent to the sink, in the order sent.
    sent: Vec<usize>,
    outcomes: Vec<RowOutcome>,
    failures: Vec<Error>,
    warnings: Vec<String>,
    /// Collections the calls may have changed.
    /// Paths written, per connection (each has its own cache).
    touched: Vec<(Arc<Engine>, String)>,
}

impl<'a> Tally<'a> {
    pub(super) fn new(
        target: &'a Target,
        cols: Vec<ColumnSpec>,
        total: usize,
        recorder: &'a Recorder,
        sink: Option<&'a Sink>,
    ) -> Self {
        let schema = schema_of(&cols);
        Self {
            target,
            cols,
            sink,
            schema,
            recorder,
            total,
            rows: Vec::new(),
            sent: Vec::new(),
            outcomes: Vec::new(),
            failures: Vec::new(),
            warnings: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Records one call's outcome at once: audit line, secrets, result row.
    pub(super) fn record(&mut self, call: PlannedCall, result: Result<ApiResponse>) {
        let state = match &result {
            Ok(_) => RowState::Ok,
            Err(Error::Cancelled { .. }) => RowState::NotAttempted,
            Err(Error::OutcomeUnknown { .. }) => RowState::MayHaveTakenEffect,
            Err(_) => RowState::Failed,
        };
        if state != RowState::NotAttempted {
            // Whatever the outcome, the call may have changed the resource: a later read
            // in this session must not be answered from the cache (forgotten in `finish`,
            // once per collection, before the statement returns).
            self.touched
                .push((call.via.clone(), collection_path(self.target, &call)));
            if let Err(w) = self
                .recorder
                .audit(&call, result.as_ref().map(|r| r.status))
            {
                self.warnings.push(w);
            }
        }
        match result {
            Ok(resp) => {
                let obj = result_object(self.target, &call, &resp);
                let id = obj
                    .get(self.target.resource.spec.id_column())
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(call.id.clone());
                self.keep_row(
                    call.row,
                    id.as_deref(),
                    obj,
                    (&call.scope.values, &call.via.name),
                );
                self.outcomes.push(RowOutcome {
                    row: call.row,
                    id,
                    error: None,
                    state,
                });
            }
            Err(e) => {
                let error = Some(e.to_string());
                self.outcomes.push(RowOutcome {
                    row: call.row,
                    id: call.id.clone(),
                    error,
                    state,
                });
                if state != RowState::NotAttempted {
                    self.failures.push(e);
                }
            }
        }
    }

    /// Saves the secrets of a row that took effect, then converts it for the result; a
    /// field that does not convert is shown as NULL with a warning, never as a failure.
    fn keep_row(
        &mut self,
        row: usize,
        id: Option<&str>,
        obj: Map<String, Value>,
        (scope, connection): (&[(String, Option<String>)], &str),
    ) {
        let label = format!("row {row} ({})", id.unwrap_or("no id"));
        if let Err(e) = self
            .recorder
            .save_secrets(&self.target.resource, &obj, connection)
        {
            self.warnings.push(format!("warning: the secret of {label} was NOT written to the secrets file: {e}; it is in the result"));
        }
        let value = Value::Object(obj);
        match row_lenient(&self.schema, &self.cols, &value, scope) {
            Ok((batch, problems)) => {
                if !problems.is_empty() {
                    self.warnings.push(format!(
                        "warning: {label} took effect, but its answer did not fit the table ({}); those cells are NULL. The answer as received (secrets are in their columns): {}",
                        problems.join("; "),
                        redact_secrets(&self.target.resource, &value)
                    ));
                }
                if let Some(sink) = self.sink {
                    sink.send(Ok(batch.clone()));
                    self.sent.push(row);
                }
                self.rows.push((row, batch));
            }
            Err(e) => self.warnings.push(format!(
                "warning: {label} took effect but its row could not be built: {e}"
            )),
        }
    }

    /// After the call on the session's own token: swap in a rolled value, or say what
    /// a delete or update of it means for the rest of the session.
    pub(super) fn own_token_outcome(
        &mut self,
        engine: &Engine,
        call: &PlannedCall,
        result: &Result<ApiResponse>,
    ) {
        let Ok(resp) = result else { return };
        let id = call.id.as_deref().unwrap_or("-");
        let note = match self.target.verb {
            Verb::Exec => {
                let obj = result_object(self.target, call, resp);
                let secret = self.target.resource.spec.columns.iter().filter(|c| c.secret).find_map(|c| obj.get(&c.name).and_then(Value::as_str));
                match secret {
                    Some(s) => {
                        engine.client.replace_api_token(s.to_string());
                        "it ran last, and cfql uses its new value for the rest of this session: store the new value where the old one was (CLOUDFLARE_API_TOKEN, profile)".to_string()
                    }
                    None => "it ran last".to_string(),
                }
            }
            Verb::Delete => "it ran last; later statements of this session cannot authenticate".to_string(),
            _ => "it ran last; if the change disabled or restricted it, later statements of this session may fail".to_string(),
        };
        self.warnings.push(format!(
            "note: row {} ({id}) is the token this session authenticates with: {note}",
            call.row
        ));
    }

    /// Forgets what the calls may have changed, and tells what took effect: `Ok` when
    /// every call did, else the error that carries every outcome and every row.
    pub(super) fn finish(mut self, notes: &Notes, cancelled: bool) -> Result<Finished> {
        for (engine, path) in &self.touched {
            engine.client.invalidate(path);
        }
        self.rows.sort_by_key(|(row, _)| *row);
        self.outcomes.sort_by_key(|o| o.row);
        let batches: Vec<RecordBatch> = std::mem::take(&mut self.rows)
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        let count = |s: RowState| self.outcomes.iter().filter(|o| o.state == s).count();
        let (not_attempted, uncertain) = (
            count(RowState::NotAttempted),
            count(RowState::MayHaveTakenEffect),
        );
        let failed = self.failures.len();
        let took_effect = self.total - failed - not_attempted;
        let verb = self.target.verb_name().to_string();
        let secrets_file = self.recorder.secrets_path().map(Path::to_path_buf);
        for w in self.warnings.drain(..) {
            notes.add(w);
        }
        if failed == 0 && not_attempted == 0 {
            return Ok(Finished {
                summary: WriteSummary {
                    verb,
                    took_effect,
                    secrets_file,
                },
                sent: self.sent,
            });
        }
        let detail = WriteDetail {
            uncertain,
            not_attempted,
            cancelled,
            warnings: Vec::new(),
            secrets_file,
        };
        Err(self.failure(verb, batches, detail, notes))
    }

    /// The error of a write that did not fully take effect: a single call's own error, a
    /// cancel before anything was sent, or the account of every row.
    fn failure(
        mut self,
        verb: String,
        rows: Vec<RecordBatch>,
        mut detail: WriteDetail,
        notes: &Notes,
    ) -> Error {
        let failed = self.failures.len();
        if self.total == 1 && failed == 1 {
            return self.failures.pop().expect("one failure");
        }
        if detail.not_attempted == self.total {
            let what = format!(
                "{verb}: none of its {} calls was sent; nothing changed",
                self.total
            );
            return Error::Cancelled { what };
        }
        detail.warnings = notes.take();
        Error::PartialFailure {
            verb,
            failed,
            total: self.total,
            outcomes: self.outcomes,
            succeeded: crate::error::Rows(rows),
            detail: Box::new(detail),
        }
    }
}

/// The path under which a call's object is listed and read (`/accounts/A/tokens`).
fn collection_path(target: &Target, call: &PlannedCall) -> String {
    match target.resource.spec.method(Verb::Select, false) {
        Some(list) => list.path.replace("{scope}", &call.scope.prefix),
        None => call.request.path.clone(),
    }
}

/// The result object of a call that took effect: what was read before (UPDATE, DELETE),
/// overlaid with the answer, plus the ids, scopes and StackQL envelope columns.
fn result_object(target: &Target, call: &PlannedCall, resp: &ApiResponse) -> Map<String, Value> {
    let (resource, method) = (&target.resource, &target.method);
    let mut obj = call.prior.clone();
    match (method.response, &resp.result) {
        (ResponseShape::Value, v) => {
            if let Some(c) = &method.result_column {
                obj.insert(c.clone(), v.clone());
            }
        }
        (_, Value::Object(m)) => obj.extend(m.iter().map(|(k, v)| (k.clone(), v.clone()))),
        _ => {}
    }
    if let (Some(id), Some(idspec)) = (&call.id, &resource.spec.id) {
        obj.entry(idspec.column.clone())
            .or_insert_with(|| json!(id));
        obj.insert(idspec.param.clone(), json!(id));
    }
    for (col, v) in &call.scope.values {
        if let Some(v) = v {
            obj.insert(col.clone(), json!(v));
        }
    }
    obj.insert("success".into(), json!(true));
    obj.insert("errors".into(), json!([]));
    obj.insert("messages".into(), resp.messages.clone());
    obj.insert("result".into(), resp.result.clone());
    obj
}

/// The object with every secret value replaced, for warnings (which are not results).
fn redact_secrets(resource: &Resource, v: &Value) -> Value {
    let secret_cols: Vec<&str> = resource
        .spec
        .columns
        .iter()
        .filter(|c| c.secret)
        .map(|c| c.name.as_str())
        .collect();
    fn walk(v: &Value, names: &[&str]) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        (
                            k.clone(),
                            if names.contains(&k.as_str()) {
                                json!("<secret: see its column>")
                            } else {
                                walk(x, names)
                            },
                        )
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| walk(x, names)).collect()),
            other => other.clone(),
        }
    }
    let mut out = walk(v, &secret_cols);
    // A roll's `result` is the bare secret string.
    if let Some(r) = out.get_mut("result")
        && r.is_string()
    {
        *r = json!("<secret: see its column>");
    }
    out
}
