//! Writes as DataFusion plans. A write is a [`WriteExec`]: an `ExecutionPlan` whose input
//! yields the rows to act on (the VALUES of an INSERT, the rows an UPDATE or DELETE
//! picks), which turns every row into one API call after all of them passed validation,
//! and whose stream yields each call's outcome the moment it returns. The same plan
//! serves DataFusion's DML hooks (`TableProvider::insert_into` / `update` / `delete_from`,
//! in `table::dml`) and cfql's own statements (in `sql::write`, which add RETURNING,
//! ORDER BY / LIMIT, EXEC and dry runs on top).
//!
//! Calls only go down from here: to the engine (scopes, the HTTP client) and to
//! `convert` (Arrow <-> JSON).

pub(crate) mod coerce;
mod exec;
mod plan;
mod record;
mod run;
mod tally;

pub(crate) use exec::{Produce, WriteExec};
pub(crate) use plan::{
    body_column, check_required, pinned_calls, request, scope_of_row, statement_name,
};
pub(crate) use tally::Finished;

use datafusion::physical_plan::ExecutionPlan;
use serde_json::{Map, Value};
use std::sync::Arc;

use crate::engine::ScopeBinding;
use crate::error::Result;
use crate::http::ApiRequest;
use crate::provider::{MethodSpec, Resource, Verb};

/// What a write acts on: the resource, the method that serves the statement, and the
/// kind of statement.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) resource: Resource,
    pub(crate) method: MethodSpec,
    pub(crate) verb: Verb,
}

impl Target {
    /// The method of `resource` that serves `verb` (with an id in its path or not).
    pub(crate) fn new(resource: Resource, verb: Verb, by_id: bool) -> Result<Self> {
        let method = resource.method_for(verb, by_id)?.clone();
        Ok(Self {
            resource,
            method,
            verb,
        })
    }

    /// Whether answers can hold secrets (a create, roll or rotate of a resource with
    /// secret columns): then they must reach the caller or the secrets file.
    pub(crate) fn returns_secrets(&self) -> bool {
        matches!(self.verb, Verb::Insert | Verb::Exec)
            && self.resource.spec.columns.iter().any(|c| c.secret)
    }

    /// INSERT, UPDATE, DELETE or EXEC.
    pub(crate) fn verb_name(&self) -> &'static str {
        match self.verb {
            Verb::Insert => "INSERT",
            Verb::Update => "UPDATE",
            Verb::Delete => "DELETE",
            _ => "EXEC",
        }
    }
}

/// One call a write will make.
pub(crate) struct PlannedCall {
    /// 1-based row of the statement's input.
    pub(crate) row: usize,
    pub(crate) id: Option<String>,
    pub(crate) scope: ScopeBinding,
    pub(crate) request: ApiRequest,
    /// The object as read before the call (UPDATE, DELETE): the result row is this,
    /// overlaid with the answer.
    pub(crate) prior: Map<String, Value>,
    /// The connection (credential) that makes the call: the one the row was read through,
    /// or the one the statement names.
    pub(crate) via: Arc<crate::engine::Engine>,
}

/// Where a write's calls come from.
pub(crate) enum Calls {
    /// Planned already: a DELETE whose WHERE pins the ids, an EXEC.
    Planned(Vec<PlannedCall>),
    /// One call per row of `input`, planned once every row is read and valid.
    FromInput {
        input: Arc<dyn ExecutionPlan>,
        rows: RowPlan,
    },
}

/// How the rows of a write's input become calls.
#[derive(Debug, Clone)]
pub(crate) enum RowPlan {
    /// Each row is a new object; `columns` names the input's columns in order. NULL
    /// means "not given".
    Insert { columns: Vec<String> },
    /// Each row is an object as read, plus one column per assignment
    /// ([`set_column`]`(i)` holds the new value of `assigned[i]`).
    Update { assigned: Vec<String> },
    /// Each row is an object as read.
    Delete,
}

/// The input column that carries the new value of the `i`-th assignment of an UPDATE.
pub(crate) fn set_column(i: usize) -> String {
    format!("__cfql_set_{i}")
}
