//! Resources the simulator serves from the manifests rather than from hand-written
//! handlers: `resources.toml` names each table and how to make its sample objects; the
//! manifest gives its paths, scopes, paging and filters. List, get by id and delete are
//! the same for all of them; what is not (a tunnel's token) is a named hook.

// Handlers answer errors as Cloudflare envelopes, which are `Response`s: large, and rare.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::envelope::{codes, error, ok, ok_list};
use super::handlers::{Shared, authorize, lock, paging, query_map};
use super::model::{Account, Owner};
use super::seed::IdGen;
use super::state::Caller;
use super::store::OrderedStore;
use crate::provider::{FilterOp, Registry, ResourceSpec, Verb};

const SEEDS: &str = include_str!("resources.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    resource: Vec<SeedSpec>,
}

/// How to make one table's sample objects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedSpec {
    table: String,
    #[serde(default)]
    per_account: usize,
    #[serde(default)]
    per_zone: usize,
    #[serde(default)]
    hooks: Vec<String>,
    fields: toml::Table,
}

/// A table served generically: its manifest and its seed.
#[derive(Debug, Clone)]
struct Generic {
    spec: Arc<ResourceSpec>,
    seed: SeedSpec,
}

/// Every generic table (the embedded seeds, checked against the embedded manifests).
fn generics() -> Vec<Generic> {
    let file: SeedFile = toml::from_str(SEEDS).expect("src/sim/resources.toml is valid");
    let reg = Registry::embedded().expect("embedded manifests are valid");
    file.resource
        .into_iter()
        .map(|seed| {
            let parts: Vec<String> = seed.table.split('.').map(str::to_string).collect();
            let r = reg
                .resolve(&parts)
                .unwrap_or_else(|| panic!("resources.toml: {} is not a table", seed.table));
            Generic { spec: r.spec, seed }
        })
        .collect()
}

/// The objects of every generic table, per scope value (an account or a zone id).
#[derive(Default)]
pub struct GenericStore {
    tables: HashMap<String, HashMap<String, OrderedStore<Value>>>,
}

impl GenericStore {
    /// Sample objects for every account and zone, from a generator of their own (so the
    /// rest of the seed does not move when a table is added).
    pub fn seeded(accounts: &[&Account]) -> Self {
        let mut ids = IdGen::new(0x5eed_ce47);
        let anchor = hour(Utc::now());
        let mut tables = HashMap::new();
        for g in generics() {
            let mut scopes: HashMap<String, OrderedStore<Value>> = HashMap::new();
            let has = |col: &str| g.spec.scope(col).is_some();
            for a in accounts {
                let mut owners = Vec::new();
                if has("account_id") {
                    owners.push((a.id.clone(), slug(&a.name), g.seed.per_account));
                }
                if has("zone_id") {
                    for (i, z) in a.zones.iter().enumerate() {
                        let name = a.zone_json(i).and_then(|j| j["name"].as_str().map(slug));
                        owners.push((z.clone(), name.unwrap_or_default(), g.seed.per_zone));
                    }
                }
                for (owner, name, n) in owners {
                    let store = scopes.entry(owner).or_default();
                    for k in 1..=n {
                        let ctx = Ctx {
                            n: k,
                            scope: &name,
                            anchor,
                        };
                        let obj = render_table(&g.seed.fields, &ctx, &mut ids);
                        let id = obj["id"].as_str().unwrap_or_default().to_string();
                        store.insert(id, Value::Object(obj));
                    }
                }
            }
            tables.insert(g.seed.table.clone(), scopes);
        }
        Self { tables }
    }
}

impl GenericStore {
    /// The object `id` of `table` in `scope`.
    fn object(&self, table: &str, scope: &str, id: &str) -> Option<&Value> {
        self.tables.get(table)?.get(scope)?.get(id)
    }
}

fn hour(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() / 3600 * 3600, 0).unwrap_or(t)
}

fn slug(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// What a template is filled from.
struct Ctx<'a> {
    n: usize,
    scope: &'a str,
    anchor: DateTime<Utc>,
}

fn render_table(t: &toml::Table, ctx: &Ctx<'_>, ids: &mut IdGen) -> Map<String, Value> {
    t.iter()
        .map(|(k, v)| (k.clone(), render(v, ctx, ids)))
        .collect()
}

fn render(v: &toml::Value, ctx: &Ctx<'_>, ids: &mut IdGen) -> Value {
    match v {
        toml::Value::String(s) => render_text(s, ctx, ids),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => json!(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(|x| render(x, ctx, ids)).collect()),
        toml::Value::Table(t) => Value::Object(render_table(t, ctx, ids)),
    }
}

/// A template string: a whole `{days:...}` or `{null}` gives a time or null; otherwise
/// each `{...}` is replaced in the text.
fn render_text(s: &str, ctx: &Ctx<'_>, ids: &mut IdGen) -> Value {
    if s == "{null}" {
        return Value::Null;
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&hole(&rest[open + 1..open + close], ctx, ids));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Value::String(out)
}

fn hole(name: &str, ctx: &Ctx<'_>, ids: &mut IdGen) -> String {
    match name.split_once(':') {
        None if name == "uuid" => ids.uuid(),
        None if name == "id32" => ids.id32(),
        None if name == "n" => ctx.n.to_string(),
        None if name == "scope" => ctx.scope.to_string(),
        Some(("hex", n)) => ids.hex(n.parse().unwrap_or(32)),
        Some(("days", ranges)) => {
            let alts: Vec<&str> = ranges.split('|').collect();
            let pick = alts[(ctx.n - 1) % alts.len()];
            let (a, b) = pick.split_once("..").unwrap_or((pick, pick));
            let (a, b): (i64, i64) = (a.trim().parse().unwrap_or(0), b.trim().parse().unwrap_or(0));
            let days = rand_between(ids, a, b);
            (ctx.anchor + Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
        }
        _ => format!("{{{name}}}"),
    }
}

fn rand_between(ids: &mut IdGen, a: i64, b: i64) -> i64 {
    use rand::Rng;
    if b <= a {
        a
    } else {
        ids.rng().random_range(a..=b)
    }
}

/// What one route of a generic table serves.
#[derive(Debug)]
struct Route {
    table: String,
    spec: Arc<ResourceSpec>,
    /// `account_id` or `zone_id`: the path parameter naming the scope.
    scope: String,
    /// The table's named hooks.
    hooks: Vec<String>,
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Adds every generic table's routes (list, get, delete where the manifest has them,
/// and its hooks) to the simulator's router.
pub fn routes(mut r: Router<Shared>) -> Router<Shared> {
    let mut seen = std::collections::HashSet::new();
    for g in generics() {
        for s in &g.spec.scopes {
            let route = Arc::new(Route {
                table: g.seed.table.clone(),
                spec: g.spec.clone(),
                scope: s.column.clone(),
                hooks: g.seed.hooks.clone(),
            });
            let list = g.spec.method(Verb::Select, false);
            let one = g.spec.method(Verb::Select, true);
            if let Some(m) = list.filter(|m| seen.insert(m.path.replace("{scope}", &s.prefix))) {
                let rt = route.clone();
                r = r.route(
                    &m.path.replace("{scope}", &s.prefix),
                    get(move |st, c, p, q| list_objects(rt.clone(), st, c, p, q)),
                );
            }
            if let Some(m) = one.filter(|m| seen.insert(m.path.replace("{scope}", &s.prefix))) {
                let (rt, rd) = (route.clone(), route.clone());
                let mut method = get(move |st, c, p| get_object(rt.clone(), st, c, p));
                if g.spec.method(Verb::Delete, true).is_some() {
                    method = method.delete(move |st, c, p| delete_object(rd.clone(), st, c, p));
                }
                r = r.route(&m.path.replace("{scope}", &s.prefix), method);
            }
            if g.seed.hooks.iter().any(|h| h == "tunnel_token") {
                let rt = route.clone();
                let id = g
                    .spec
                    .id
                    .as_ref()
                    .map(|i| i.param.clone())
                    .unwrap_or_default();
                r = r.route(
                    &format!("{}/cfd_tunnel/{{{id}}}/token", s.prefix),
                    get(move |st, c, p| tunnel_token(rt.clone(), st, c, p)),
                );
            }
        }
    }
    r
}

type Params = Path<HashMap<String, String>>;

/// Where a list's query-string scope is handed to `scope_of`.
const QUERY_SCOPE: &str = "\u{0}query-scope";

/// The scope value of a request (from the path, the query string, or for a path that
/// names none, the scope holding the object), once the caller may read it.
fn scope_of(
    st: &super::state::SimState,
    route: &Route,
    c: &Caller,
    p: &HashMap<String, String>,
) -> Result<String, Response> {
    let held = || {
        let id = id_of(route, p);
        let tables = st.generic.tables.get(&route.table)?;
        tables
            .iter()
            .find(|(_, s)| s.get(&id).is_some())
            .map(|(k, _)| k.clone())
    };
    let value = match p.get(&route.scope) {
        Some(v) => v.clone(),
        None if p.contains_key(QUERY_SCOPE) => p[QUERY_SCOPE].clone(),
        None => held().ok_or_else(not_found)?,
    };
    let account = match route.scope.as_str() {
        "zone_id" => st.zone_account.get(&value).cloned(),
        _ => Some(value.clone()),
    };
    let denied = || {
        error(
            403,
            codes::UNAUTHORIZED_SCOPE,
            "Unauthorized to access requested resource",
        )
    };
    let account = account.ok_or_else(denied)?;
    authorize(st, c, &Owner::Account(account))?;
    Ok(value)
}

async fn list_objects(
    route: Arc<Route>,
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let q = query_map(&q);
    let list = route.spec.method(Verb::Select, false);
    let per_page = list.and_then(|m| m.per_page).map(|p| p as usize);
    let st = lock(&s);
    let mut p = p;
    if route.spec.scope(&route.scope).is_some_and(|s| s.query) {
        let v = q
            .get(&route.scope)
            .ok_or_else(|| error(400, codes::INVALID, format!("{} is required", route.scope)))?;
        p.insert(QUERY_SCOPE.to_string(), v.clone());
    }
    let scope = scope_of(&st, &route, &c, &p)?;
    let empty = OrderedStore::default();
    let store = st
        .generic
        .tables
        .get(&route.table)
        .and_then(|t| t.get(&scope))
        .unwrap_or(&empty);
    let filters: Vec<(&str, &String)> = list
        .into_iter()
        .flat_map(|m| &m.filters)
        .filter(|f| f.op == FilterOp::Eq)
        .filter_map(|f| q.get(&f.param).map(|v| (f.column.as_str(), v)))
        .collect();
    let rows: Vec<&Value> = store
        .values()
        .filter(|o| {
            filters
                .iter()
                .all(|(col, v)| o[*col].as_str() == Some(v.as_str()))
        })
        .collect();
    let total = rows.len();
    match per_page {
        None => Ok(ok_list(
            rows.into_iter().cloned().collect(),
            1,
            total.max(1),
            Some(total),
        )),
        Some(max) => {
            let page = paging(&q, 20.min(max), 5.min(max), max)?;
            let rows = page
                .slice(&rows)
                .into_iter()
                .map(|v| (*v).clone())
                .collect();
            Ok(ok_list(
                rows,
                page.page,
                page.per_page,
                st.list_totals.then_some(total),
            ))
        }
    }
}

fn id_of(route: &Route, p: &HashMap<String, String>) -> String {
    let param = route
        .spec
        .id
        .as_ref()
        .map(|i| i.param.as_str())
        .unwrap_or("id");
    p.get(param).cloned().unwrap_or_default()
}

fn not_found() -> Response {
    error(404, codes::NOT_FOUND, "Not found")
}

async fn get_object(
    route: Arc<Route>,
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let st = lock(&s);
    let scope = scope_of(&st, &route, &c, &p)?;
    let id = id_of(&route, &p);
    st.generic
        .object(&route.table, &scope, &id)
        .map(|o| ok(o.clone()))
        .ok_or_else(not_found)
}

async fn delete_object(
    route: Arc<Route>,
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let mut st = lock(&s);
    let scope = scope_of(&st, &route, &c, &p)?;
    let id = id_of(&route, &p);
    let store = st
        .generic
        .tables
        .get_mut(&route.table)
        .and_then(|t| t.get_mut(&scope));
    let revokes = route.hooks.iter().any(|h| h == "revoke");
    match store.and_then(|s| s.remove(&id)) {
        Some(_) if revokes => Ok(ok(json!({"id": id, "revoked_at": now_text()}))),
        Some(_) => Ok(ok(json!({"id": id}))),
        None => Err(not_found()),
    }
}

/// `GET .../cfd_tunnel/{tunnel_id}/token`: the tunnel's secret (what `cloudflared`
/// runs with). cfql never calls it from a SELECT; the tests assert on the request log.
async fn tunnel_token(
    route: Arc<Route>,
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let mut st = lock(&s);
    let scope = scope_of(&st, &route, &c, &p)?;
    let id = id_of(&route, &p);
    if st.generic.object(&route.table, &scope, &id).is_none() {
        return Err(not_found());
    }
    Ok(ok(json!(format!("eyJ{}", st.ids.token_secret()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_names_a_table_and_fills_its_templates() {
        assert!(!generics().is_empty());
        let mut ids = IdGen::new(1);
        let anchor = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let ctx = Ctx {
            n: 2,
            scope: "acme",
            anchor,
        };
        assert_eq!(render_text("{scope}-{n}", &ctx, &mut ids), json!("acme-2"));
        assert_eq!(render_text("{null}", &ctx, &mut ids), Value::Null);
        // The second alternative for the second object: 10 to 10 days ahead.
        assert_eq!(
            render_text("{days:1..1|10..10}", &ctx, &mut ids),
            json!((anchor + Duration::days(10)).to_rfc3339_opts(SecondsFormat::Secs, true))
        );
    }
}
