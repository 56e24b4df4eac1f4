//! What a wire client may run. The server is for reading the `cloudflare` catalog: DDL,
//! `COPY`, DataFusion's own settings and DML on other tables are never run (they would
//! change the server for every connection, or write files on its host); cfql's writes
//! (INSERT, UPDATE, REPLACE, DELETE, EXEC) run only on a server started with
//! `--allow-writes`, and then with every rule the CLI keeps.

use datafusion::sql::sqlparser::ast::{CopySource, CopyTarget, Set, Statement};
use datafusion_postgres::pgwire::error::PgWireError;

use super::encode::refusal;
use crate::sql::parse::{CfqlStatement, set_names};

/// SQLSTATE `read_only_sql_transaction`.
const READ_ONLY: &str = "25006";
/// SQLSTATE `insufficient_privilege`.
const NOT_ALLOWED: &str = "42501";

/// Refuses `stmt` unless this server runs it.
pub(super) fn check(stmt: &CfqlStatement, allow_writes: bool) -> Result<(), PgWireError> {
    match stmt {
        CfqlStatement::Insert(_)
        | CfqlStatement::Update(_)
        | CfqlStatement::Delete(_)
        | CfqlStatement::Exec(_)
            if !allow_writes =>
        {
            Err(refusal(
                READ_ONLY,
                format!(
                    "cannot run {}: this server is read-only (start it with cfql serve --allow-writes to run cfql's writes)",
                    verb(stmt)
                ),
            ))
        }
        CfqlStatement::SetOption { name, .. } if name == "cache_ttl" => Err(refusal(
            NOT_ALLOWED,
            "cfql.cache_ttl is the server's, shared by every connection: set it when starting cfql serve (--cache-ttl)".into(),
        )),
        CfqlStatement::Query(q) => check_query(q),
        _ => Ok(()),
    }
}

fn verb(stmt: &CfqlStatement) -> &'static str {
    match stmt {
        CfqlStatement::Insert(_) => "INSERT",
        CfqlStatement::Update(_) => "UPDATE",
        CfqlStatement::Delete(_) => "DELETE",
        _ => "EXEC",
    }
}

/// A statement DataFusion would run: reads, session talk and transactions only.
pub(super) fn check_query(q: &Statement) -> Result<(), PgWireError> {
    let refused = |what: &str| {
        Err(refusal(
            NOT_ALLOWED,
            format!("cfql serve does not run {what}: it serves the cloudflare catalog read-only"),
        ))
    };
    match q {
        Statement::Query(_)
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowFunctions { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. }
        | Statement::Discard { .. } => Ok(()),
        Statement::Explain { statement, .. } => match **statement {
            Statement::Query(_) => Ok(()),
            _ => refused("EXPLAIN of anything but a query"),
        },
        Statement::Set(set) => check_set(set),
        Statement::Copy {
            source,
            to: true,
            target: CopyTarget::Stdout,
            ..
        } => match source {
            CopySource::Query(q) => check_query(&Statement::Query(q.clone())),
            CopySource::Table { .. } => Ok(()),
        },
        Statement::Copy { to: false, .. } => refused("COPY FROM (only COPY ... TO STDOUT)"),
        Statement::Copy { .. } => refused(
            "COPY to a file or a program on the server: use COPY ... TO STDOUT (psql: \\copy ... to 'file')",
        ),
        // A cursor reads what its query reads (serve/cursors.rs).
        Statement::Declare { stmts } => {
            for d in stmts {
                match &d.for_query {
                    Some(q) => check_query(&Statement::Query(q.clone()))?,
                    None => return refused("DECLARE of a variable"),
                }
            }
            Ok(())
        }
        Statement::Fetch { into: None, .. } | Statement::Close { .. } => Ok(()),
        Statement::Insert(_) | Statement::Update { .. } | Statement::Delete(_) => {
            refused("DML outside the cloudflare tables")
        }
        _ => refused("DDL or administrative statements"),
    }
}

/// `SET datafusion.*` would change the engine under every statement of the connection
/// (its limits, where it spills to disk); PostgreSQL's session settings are answered as
/// PostgreSQL does. Names are read as the session reads them ([`set_names`]: quotes and
/// comments gone), so no spelling of a name gets past.
fn check_set(set: &Set) -> Result<(), PgWireError> {
    for name in set_names(set) {
        let lower = name.to_lowercase();
        // cfql's own settings are read by cfql's parser; one that reached here was
        // written in a form that parser refused, and must not pass as a no-op.
        if lower.starts_with("cfql.") {
            return Err(refusal(
                NOT_ALLOWED,
                format!("cannot SET {name} in this form: write SET cfql.<option> = <value>"),
            ));
        }
        if lower == "datafusion" || lower.starts_with("datafusion.") {
            return Err(refusal(
                NOT_ALLOWED,
                format!("cannot SET {name}: DataFusion's settings are the server's"),
            ));
        }
    }
    Ok(())
}
