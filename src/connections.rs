//! The credentials a session reads through: one [`Engine`] per connection (its own HTTP
//! client, API budget, response cache and own-token check), named, in the order given.
//! One credential is one connection named `default` (or its profile's name) and costs
//! nothing more than before.
//!
//! The rules, for every table and view (each has a `connection` column):
//! - a WHERE on `connection` (`=`, `IN`, `LIKE`, any condition on that column alone) picks
//!   the connections a scan reads before any call is made;
//! - **one row per object**: a scope (an account, a zone) or an unscoped object (a user
//!   token, an account of `accounts.accounts`) that several connections see is read through
//!   the first of them in the order they were given, and its rows name that connection (a
//!   note says how many were shared); `WHERE connection = 'b'` reads it through `b`;
//! - a connection that fails fails the statement naming it, unless every connection's
//!   profile says `fanout_errors = "warn"`: then the others' rows come back with a warning;
//! - a write goes through the connection of the row it acts on; INSERT and EXEC name theirs
//!   (`connection` column, `@connection`) when more than one is active.

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::execution_props::ExecutionProps;

use crate::config::{Config, FanoutErrors};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::provider::Registry;

/// The column every table and view has: the connection a row was read through.
pub const CONNECTION_COLUMN: &str = "connection";

/// The connections of a session, in the order given (the first is the primary: its
/// settings are the session's, such as the secrets file and the audit log).
#[derive(Debug)]
pub struct Connections {
    engines: Vec<Arc<Engine>>,
    /// What a failing connection does to a statement that reads several.
    policy: FanoutErrors,
}

impl Connections {
    /// The connections of `configs` (name, configuration), sharing one set of manifests and
    /// one count of writes in flight. Names must be unique and non-empty.
    pub fn new(configs: Vec<(String, Config)>) -> Result<Arc<Self>> {
        if configs.is_empty() {
            return Err(Error::Config("no connection was given".into()));
        }
        let registry = Arc::new(Registry::embedded()?);
        let writes = crate::cancel::InFlight::default();
        let mut engines: Vec<Arc<Engine>> = Vec::with_capacity(configs.len());
        for (name, config) in configs {
            if name.is_empty() || engines.iter().any(|e| e.name == name) {
                return Err(Error::Config(format!(
                    "connection names must be unique and not empty; '{name}' is given twice or empty"
                )));
            }
            engines.push(Engine::named(
                &name,
                config,
                registry.clone(),
                writes.clone(),
            )?);
        }
        let policy = if engines
            .iter()
            .all(|e| e.config.fanout_errors == FanoutErrors::Warn)
        {
            FanoutErrors::Warn
        } else {
            FanoutErrors::Fail
        };
        Ok(Arc::new(Self { engines, policy }))
    }

    /// One connection.
    pub fn single(engine: Arc<Engine>) -> Arc<Self> {
        let policy = engine.config.fanout_errors;
        Arc::new(Self {
            engines: vec![engine],
            policy,
        })
    }

    /// The first connection.
    pub fn primary(&self) -> &Arc<Engine> {
        &self.engines[0]
    }

    /// Every connection, in order.
    pub fn all(&self) -> &[Arc<Engine>] {
        &self.engines
    }

    /// Whether more than one connection is configured.
    pub fn is_several(&self) -> bool {
        self.engines.len() > 1
    }

    /// What a failing connection does to a statement reading several.
    pub fn policy(&self) -> FanoutErrors {
        self.policy
    }

    /// The names, comma-separated, for messages.
    pub fn names(&self) -> String {
        self.engines
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The connection a write names (`connection` column, `@connection`), or the only one.
    /// `what` is the statement, for the error when several are active and none is named.
    pub fn pick(&self, name: Option<&str>, what: &str) -> Result<Arc<Engine>> {
        match name {
            Some(n) => self
                .engines
                .iter()
                .find(|e| e.name == n)
                .cloned()
                .ok_or_else(|| Error::InvalidValue {
                    place: CONNECTION_COLUMN.into(),
                    problem: format!(
                        "there is no connection '{n}'; the connections are: {}",
                        self.names()
                    ),
                }),
            None if !self.is_several() => Ok(self.primary().clone()),
            None => Err(Error::MissingParam {
                table: what.to_string(),
                param: CONNECTION_COLUMN.into(),
                hint: format!(
                    "several connections are active ({}); say which one acts: {}",
                    self.names(),
                    if what.starts_with("EXEC") {
                        "add @connection='<name>'"
                    } else {
                        "give the connection column a value, e.g. INSERT INTO ... (connection, name, ...) VALUES ('<name>', ...)"
                    }
                ),
            }),
        }
    }

    /// The connections a scan reads: those every condition on the `connection` column
    /// alone (`filters` are the conditions DataFusion handed to the scan) lets through.
    pub fn select(&self, filters: &[Expr]) -> Vec<Arc<Engine>> {
        let on_connection: Vec<&Expr> = filters.iter().filter(|f| only_connection(f)).collect();
        self.engines
            .iter()
            .filter(|e| on_connection.iter().all(|f| admits(f, &e.name)))
            .cloned()
            .collect()
    }
}

/// Whether `expr` reads the `connection` column and no other.
pub fn only_connection(expr: &Expr) -> bool {
    let cols = expr.column_refs();
    !cols.is_empty() && cols.iter().all(|c| c.name == CONNECTION_COLUMN)
}

/// Whether `expr` (a condition on `connection` alone) holds for connection `name`. A
/// condition that cannot be evaluated here lets the connection through (DataFusion
/// filters its rows again), so pruning never drops a connection a WHERE wants.
fn admits(expr: &Expr, name: &str) -> bool {
    evaluate(expr, name).unwrap_or(true)
}

fn evaluate(expr: &Expr, name: &str) -> Option<bool> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        CONNECTION_COLUMN,
        DataType::Utf8,
        false,
    )]));
    let unqualified = expr
        .clone()
        .transform(|e| {
            Ok(match e {
                Expr::Column(c) => Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
                other => Transformed::no(other),
            })
        })
        .ok()?
        .data;
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).ok()?;
    let physical = datafusion::physical_expr::create_physical_expr(
        &unqualified,
        &df_schema,
        &ExecutionProps::new(),
        &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default(),
    )
    .ok()?;
    let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![name]))]).ok()?;
    let value = physical.evaluate(&batch).ok()?.into_array(1).ok()?;
    let b = value.as_any().downcast_ref::<BooleanArray>()?;
    Some(b.is_valid(0) && b.value(0))
}
