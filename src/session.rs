//! `Session`: a DataFusion `SessionContext` with the `cloudflare` catalog, JSON functions
//! and cfql's statements. The CLI and embedding programs both go through it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::Statement;

use crate::cancel::Cancel;
use crate::catalog::register_catalog;
use crate::config::Config;
use crate::connections::Connections;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::notes::{Notes, Progress, ProgressFn};
use crate::output::Output;
use crate::provider::Registry;
use crate::sql::parse::{self, CfqlStatement};
use crate::sql::write::{self, WriteContext, WriteOptions};
use crate::sql::{info, template};

/// How far a statement goes: all the way, as a dry run (EXPLAIN of a write), or only
/// until its columns are known (of the statement, or of its dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    DryRun,
    Describe,
    DescribeDryRun,
}

#[derive(Debug, Default)]
struct Flags {
    dry_run: bool,
    allow_unfiltered: bool,
}

/// A cfql session: run SQL over the Cloudflare API.
///
/// ```no_run
/// # async fn demo() -> cfql::Result<()> {
/// let session = cfql::Session::new(cfql::Config::from_env()?).await?;
/// let batches = session.sql("SELECT name, expires_on FROM cloudflare.user.tokens").await?;
/// # Ok(()) }
/// ```
pub struct Session {
    ctx: SessionContext,
    /// The first connection: the session's settings and manifests.
    engine: Arc<Engine>,
    /// Every connection (credential) the session reads through.
    connections: Arc<Connections>,
    flags: Mutex<Flags>,
    vars: Mutex<HashMap<String, String>>,
    /// Where this session's scans report pages (in its context's config too).
    progress: Arc<Progress>,
    /// Each statement's own memory bound inside the context's pool, and the words that
    /// name it in errors (`cfql serve`'s connections; none by default).
    statement_memory: Option<(usize, String)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// Registers the `cloudflare` catalog and the JSON functions into an existing
/// `SessionContext` (for BI tools and host programs that own their context). The
/// context's SQL dialect is set to PostgreSQL so that `->` / `->>` bind tighter than `=`.
///
/// Reads work through `ctx.sql`, and so do DataFusion's `INSERT`, `UPDATE` and `DELETE`
/// (they return a `count`): an UPDATE or DELETE takes plain conditions on the table's own
/// columns (no subquery), an INSERT of secrets needs `Config::secrets_file`, and no WHERE
/// needs `Config::allow_unfiltered_writes`. RETURNING and EXEC need a [`Session`].
///
/// ```no_run
/// # async fn demo() -> cfql::Result<()> {
/// let ctx = cfql::datafusion::prelude::SessionContext::new();
/// cfql::register(&ctx, cfql::Config::from_env()?)?;
/// ctx.sql("DELETE FROM cloudflare.user.tokens WHERE id = '0123abcd'").await?.collect().await?;
/// # Ok(()) }
/// ```
pub fn register(ctx: &SessionContext, config: Config) -> Result<()> {
    register_connections(ctx, vec![("default".to_string(), config)])
}

/// [`register`] over several credentials: `connections` are (name, configuration) pairs,
/// each with its own API budget, cache and token; every table gets a `connection` column
/// naming the one a row was read through (see the README's "Several credentials").
pub fn register_connections(
    ctx: &SessionContext,
    connections: Vec<(String, Config)>,
) -> Result<()> {
    let connections = Connections::new(connections)?;
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        datafusion_functions_json::register_all(&mut *state)?;
        datafusion::execution::FunctionRegistry::register_udf(
            &mut *state,
            Arc::new(crate::policy_grants::udf()),
        )?;
        state.config_mut().options_mut().sql_parser.dialect =
            datafusion::config::Dialect::PostgreSQL;
    }
    register_catalog(ctx, &connections)
}

impl Session {
    /// A session for `config`. Nothing is called until a statement runs.
    pub async fn new(config: Config) -> Result<Self> {
        Self::on(Connections::single(Engine::new(config)?))
    }

    /// A session over several credentials: `connections` are (name, configuration) pairs,
    /// read side by side, each with its own API budget, cache and token. Every table and
    /// view has a `connection` column; `WHERE connection = 'x'` reads through `x` alone.
    /// Objects several connections see are one row (read through the first of them); a
    /// connection that fails fails the statement naming it (see the README's "Several
    /// credentials"). The first connection's settings (secrets file, audit log, dry run,
    /// variables) are the session's.
    pub async fn with_connections(connections: Vec<(String, Config)>) -> Result<Self> {
        Self::on(Connections::new(connections)?)
    }

    /// Another session on this one's engine: the same HTTP client, API budget, response
    /// cache and credential, so sessions that run side by side (one per request, one per
    /// connection) share one rate budget and one cache, while each has its own settings
    /// (`SET cfql.dry_run`, `SET cfql.allow_unfiltered_writes`) and template variables,
    /// starting from the configuration's. `SET cfql.cache_ttl` sets the shared cache's.
    pub fn fork(&self) -> Result<Self> {
        Self::on(self.connections.clone())
    }

    fn on(connections: Arc<Connections>) -> Result<Self> {
        let engine = connections.primary().clone();
        let progress = Arc::new(Progress::default());
        let mut cfg = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("cloudflare", "user")
            .with_extension(progress.clone());
        // PostgreSQL precedence for `->` / `->>` (tighter than `=` and IS NULL).
        cfg.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        // `now()` is a timestamptz, as in PostgreSQL (and like every time column here).
        cfg.options_mut().execution.time_zone = Some("UTC".into());
        // A join key that is NULL never matches, so `zone_id IN (SELECT id FROM zones)`
        // may say `zone_id IS NOT NULL` to the scan: that is what opts in to the zone-level
        // rows (without it the scan reads account-level rows only and the join drops them all).
        cfg.options_mut().optimizer.filter_null_join_keys = true;
        let mut state = SessionStateBuilder::new()
            .with_config(cfg)
            .with_default_features()
            .with_type_planner(Arc::new(crate::pg_json::JsonTypes { next: None }))
            .build();
        datafusion_functions_json::register_all(&mut state)?;
        for udf in crate::pg_json::udfs() {
            datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(udf))?;
        }
        // `audit.permissions` (a view) flattens policies with it.
        datafusion::execution::FunctionRegistry::register_udf(
            &mut state,
            Arc::new(crate::policy_grants::udf()),
        )?;
        // PostgreSQL's templates (`'YYYY-MM-DD'`), which DataFusion's to_char returned as is.
        datafusion::execution::FunctionRegistry::register_udf(
            &mut state,
            Arc::new(crate::pg_to_char::udf()),
        )?;
        let ctx = SessionContext::new_with_state(state);
        register_catalog(&ctx, &connections)?;
        let flags = Flags {
            dry_run: engine.config.dry_run,
            allow_unfiltered: engine.config.allow_unfiltered_writes,
        };
        let vars = engine.config.vars.clone();
        Ok(Self {
            ctx,
            engine,
            connections,
            flags: Mutex::new(flags),
            vars: Mutex::new(vars),
            progress,
            statement_memory: None,
        })
    }

    /// Another session on this engine whose DataFusion state starts as a copy of this
    /// one's: its catalog list, functions, planners and memory pool are shared, not built
    /// again, so a fork costs a few kilobytes. Settings, variables and progress are the
    /// configuration's, as [`Session::fork`]'s. What `cfql serve` gives each connection,
    /// from a session that has the PostgreSQL catalog installed once.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
    pub(crate) fn fork_state(&self) -> Self {
        let progress = Arc::new(Progress::default());
        let mut state = self.ctx.state();
        state.config_mut().set_extension(progress.clone());
        let config = &self.engine.config;
        Self {
            ctx: SessionContext::new_with_state(state),
            engine: self.engine.clone(),
            connections: self.connections.clone(),
            flags: Mutex::new(Flags {
                dry_run: config.dry_run,
                allow_unfiltered: config.allow_unfiltered_writes,
            }),
            vars: Mutex::new(config.vars.clone()),
            progress,
            statement_memory: self.statement_memory.clone(),
        }
    }

    /// Bounds DataFusion's memory: `total` bytes for every statement of this session and
    /// its forks together, `per_statement` for each; `what` names each bound in the error a
    /// statement over it fails with. Also the partitions (cores) one statement may use.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
    pub(crate) fn set_limits(
        &mut self,
        total: (usize, String),
        per_statement: (usize, String),
        partitions: usize,
    ) -> Result<()> {
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        let state_ref = self.ctx.state_ref();
        let mut state = state_ref.write();
        let pool = Arc::new(crate::memory::ServerPool::new(total.0, total.1));
        // No spilling: a statement over its bound fails (and says which), rather than
        // filling the host's disk.
        let no_spill = datafusion::execution::disk_manager::DiskManagerBuilder::default()
            .with_mode(datafusion::execution::disk_manager::DiskManagerMode::Disabled);
        let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
            .with_memory_pool(pool)
            .with_disk_manager_builder(no_spill)
            .build_arc()?;
        let mut next = SessionStateBuilder::new_from_existing(state.clone())
            .with_runtime_env(runtime)
            .build();
        next.config_mut().options_mut().execution.target_partitions = partitions.max(1);
        *state = next;
        self.statement_memory = Some(per_statement);
        Ok(())
    }

    /// The DataFusion context (register more tables, run DataFusion APIs).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The engine (client, manifests, configuration).
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// API calls made and calls the cache answered so far, over every connection.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    pub(crate) fn calls_and_hits(&self) -> (u64, u64) {
        self.connections.all().iter().fold((0, 0), |(c, h), e| {
            (c + e.client.calls_made(), h + e.client.cache_hits())
        })
    }

    /// The manifests.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    pub(crate) fn registry(&self) -> &Registry {
        &self.engine.registry
    }

    /// Sets a `{{ name }}` template variable.
    pub fn set_var(&self, name: impl Into<String>, value: impl Into<String>) {
        self.vars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.into(), value.into());
    }

    /// Sets `name` unless it already has a value (a control's `@var` default yields to
    /// `--var` and to `SET`).
    pub fn default_var(&self, name: &str, value: &str) {
        self.vars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_insert_with(|| value.to_string());
    }

    /// Sets the progress callback (table, pages, rows) called as scans receive pages.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    pub(crate) fn set_progress(&self, f: Option<Arc<ProgressFn>>) {
        self.progress.set(f);
    }

    /// Runs one statement and returns its rows.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.execute(sql).await?.batches)
    }

    /// How cfql reads `sql` (templates filled from the session's variables), without
    /// running it: lets a caller refuse writes up front (`cfql check`).
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    pub(crate) fn statement(&self, sql: &str) -> Result<CfqlStatement> {
        parse::parse(&self.render(sql)?, &self.engine.registry)
    }

    /// `sql` with its `{{ name }}` templates filled from the session's variables.
    pub fn render(&self, sql: &str) -> Result<String> {
        let vars = self.vars.lock().unwrap_or_else(|p| p.into_inner()).clone();
        template::render(sql, &vars)
    }

    /// Runs one statement and returns its rows, schema and warnings.
    pub async fn execute(&self, sql: &str) -> Result<Output> {
        self.execute_with(sql, &Cancel::new()).await
    }

    /// [`Session::execute`] that stops when `cancel` fires. A read stops at once. A write
    /// starts no new call, waits for the calls already sent, keeps their outcomes (secrets
    /// file, audit log, rows) and fails with [`Error::PartialFailure`] saying how many rows
    /// took effect and how many were not attempted.
    pub async fn execute_with(&self, sql: &str, cancel: &Cancel) -> Result<Output> {
        let (text, stmt) = self.parse(sql)?;
        self.execute_parsed(stmt, &text, cancel).await
    }

    /// `sql` with its templates filled, and how cfql reads it.
    pub(crate) fn parse(&self, sql: &str) -> Result<(String, CfqlStatement)> {
        let text = self.render(sql)?;
        let stmt = parse::parse(&text, &self.engine.registry)?;
        Ok((text, stmt))
    }

    /// Runs a statement read by [`Session::parse`] (the server hands queries over after
    /// its own PostgreSQL rewrites).
    pub(crate) async fn execute_parsed(
        &self,
        stmt: CfqlStatement,
        text: &str,
        cancel: &Cancel,
    ) -> Result<Output> {
        let _statements = self.begin_statement();
        let notes = Notes::collected();
        let ctx = self.statement_context(&stmt, &notes);
        // Boxed: a statement's future (planning a parsed tree, a write's reads) is large,
        // and a caller's stack (a test's, an embedder's 2 MiB worker) should not hold it.
        let result = if stmt.is_write() {
            // Never dropped mid-way: the write itself watches `cancel`.
            Box::pin(self.run(&ctx, stmt, text, Mode::Run, cancel)).await
        } else {
            stopped_by(
                cancel,
                Box::pin(self.run(&ctx, stmt, text, Mode::Run, cancel)),
            )
            .await
        };
        let mut out = result?;
        out.warnings.extend(notes.take());
        Ok(out)
    }

    /// The columns `stmt` would return, without running it: a query is planned, a write
    /// read and checked (its reads may run; no write call is made), a statement about the
    /// catalog answered. For a wire client's Describe, which comes before Execute.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
    pub(crate) async fn describe(&self, stmt: CfqlStatement, text: &str) -> Result<SchemaRef> {
        if let CfqlStatement::Query(q) = stmt {
            let plan = self.plan(*q).await?;
            return Ok(Arc::new(plan.schema().as_arrow().clone()));
        }
        // A setting takes effect when it runs, not when it is described.
        if let CfqlStatement::SetOption { .. } = stmt {
            return Ok(crate::convert::text_batch(&["option", "value"], Vec::new())?.schema());
        }
        let notes = Notes::collected();
        let ctx = self.statement_context(&stmt, &notes);
        let out = self
            .run(&ctx, stmt, text, Mode::Describe, &Cancel::new())
            .await?;
        Ok(out.schema)
    }

    /// The logical plan of a query (placeholders such as `$1` left in, for a prepared
    /// statement), checked as [`Session::execute`] checks it.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
    pub(crate) async fn plan(&self, stmt: Statement) -> Result<LogicalPlan> {
        crate::sql::query::plan_statement(&self.ctx, &self.engine.registry, stmt).await
    }

    /// Runs a query's logical plan (a prepared statement with its parameters bound) as
    /// [`Session::execute_with`] runs a query: its own notes, the budget's statement
    /// boundary, stopped at once by `cancel`.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
    pub(crate) async fn execute_plan(&self, plan: LogicalPlan, cancel: &Cancel) -> Result<Output> {
        let _statements = self.begin_statement();
        let notes = Notes::collected();
        let ctx = self.noted_context(&notes);
        let run = async {
            let (schema, batches) = crate::sql::query::run_plan(&ctx, plan).await?;
            Ok(Output::from_batches(schema, batches))
        };
        let mut out = stopped_by(cancel, run).await?;
        out.warnings.extend(notes.take());
        Ok(out)
    }

    /// A statement's boundary in every connection's API budget.
    fn begin_statement(&self) -> Vec<crate::budget::StatementGuard<'_>> {
        self.connections
            .all()
            .iter()
            .map(|e| e.client.budget.begin_statement())
            .collect()
    }

    /// Says who runs this session's statements (the server's client, `user@address`):
    /// the audit log records it with each call a write makes.
    #[cfg_attr(not(feature = "serve"), allow(dead_code))] // used by the server only
    pub(crate) fn set_origin(&self, who: String) {
        let state = self.ctx.state_ref();
        state
            .write()
            .config_mut()
            .set_extension(Arc::new(crate::notes::Origin(who)));
    }

    /// The context one statement runs in: the session's, with the statement's own notes
    /// (so statements running at the same time never mix theirs). DataFusion's `SET` runs
    /// in the session's context itself, so that it lasts.
    fn statement_context(&self, stmt: &CfqlStatement, notes: &Arc<Notes>) -> SessionContext {
        if matches!(stmt, CfqlStatement::Query(s) if matches!(**s, Statement::Set(_))) {
            return self.ctx.clone();
        }
        self.noted_context(notes)
    }

    /// The session's context with `notes` as its statement's notes (and, where the
    /// session bounds each statement's memory, a pool of the statement's own inside the
    /// shared one).
    fn noted_context(&self, notes: &Arc<Notes>) -> SessionContext {
        let mut state = self.ctx.state();
        state.config_mut().set_extension(notes.clone());
        if let Some((limit, what)) = &self.statement_memory {
            use datafusion::execution::runtime_env::RuntimeEnvBuilder;
            let pool = Arc::new(crate::memory::StatementPool::new(
                state.runtime_env().memory_pool.clone(),
                *limit,
                what.clone(),
            ));
            if let Ok(runtime) = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
                .with_memory_pool(pool)
                .build_arc()
            {
                state = SessionStateBuilder::new_from_existing(state)
                    .with_runtime_env(runtime)
                    .build();
            }
        }
        SessionContext::new_with_state(state)
    }

    /// What a write needs of this session: its context, engine and options.
    fn write_context<'a>(
        &'a self,
        ctx: &'a SessionContext,
        text: &str,
        mode: Mode,
        cancel: &Cancel,
    ) -> WriteContext<'a> {
        let f = self.flags.lock().unwrap_or_else(|p| p.into_inner());
        let opts = WriteOptions {
            dry_run: f.dry_run || matches!(mode, Mode::DryRun | Mode::DescribeDryRun),
            allow_unfiltered: f.allow_unfiltered,
            statement: text.to_string(),
            cancel: cancel.clone(),
            describe_only: matches!(mode, Mode::Describe | Mode::DescribeDryRun),
        };
        WriteContext::new(ctx, &self.connections, opts)
    }

    async fn run(
        &self,
        ctx: &SessionContext,
        stmt: CfqlStatement,
        text: &str,
        mode: Mode,
        cancel: &Cancel,
    ) -> Result<Output> {
        let reg = &self.engine.registry;
        let batch_out = |b: RecordBatch| Output::from_batches(b.schema(), vec![b]);
        match stmt {
            CfqlStatement::Query(s) => {
                let (schema, batches) = self.query_statement(ctx, *s).await?;
                Ok(Output::from_batches(schema, batches))
            }
            CfqlStatement::Insert(i) => {
                write::insert(&self.write_context(ctx, text, mode, cancel), &i).await
            }
            CfqlStatement::Update(u) => {
                write::update(&self.write_context(ctx, text, mode, cancel), &u).await
            }
            CfqlStatement::Delete(d) => {
                write::delete(&self.write_context(ctx, text, mode, cancel), &d).await
            }
            CfqlStatement::Exec(e) => {
                write::exec(&self.write_context(ctx, text, mode, cancel), &e).await
            }
            CfqlStatement::ExplainWrite(inner) => {
                let mode = match mode {
                    Mode::Describe | Mode::DescribeDryRun => Mode::DescribeDryRun,
                    Mode::Run | Mode::DryRun => Mode::DryRun,
                };
                Box::pin(self.run(ctx, *inner, text, mode, cancel)).await
            }
            CfqlStatement::ShowServices => Ok(batch_out(info::show_services(reg)?)),
            CfqlStatement::ShowResources(s) => {
                Ok(batch_out(info::show_resources(reg, s.as_deref())?))
            }
            CfqlStatement::ShowMethods(t) => Ok(batch_out(info::show_methods(reg, &t)?)),
            CfqlStatement::Describe { table, extended } => {
                Ok(batch_out(info::describe(reg, &table, extended)?))
            }
            CfqlStatement::SetOption { name, value } => {
                let shown = self.set_option(&name, &value)?;
                let b = crate::convert::text_batch(
                    &["option", "value"],
                    vec![vec![format!("cfql.{name}"), shown]],
                )?;
                Ok(batch_out(b))
            }
        }
    }

    /// `SET cfql.<name> = <value>`; returns the value as set. `cfql.var.<name>` sets a
    /// template variable of this session (a wire client has no `--var`).
    fn set_option(&self, name: &str, value: &str) -> Result<String> {
        if let Some(var) = name.strip_prefix("var.") {
            self.set_var(var, value);
            return Ok(value.to_string());
        }
        if name == "cache_ttl" {
            let secs: u64 =
                value
                    .trim_end_matches('s')
                    .parse()
                    .map_err(|_| Error::InvalidValue {
                        place: "SET cfql.cache_ttl".into(),
                        problem: format!(
                            "expected whole seconds (0 turns the cache off), got '{value}'"
                        ),
                    })?;
            for e in self.connections.all() {
                e.client.set_cache_ttl(std::time::Duration::from_secs(secs));
            }
            return Ok(secs.to_string());
        }
        let on = match value {
            "true" | "on" | "1" => true,
            "false" | "off" | "0" => false,
            v => {
                return Err(Error::InvalidValue {
                    place: format!("SET cfql.{name}"),
                    problem: format!("expected true or false, got '{v}'"),
                });
            }
        };
        let mut f = self.flags.lock().unwrap_or_else(|p| p.into_inner());
        match name {
            "allow_unfiltered_writes" => f.allow_unfiltered = on,
            "dry_run" => f.dry_run = on,
            other => {
                return Err(Error::UnknownOption {
                    name: format!("cfql.{other}"),
                    options: [
                        "cfql.allow_unfiltered_writes",
                        "cfql.dry_run",
                        "cfql.cache_ttl",
                        "cfql.var.<name>",
                    ]
                    .map(String::from)
                    .to_vec(),
                });
            }
        }
        Ok(on.to_string())
    }

    async fn query_statement(
        &self,
        ctx: &SessionContext,
        stmt: Statement,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        crate::sql::query::query_statement(ctx, &self.engine.registry, stmt).await
    }
}

/// A read that `cancel` stops at once (nothing was changed, so dropping it loses nothing).
async fn stopped_by<T>(
    cancel: &Cancel,
    read: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Error::Cancelled { what: "the statement was stopped".into() }),
        r = read => r,
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;
    use crate::sim::{SeedOptions, SimOptions, Simulator};
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn progress_is_reported_to_its_own_session_only() {
        let seed = SeedOptions {
            tokens: 120,
            ..SeedOptions::default()
        };
        let sim = Simulator::start(SimOptions {
            seed,
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let config = Config::new(sim.base_url()).with_api_token(sim.admin_token());
        let session = Session::new(config).await.unwrap();
        let pages = Arc::new(AtomicU64::new(0));
        let seen = pages.clone();
        session.set_progress(Some(Arc::new(move |table: &str, p: u64, _rows: u64| {
            assert_eq!(table, "cloudflare.user.tokens");
            seen.store(p, Ordering::SeqCst);
        })));
        let fork = session.fork().unwrap();
        fork.sql("SELECT count(*) FROM cloudflare.user.tokens")
            .await
            .unwrap();
        assert_eq!(
            pages.load(Ordering::SeqCst),
            0,
            "a fork reports to its own listener (none)"
        );
        session
            .sql("SELECT count(*) FROM cloudflare.user.tokens")
            .await
            .unwrap();
        assert_eq!(
            pages.load(Ordering::SeqCst),
            3,
            "120 tokens are 3 pages of 50"
        );
    }
}
