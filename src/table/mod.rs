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

use crate::convert;
use crate::engine::Engine;
use crate::provider::{ColumnSpec, Resource};

/// A resource as a DataFusion table. Secret columns are not part of it: they are
/// only ever returned by writes.
#[derive(Debug)]
pub struct ResourceTable {
    engine: Arc<Engine>,
    resource: Resource,
    cols: Vec<ColumnSpec>,
    schema: SchemaRef,
}

impl ResourceTable {
    /// The table of `resource`.
    pub fn new(engine: Arc<Engine>, resource: Resource) -> Self {
        let cols: Vec<ColumnSpec> = resource.spec.readable_columns().cloned().collect();
        let schema = convert::schema_of(&cols);
        Self {
            engine,
            resource,
            cols,
            schema,
        }
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
        let (cols, schema) = match projection {
            Some(p) => {
                let cols: Vec<ColumnSpec> = p.iter().map(|i| self.cols[*i].clone()).collect();
                let schema = Arc::new(self.schema.project(p)?);
                (cols, schema)
            }
            None => (self.cols.clone(), self.schema.clone()),
        };
        let plan = pushdown::analyze(&self.resource.spec, filters);
        let exec = scan::ApiScanExec::new(
            self.engine.clone(),
            self.resource.clone(),
            plan,
            cols,
            schema,
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
            .map(|f| pushdown::classify(&self.resource.spec, f))
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
