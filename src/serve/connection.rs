//! One client connection: its own [`Session`] (a fork of the server's: shared HTTP client,
//! budget and cache; its own `SET cfql.*` and variables), and the simple query protocol on
//! it (the extended one is `extended.rs`). Each statement is read by cfql first, so cfql's statements
//! (EXEC, REPLACE, SHOW SERVICES, writes with RETURNING) run as in the CLI; queries then go
//! through datafusion-pg-catalog's PostgreSQL rewrites (what psql, pgjdbc and BI tools
//! send about the catalog) and run on the session, so pushdown and cfql's errors hold.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::sql::sqlparser::ast::{Expr, Statement};
use datafusion_postgres::QueryHook;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire;
use futures::{Sink, SinkExt};
use pgwire::api::portal::Format;
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use super::accept::Conn;
use super::cancel::Running;
use super::{Rules, encode, gate};
use crate::cancel::Cancel;
use crate::error::Error;
use crate::output::Output;
use crate::session::Session;
use crate::sql::parse::CfqlStatement;

/// How the server reads one statement of a client's.
pub(super) enum Read {
    /// A statement DataFusion runs (a query, SET, SHOW, BEGIN...), after the PostgreSQL
    /// rewrites.
    Pg(String, Box<Statement>),
    /// One of cfql's own statements: the client's text (templates not yet filled: the
    /// extended protocol binds its `$n` there and has the session read it again), the
    /// text with its templates filled, and how cfql reads it.
    Cfql {
        sql: String,
        text: String,
        stmt: CfqlStatement,
    },
}

/// A connection's session and what it runs statements with.
pub(super) struct Core {
    pub(super) session: Arc<Session>,
    pub(super) running: Arc<Running>,
    pub(super) rules: Rules,
    compat: PostgresCompatibilityParser,
    hooks: Vec<Arc<dyn QueryHook>>,
    /// The connection's open cursors.
    pub(super) cursors: super::cursors::Cursors,
}

/// The key under which datafusion-postgres keeps a client's `SET statement_timeout` (in
/// milliseconds) in the connection's metadata.
const STATEMENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

/// The statement timeout of `client`: its own `SET statement_timeout`, else the server's.
pub(super) fn statement_timeout<C: ClientInfo>(client: &C, rules: &Rules) -> Option<Duration> {
    client
        .metadata()
        .get(STATEMENT_TIMEOUT_KEY)
        .and_then(|ms| ms.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .or(rules.statement_timeout)
}

impl Core {
    pub(super) fn new(session: Arc<Session>, running: Arc<Running>, rules: Rules) -> Self {
        Self {
            session,
            running,
            rules,
            compat: PostgresCompatibilityParser::new(),
            hooks: vec![Arc::new(SetShowHook), Arc::new(TransactionStatementHook)],
            cursors: Default::default(),
        }
    }

    /// Runs a statement as the server runs every one: refused once the server is
    /// stopping, counted while it runs (a stopping server waits for it), stopped by the
    /// client's cancel request, its hang-up, or `timeout`. Whatever stops it, a write
    /// starts no new call and keeps every outcome (the cancel is the CLI's Ctrl-C).
    pub(super) async fn guarded<T, F>(
        &self,
        write: bool,
        timeout: Option<Duration>,
        run: impl FnOnce(Cancel) -> F,
    ) -> PgWireResult<crate::Result<T>>
    where
        F: std::future::Future<Output = crate::Result<T>>,
    {
        if self.rules.stopping.load(Ordering::SeqCst) {
            return Err(encode::refusal(
                "57P01",
                "cfql serve is shutting down: it runs no new statement (reconnect when it is back)"
                    .into(),
            ));
        }
        let _busy = self.rules.statements.enter();
        let cancel = self.running.start(write);
        let _finish = Finish(&self.running);
        let timed_out = Arc::new(AtomicBool::new(false));
        let timer = timeout.map(|d| {
            let (cancel, timed_out) = (cancel.clone(), timed_out.clone());
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                timed_out.store(true, Ordering::SeqCst);
                cancel.cancel();
            })
        });
        let result = run(cancel).await;
        if let Some(t) = timer {
            t.abort();
        }
        Ok(match result {
            Err(Error::Cancelled { what }) if timed_out.load(Ordering::SeqCst) => {
                Err(Error::Cancelled {
                    what: format!(
                        "canceling statement due to statement timeout ({} ms): {what}",
                        timeout.unwrap_or_default().as_millis()
                    ),
                })
            }
            other => other,
        })
    }

    /// cfql reads the statement first (its own statements, its error wording); what it
    /// leaves to DataFusion gets the PostgreSQL rewrites.
    pub(super) fn read(&self, sql: &str) -> PgWireResult<Read> {
        if sql.len() > self.rules.max_statement_bytes {
            return Err(encode::refusal(
                "54000",
                format!(
                    "the statement is {} bytes; cfql serve reads at most {} (--max-statement-bytes): use IN (SELECT ...) or several statements",
                    sql.len(),
                    self.rules.max_statement_bytes
                ),
            ));
        }
        match self.session.parse(sql) {
            Ok((text, CfqlStatement::Query(q))) => {
                gate::check_query(&q)?;
                let mut stmt = self.rewritten(&text).map_or(q, Box::new);
                // What runs is what the gate passed: the catalog parser read the text again.
                gate::check_query(&stmt)?;
                super::names::postgres_names(&mut stmt);
                Ok(Read::Pg(text, stmt))
            }
            Ok((text, stmt)) => {
                gate::check(&stmt, self.rules.allow_writes)?;
                let sql = sql.to_string();
                Ok(Read::Cfql { sql, text, stmt })
            }
            // What cfql cannot parse may still be a catalog query in PostgreSQL's syntax
            // (datafusion-pg-catalog's parser knows more of it): a query, and nothing
            // else (a SET cfql's parser refused must not pass as another statement); any
            // other error (a missing template variable, a statement too deep) is the
            // statement's.
            Err(e) => {
                let fallback = match e {
                    Error::Syntax { .. } => self
                        .rewritten(sql)
                        .filter(|s| matches!(s, Statement::Query(_))),
                    _ => None,
                };
                let Some(mut stmt) = fallback else {
                    return Err(encode::wire_error(&e));
                };
                gate::check_query(&stmt)?;
                super::names::postgres_names(&mut stmt);
                Ok(Read::Pg(sql.to_string(), Box::new(stmt)))
            }
        }
    }

    /// The statement after datafusion-pg-catalog's rewrites and ours, when it is one
    /// statement that reads the PostgreSQL catalog only: those rewrites trade exactness
    /// for what BI tools ask of the catalog (a correlated subquery they cannot run is
    /// NULL), which a query over cfql's tables must never get.
    fn rewritten(&self, text: &str) -> Option<Statement> {
        let mut stmts = self.compat.parse(text).ok()?;
        let mut stmt = (stmts.len() == 1).then(|| stmts.remove(0))?;
        if !reads_catalog_only(&stmt) {
            return None;
        }
        super::rewrite::rewrite(&mut stmt);
        tracing::trace!("rewritten for DataFusion: {stmt}");
        Some(stmt)
    }

    /// Runs a cursor statement (see [`super::cursors`]).
    async fn cursor<C>(
        &self,
        client: &mut C,
        request: super::cursors::Request,
        text: &str,
        format: &Format,
    ) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use super::cursors::Request;
        match request {
            Request::Declare {
                name,
                hold,
                mut query,
            } => {
                self.cursors.check_declare(&name)?;
                super::names::postgres_names(&mut query);
                let timeout = statement_timeout(client, &self.rules);
                let query = CfqlStatement::Query(query);
                let out = self
                    .run(query, text, timeout)
                    .await?
                    .map_err(|e| encode::wire_error(&e))?;
                notices(client, &out.warnings).await?;
                self.cursors.declare(name, hold, out.schema, out.batches);
                Ok(vec![Response::Execution(Tag::new("DECLARE CURSOR"))])
            }
            Request::Fetch { name, count } => {
                let (schema, batches) = self.cursors.fetch(&name, count)?;
                let mut rows = encode::rows(&schema, batches, format)?;
                rows.set_command_tag("FETCH");
                Ok(vec![Response::Query(rows)])
            }
            Request::Close(name) => {
                self.cursors.close(name.as_deref())?;
                Ok(vec![Response::Execution(Tag::new("CLOSE CURSOR"))])
            }
        }
    }

    /// Runs a statement on the session (see [`Core::guarded`]).
    async fn run(
        &self,
        stmt: CfqlStatement,
        text: &str,
        timeout: Option<Duration>,
    ) -> PgWireResult<crate::Result<Output>> {
        self.guarded(stmt.is_write(), timeout, |cancel| async move {
            self.session.execute_parsed(stmt, text, &cancel).await
        })
        .await
    }

    /// Runs one statement as the simple protocol does, with `values` in place of its
    /// placeholders (bound in its parsed tree); `many` when the client can take more than
    /// one response (simple protocol), see [`Core::respond`].
    pub(super) async fn one<C>(
        &self,
        client: &mut C,
        sql: &str,
        values: &[Expr],
        format: &Format,
        many: bool,
    ) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut read = self.read(sql)?;
        if !values.is_empty() {
            let bound = match &mut read {
                Read::Pg(_, stmt) => crate::sql::build::bind(stmt.as_mut(), values),
                Read::Cfql { stmt, .. } => stmt.bind(values),
            };
            bound.map_err(|e| encode::wire_error(&e))?;
        }
        match read {
            Read::Pg(text, stmt) => {
                if let Some(r) = acknowledged(&stmt) {
                    return Ok(vec![r]);
                }
                if let Some(r) = show_setting(&stmt, format)? {
                    return Ok(vec![r]);
                }
                if let Some(copy) = super::copy::request(&stmt)? {
                    let timeout = statement_timeout(client, &self.rules);
                    let query = CfqlStatement::Query(Box::new(copy.query));
                    let out = self
                        .run(query, &text, timeout)
                        .await?
                        .map_err(|e| encode::wire_error(&e))?;
                    notices(client, &out.warnings).await?;
                    return Ok(vec![Response::CopyOut(super::copy::response(
                        out,
                        &copy.format,
                    )?)]);
                }
                if let Some(request) = super::cursors::request(&stmt)? {
                    return self.cursor(client, request, &text, format).await;
                }
                if matches!(
                    *stmt,
                    Statement::Commit { .. }
                        | Statement::Rollback {
                            savepoint: None,
                            ..
                        }
                ) {
                    self.cursors.end_transaction();
                }
                for hook in &self.hooks {
                    if let Some(r) = hook
                        .handle_simple_query(&stmt, self.session.context(), client)
                        .await
                    {
                        return Ok(vec![r?]);
                    }
                }
                let timeout = statement_timeout(client, &self.rules);
                let result = self.run(CfqlStatement::Query(stmt), &text, timeout).await?;
                self.respond(client, result, format, many).await
            }
            Read::Cfql { text, stmt, .. } => {
                let timeout = statement_timeout(client, &self.rules);
                let result = self.run(stmt, &text, timeout).await?;
                self.respond(client, result, format, many).await
            }
        }
    }

    /// A statement's result for the client. Notes go first, as notices. A write that
    /// partly failed still hands over every row that took effect (secrets included):
    /// as the rows and then the error when the client takes more than one response
    /// (psql shows both, and fails the script), else as the rows with the error as a
    /// warning.
    pub(super) async fn respond<C>(
        &self,
        client: &mut C,
        result: crate::Result<Output>,
        format: &Format,
        many: bool,
    ) -> PgWireResult<Vec<Response>>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match result {
            Ok(out) => {
                notices(client, &out.warnings).await?;
                let mut rows = encode::rows(&out.schema, out.batches, format)?;
                if let Some(w) = &out.write {
                    rows.set_command_tag(tag(&w.verb));
                }
                Ok(vec![Response::Query(rows)])
            }
            Err(e) => {
                let Error::PartialFailure {
                    succeeded,
                    detail,
                    verb,
                    ..
                } = &e
                else {
                    return Err(encode::wire_error(&e));
                };
                notices(client, &detail.warnings).await?;
                let Some(first) = succeeded.first() else {
                    return Err(encode::wire_error(&e));
                };
                let mut rows = encode::rows(&first.schema(), succeeded.0.clone(), format)?;
                rows.set_command_tag(tag(verb));
                if many {
                    Ok(vec![
                        Response::Query(rows),
                        Response::Error(Box::new(encode::error(&e))),
                    ])
                } else {
                    notices(client, &[e.to_string()]).await?;
                    Ok(vec![Response::Query(rows)])
                }
            }
        }
    }
}

/// Table functions a catalog query may read beside the catalog's tables.
const TABLE_FUNCTIONS: &[&str] = &["generate_series", "generate_subscripts", "unnest", "range"];

/// Whether every table `stmt` reads is PostgreSQL's catalog (`pg_catalog`,
/// `information_schema`, or a `pg_*` table by itself).
fn reads_catalog_only(stmt: &Statement) -> bool {
    use datafusion::sql::sqlparser::ast::visit_relations;
    use std::ops::ControlFlow;
    let ctes = cte_names(stmt);
    let other = visit_relations(stmt, |name| {
        let parts = crate::sql::parse::name_parts(name);
        let catalog = match parts.as_slice() {
            // A WITH query's own name (its body's tables are visited too).
            [t] if ctes.contains(&t.to_lowercase()) => true,
            // Set-returning functions read no cfql table (pgjdbc's type lookups join
            // `generate_series(1, array_upper(current_schemas(false), 1))`).
            [t] => t.starts_with("pg_") || TABLE_FUNCTIONS.contains(&t.as_str()),
            [s, ..] if s == "pg_catalog" || s == "information_schema" => true,
            [c, s, _] if c == crate::provider::CATALOG => {
                s == "pg_catalog" || s == "information_schema"
            }
            _ => false,
        };
        if catalog {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    other.is_continue()
}

/// The names the WITH clauses of `stmt` give their queries, lower-cased.
fn cte_names(stmt: &Statement) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::{Query, Visit, Visitor};
    use std::ops::ControlFlow;
    struct Names(Vec<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                self.0.extend(
                    with.cte_tables
                        .iter()
                        .map(|c| c.alias.name.value.to_lowercase()),
                );
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names(Vec::new());
    let _ = stmt.visit(&mut names);
    names.0
}

/// Statements acknowledged as PostgreSQL does, with nothing to do: savepoints, which
/// drivers use for nested transactions (psycopg's type lookups; datafusion-postgres's
/// hook would end the transaction on ROLLBACK TO), and `DISCARD` (connection poolers).
fn acknowledged(stmt: &Statement) -> Option<Response> {
    let tag = match stmt {
        Statement::Discard { .. } => "DISCARD ALL",
        Statement::Savepoint { .. } => "SAVEPOINT",
        Statement::ReleaseSavepoint { .. } => "RELEASE",
        Statement::Rollback {
            savepoint: Some(_), ..
        } => "ROLLBACK",
        _ => return None,
    };
    Some(Response::Execution(Tag::new(tag)))
}

/// `SHOW name` for the settings cfql reports for the server ([`super::settings`]), as
/// PostgreSQL 16 says them (clients parse `server_version`; datafusion-postgres's hook
/// names DataFusion and answers an empty row for a name it does not know). A name that
/// is neither cfql's nor one the hook keeps per connection is PostgreSQL's error.
fn show_setting(stmt: &Statement, format: &Format) -> PgWireResult<Option<Response>> {
    let Statement::ShowVariable { variable } = stmt else {
        return Ok(None);
    };
    let words: Vec<String> = variable.iter().map(|v| v.value.to_lowercase()).collect();
    let name = match words.as_slice() {
        [w] => w.clone(),
        [a, b] if a == "time" && b == "zone" => "timezone".into(),
        _ => return Ok(None),
    };
    if super::settings::PER_CONNECTION.contains(&name.as_str()) {
        return Ok(None);
    }
    let Some(value) = super::settings::value(&name) else {
        return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "42704".into(),
            super::settings::unknown(&name),
        ))));
    };
    let column = super::settings::canonical(&name);
    let batch = crate::convert::text_batch(&[column.as_str()], vec![vec![value]])
        .map_err(|e| encode::wire_error(&e))?;
    let rows = encode::rows(&batch.schema(), vec![batch], format)?;
    Ok(Some(Response::Query(rows)))
}

/// PostgreSQL's command tag for a write's rows (the row count is added by pgwire).
fn tag(verb: &str) -> &'static str {
    match verb {
        "INSERT" => "INSERT 0",
        "UPDATE" => "UPDATE",
        "DELETE" => "DELETE",
        _ => "SELECT",
    }
}

async fn notices<C>(client: &mut C, lines: &[String]) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for line in lines {
        client
            .send(PgWireBackendMessage::NoticeResponse(
                encode::notice(line).into(),
            ))
            .await?;
    }
    Ok(())
}

/// Clears a connection's running statement when the statement ends, or is dropped with
/// a client that went away.
struct Finish<'a>(&'a Running);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// The query handlers of one connection.
pub(super) struct Queries {
    pub(super) conn: Arc<Conn>,
    pub(super) parser: Arc<super::extended::Parser>,
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (statements, _) = crate::sql::split::split(query);
        let mut out = Vec::new();
        // Like PostgreSQL, the first failing statement ends the query string.
        let core = self.conn.core()?;
        for s in statements {
            match core
                .one(client, &s.text, &[], &Format::UnifiedText, true)
                .await
            {
                Ok(mut responses) => {
                    let failed = responses.iter().any(|r| matches!(r, Response::Error(_)));
                    out.append(&mut responses);
                    if failed {
                        break;
                    }
                }
                Err(e) => {
                    out.push(Response::Error(Box::new(ErrorInfo::from(e))));
                    break;
                }
            }
        }
        if out.is_empty() {
            out.push(Response::EmptyQuery);
        }
        Ok(out)
    }
}
