//! Server-side cursors of one connection (psycopg2 named cursors, psycopg's
//! `ServerCursor`, SQLAlchemy's `stream_results`, pandas' `chunksize`): `DECLARE` runs
//! the query at once (the API is read then, within the statement's limits) and keeps its
//! rows for the connection; `FETCH [FORWARD] n` hands them out in order; `CLOSE`, or the
//! end of the transaction for a cursor `WITHOUT HOLD`, drops them. Cursors move forward
//! only (`NO SCROLL`): `FETCH BACKWARD` and the like are refused, as PostgreSQL refuses
//! them on a `NO SCROLL` cursor.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{
    CloseCursor, DeclareType, FetchDirection, Ident, Statement, Value,
};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};

use super::encode::refusal;

/// The most cursors a connection keeps open at once (each holds its rows).
pub(super) const MAX_OPEN: usize = 8;

/// What a cursor statement asks.
pub(super) enum Request {
    /// `DECLARE name CURSOR [WITH HOLD] FOR query`.
    Declare {
        name: String,
        hold: bool,
        query: Box<Statement>,
    },
    /// `FETCH [FORWARD] [n | ALL] FROM name`: `count` None for all the rows left.
    Fetch { name: String, count: Option<usize> },
    /// `CLOSE name` (None: `CLOSE ALL`).
    Close(Option<String>),
}

/// The cursor request `stmt` makes, if it is one; refused when cfql cannot do it.
pub(super) fn request(stmt: &Statement) -> PgWireResult<Option<Request>> {
    Ok(Some(match stmt {
        Statement::Declare { stmts } => {
            let [d] = stmts.as_slice() else {
                return Err(unsupported("DECLARE of several names at once"));
            };
            let (Some(DeclareType::Cursor), Some(query), [name]) =
                (&d.declare_type, &d.for_query, d.names.as_slice())
            else {
                return Ok(None);
            };
            if d.scroll == Some(true) {
                return Err(unsupported(
                    "SCROLL cursors: cfql's cursors move forward only (declare it NO SCROLL)",
                ));
            }
            Request::Declare {
                name: cursor_name(name),
                hold: d.hold == Some(true),
                query: Box::new(Statement::Query(query.clone())),
            }
        }
        Statement::Fetch {
            name,
            direction,
            into: None,
            ..
        } => Request::Fetch {
            name: cursor_name(name),
            count: forward_count(direction)?,
        },
        Statement::Close { cursor } => Request::Close(match cursor {
            CloseCursor::All => None,
            CloseCursor::Specific { name } => Some(cursor_name(name)),
        }),
        _ => return Ok(None),
    }))
}

/// A cursor's name as PostgreSQL keeps it: folded to lower case unless quoted.
pub(super) fn cursor_name(name: &Ident) -> String {
    match name.quote_style {
        Some(_) => name.value.clone(),
        None => name.value.to_lowercase(),
    }
}

/// How many rows a forward FETCH asks for (None: all of them).
fn forward_count(direction: &FetchDirection) -> PgWireResult<Option<usize>> {
    let number = |v: &Value| match v {
        Value::Number(n, _) => n
            .parse::<usize>()
            .map_err(|_| unsupported("FETCH with a negative or fractional count")),
        _ => Err(unsupported("FETCH with a count that is not a number")),
    };
    match direction {
        FetchDirection::Next | FetchDirection::Forward { limit: None } => Ok(Some(1)),
        FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } => {
            number(&limit.value).map(Some)
        }
        FetchDirection::All | FetchDirection::ForwardAll => Ok(None),
        _ => Err(unsupported(
            "FETCH that moves backward or jumps: cfql's cursors move forward only (NO SCROLL)",
        )),
    }
}

fn unsupported(what: &str) -> PgWireError {
    refusal("0A000", format!("cfql serve does not support {what}"))
}

/// PostgreSQL's error for a cursor the connection does not have.
fn missing(name: &str) -> PgWireError {
    refusal("34000", format!("cursor \"{name}\" does not exist"))
}

struct Cursor {
    schema: SchemaRef,
    rows: VecDeque<RecordBatch>,
    hold: bool,
}

/// The open cursors of one connection.
#[derive(Default)]
pub(super) struct Cursors {
    open: Mutex<HashMap<String, Cursor>>,
}

impl Cursors {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cursor>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses a DECLARE before its query runs: the name is taken, or too many are open.
    pub(super) fn check_declare(&self, name: &str) -> PgWireResult<()> {
        let open = self.open();
        if open.contains_key(name) {
            return Err(refusal(
                "42P03",
                format!("cursor \"{name}\" already exists"),
            ));
        }
        if open.len() >= MAX_OPEN {
            return Err(refusal(
                "53400",
                format!(
                    "a connection keeps at most {MAX_OPEN} cursors open in cfql serve (each holds its rows): CLOSE one first"
                ),
            ));
        }
        Ok(())
    }

    /// Keeps the rows of a declared cursor.
    pub(super) fn declare(
        &self,
        name: String,
        hold: bool,
        schema: SchemaRef,
        rows: Vec<RecordBatch>,
    ) {
        let rows = rows.into_iter().filter(|b| b.num_rows() > 0).collect();
        self.open().insert(name, Cursor { schema, rows, hold });
    }

    /// The columns of cursor `name` (what Describe of its portal answers).
    pub(super) fn schema(&self, name: &str) -> Option<SchemaRef> {
        self.open().get(name).map(|c| c.schema.clone())
    }

    /// The next `count` rows of cursor `name` (all the rest for None).
    pub(super) fn fetch(
        &self,
        name: &str,
        count: Option<usize>,
    ) -> PgWireResult<(SchemaRef, Vec<RecordBatch>)> {
        let mut open = self.open();
        let cursor = open.get_mut(name).ok_or_else(|| missing(name))?;
        let mut left = count.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        while left > 0 {
            let Some(batch) = cursor.rows.pop_front() else {
                break;
            };
            if batch.num_rows() <= left {
                left -= batch.num_rows();
                out.push(batch);
            } else {
                out.push(batch.slice(0, left));
                cursor
                    .rows
                    .push_front(batch.slice(left, batch.num_rows() - left));
                left = 0;
            }
        }
        Ok((cursor.schema.clone(), out))
    }

    /// Drops cursor `name` (every cursor for None).
    pub(super) fn close(&self, name: Option<&str>) -> PgWireResult<()> {
        let mut open = self.open();
        match name {
            None => open.clear(),
            Some(n) => {
                open.remove(n).ok_or_else(|| missing(n))?;
            }
        }
        Ok(())
    }

    /// The transaction ended: cursors `WITHOUT HOLD` go, as in PostgreSQL.
    pub(super) fn end_transaction(&self) {
        self.open().retain(|_, c| c.hold);
    }
}
