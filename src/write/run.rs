//! Running a write's planned calls: at most `concurrency` at a time, the session's own
//! token last, and each outcome recorded (secrets file, audit line, result row) the moment
//! it returns. On cancel no new call starts, the calls already sent are awaited, and the
//! statement reports what took effect, what may have, and what was never sent.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream;

use super::exec::Sink;
use super::record::Recorder;
use super::tally::{Finished, Tally};
use super::{PlannedCall, Target};
use crate::cancel::Cancel;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::http::ApiResponse;
use crate::notes::Notes;
use crate::provider::{ColumnSpec, Verb};

/// One write's run: where its calls go and where their outcomes go.
pub(super) struct Run<'a> {
    /// The first connection: the session's settings (secrets file, audit log, concurrency).
    /// Each call goes through its own (`PlannedCall::via`).
    pub(super) engine: &'a Engine,
    pub(super) target: &'a Target,
    /// The statement text, for the audit log.
    pub(super) statement: &'a str,
    /// Who runs it, when not the local user (the server's client), for the audit log.
    pub(super) origin: Option<String>,
    pub(super) cancel: &'a Cancel,
    pub(super) sink: &'a Sink,
    /// The statement's notes (ids named twice, the session's own token).
    pub(super) notes: &'a Notes,
}

impl Run<'_> {
    /// Makes the calls and records each outcome as it returns; the rows of `cols` are sent
    /// to the sink as they are built when `stream_rows`. `Ok` when every call took effect.
    pub(super) async fn run(
        &self,
        calls: Vec<PlannedCall>,
        cols: &[ColumnSpec],
        stream_rows: bool,
    ) -> Result<Finished> {
        let calls = dedupe(calls, self.notes);
        let recorder = Recorder::open(
            &self.engine.config,
            self.statement,
            self.origin.clone(),
            self.target.returns_secrets(),
        )?;
        let mut tally = Tally::new(
            self.target,
            cols.to_vec(),
            calls.len(),
            &recorder,
            stream_rows.then_some(self.sink),
        );
        let (own, others) = split_own_tokens(self.target, calls).await;
        self.run_concurrently(others, &mut tally).await;
        // Each connection's own token last (after every other call of every connection).
        for call in own {
            let result = call_unless_cancelled(&call, self.cancel).await;
            tally.own_token_outcome(&call.via, &call, &result);
            tally.record(call, result);
        }
        tally.finish(self.notes, self.cancel.is_cancelled())
    }

    async fn run_concurrently(&self, calls: Vec<PlannedCall>, tally: &mut Tally<'_>) {
        let conc = self.engine.config.concurrency.max(1);
        let cancel = self.cancel;
        let mut results = stream::iter(calls)
            .map(|c| async move {
                let r = call_unless_cancelled(&c, cancel).await;
                (c, r)
            })
            .buffer_unordered(conc);
        while let Some((call, result)) = results.next().await {
            tally.record(call, result);
            if self.sink.is_closed() {
                // Nobody reads the outcomes any more: that is a cancel. The calls in
                // flight still finish and are recorded.
                cancel.cancel();
            }
        }
    }
}

/// Drops repeated calls on the same object: rolling a token twice in one statement would
/// hand back a secret that is already dead.
fn dedupe(calls: Vec<PlannedCall>, notes: &Notes) -> Vec<PlannedCall> {
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
        notes.add(format!(
            "note: {id} is named {} times; it is called once",
            n + 1
        ));
    }
    kept
}

/// Takes out the calls on the tokens the connections authenticate with, so that each
/// runs after every other call has returned (rolling or deleting one first would make the
/// others of its connection fail with 401).
async fn split_own_tokens(
    target: &Target,
    calls: Vec<PlannedCall>,
) -> (Vec<PlannedCall>, Vec<PlannedCall>) {
    let mut by_connection: Vec<(Arc<Engine>, Vec<PlannedCall>)> = Vec::new();
    for c in calls {
        match by_connection
            .iter_mut()
            .find(|(e, _)| Arc::ptr_eq(e, &c.via))
        {
            Some((_, group)) => group.push(c),
            None => by_connection.push((c.via.clone(), vec![c])),
        }
    }
    let (mut own, mut others) = (Vec::new(), Vec::new());
    for (engine, group) in by_connection {
        let (mine, rest) = split_own_token(&engine, target, group).await;
        own.extend(mine);
        others.extend(rest);
    }
    (own, others)
}

/// [`split_own_tokens`] for the calls of one connection.
async fn split_own_token(
    engine: &Engine,
    target: &Target,
    calls: Vec<PlannedCall>,
) -> (Option<PlannedCall>, Vec<PlannedCall>) {
    if target.verb == Verb::Insert || calls.is_empty() {
        return (None, calls);
    }
    let prefixes: Vec<String> = calls
        .iter()
        .map(|c| c.scope.prefix.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let Some((prefix, id)) = engine.own_token(&target.resource, &prefixes).await else {
        return (None, calls);
    };
    let (mut own, others): (Vec<_>, Vec<_>) = calls
        .into_iter()
        .partition(|c| c.scope.prefix == prefix && c.id.as_deref() == Some(id.as_str()));
    (own.pop(), others)
}

async fn call_unless_cancelled(call: &PlannedCall, cancel: &Cancel) -> Result<ApiResponse> {
    if cancel.is_cancelled() {
        return Err(Error::Cancelled {
            what: format!(
                "{} {} was not sent",
                call.request.method,
                call.request.display_path()
            ),
        });
    }
    call.via.client.call_with(&call.request, Some(cancel)).await
}
