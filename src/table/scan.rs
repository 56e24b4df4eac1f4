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
use datafusion::physical_plan::execution_plan::{
    Boundedness, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use futures::stream;
use tokio::sync::mpsc::Sender;

use super::convert::rows_to_batch;
use super::pushdown::ScanPlan;
use crate::engine::{Engine, ScopeBinding, ScopeSource};
use crate::error::{Error, Result};
use crate::listing::Page;
use crate::notes::{Notes, Progress};
use crate::provider::{ColumnSpec, MethodSpec, Resource, Verb};

/// The scan of one resource.
pub struct ApiScanExec {
    job: ScanJob,
    props: Arc<PlanProperties>,
    description: String,
    metrics: ExecutionPlanMetricsSet,
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
        let calls = Calls::default();
        Ok(Self {
            job: ScanJob {
                engine,
                resource,
                plan,
                cols,
                schema,
                limit,
                calls,
                notes: Arc::default(),
                progress: None,
            },
            props,
            description,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

/// What the scan will call, for EXPLAIN. Fails when a required scope is missing.
fn describe(
    engine: &Engine,
    resource: &Resource,
    plan: &ScanPlan,
    limit: Option<usize>,
) -> Result<String> {
    let by_id = resource
        .spec
        .reads_by_id(plan.ids.is_some(), !plan.scopes.is_empty());
    let method = resource.method_for(Verb::Select, by_id)?;
    if !by_id
        && let Some(e) =
            super::pushdown::missing_required(&resource.qualified_name(), &resource.spec, plan)
    {
        return Err(e);
    }
    let mut parts = vec![format!("table={}", resource.qualified_name())];
    parts.extend(describe_calls(method, plan, by_id));
    parts.extend(describe_scope(engine, resource, method, plan)?);
    if let Some(l) = limit {
        parts.push(format!("limit={l}"));
    }
    parts.push(format!(
        "cost={}",
        cost(engine, resource, method, plan, limit, by_id)
    ));
    Ok(parts.join(", "))
}

/// `calls=...` and `api_filters=[...]` of EXPLAIN.
fn describe_calls(method: &MethodSpec, plan: &ScanPlan, by_id: bool) -> Vec<String> {
    if by_id {
        let n = plan.ids.as_deref().unwrap_or_default().len();
        return vec![format!(
            "calls=GET {} for {n} id(s) concurrently, no list call",
            method.path
        )];
    }
    let mut call = format!("calls=GET {}", method.path);
    if let Some(p) = method.per_page {
        call.push_str(&format!(
            " ({p} per page; pages after the first concurrently)"
        ));
    } else if let Some(l) = method.cursor_limit {
        call.push_str(&format!(
            " ({l} per page; each page after the cursor of the one before)"
        ));
    }
    let mut parts = vec![call];
    if !plan.api_filters.is_empty() {
        let f: Vec<_> = plan
            .api_filters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.push(format!("api_filters=[{}]", f.join(", ")));
    }
    parts
}

/// `scope=...` of EXPLAIN; fails when a required scope is missing.
fn describe_scope(
    engine: &Engine,
    resource: &Resource,
    method: &MethodSpec,
    plan: &ScanPlan,
) -> Result<Option<String>> {
    Ok(Some(
        match engine.scope_source(resource, method, &plan.scopes, &plan.opted_in) {
            ScopeSource::Unscoped => return Ok(None),
            ScopeSource::Pinned => {
                let s: Vec<_> = plan
                    .scopes
                    .iter()
                    .map(|(k, v)| format!("{k} in [{}]", v.join(", ")))
                    .collect();
                format!("scope={}", s.join("; "))
            }
            ScopeSource::DefaultAccount => "scope=default account (CLOUDFLARE_ACCOUNT_ID)".into(),
            ScopeSource::FanOut(source) => {
                let parts: Vec<String> = source.split('.').map(str::to_string).collect();
                let list = engine
                    .registry
                    .resolve(&parts)
                    .and_then(|t| t.spec.method(Verb::Select, false).map(|m| m.path.clone()))
                    .unwrap_or_default();
                format!(
                    "scope=fan-out over every row of cloudflare.{source} (GET {list}), concurrently"
                )
            }
            ScopeSource::NotAsked => {
                "scope=none: the opt-in scope was not asked for (see the note)".into()
            }
            ScopeSource::Missing(e) => return Err(e),
        },
    ))
}

/// The note owed when a scan could hold rows of an opt-in scope (zone-level service
/// tokens) and does not read them: never a silent omission.
fn unread_scope_note(
    resource: &Resource,
    method: &MethodSpec,
    source: &ScopeSource,
    plan: &ScanPlan,
) -> Option<String> {
    if matches!(source, ScopeSource::Pinned | ScopeSource::Unscoped) {
        return None;
    }
    let left_out = resource.spec.allowed_scopes(method).find(|s| {
        s.opt_in && !plan.opted_in.contains(&s.column) && !plan.opted_out.contains(&s.column)
    })?;
    let from = left_out.fanout.as_deref().unwrap_or("?");
    let (table, col) = (resource.qualified_name(), &left_out.column);
    let kind = col.strip_suffix("_id").unwrap_or(col);
    Some(if matches!(source, ScopeSource::NotAsked) {
        format!(
            "note: {table}: no rows were read: it is read per {kind} (a call per row of \
             cloudflare.{from}); add WHERE {col} IS NOT NULL for every {kind}, or WHERE {col} = '<id>'"
        )
    } else {
        format!(
            "note: {table}: {kind}-level rows were not read (a call per row of cloudflare.{from}); \
             add WHERE {col} IS NOT NULL to read them, or WHERE {col} IS NULL to say you do not want them"
        )
    })
}

/// The API calls the scan will make, as a number or a formula (the budget is 1,200 calls
/// per 5 minutes, so this is what bounds a query at scale).
fn cost(
    engine: &Engine,
    resource: &Resource,
    method: &crate::provider::MethodSpec,
    plan: &ScanPlan,
    limit: Option<usize>,
    by_id: bool,
) -> String {
    let per_scope = if by_id {
        format!("{}", plan.ids.as_ref().map_or(0, Vec::len))
    } else {
        match (method.per_page.or(method.cursor_limit), limit) {
            (Some(p), Some(l)) => format!("{}", l.div_ceil(p as usize).max(1)),
            (Some(p), None) => format!("ceil(rows/{p}) (at least 1)"),
            (None, _) => "1".into(),
        }
    };
    match engine.scope_source(resource, method, &plan.scopes, &plan.opted_in) {
        ScopeSource::Pinned => {
            let n: usize = plan.scopes.values().map(Vec::len).sum();
            if n == 1 {
                format!("{per_scope} call(s)")
            } else {
                format!("{per_scope} call(s) per scope x {n} scopes")
            }
        }
        ScopeSource::FanOut(source) => {
            let per = engine
                .registry
                .resolve(&source.split('.').map(str::to_string).collect::<Vec<_>>())
                .and_then(|t| t.spec.method(Verb::Select, false).and_then(|m| m.per_page))
                .unwrap_or(50);
            let rows = source.rsplit('.').next().unwrap_or("rows");
            let one = rows.strip_suffix('s').unwrap_or(rows);
            format!("ceil({rows}/{per}) to list the {rows} + {per_scope} per {one}")
        }
        ScopeSource::NotAsked => "0 calls".into(),
        _ => format!("{per_scope} call(s)"),
    }
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

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let mut builder = RecordBatchReceiverStream::builder(self.job.schema.clone(), 4);
        let tx = builder.tx();
        let mut job = self.job.clone();
        job.notes = Notes::of(context.session_config());
        job.progress = Progress::of(context.session_config());
        // EXPLAIN ANALYZE shows what the scan cost: calls made and calls the cache answered.
        job.calls = Calls {
            made: Some(MetricBuilder::new(&self.metrics).counter("api_calls", partition)),
            cached: Some(MetricBuilder::new(&self.metrics).counter("api_cache_hits", partition)),
        };
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
    calls: Calls,
    /// The statement's notes (set when the scan executes).
    notes: Arc<Notes>,
    /// The session's progress listener, if any (set when the scan executes).
    progress: Option<Arc<Progress>>,
}

/// The scan's call counters (set when it executes).
#[derive(Clone, Default)]
struct Calls {
    made: Option<Count>,
    cached: Option<Count>,
}

impl Calls {
    fn add(&self, cached: bool) {
        let c = if cached { &self.cached } else { &self.made };
        if let Some(c) = c {
            c.add(1);
        }
    }
}

/// Where a scan's batches go; `false` once the consumer stopped reading.
type Tx = Sender<DfResult<datafusion::arrow::record_batch::RecordBatch>>;

/// What one scan is reading: its method, its scopes, and the failures so far.
struct Reading {
    method: MethodSpec,
    scopes: Vec<ScopeBinding>,
    /// Failures of single scopes of a fan-out are collected (the policy decides at the
    /// end); any other failure ends the scan at once.
    fanned: bool,
    failures: Vec<(String, Error)>,
}

impl ScanJob {
    async fn run(self, tx: Tx) -> Result<()> {
        let spec = &self.resource.spec;
        let by_id = spec.reads_by_id(self.plan.ids.is_some(), !self.plan.scopes.is_empty());
        let method = spec
            .method(Verb::Select, by_id)
            .cloned()
            .expect("checked when planning");
        let source = self.engine.scope_source(
            &self.resource,
            &method,
            &self.plan.scopes,
            &self.plan.opted_in,
        );
        let fanned = matches!(source, ScopeSource::FanOut(_));
        if let Some(note) = unread_scope_note(&self.resource, &method, &source, &self.plan) {
            self.notes.add(note);
        }
        let scopes = self
            .engine
            .resolve_scopes(
                &self.resource,
                &method,
                &self.plan.scopes,
                &self.plan.opted_in,
                &self.notes,
            )
            .await?;
        let per_scope = if by_id {
            self.plan.ids.as_ref().map_or(0, Vec::len)
        } else {
            1
        };
        let table = self.resource.qualified_name();
        self.engine
            .client
            .budget
            .forecast(&table, (scopes.len() * per_scope) as u64);
        let mut reading = Reading {
            method,
            scopes,
            fanned,
            failures: Vec::new(),
        };
        if by_id {
            self.get_by_id(&mut reading, &tx).await?;
        } else {
            self.list(&mut reading, &tx).await?;
        }
        self.engine
            .fanout_outcome(&table, reading.failures, reading.scopes.len(), &self.notes)
    }

    /// One GET per pinned id in every scope, concurrently; a 404 is no row.
    async fn get_by_id(&self, reading: &mut Reading, tx: &Tx) -> Result<()> {
        let ids = self.plan.ids.clone().unwrap_or_default();
        let jobs: Vec<_> = reading
            .scopes
            .iter()
            .flat_map(|s| ids.iter().map(move |id| (s.clone(), id.clone())))
            .collect();
        let (engine, resource, method) = (&self.engine, &self.resource, &reading.method);
        let mut results = stream::iter(jobs)
            .map(|(scope, id)| async move {
                let r = engine.get_one(resource, method, &scope, &id).await;
                (scope, id, r)
            })
            .buffer_unordered(engine.config.concurrency.max(1));
        while let Some((scope, id, r)) = results.next().await {
            match r {
                Ok(Some((obj, cached))) => {
                    self.calls.add(cached);
                    let path = Engine::fill_path(resource, method, &scope, Some(&id)).unwrap_or(id);
                    let batch = rows_to_batch(
                        &self.schema,
                        &self.cols,
                        &[obj],
                        &scope.values,
                        "GET",
                        &path,
                    )?;
                    if tx.send(Ok(batch)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => {}
                Err(e) if reading.fanned => reading.failures.push((scope.label(), e)),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The list method's pages in every scope, merged as they arrive, until the LIMIT.
    async fn list(&self, reading: &mut Reading, tx: &Tx) -> Result<()> {
        let table = self.resource.qualified_name();
        let streams = reading.scopes.iter().map(|scope| {
            let scope = scope.clone();
            let filters = super::pushdown::list_query(&self.resource.spec, &self.plan);
            self.engine
                .list_pages(&self.resource, &reading.method, &scope, filters, self.limit)
                .map(move |r| (scope.clone(), r))
                .boxed()
        });
        let mut merged = stream::select_all(streams);
        let mut failed: HashSet<String> = HashSet::new();
        let (mut pages, mut rows_sent) = (0u64, 0u64);
        while let Some((scope, r)) = merged.next().await {
            let label = scope.label();
            if failed.contains(&label) {
                continue;
            }
            let page = match r {
                Ok(page) => page,
                Err(e) if reading.fanned => {
                    failed.insert(label.clone());
                    reading.failures.push((label, e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Page {
                endpoint,
                rows,
                notes,
                cached,
            } = page;
            self.calls.add(cached);
            notes.into_iter().for_each(|n| self.notes.add(n));
            pages += 1;
            rows_sent += rows.len() as u64;
            let batch = rows_to_batch(
                &self.schema,
                &self.cols,
                &rows,
                &scope.values,
                "GET",
                &endpoint,
            )?;
            if let Some(p) = &self.progress {
                p.report(&table, pages, rows_sent);
            }
            if tx.send(Ok(batch)).await.is_err()
                || self.limit.is_some_and(|l| rows_sent >= l as u64)
            {
                return Ok(());
            }
        }
        Ok(())
    }
}
