//! The extended query protocol of a connection (what drivers use: Parse, Bind, Describe,
//! Execute): queries are planned by DataFusion with their parameters left in and bound at
//! Execute, so pushdown sees the values; cfql's own statements are described at Parse
//! without running, and run at Execute as a simple query, each `$n` replaced in the parsed
//! statement by its bound value.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::pgwire;
use futures::Sink;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, send_describe_response};
use pgwire::api::results::{DescribePortalResponse, FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_PORTAL};

use super::accept::Conn;
use super::bind::{bind_plan, parameter_types, type_array_parameters, wire_types};
use super::connection::{Core, Queries, Read, statement_timeout};
use super::cursors::cursor_name;
use super::{encode, params};

/// A prepared statement (extended protocol).
#[derive(Clone)]
pub(super) enum Prepared {
    /// A query planned by DataFusion with its parameters left in, bound at Execute.
    Plan(LogicalPlan),
    /// Anything else, run at Execute as a simple query is, with each `$n` of its parsed
    /// tree replaced by its bound value; `schema` is what it returns (found at Parse,
    /// without running it).
    Text {
        sql: String,
        params: usize,
        schema: SchemaRef,
    },
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    /// A declared cursor is also a portal of its name, as in PostgreSQL: psycopg reads a
    /// server cursor's columns by describing that portal.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_PORTAL
            && let Some(name) = message.name.as_deref()
            && client.portal_store().get_portal(name).is_none()
            && let Some(schema) = self.conn.core()?.cursors.schema(name)
        {
            let fields = encode::fields(&schema, &Format::UnifiedText)?;
            return send_describe_response(client, &DescribePortalResponse::new(fields)).await;
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let core = self.conn.core()?;
        match &portal.statement.statement {
            Prepared::Plan(plan) => {
                let plan = bind_plan(plan, portal)?;
                let timeout = statement_timeout(client, &core.rules);
                let result = core
                    .guarded(false, timeout, |cancel| async move {
                        core.session.execute_plan(plan, &cancel).await
                    })
                    .await?;
                let mut r = core
                    .respond(client, result, &portal.result_column_format, false)
                    .await?;
                Ok(r.remove(0))
            }
            Prepared::Text { sql, params, .. } => {
                let values = params::values(portal, *params)?;
                let mut r = core
                    .one(client, sql, &values, &portal.result_column_format, false)
                    .await?;
                Ok(r.pop().unwrap_or(Response::EmptyQuery))
            }
        }
    }
}

/// Reads and plans statements for the extended protocol.
pub(super) struct Parser {
    pub(super) conn: Arc<Conn>,
}

/// The columns a cfql statement would return, found without running it (a stand-in bound
/// for each of its `params` parameters).
async fn describe_with_stand_ins(
    core: &Core,
    sql: &str,
    params: usize,
) -> crate::Result<SchemaRef> {
    let (text, mut stmt) = core.session.parse(sql)?;
    stmt.bind(&params::stand_ins(params))?;
    core.session.describe(stmt, &text).await
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let core = self.conn.core()?;
        let prepared = match core.read(sql)? {
            Read::Pg(_, stmt)
                if matches!(*stmt, Statement::Query(_) | Statement::Explain { .. }) =>
            {
                let plan = core
                    .session
                    .plan(*stmt)
                    .await
                    .map_err(|e| encode::wire_error(&e))?;
                Prepared::Plan(type_array_parameters(plan)?)
            }
            Read::Pg(_, stmt) => {
                let schema = match *stmt {
                    Statement::ShowVariable { .. } => {
                        Arc::new(Schema::new(vec![Field::new("show", DataType::Utf8, true)]))
                    }
                    // A FETCH returns its cursor's columns (psycopg's binary cursors).
                    Statement::Fetch { ref name, .. } => core
                        .cursors
                        .schema(&cursor_name(name))
                        .unwrap_or_else(|| Arc::new(Schema::empty())),
                    _ => Arc::new(Schema::empty()),
                };
                // The client's own text: it is read (templates filled) again at Execute.
                Prepared::Text {
                    sql: sql.to_string(),
                    params: 0,
                    schema,
                }
            }
            Read::Cfql { sql, text, stmt } => {
                let params = params::count(&sql);
                let schema = if params == 0 {
                    core.session.describe(stmt, &text).await
                } else {
                    describe_with_stand_ins(core, &sql, params).await
                }
                .map_err(|e| encode::wire_error(&e))?;
                Prepared::Text {
                    sql,
                    params,
                    schema,
                }
            }
        };
        Ok(Some(prepared))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        match stmt {
            Prepared::Plan(plan) => wire_types(&parameter_types(plan)?),
            Prepared::Text { params, .. } => Ok(vec![Type::TEXT; *params]),
        }
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = format.unwrap_or(&Format::UnifiedText);
        match stmt {
            Prepared::Plan(plan) => encode::fields(plan.schema().as_arrow(), format),
            Prepared::Text { schema, .. } => encode::fields(schema, format),
        }
    }
}
