//! Running a write's planned calls: at most `concurrency` at a time, the session's own
//! token last, and each outcome recorded (secrets file, audit line, result row) the moment
//! it returns. On cancel no new call starts, the calls already sent are awaited, and the
//! statement reports what took effect, what may have, and what was never sent.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream;

use super::record::Recorder;
use super::*;
use crate::cancel::Cancel;
use crate::error::{RowState, WriteDetail};
use crate::http::ApiResponse;
use crate::output::WriteSummary;
use crate::table::convert::row_lenient;

/// Runs the planned calls (or lists them, in a dry run) and builds the result.
pub(super) async fn run_calls(
    session: &WriteContext<'_>,
    resource: &Resource,
    method: &MethodSpec,
    verb: Verb,
    calls: Vec<PlannedCall>,
    returning: &Returning,
    opts: &WriteOptions<'_>,
) -> Result<Output> {
    if opts.dry_run {
        return dry_run(&calls);
    }
    let engine = session.engine().clone();
    let calls = dedupe(calls, &engine);
    let recorder = Recorder::open(&engine.config, opts.statement, returns_secrets(resource, verb))?;
    let cols = result_columns(resource, method, verb, returning)?;
    let mut tally = Tally::new(resource, method, verb, cols, calls.len(), &recorder);
    let (own, others) = split_own_token(&engine, resource, verb, calls).await;
    run_concurrently(&engine, others, &opts.cancel, &mut tally).await;
    if let Some(call) = own {
        let result = call_unless_cancelled(&engine, &call, &opts.cancel).await;
        tally.own_token_outcome(&engine, &call, &result);
        tally.record(&engine, call, result);
    }
    tally.finish(&engine, opts.cancel.is_cancelled())
}

fn dry_run(calls: &[PlannedCall]) -> Result<Output> {
    let rows = calls
        .iter()
        .map(|c| {
            vec![
                c.row.to_string(),
                c.request.method.to_string(),
                c.request.display_path(),
                c.request.body.as_ref().map(|b| b.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    let batch = text_batch(&["row", "method", "path", "body"], rows)?;
    let mut out = Output::from_batches(batch.schema(), vec![batch]);
    out.warnings.push(format!("dry run: {} call(s) listed, none sent", calls.len()));
    Ok(out)
}

/// Whether the statement's answers can hold secrets (a create, roll or rotate).
fn returns_secrets(resource: &Resource, verb: Verb) -> bool {
    matches!(verb, Verb::Insert | Verb::Exec) && resource.spec.columns.iter().any(|c| c.secret)
}

/// Drops repeated calls on the same object: rolling a token twice in one statement would
/// hand back a secret that is already dead.
fn dedupe(calls: Vec<PlannedCall>, engine: &Engine) -> Vec<PlannedCall> {
    let mut seen = HashSet::new();
    let mut repeats: BTreeMap<String, usize> = BTreeMap::new();
    let kept = calls
        .into_iter()
        .filter(|c| match &c.id {
            None => true,
            Some(id) => {
                let first = seen.insert((c.scope.prefix.clone(), id.clone()));
                if !first {
                    *repeats.entry(id.clone()).or_default() += 1;
                }
                first
            }
        })
        .collect();
    for (id, n) in repeats {
        engine.warn(format!("note: {id} is named {} times; it is called once", n + 1));
    }
    kept
}

/// Takes out the call on the token this session authenticates with, so that it runs
/// after every other call has returned (rolling or deleting it first would make the
/// others fail with 401).
async fn split_own_token(
    engine: &Engine,
    resource: &Resource,
    verb: Verb,
    calls: Vec<PlannedCall>,
) -> (Option<PlannedCall>, Vec<PlannedCall>) {
    if verb == Verb::Insert || calls.is_empty() {
        return (None, calls);
    }
    let prefixes: Vec<String> = calls.iter().map(|c| c.scope.prefix.clone()).collect::<HashSet<_>>().into_iter().collect();
    let Some((prefix, id)) = engine.own_token(resource, &prefixes).await else { return (None, calls) };
    let (mut own, others): (Vec<_>, Vec<_>) =
        calls.into_iter().partition(|c| c.scope.prefix == prefix && c.id.as_deref() == Some(id.as_str()));
    (own.pop(), others)
}

async fn call_unless_cancelled(engine: &Engine, call: &PlannedCall, cancel: &Cancel) -> Result<ApiResponse> {
    if cancel.is_cancelled() {
        return Err(Error::Cancelled { what: format!("{} {} was not sent", call.request.method, call.request.display_path()) });
    }
    engine.client.call_with(&call.request, Some(cancel)).await
}

async fn run_concurrently(engine: &Arc<Engine>, calls: Vec<PlannedCall>, cancel: &Cancel, tally: &mut Tally<'_>) {
    let conc = engine.config.concurrency.max(1);
    let mut results = stream::iter(calls)
        .map(|c| {
            let (engine, cancel) = (engine.clone(), cancel.clone());
            async move {
                let r = call_unless_cancelled(&engine, &c, &cancel).await;
                (c, r)
            }
        })
        .buffer_unordered(conc);
    while let Some((call, result)) = results.next().await {
        tally.record(engine, call, result);
    }
}

/// The outcomes of a write as they return.
struct Tally<'a> {
    resource: &'a Resource,
    method: &'a MethodSpec,
    verb: Verb,
    cols: Vec<ColumnSpec>,
    schema: SchemaRef,
    recorder: &'a Recorder,
    total: usize,
    rows: Vec<(usize, RecordBatch)>,
    outcomes: Vec<RowOutcome>,
    failures: Vec<Error>,
    warnings: Vec<String>,
    /// Collections the calls may have changed.
    touched: std::collections::BTreeSet<String>,
}

impl<'a> Tally<'a> {
    fn new(
        resource: &'a Resource,
        method: &'a MethodSpec,
        verb: Verb,
        cols: Vec<ColumnSpec>,
        total: usize,
        recorder: &'a Recorder,
    ) -> Self {
        let schema = schema_of(&cols);
        Self {
            resource,
            method,
            verb,
            cols,
            schema,
            recorder,
            total,
            rows: Vec::new(),
            outcomes: Vec::new(),
            failures: Vec::new(),
            warnings: Vec::new(),
            touched: Default::default(),
        }
    }

    /// Records one call's outcome at once: audit line, secrets, result row.
    fn record(&mut self, engine: &Engine, call: PlannedCall, result: Result<ApiResponse>) {
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
            self.touched.insert(collection_path(self.resource, &call));
            if let Err(w) = self.recorder.audit(&call, result.as_ref().map(|r| r.status)) {
                self.warnings.push(w);
            }
        }
        match result {
            Ok(resp) => {
                let obj = result_object(self.resource, self.method, &call, &resp);
                let id = obj.get("id").and_then(Value::as_str).map(str::to_string).or(call.id.clone());
                self.keep_row(engine, call.row, id.as_deref(), obj, &call.scope.values);
                self.outcomes.push(RowOutcome { row: call.row, id, error: None, state });
            }
            Err(e) => {
                let error = Some(e.to_string());
                self.outcomes.push(RowOutcome { row: call.row, id: call.id.clone(), error, state });
                if state != RowState::NotAttempted {
                    self.failures.push(e);
                }
            }
        }
    }

    /// Saves the secrets of a row that took effect, then converts it for the result; a
    /// field that does not convert is shown as NULL with a warning, never as a failure.
    fn keep_row(&mut self, engine: &Engine, row: usize, id: Option<&str>, obj: Map<String, Value>, scope: &[(String, Option<String>)]) {
        let label = format!("row {row} ({})", id.unwrap_or("no id"));
        if let Err(e) = self.recorder.save_secrets(self.resource, &obj) {
            self.warnings.push(format!("warning: the secret of {label} was NOT written to the secrets file: {e}; it is in the result"));
        }
        let value = Value::Object(obj);
        match row_lenient(&self.schema, &self.cols, &value, scope) {
            Ok((batch, problems)) => {
                if !problems.is_empty() {
                    self.warnings.push(format!(
                        "warning: {label} took effect, but its answer did not fit the table ({}); those cells are NULL. The answer as received (secrets are in their columns): {}",
                        problems.join("; "),
                        redact_secrets(self.resource, &value)
                    ));
                }
                self.rows.push((row, batch));
            }
            Err(e) => engine.warn(format!("warning: {label} took effect but its row could not be built: {e}")),
        }
    }

    /// After the call on the session's own token: swap in a rolled value, or say what
    /// a delete or update of it means for the rest of the session.
    fn own_token_outcome(&mut self, engine: &Engine, call: &PlannedCall, result: &Result<ApiResponse>) {
        let Ok(resp) = result else { return };
        let id = call.id.as_deref().unwrap_or("-");
        let note = match self.verb {
            Verb::Exec => {
                let obj = result_object(self.resource, self.method, call, resp);
                let secret = self.resource.spec.columns.iter().filter(|c| c.secret).find_map(|c| obj.get(&c.name).and_then(Value::as_str));
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
        self.warnings.push(format!("note: row {} ({id}) is the token this session authenticates with: {note}", call.row));
    }

    fn finish(mut self, engine: &Engine, cancelled: bool) -> Result<Output> {
        for path in &self.touched {
            engine.client.invalidate(path);
        }
        self.rows.sort_by_key(|(row, _)| *row);
        self.outcomes.sort_by_key(|o| o.row);
        let batches: Vec<RecordBatch> = self.rows.into_iter().map(|(_, b)| b).collect();
        let count = |s: RowState| self.outcomes.iter().filter(|o| o.state == s).count();
        let (not_attempted, uncertain) = (count(RowState::NotAttempted), count(RowState::MayHaveTakenEffect));
        let failed = self.failures.len();
        let took_effect = self.total - failed - not_attempted;
        let verb = verb_name(self.verb).to_string();
        let secrets_file = self.recorder.secrets_path().map(Path::to_path_buf);
        if failed == 0 && not_attempted == 0 {
            let mut out = Output::from_batches(self.schema, batches);
            out.warnings = self.warnings;
            out.write = Some(WriteSummary { verb, took_effect, secrets_file });
            return Ok(out);
        }
        for w in self.warnings.drain(..) {
            engine.warn(w);
        }
        if self.total == 1 && failed == 1 {
            return Err(self.failures.pop().expect("one failure"));
        }
        if not_attempted == self.total {
            return Err(Error::Cancelled { what: format!("{verb}: none of its {} calls was sent; nothing changed", self.total) });
        }
        let detail = WriteDetail { uncertain, not_attempted, cancelled, warnings: engine.take_warnings(), secrets_file };
        Err(Error::PartialFailure {
            verb,
            failed,
            total: self.total,
            outcomes: self.outcomes,
            succeeded: crate::error::Rows(batches),
            detail: Box::new(detail),
        })
    }
}

/// The path under which a call's object is listed and read (`/accounts/A/tokens`).
fn collection_path(resource: &Resource, call: &PlannedCall) -> String {
    match resource.spec.method(Verb::Select, false) {
        Some(list) => list.path.replace("{scope}", &call.scope.prefix),
        None => call.request.path.clone(),
    }
}

fn verb_name(verb: Verb) -> &'static str {
    match verb {
        Verb::Insert => "INSERT",
        Verb::Update => "UPDATE",
        Verb::Delete => "DELETE",
        _ => "EXEC",
    }
}

/// The result object of a call that took effect: what was read before (UPDATE, DELETE),
/// overlaid with the answer, plus the ids, scopes and StackQL envelope columns.
fn result_object(resource: &Resource, method: &MethodSpec, call: &PlannedCall, resp: &ApiResponse) -> Map<String, Value> {
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
        obj.entry(idspec.column.clone()).or_insert_with(|| json!(id));
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
    let secret_cols: Vec<&str> = resource.spec.columns.iter().filter(|c| c.secret).map(|c| c.name.as_str()).collect();
    fn walk(v: &Value, names: &[&str]) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), if names.contains(&k.as_str()) { json!("<secret: see its column>") } else { walk(x, names) }))
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
