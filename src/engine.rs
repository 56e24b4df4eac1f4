//! The engine shared by a session's tables and statements: the HTTP client, the
//! manifests, and the fetch primitives (scope resolution, fan-out, paging, GET by id).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;

use crate::config::{Config, FanoutErrors};
use crate::error::{Error, Result};
use crate::http::{ApiRequest, Client, path_segment};
use crate::listing::{Lister, Page};
use crate::notes::Notes;
use crate::provider::{MethodSpec, Registry, Resource, Verb};

/// One scope a call runs in: the scope columns' values and the path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeBinding {
    /// Every scope column of the resource with its value here (`None` when another scope is used).
    pub values: Vec<(String, Option<String>)>,
    /// Path prefix substituted for `{scope}`.
    pub prefix: String,
    /// Query parameters of a scope sent in the query string.
    pub query: Vec<(String, String)>,
}

impl ScopeBinding {
    /// The unscoped binding.
    pub fn none() -> Self {
        Self {
            values: Vec::new(),
            prefix: String::new(),
            query: Vec::new(),
        }
    }

    /// `account_id=...` for messages.
    pub fn label(&self) -> String {
        self.values
            .iter()
            .filter_map(|(c, v)| v.as_ref().map(|v| format!("{c} {v}")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How a scan will find its scopes (shown in EXPLAIN).
#[derive(Debug)]
pub enum ScopeSource {
    /// The resource has no scope.
    Unscoped,
    /// Values pinned in the WHERE clause.
    Pinned,
    /// The configured default account.
    DefaultAccount,
    /// Every row of this table (`service.table`), such as every account the credential can list.
    FanOut(String),
    /// Only opt-in scopes (a call per zone) and the statement did not ask for them: no call
    /// is made, no row is read, and the scan says so in a note.
    NotAsked,
    /// None given and none can be found: the scan fails with this message.
    Missing(Error),
}

/// The engine of one connection (one credential): its client, API budget, cache and
/// own-token check. A session reads through one or several (see [`crate::connections`]).
pub struct Engine {
    /// The connection's name: the profile it came from, or `default` (what the
    /// `connection` column of its rows says).
    pub name: String,
    /// HTTP client.
    pub client: Arc<Client>,
    /// Manifests.
    pub registry: Arc<Registry>,
    /// Configuration.
    pub config: Config,
    /// Write runs in progress (each in a task detached from its statement): what a server
    /// that stops waits for, so every call it sent has its answer recorded.
    pub writes: crate::cancel::InFlight,
    /// Answers of verify endpoints, per path: the id of the session's token there, or
    /// `None` when the endpoint refused (the token is not owned there).
    verified: tokio::sync::Mutex<HashMap<String, Option<String>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for `config`, named `default`.
    pub fn new(config: Config) -> Result<Arc<Self>> {
        Self::named(
            "default",
            config,
            Arc::new(Registry::embedded()?),
            Default::default(),
        )
    }

    /// The engine of connection `name`, sharing the manifests and the count of writes in
    /// flight with the session's other connections.
    pub fn named(
        name: &str,
        config: Config,
        registry: Arc<Registry>,
        writes: crate::cancel::InFlight,
    ) -> Result<Arc<Self>> {
        config.check().map_err(|e| match name {
            "default" => Error::Config(e),
            _ => Error::Config(format!("connection '{name}': {e}")),
        })?;
        let client = Client::new(&config)?;
        Ok(Arc::new(Self {
            name: name.to_string(),
            client,
            registry,
            config,
            writes,
            verified: tokio::sync::Mutex::new(HashMap::new()),
        }))
    }

    /// The token this session authenticates with, as (scope prefix, id), when it is an
    /// object of `resource` under one of `prefixes`. `None` for the global key, or when no
    /// verify endpoint claims the token. Each endpoint is asked once per session.
    pub async fn own_token(
        &self,
        resource: &Resource,
        prefixes: &[String],
    ) -> Option<(String, String)> {
        let template = resource.spec.verify.as_deref()?;
        if !self.client.uses_api_token() {
            return None;
        }
        // A token has one owner: when an unscoped verify (the user's) claims it, no
        // scoped one (an account's) will, so those calls are saved.
        let unscoped: Vec<String> = self
            .registry
            .resources()
            .filter_map(|r| r.spec.verify.clone())
            .filter(|t| !t.contains("{scope}"))
            .collect();
        for t in &unscoped {
            if let Some(id) = self.verify(t).await {
                return (t == template).then(|| (String::new(), id));
            }
        }
        for prefix in prefixes.iter().filter(|_| template.contains("{scope}")) {
            if let Some(id) = self.verify(&template.replace("{scope}", prefix)).await {
                return Some((prefix.clone(), id));
            }
        }
        None
    }

    async fn verify(&self, path: &str) -> Option<String> {
        let mut cache = self.verified.lock().await;
        if let Some(known) = cache.get(path) {
            return known.clone();
        }
        let id = match self.client.call(&ApiRequest::get(path)).await {
            Ok(resp) => resp
                .result
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string),
            Err(e) => {
                tracing::debug!(path, error = %e, "verify did not claim the session's token");
                None
            }
        };
        cache.insert(path.to_string(), id.clone());
        id
    }

    /// How the scopes of a statement on `resource` will be found.
    pub fn scope_source(
        &self,
        resource: &Resource,
        method: &MethodSpec,
        pinned: &BTreeMap<String, Vec<String>>,
        opted_in: &[String],
    ) -> ScopeSource {
        let spec = &resource.spec;
        if spec.scopes.is_empty() {
            return ScopeSource::Unscoped;
        }
        let allowed: Vec<_> = spec.allowed_scopes(method).collect();
        if allowed.iter().any(|s| pinned.contains_key(&s.column)) {
            return ScopeSource::Pinned;
        }
        // `/certificates/{id}` needs no scope (and callers never use it with one pinned).
        if spec.scope_blind(method) {
            return ScopeSource::Unscoped;
        }
        let asked = allowed
            .iter()
            .filter(|s| s.opt_in && opted_in.contains(&s.column))
            .find_map(|s| s.fanout.clone());
        if let Some(src) = asked {
            return ScopeSource::FanOut(src);
        }
        if self.config.account_id.is_some() && allowed.iter().any(|s| s.default_account) {
            return ScopeSource::DefaultAccount;
        }
        if let Some(src) = allowed
            .iter()
            .filter(|s| !s.opt_in)
            .find_map(|s| s.fanout.clone())
        {
            return ScopeSource::FanOut(src);
        }
        if !allowed.is_empty() && allowed.iter().all(|s| s.opt_in) {
            return ScopeSource::NotAsked;
        }
        let names: Vec<_> = allowed.iter().map(|s| s.column.as_str()).collect();
        let example = names.first().copied().unwrap_or("account_id");
        ScopeSource::Missing(Error::MissingParam {
            table: resource.qualified_name(),
            param: names.join(" or "),
            hint: format!(
                "add WHERE {example} = '<id>' (or @{example}='<id>' in EXEC){}",
                if allowed.iter().any(|s| s.default_account) {
                    ", or set CLOUDFLARE_ACCOUNT_ID / account_id in the profile"
                } else {
                    ""
                }
            ),
        })
    }

    /// The binding of the configured default account, in the scope that takes it.
    pub fn default_scope(&self, resource: &Resource, method: &MethodSpec) -> Result<ScopeBinding> {
        let account = self.config.account_id.as_deref().unwrap_or_default();
        match resource
            .spec
            .allowed_scopes(method)
            .find(|s| s.default_account)
        {
            Some(s) => scope_binding(resource, &s.column, account),
            None => Err(Error::Config(format!(
                "{} has no scope the default account fills",
                resource.qualified_name()
            ))),
        }
    }

    /// The scopes a statement runs in, listing accounts for a fan-out.
    pub async fn resolve_scopes(
        &self,
        resource: &Resource,
        method: &MethodSpec,
        pinned: &BTreeMap<String, Vec<String>>,
        opted_in: &[String],
        notes: &Notes,
    ) -> Result<Vec<ScopeBinding>> {
        let spec = &resource.spec;
        match self.scope_source(resource, method, pinned, opted_in) {
            ScopeSource::Unscoped => Ok(vec![ScopeBinding::none()]),
            ScopeSource::Pinned => spec
                .allowed_scopes(method)
                .flat_map(|s| {
                    pinned
                        .get(&s.column)
                        .into_iter()
                        .flatten()
                        .map(move |v| scope_binding(resource, &s.column, v))
                })
                .collect(),
            ScopeSource::DefaultAccount => Ok(vec![self.default_scope(resource, method)?]),
            ScopeSource::FanOut(source) => {
                let col = spec
                    .scopes
                    .iter()
                    .find(|s| s.fanout.as_ref() == Some(&source))
                    .map(|s| s.column.clone())
                    .unwrap_or_default();
                let values = self.list_ids(&source, notes).await?;
                values
                    .iter()
                    .map(|a| scope_binding(resource, &col, a))
                    .collect()
            }
            ScopeSource::NotAsked => Ok(Vec::new()),
            ScopeSource::Missing(e) => Err(e),
        }
    }

    /// The ids of every row of a fan-out source table (`service.table`), paging its list.
    pub async fn list_ids(&self, source: &str, notes: &Notes) -> Result<Vec<String>> {
        let parts: Vec<String> = source.split('.').map(str::to_string).collect();
        let table = self
            .registry
            .resolve(&parts)
            .ok_or_else(|| Error::Config(format!("fan-out source {source} is not a table")))?;
        let method = table
            .spec
            .method(Verb::Select, false)
            .cloned()
            .expect("validated when the manifests loaded");
        let idcol = table
            .spec
            .id
            .as_ref()
            .map(|i| i.column.clone())
            .expect("validated when the manifests loaded");
        let mut pages = self.list_pages(&table, &method, &ScopeBinding::none(), Vec::new(), None);
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page?;
            for n in page.notes {
                notes.add(n);
            }
            for row in page.rows {
                if let Some(id) = row.get(&idcol).and_then(Value::as_str) {
                    ids.push(id.to_string());
                }
            }
        }
        Ok(ids)
    }

    /// Fills a method's path with the scope prefix and the id.
    pub fn fill_path(
        resource: &Resource,
        method: &MethodSpec,
        scope: &ScopeBinding,
        id: Option<&str>,
    ) -> Result<String> {
        let mut path = method.path.replace("{scope}", &scope.prefix);
        if let Some(idspec) = &resource.spec.id {
            let ph = format!("{{{}}}", idspec.param);
            if path.contains(&ph) {
                let id = id.ok_or_else(|| Error::MissingParam {
                    table: resource.qualified_name(),
                    param: idspec.param.clone(),
                    hint: format!(
                        "add WHERE {} = '<id>' or @{}='<id>'",
                        idspec.column, idspec.param
                    ),
                })?;
                path = path.replace(&ph, &path_segment(&idspec.param, id)?);
            }
        }
        Ok(path)
    }

    /// The pages of a list method in `scope` (see [`crate::listing`]); `max_rows` stops
    /// once enough pages for it were read.
    pub fn list_pages(
        &self,
        resource: &Resource,
        method: &MethodSpec,
        scope: &ScopeBinding,
        filters: Vec<(String, String)>,
        max_rows: Option<usize>,
    ) -> BoxStream<'static, Result<Page>> {
        let mut query: Vec<(String, String)> = method
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        query.extend(filters);
        query.extend(scope.query.iter().cloned());
        let per_page = method.per_page.map(u64::from);
        let cursor_limit = method.cursor_limit.map(u64::from);
        let wanted_pages = match (max_rows, per_page.or(cursor_limit)) {
            (Some(n), Some(p)) => (n as u64).div_ceil(p).max(1),
            _ => u64::MAX,
        };
        Lister {
            client: self.client.clone(),
            path: method.path.replace("{scope}", &scope.prefix),
            query,
            per_page,
            cursor_limit,
            shape: method.response,
            concurrency: self.config.concurrency.max(1),
            max_pages: self.config.max_pages,
            wanted_pages,
            id_key: resource.spec.id.as_ref().map(|i| i.column.clone()),
        }
        .pages()
    }

    /// GET of one object by id (and whether the cache answered); `Ok(None)` when the API says 404.
    pub async fn get_one(
        &self,
        resource: &Resource,
        method: &MethodSpec,
        scope: &ScopeBinding,
        id: &str,
    ) -> Result<Option<(Value, bool)>> {
        let path = Self::fill_path(resource, method, scope, Some(id))?;
        match self.client.call(&ApiRequest::get(path)).await {
            Ok(resp) => Ok(Some((resp.result, resp.cached))),
            Err(Error::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Applies the fan-out failure policy to per-scope failures: one line per cause, with
    /// its count and a few example scopes (the full list goes to the debug log).
    pub fn fanout_outcome(
        &self,
        table: &str,
        failures: Vec<(String, Error)>,
        total: usize,
        notes: &Notes,
    ) -> Result<()> {
        if failures.is_empty() {
            return Ok(());
        }
        for (scope, e) in &failures {
            tracing::debug!(table, scope = %scope, error = %e, "fan-out scope failed");
        }
        let failed = failures.len();
        if self.config.fanout_errors == FanoutErrors::Fail && failed == 1 && total == 1 {
            return Err(failures.into_iter().next().expect("one").1);
        }
        let causes = group_by_cause(&failures);
        match self.config.fanout_errors {
            FanoutErrors::Warn => {
                for c in causes {
                    notes.add(format!("warning: {table}: skipped {c}; {ROWS_MISSING}"));
                }
                Ok(())
            }
            FanoutErrors::Fail => Err(Error::FanOut {
                table: table.to_string(),
                failed,
                total,
                causes,
            }),
        }
    }
}

/// What every warning about rows left out of an answer (a scope skipped, a connection
/// failed) says, so that a reader of notes (`cfql check`) can tell a partial answer.
pub const ROWS_MISSING: &str = "their rows are missing";

/// "N scope(s): cause (e.g. a, b, c)" per distinct cause, most frequent first.
fn group_by_cause(failures: &[(String, Error)]) -> Vec<String> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (scope, e) in failures {
        let cause = e.cause();
        match groups.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, scopes)) => scopes.push(scope),
            None => groups.push((cause, vec![scope])),
        }
    }
    groups.sort_by_key(|(_, scopes)| std::cmp::Reverse(scopes.len()));
    groups
        .into_iter()
        .map(|(cause, scopes)| {
            let examples = scopes
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            let more = if scopes.len() > 3 { ", ..." } else { "" };
            format!("{} scope(s): {cause} (e.g. {examples}{more})", scopes.len())
        })
        .collect()
}

/// The binding of scope column `col` = `val` (the value is percent-encoded into the prefix).
pub fn scope_binding(resource: &Resource, col: &str, val: &str) -> Result<ScopeBinding> {
    let spec = &resource.spec;
    let scope = spec.scope(col).ok_or_else(|| {
        Error::Config(format!(
            "{} has no scope column {col}",
            resource.qualified_name()
        ))
    })?;
    let prefix = scope
        .prefix
        .replace(&format!("{{{col}}}"), &path_segment(col, val)?);
    let values = spec
        .scopes
        .iter()
        .map(|s| (s.column.clone(), (s.column == col).then(|| val.to_string())))
        .collect();
    let query = if scope.query {
        vec![(col.to_string(), val.to_string())]
    } else {
        Vec::new()
    };
    Ok(ScopeBinding {
        values,
        prefix,
        query,
    })
}
