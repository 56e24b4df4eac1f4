//! `ApiScanExec`: the physical scan of a resource. It resolves scopes (fan-out over
//! accounts), then either GETs pinned ids or pages the list method, streaming each
//! page to DataFusion as an Arrow batch.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use futures::StreamExt;
use futures::stream;
use tokio::sync::mpsc::Sender;

use super::convert::rows_to_batch;
use super::pushdown::ScanPlan;
use crate::engine::{Engine, ScopeSource};
use crate::error::{Error, Result};
use crate::listing::Page;
use crate::provider::{ColumnSpec, Resource, Verb};

/// The scan of one resource.
pub struct ApiScanExec {
    job: ScanJob,
    props: Arc<PlanProperties>,
    description: String,
}

impl fmt::Debug for ApiScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiScanExec({})", self.description)
    }
}

impl ApiScanExec {
    /// A scan of `resource` returning `cols` (matching `schema`).
    pub fn new(
        engine: Arc<Engine>,
        resource: Resource,
        plan: ScanPlan,
        cols: Vec<ColumnSpec>,
        schema: SchemaRef,
        limit: Option<usize>,
    ) -> Result<Self> {
        let description = describe(&engine, &resource, &plan, limit)?;
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self { job: ScanJob { engine, resource, plan, cols, schema, limit }, props, description })
    }
}

/// What the scan will call, for EXPLAIN. Fails when a required scope is missing.
fn describe(engine: &Engine, resource: &Resource, plan: &ScanPlan, limit: Option<usize>) -> Result<String> {
    let spec = &resource.spec;
    let by_id = plan.ids.is_some() && spec.method(Verb::Select, true).is_some();
    let method = spec
        .method(Verb::Select, by_id)
        .ok_or_else(|| Error::InvalidInput(format!("{} cannot be read with SELECT", resource.qualified_name())))?;
    let mut parts = vec![format!("table={}", resource.qualified_name())];
    if by_id {
        let ids = plan.ids.as_deref().unwrap_or_default();
        parts.push(format!("calls=GET {} for {} id(s) concurrently, no list call", method.path, ids.len()));
    } else {
        let mut call = format!("calls=GET {}", method.path);
        if let Some(p) = method.per_page {
            call.push_str(&format!(" ({p} per page; pages after the first concurrently)"));
        }
        parts.push(call);
        if !plan.api_filters.is_empty() {
            let f: Vec<_> = plan.api_filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.push(format!("api_filters=[{}]", f.join(", ")));
        }
    }
    match engine.scope_source(resource, method, &plan.scopes) {
        ScopeSource::Unscoped => {}
        ScopeSource::Pinned => {
            let s: Vec<_> = plan.scopes.iter().map(|(k, v)| format!("{k} in [{}]", v.join(", "))).collect();
            parts.push(format!("scope={}", s.join("; ")));
        }
        ScopeSource::DefaultAccount => parts.push("scope=default account (CLOUDFLARE_ACCOUNT_ID)".into()),
        ScopeSource::FanOut(source) => {
            let list = engine
                .registry
                .resolve(&source.split('.').map(str::to_string).collect::<Vec<_>>())
                .and_then(|t| t.spec.method(Verb::Select, false).map(|m| m.path.clone()))
                .unwrap_or_default();
            parts.push(format!("scope=fan-out over every row of cloudflare.{source} (GET {list}), concurrently"));
        }
        ScopeSource::Missing(e) => return Err(e),
    }
    if let Some(l) = limit {
        parts.push(format!("limit={l}"));
    }
    Ok(parts.join(", "))
}

impl DisplayAs for ApiScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ApiScanExec: {}", self.description)
    }
}

impl ExecutionPlan for ApiScanExec {
    fn name(&self) -> &str {
        "ApiScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, _partition: usize, _context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let mut builder = RecordBatchReceiverStream::builder(self.job.schema.clone(), 4);
        let tx = builder.tx();
        let job = self.job.clone();
        builder.spawn(async move { job.run(tx).await.map_err(Into::into) });
        Ok(builder.build())
    }
}

/// Everything a scan needs at run time.
#[derive(Clone)]
struct ScanJob {
    engine: Arc<Engine>,
    resource: Resource,
    plan: ScanPlan,
    cols: Vec<ColumnSpec>,
    schema: SchemaRef,
    limit: Option<usize>,
}

impl ScanJob {
    async fn run(self, tx: Sender<DfResult<datafusion::arrow::record_batch::RecordBatch>>) -> Result<()> {
        let spec = &self.resource.spec;
        let table = self.resource.qualified_name();
        let by_id = self.plan.ids.is_some() && spec.method(Verb::Select, true).is_some();
        let method = spec.method(Verb::Select, by_id).cloned().expect("checked when planning");
        let fanned = matches!(self.engine.scope_source(&self.resource, &method, &self.plan.scopes), ScopeSource::FanOut(_));
        let scopes = self.engine.resolve_scopes(&self.resource, &method, &self.plan.scopes).await?;
        let n_scopes = scopes.len();
        let conc = self.engine.config.concurrency.max(1);
        let mut failures: Vec<(String, Error)> = Vec::new();
        let (mut pages, mut rows_sent) = (0u64, 0u64);
        if by_id {
            let ids = self.plan.ids.clone().unwrap_or_default();
            let jobs: Vec<_> = scopes.iter().flat_map(|s| ids.iter().map(move |id| (s.clone(), id.clone()))).collect();
            let engine = &self.engine;
            let resource = &self.resource;
            let method = &method;
            let mut results = stream::iter(jobs)
                .map(|(scope, id)| async move {
                    let r = engine.get_one(resource, method, &scope, &id).await;
                    (scope, id, r)
                })
                .buffer_unordered(conc);
            while let Some((scope, id, r)) = results.next().await {
                match r {
                    Ok(Some(obj)) => {
                        let path = Engine::fill_path(resource, method, &scope, Some(&id)).unwrap_or(id);
                        let batch = rows_to_batch(&self.schema, &self.cols, &[obj], &scope.values, "GET", &path)?;
                        if tx.send(Ok(batch)).await.is_err() {
                            return Ok(());
                        }
                    }
                    Ok(None) => {}
                    Err(e) if fanned => failures.push((scope.label(), e)),
                    Err(e) => return Err(e),
                }
            }
        } else {
            let streams = scopes.iter().map(|scope| {
                let scope = scope.clone();
                self.engine
                    .list_pages(&self.resource, &method, &scope, self.plan.api_filters.clone(), self.limit)
                    .map(move |r| (scope.clone(), r))
                    .boxed()
            });
            let mut merged = stream::select_all(streams);
            let mut failed: HashSet<String> = HashSet::new();
            while let Some((scope, r)) = merged.next().await {
                let label = scope.label();
                if failed.contains(&label) {
                    continue;
                }
                match r {
                    Ok(Page { endpoint, rows, notes }) => {
                        for n in notes {
                            self.engine.warn(n);
                        }
                        pages += 1;
                        rows_sent += rows.len() as u64;
                        let batch = rows_to_batch(&self.schema, &self.cols, &rows, &scope.values, "GET", &endpoint)?;
                        self.engine.report_progress(&table, pages, rows_sent);
                        if tx.send(Ok(batch)).await.is_err() {
                            return Ok(());
                        }
                        if self.limit.is_some_and(|l| rows_sent >= l as u64) {
                            break;
                        }
                    }
                    Err(e) if fanned => {
                        failed.insert(label.clone());
                        failures.push((label, e));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.engine.fanout_outcome(&table, failures, n_scopes)
    }
}
