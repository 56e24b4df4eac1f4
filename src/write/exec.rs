//! `WriteExec`, the physical plan of a write. Its input (if any) yields the rows to act
//! on; it reads them all, plans and validates one call per row, then makes the calls and
//! yields each outcome as it returns.
//!
//! The work runs in a task of its own, so a consumer that stops reading (a dropped
//! stream is how DataFusion cancels) never drops a call in flight: the task stops
//! *starting* calls, waits for those already sent and records each of them (secrets file,
//! audit log) before it ends.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::UInt64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use tokio::sync::mpsc;

use super::{Calls, Finished, PlannedCall, RowPlan, Target, plan, run};
use crate::cancel::Cancel;
use crate::connections::Connections;
use crate::convert::{schema_of, text_batch, text_schema};
use crate::error::{Error, Result};
use crate::notes::{Notes, Origin};
use crate::provider::ColumnSpec;

/// What a write's stream yields.
#[derive(Debug, Clone)]
pub(crate) enum Produce {
    /// One row per call that took effect, with these columns (cfql's statements,
    /// RETURNING): the row is sent the moment its call returns.
    Rows(Vec<ColumnSpec>),
    /// One row with the `count` of rows that took effect (DataFusion's DML contract).
    Count,
    /// The calls it would make, none sent (`cfql.dry_run`, EXPLAIN of a write).
    DryRun,
}

/// The physical plan of one write statement.
pub(crate) struct WriteExec {
    job: Arc<Job>,
    input: Option<Arc<dyn ExecutionPlan>>,
    schema: SchemaRef,
    props: Arc<PlanProperties>,
}

struct Job {
    connections: Arc<Connections>,
    target: Target,
    /// Calls planned before the plan runs; taken by the one run.
    planned: Mutex<Option<Vec<PlannedCall>>>,
    rows: Option<RowPlan>,
    produce: Produce,
    statement: String,
    cancel: Cancel,
    finished: Mutex<Option<Finished>>,
}

impl fmt::Debug for WriteExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WriteExec({} {})",
            self.job.target.verb_name(),
            self.job.target.resource.qualified_name()
        )
    }
}

impl WriteExec {
    /// The write of `calls` on `target`. `statement` goes to the audit log; `cancel`
    /// stops it from starting calls.
    pub(crate) fn new(
        connections: Arc<Connections>,
        target: Target,
        calls: Calls,
        produce: Produce,
        statement: &str,
        cancel: Cancel,
    ) -> Self {
        let (planned, rows, input) = match calls {
            Calls::Planned(c) => (Some(c), None, None),
            Calls::FromInput { input, rows } => (None, Some(rows), Some(input)),
        };
        let schema = match &produce {
            Produce::Rows(cols) => schema_of(cols),
            Produce::Count => count_schema(),
            Produce::DryRun => text_schema(&DRY_RUN_COLUMNS),
        };
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        let job = Job {
            connections,
            target,
            planned: Mutex::new(planned),
            rows,
            produce,
            statement: statement.to_string(),
            cancel,
            finished: Mutex::new(None),
        };
        Self {
            job: Arc::new(job),
            input,
            schema,
            props,
        }
    }

    /// What took effect, once the stream has ended without an error.
    pub(crate) fn finished(&self) -> Option<Finished> {
        self.job
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// What a dry run lists of each call; `connection` is the credential that would make it.
const DRY_RUN_COLUMNS: [&str; 5] = ["row", "method", "path", "body", "connection"];

impl DisplayAs for WriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let t = &self.job.target;
        write!(
            f,
            "WriteExec: {} {} via {} {}",
            t.verb_name(),
            t.resource.qualified_name(),
            t.method.http,
            t.method.path
        )?;
        if let Some(planned) = self
            .job
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            write!(f, ", {} call(s) planned, no read", planned.len())?;
        }
        Ok(())
    }
}

impl ExecutionPlan for WriteExec {
    fn name(&self) -> &str {
        "WriteExec"
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.input.iter().collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match (children.len(), &self.input) {
            (0, None) => Ok(self),
            (1, Some(_)) => Ok(Arc::new(WriteExec {
                job: self.job.clone(),
                input: children.into_iter().next(),
                schema: self.schema.clone(),
                props: self.props.clone(),
            })),
            _ => Err(DataFusionError::Internal(
                "WriteExec takes at most one input".into(),
            )),
        }
    }

    fn execute(
        &self,
        partition: usize,
        ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "WriteExec has one partition, not {partition}"
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (job, input) = (self.job.clone(), self.input.clone());
        let busy = job.connections.primary().writes.enter();
        // Detached on purpose: see the module comment.
        tokio::spawn(async move {
            let _busy = busy;
            let sink = Sink { tx };
            let notes = Notes::of(ctx.session_config());
            if let Err(e) = job.run(input, ctx, &sink, &notes).await {
                sink.send(Err(e.into()));
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// Where a write's outcomes go as they happen.
pub(super) struct Sink {
    tx: mpsc::UnboundedSender<DfResult<RecordBatch>>,
}

impl Sink {
    /// Sends an item; `false` when nobody reads any more.
    pub(super) fn send(&self, item: DfResult<RecordBatch>) -> bool {
        self.tx.send(item).is_ok()
    }

    /// Whether the consumer is gone (the statement was dropped).
    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl Job {
    async fn run(
        &self,
        input: Option<Arc<dyn ExecutionPlan>>,
        ctx: Arc<TaskContext>,
        sink: &Sink,
        notes: &Notes,
    ) -> Result<()> {
        let origin = Origin::of(ctx.session_config());
        let planned = self
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let calls = match (planned, &self.rows, input) {
            (Some(calls), _, _) => calls,
            (None, Some(rows), Some(input)) => {
                let batches = self.read(input, ctx, sink).await?;
                plan::calls_from_rows(&self.connections, &self.target, rows, &batches)?
            }
            _ => return Err(Error::Config("a write plan runs once".into())),
        };
        if matches!(self.produce, Produce::DryRun) {
            sink.send(Ok(dry_run_batch(&calls)?));
            notes.add(format!(
                "dry run: {} call(s) listed, none sent",
                calls.len()
            ));
            return Ok(());
        }
        // A count-only caller still gets every column of what took effect inside the
        // error of a partial failure (secrets included): nothing issued is lost.
        let (cols, stream_rows) = match &self.produce {
            Produce::Rows(cols) => (cols.clone(), true),
            _ => (self.target.resource.spec.columns.clone(), false),
        };
        let run = run::Run {
            engine: self.connections.primary(),
            target: &self.target,
            statement: &self.statement,
            origin,
            cancel: &self.cancel,
            sink,
            notes,
        };
        let finished = run.run(calls, &cols, stream_rows).await?;
        if matches!(self.produce, Produce::Count) {
            let count = UInt64Array::from(vec![finished.summary.took_effect as u64]);
            let batch = RecordBatch::try_new(count_schema(), vec![Arc::new(count)])
                .map_err(DataFusionError::from)?;
            sink.send(Ok(batch));
        }
        *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(finished);
        Ok(())
    }

    /// Reads every row of the input. Nothing was changed yet, so a cancel (or a consumer
    /// that went away) stops it at once.
    async fn read(
        &self,
        input: Arc<dyn ExecutionPlan>,
        ctx: Arc<TaskContext>,
        sink: &Sink,
    ) -> Result<Vec<RecordBatch>> {
        let stopped = || Error::Cancelled {
            what: "stopped while reading what to change; nothing was changed".into(),
        };
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(stopped()),
            _ = sink.tx.closed() => Err(stopped()),
            r = datafusion::physical_plan::collect(input, ctx) => r.map_err(Error::from),
        }
    }
}

fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

fn dry_run_batch(calls: &[PlannedCall]) -> Result<RecordBatch> {
    let rows = calls
        .iter()
        .map(|c| {
            vec![
                c.row.to_string(),
                c.request.method.to_string(),
                c.request.display_path(),
                c.request
                    .body
                    .as_ref()
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                c.via.name.clone(),
            ]
        })
        .collect();
    text_batch(&DRY_RUN_COLUMNS, rows)
}
