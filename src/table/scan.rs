//! `ApiScanExec`: the physical scan of a resource. It resolves scopes (fan-out over
//! accounts), then either GETs pinned ids or pages the list method, streaming each
//! page to DataFusion as an Arrow batch.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
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
use crate::config::FanoutErrors;
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

/// The connections one scan reads through.
#[derive(Clone)]
pub struct ScanConnections {
    /// Those the WHERE lets through, in order.
    pub active: Vec<Arc<Engine>>,
    /// Configured in all (EXPLAIN names the active ones when there is more than one).
    pub configured: usize,
    /// The connection the planner asks (scopes, the default account) when none is active.
    pub primary: Arc<Engine>,
    /// What a failing connection does when several are read.
    pub policy: FanoutErrors,
}

/// Where the `connection` column goes in the scan's output, and the schema of the rest.
#[derive(Clone)]
pub struct ConnectionColumn {
    /// Its position in the output, when projected.
    pub at: Option<usize>,
    /// The output's schema without it (what the API's rows are converted to).
    pub inner: SchemaRef,
}

impl ApiScanExec {
    /// A scan of `resource` returning `cols` (matching `schema`, which has the
    /// `connection` column where `connection.at` says).
    pub fn new(
        via: ScanConnections,
        resource: Resource,
        plan: ScanPlan,
        cols: Vec<ColumnSpec>,
        (schema, connection): (SchemaRef, ConnectionColumn),
        limit: Option<usize>,
    ) -> Result<Self> {
        let engine = via.active.first().unwrap_or(&via.primary).clone();
        let mut description = describe(&engine, &resource, &plan, limit)?;
        if via.configured > 1 {
            let names: Vec<&str> = via.active.iter().map(|e| e.name.as_str()).collect();
            description.push_str(&format!(
                " per connection, connections=[{}] (side by side, each with its own budget)",
                names.join(", ")
            ));
        }
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        let calls = Calls::default();
        Ok(Self {
            job: ScanJob {
                via,
                connection,
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
    via: ScanConnections,
    connection: ConnectionColumn,
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

/// What one connection's part of a scan is reading: its method, its scopes, and the
/// failures so far.
struct Reading {
    engine: Arc<Engine>,
    method: MethodSpec,
    scopes: Vec<ScopeBinding>,
    /// Failures of single scopes of a fan-out are collected (the policy decides at the
    /// end); any other failure ends the scan at once.
    fanned: bool,
    failures: Vec<(String, Error)>,
    /// Pages held back instead of sent: an unscoped read through one of several
    /// connections, whose objects another connection may also return. They are sent once
    /// every connection is read, in the connections' order, each object once.
    held: Option<Held>,
}

/// Pages of one connection held back: (rows, scope, endpoint).
type Held = Arc<Mutex<Vec<(Vec<serde_json::Value>, ScopeBinding, String)>>>;

impl ScanJob {
    async fn run(self, tx: Tx) -> Result<()> {
        let spec = &self.resource.spec;
        let by_id = spec.reads_by_id(self.plan.ids.is_some(), !self.plan.scopes.is_empty());
        let method = spec
            .method(Verb::Select, by_id)
            .cloned()
            .expect("checked when planning");
        let Some(first) = self.via.active.first().cloned() else {
            return Ok(()); // the WHERE on `connection` leaves none: no call, no row
        };
        let source = first.scope_source(
            &self.resource,
            &method,
            &self.plan.scopes,
            &self.plan.opted_in,
        );
        if let Some(note) = unread_scope_note(&self.resource, &method, &source, &self.plan) {
            self.notes.add(note);
        }
        let fanned = matches!(source, ScopeSource::FanOut(_));
        if self.via.configured == 1 {
            let scopes = self.scopes_of(&first, &method).await?;
            let reading = Reading::new(first, &method, scopes, fanned, None);
            return self.read(reading, by_id, &tx).await;
        }
        self.run_several(&method, fanned, by_id, &tx).await
    }

    /// The scan through each active connection side by side (each has its own budget):
    /// every connection's scopes first, each scope then read through the first connection
    /// that has it, every unscoped object kept from the first connection that returns it.
    async fn run_several(
        &self,
        method: &MethodSpec,
        fanned: bool,
        by_id: bool,
        tx: &Tx,
    ) -> Result<()> {
        let engines = self.via.active.clone();
        let found = futures::future::join_all(engines.iter().map(|e| async move {
            let scopes = self.scopes_of(e, method).await?;
            self.mark_visible(e, scopes).await
        }))
        .await;
        let (mut failed, mut per_engine) = (Vec::new(), Vec::new());
        for (engine, f) in engines.iter().zip(found) {
            match f {
                Ok(scopes) => per_engine.push((engine.clone(), scopes)),
                Err(e) => failed.push((engine.name.clone(), e)),
            }
        }
        // A connection that failed to list its scopes fails the statement before the others
        // read anything (unless every profile says warn).
        if self.via.policy == FanoutErrors::Fail
            && let Some((name, e)) = failed.pop()
        {
            return Err(connection_failed(name, e));
        }
        let (owners, shared) = owners_of(&per_engine);
        let mut held: Vec<(Arc<Engine>, Held)> = Vec::new();
        let readings: Vec<Reading> = per_engine
            .into_iter()
            .enumerate()
            .map(|(i, (engine, scopes))| {
                let mine: Vec<ScopeBinding> = scopes
                    .into_iter()
                    .map(|(s, _)| s)
                    .filter(|s| owners.get(&scope_key(s)).is_none_or(|o| *o == i))
                    .collect();
                let hold = mine.iter().all(is_unscoped).then(Held::default);
                if let Some(h) = &hold {
                    held.push((engine.clone(), h.clone()));
                }
                Reading::new(engine, method, mine, fanned, hold)
            })
            .collect();
        if shared > 0 {
            self.notes.add(format!(
                "note: {}: {shared} scope(s) seen through several connections were read once, through the first that sees them (its name is in the connection column)",
                self.resource.qualified_name()
            ));
        }
        let mut runs: futures::stream::FuturesUnordered<_> = readings
            .into_iter()
            .map(|r| async move {
                let name = r.engine.name.clone();
                (name, self.read(r, by_id, tx).await)
            })
            .collect();
        while let Some((name, r)) = runs.next().await {
            if let Err(e) = r {
                if self.via.policy == FanoutErrors::Fail {
                    return Err(connection_failed(name, e));
                }
                failed.push((name, e));
            }
        }
        drop(runs);
        self.connection_outcome(failed)?;
        self.send_held(held, tx).await
    }

    /// The held pages, connection by connection in order, each object (by id) once: the
    /// first connection that returned it names it.
    async fn send_held(&self, held: Vec<(Arc<Engine>, Held)>, tx: &Tx) -> Result<()> {
        let id = self.resource.spec.id.as_ref().map(|i| i.column.clone());
        let mut seen: HashSet<String> = HashSet::new();
        for (engine, pages) in held {
            let pages = std::mem::take(&mut *pages.lock().unwrap_or_else(|p| p.into_inner()));
            for (mut rows, scope, endpoint) in pages {
                if let Some(id) = &id {
                    rows.retain(|r| match r.get(id).and_then(|v| v.as_str()) {
                        Some(v) => seen.insert(v.to_string()),
                        None => true,
                    });
                }
                let batch = self.batch(&engine, rows, &scope, &endpoint)?;
                if tx.send(Ok(batch)).await.is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Sends the batch of `rows` (or holds them, see [`Reading::held`]); `false` once the
    /// consumer stopped reading.
    async fn emit(
        &self,
        reading: &Reading,
        rows: Vec<serde_json::Value>,
        scope: &ScopeBinding,
        endpoint: &str,
        tx: &Tx,
    ) -> Result<bool> {
        if let Some(held) = &reading.held {
            let mut h = held.lock().unwrap_or_else(|p| p.into_inner());
            h.push((rows, scope.clone(), endpoint.to_string()));
            return Ok(true);
        }
        let batch = self.batch(&reading.engine, rows, scope, endpoint)?;
        Ok(tx.send(Ok(batch)).await.is_ok())
    }

    /// Connections that failed: the statement fails naming the first, or (every profile
    /// says `fanout_errors = "warn"`) each is a warning and the others' rows stand.
    fn connection_outcome(&self, failed: Vec<(String, Error)>) -> Result<()> {
        let table = self.resource.qualified_name();
        for (name, e) in failed {
            if self.via.policy == FanoutErrors::Fail {
                return Err(connection_failed(name, e));
            }
            self.notes.add(format!(
                "warning: {table}: connection '{name}' failed ({}); {}",
                e.cause(),
                crate::engine::ROWS_MISSING
            ));
        }
        Ok(())
    }

    /// The scopes this scan reads through `engine` (listing its accounts for a fan-out).
    async fn scopes_of(&self, engine: &Engine, method: &MethodSpec) -> Result<Vec<ScopeBinding>> {
        engine
            .resolve_scopes(
                &self.resource,
                method,
                &self.plan.scopes,
                &self.plan.opted_in,
                &self.notes,
            )
            .await
    }

    /// Each scope with whether `engine` sees it: a scope the WHERE pins is seen when the
    /// connection's fan-out listing (its accounts, its zones) has it, so that several
    /// connections do not all ask for one account and fail where they are not members.
    async fn mark_visible(
        &self,
        engine: &Engine,
        scopes: Vec<ScopeBinding>,
    ) -> Result<Vec<(ScopeBinding, bool)>> {
        let spec = &self.resource.spec;
        let mut marked = Vec::with_capacity(scopes.len());
        for s in scopes {
            let pinned = s.values.iter().find_map(|(c, v)| Some((c, v.as_ref()?)));
            let source = pinned.and_then(|(c, v)| Some((spec.scope(c)?.fanout.clone()?, v)));
            let visible = match source {
                Some((source, value)) if !self.plan.scopes.is_empty() => engine
                    .list_ids(&source, &self.notes)
                    .await?
                    .iter()
                    .any(|id| id == value),
                _ => true,
            };
            marked.push((s, visible));
        }
        Ok(marked)
    }

    /// One connection's part: its scopes, by id or by listing.
    async fn read(&self, mut reading: Reading, by_id: bool, tx: &Tx) -> Result<()> {
        let per_scope = if by_id {
            self.plan.ids.as_ref().map_or(0, Vec::len)
        } else {
            1
        };
        let table = self.resource.qualified_name();
        reading
            .engine
            .client
            .budget
            .forecast(&table, (reading.scopes.len() * per_scope) as u64);
        if by_id {
            self.get_by_id(&mut reading, tx).await?;
        } else {
            self.list(&mut reading, tx).await?;
        }
        let total = reading.scopes.len();
        reading
            .engine
            .fanout_outcome(&table, reading.failures, total, &self.notes)
    }

    /// The batch of `rows` read through `engine` in `scope`, with the `connection`
    /// column filled.
    fn batch(
        &self,
        engine: &Engine,
        rows: Vec<serde_json::Value>,
        scope: &ScopeBinding,
        endpoint: &str,
    ) -> Result<RecordBatch> {
        let inner = rows_to_batch(
            &self.connection.inner,
            &self.cols,
            &rows,
            &scope.values,
            "GET",
            endpoint,
        )?;
        let Some(at) = self.connection.at else {
            return Ok(inner);
        };
        let mut columns: Vec<ArrayRef> = inner.columns().to_vec();
        let name = engine.name.as_str();
        columns.insert(
            at,
            Arc::new(StringArray::from(vec![name; inner.num_rows()])),
        );
        let options = datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(inner.num_rows()));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|e| Error::Config(format!("connection column: {e}")))
    }

    /// One GET per pinned id in every scope, concurrently; a 404 is no row.
    async fn get_by_id(&self, reading: &mut Reading, tx: &Tx) -> Result<()> {
        let ids = self.plan.ids.clone().unwrap_or_default();
        let jobs: Vec<_> = reading
            .scopes
            .iter()
            .flat_map(|s| ids.iter().map(move |id| (s.clone(), id.clone())))
            .collect();
        let engine = reading.engine.clone();
        let (resource, method) = (&self.resource, &reading.method);
        let mut results = stream::iter(jobs)
            .map(|(scope, id)| {
                let engine = engine.clone();
                async move {
                    let r = engine.get_one(resource, method, &scope, &id).await;
                    (scope, id, r)
                }
            })
            .buffer_unordered(engine.config.concurrency.max(1));
        while let Some((scope, id, r)) = results.next().await {
            match r {
                Ok(Some((obj, cached))) => {
                    self.calls.add(cached);
                    let path = Engine::fill_path(resource, method, &scope, Some(&id)).unwrap_or(id);
                    if !self.emit(reading, vec![obj], &scope, &path, tx).await? {
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
            reading
                .engine
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
            if let Some(p) = &self.progress {
                p.report(&table, pages, rows_sent);
            }
            if !self.emit(reading, rows, &scope, &endpoint, tx).await?
                || self.limit.is_some_and(|l| rows_sent >= l as u64)
            {
                return Ok(());
            }
        }
        Ok(())
    }
}

impl Reading {
    fn new(
        engine: Arc<Engine>,
        method: &MethodSpec,
        scopes: Vec<ScopeBinding>,
        fanned: bool,
        held: Option<Held>,
    ) -> Self {
        Self {
            engine,
            method: method.clone(),
            scopes,
            fanned,
            failures: Vec::new(),
            held,
        }
    }
}

/// A connection's scopes, each with whether the connection sees it.
type MarkedScopes = Vec<(ScopeBinding, bool)>;

/// A scope's identity across connections: its path prefix and query parameters.
type ScopeKey = (String, Vec<(String, String)>);

fn is_unscoped(s: &ScopeBinding) -> bool {
    s.prefix.is_empty() && s.query.is_empty()
}

fn scope_key(s: &ScopeBinding) -> ScopeKey {
    (s.prefix.clone(), s.query.clone())
}

/// Which connection (index) reads each scope: the first that sees it, else (none sees it)
/// the first that has it, so the API says what is wrong with it. Unscoped reads have no
/// owner: every connection reads them, and their rows are kept once by id. Also how many
/// scopes more than one connection sees.
fn owners_of(
    per_engine: &[(Arc<Engine>, MarkedScopes)],
) -> (std::collections::HashMap<ScopeKey, usize>, usize) {
    let mut owners = std::collections::HashMap::new();
    let mut shared = 0;
    for want_visible in [true, false] {
        for (i, (_, scopes)) in per_engine.iter().enumerate() {
            for (s, visible) in scopes {
                if s.prefix.is_empty() && s.query.is_empty() || *visible != want_visible {
                    continue;
                }
                match owners.entry(scope_key(s)) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(i);
                    }
                    std::collections::hash_map::Entry::Occupied(_) if want_visible => shared += 1,
                    std::collections::hash_map::Entry::Occupied(_) => {}
                }
            }
        }
    }
    (owners, shared)
}

/// A connection's failure, named (unless it already is).
fn connection_failed(name: String, e: Error) -> Error {
    match e {
        e @ Error::Connection { .. } => e,
        e => Error::Connection {
            name,
            source: Box::new(e),
        },
    }
}
