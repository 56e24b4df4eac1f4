//! DataFusion tables over API resources: one `TableProvider` per resource, with
//! projection, filter and limit pushdown into the API calls.

pub mod dml;
pub mod pushdown;
pub mod scan;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session as DfSession, TableProvider};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::connections::{CONNECTION_COLUMN, Connections, only_connection};
use crate::convert;
use crate::engine::Engine;
use crate::provider::{ColumnSpec, Resource};

/// A resource as a DataFusion table: its readable columns, then `connection` (the
/// connection each row was read through). Secret columns are not part of it: they are
/// only ever returned by writes.
#[derive(Debug)]
pub struct ResourceTable {
    connections: Arc<Connections>,
    /// The first connection: settings of DataFusion's DML (secrets file, dry run).
    engine: Arc<Engine>,
    resource: Resource,
    cols: Vec<ColumnSpec>,
    schema: SchemaRef,
}

impl ResourceTable {
    /// The table of `resource`, read through `connections`.
    pub fn new(connections: Arc<Connections>, resource: Resource) -> Self {
        let cols: Vec<ColumnSpec> = resource.spec.readable_columns().cloned().collect();
        let mut fields: Vec<Field> = convert::schema_of(&cols)
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(CONNECTION_COLUMN, DataType::Utf8, false));
        let schema = Arc::new(Schema::new(fields));
        Self {
            engine: connections.primary().clone(),
            connections,
            resource,
            cols,
            schema,
        }
    }

    /// The scan's columns, its output schema and where `connection` sits in it.
    fn projected(
        &self,
        projection: Option<&Vec<usize>>,
    ) -> DfResult<(Vec<ColumnSpec>, SchemaRef, scan::ConnectionColumn)> {
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let p = projection.unwrap_or(&all);
        let schema = Arc::new(self.schema.project(p)?);
        let n = self.cols.len();
        let at = p.iter().position(|i| *i == n);
        let inner: Vec<usize> = p.iter().copied().filter(|i| *i < n).collect();
        let cols = inner.iter().map(|i| self.cols[*i].clone()).collect();
        let inner_schema = Arc::new(self.schema.project(&inner)?);
        Ok((
            cols,
            schema,
            scan::ConnectionColumn {
                at,
                inner: inner_schema,
            },
        ))
    }
}

#[async_trait]
impl TableProvider for ResourceTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (cols, schema, connection) = self.projected(projection)?;
        let plan = pushdown::analyze(&self.resource.spec, filters);
        let via = scan::ScanConnections {
            active: self.connections.select(filters),
            configured: self.connections.all().len(),
            primary: self.engine.clone(),
            policy: self.connections.policy(),
        };
        let exec = scan::ApiScanExec::new(
            via,
            self.resource.clone(),
            plan,
            cols,
            (schema, connection),
            limit,
        )?;
        Ok(Arc::new(exec))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match only_connection(f) {
                // Picks the connections before any call; DataFusion filters again.
                true => TableProviderFilterPushDown::Inexact,
                false => pushdown::classify(&self.resource.spec, f),
            })
            .collect())
    }

    async fn insert_into(
        &self,
        _state: &dyn DfSession,
        input: Arc<dyn ExecutionPlan>,
        op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.dml_insert(input, op).await
    }

    async fn delete_from(
        &self,
        state: &dyn DfSession,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.dml_delete(state, filters).await
    }

    async fn update(
        &self,
        state: &dyn DfSession,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.dml_update(state, assignments, filters).await
    }
}
