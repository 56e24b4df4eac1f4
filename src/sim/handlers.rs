//! Route handlers: the Cloudflare endpoints of API-NOTES.md, answering with the official shapes.
//!
//! Handlers and helpers return `Result<_, Response>`: an error *is* the envelope
//! response to send, so the large `Err` variant is the point, not an accident.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::envelope::{codes, error, ok, ok_list, ok_status};
use super::model::{Owner, ServiceToken, StoredStatus, Token, all_permission_groups};
use super::state::{Caller, SimState};
use super::store::{OrderedStore, PageRequest};

/// The simulator state shared by all handlers.
pub type Shared = Arc<Mutex<SimState>>;
type Params = Path<HashMap<String, String>>;

pub(super) fn lock(s: &Shared) -> MutexGuard<'_, SimState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn query_map(q: &Option<String>) -> HashMap<String, String> {
    q.as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn invalid(msg: impl Into<String>) -> Response {
    error(400, codes::INVALID, msg)
}

/// Reads `page`, `per_page` and `direction`, enforcing the documented bounds.
pub(super) fn paging(
    q: &HashMap<String, String>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<PageRequest, Response> {
    let page = match q.get("page") {
        None => 1,
        Some(p) => match p.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(invalid(format!(
                    "page must be a whole number of at least 1, got '{p}'"
                )));
            }
        },
    };
    let per_page = match q.get("per_page") {
        None => default,
        Some(p) => match p.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                return Err(invalid(format!(
                    "per_page must be a whole number from {min} to {max}, got '{p}'"
                )));
            }
        },
    };
    let descending = match q.get("direction").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(d) => {
            return Err(invalid(format!(
                "direction must be 'asc' or 'desc', got '{d}'"
            )));
        }
    };
    Ok(PageRequest {
        page,
        per_page,
        descending,
    })
}

fn parse_body(body: &Bytes, allow_empty: bool) -> Result<Map<String, Value>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if allow_empty {
            Ok(Map::new())
        } else {
            Err(error(
                400,
                codes::MALFORMED_JSON,
                "Malformed JSON in request body",
            ))
        };
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(invalid("request body must be a JSON object")),
        Err(_) => Err(error(
            400,
            codes::MALFORMED_JSON,
            "Malformed JSON in request body",
        )),
    }
}

fn parse_time(body: &Map<String, Value>, field: &str) -> Result<Option<DateTime<Utc>>, Response> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| invalid(format!("{field}: '{s}' is not an RFC 3339 date-time"))),
        Some(v) => Err(invalid(format!(
            "{field}: expected an RFC 3339 date-time string, got {v}"
        ))),
    }
}

/// Checks that `caller` may act on tokens of `owner`.
pub(super) fn authorize(st: &SimState, caller: &Caller, owner: &Owner) -> Result<(), Response> {
    let denied = || {
        error(
            403,
            codes::UNAUTHORIZED_SCOPE,
            "Unauthorized to access requested resource",
        )
    };
    match (owner, caller) {
        (Owner::User(u), c) if SimState::user_of(c) == Some(*u) => Ok(()),
        (Owner::User(_), _) => Err(denied()),
        (Owner::Account(a), _) if st.accounts.get(a).is_none() => Err(denied()),
        (Owner::Account(a), c) if !st.sees_account(c, a) => Err(denied()),
        (Owner::Account(_), _) => Ok(()),
    }
}

/// Whose tokens a path names: an account's, or the calling user's (`/user/tokens`).
fn owner_of(c: &Caller, p: &HashMap<String, String>) -> Owner {
    match p.get("account_id") {
        Some(a) => Owner::Account(a.clone()),
        None => Owner::User(SimState::user_of(c).unwrap_or(usize::MAX)),
    }
}

/// Locks the state and checks that the caller may act on the tokens the path names.
fn lock_tokens<'a>(
    s: &'a Shared,
    c: &Caller,
    p: &HashMap<String, String>,
) -> Result<(MutexGuard<'a, SimState>, Owner), Response> {
    let st = lock(s);
    let owner = owner_of(c, p);
    authorize(&st, c, &owner)?;
    Ok((st, owner))
}

/// A path parameter (always present: the router matched it).
fn path_id(p: &HashMap<String, String>, name: &str) -> String {
    p.get(name).cloned().unwrap_or_default()
}

/// Cloudflare's quota of user-owned API tokens.
pub const USER_TOKEN_QUOTA: usize = 50;
/// Cloudflare's quota of account-owned API tokens, per account.
pub const ACCOUNT_TOKEN_QUOTA: usize = 500;

fn token_not_found() -> Response {
    error(404, codes::NOT_FOUND, "Token not found")
}

// ---------- API tokens (user and account) ----------

/// GET /user/tokens and /accounts/{account_id}/tokens.
pub async fn list_tokens(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let q = query_map(&q);
    let page = paging(&q, 20, 5, 50)?;
    let include_expired = match q.get("include_expired").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(invalid(format!(
                "include_expired must be true or false, got '{v}'"
            )));
        }
    };
    let (mut st, owner) = lock_tokens(&s, &c, &p)?;
    let now = st.now();
    let totals = st.list_totals;
    let Some(store) = st.tokens_of(&owner) else {
        return Err(token_not_found());
    };
    let (total, ids): (usize, Vec<String>) = if include_expired {
        let all = store.tokens.ids();
        (all.len(), page.slice(all).into_iter().cloned().collect())
    } else {
        let live = store.live_ids(now);
        (live.len(), page.slice(live).into_iter().cloned().collect())
    };
    let rows = ids
        .iter()
        .filter_map(|id| store.tokens.get(id))
        .map(|t| t.to_json(now))
        .collect();
    Ok(ok_list(
        rows,
        page.page,
        page.per_page,
        totals.then_some(total),
    ))
}

/// GET /user/tokens/{token_id} and the account equivalent.
pub async fn get_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let (mut st, owner) = lock_tokens(&s, &c, &p)?;
    let now = st.now();
    let id = path_id(&p, "token_id");
    match st.tokens_of(&owner).and_then(|s| s.tokens.get(&id)) {
        Some(t) => Ok(ok(t.to_json(now))),
        None => Err(token_not_found()),
    }
}

/// Validated token fields of a create or update body.
struct TokenFields {
    name: String,
    policies: Value,
    condition: Option<Value>,
    expires_on: Option<DateTime<Utc>>,
    not_before: Option<DateTime<Utc>>,
    status: Option<StoredStatus>,
}

/// The whole body of a token create or update, checked field by field (nothing is
/// stored unless every field is valid, as the real API does).
fn validate_token_body(
    body: &Map<String, Value>,
    ids: &mut super::seed::IdGen,
    allow_status: bool,
) -> Result<TokenFields, Response> {
    let name = match body.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 120 => n.clone(),
        Some(Value::String(_)) => return Err(invalid("name: must be 1 to 120 characters")),
        Some(_) => return Err(invalid("name: must be a string")),
        None => return Err(invalid("name: required")),
    };
    let mut policies = match body.get("policies") {
        Some(Value::Array(p)) => p.clone(),
        Some(_) => return Err(invalid("policies: must be an array of policies")),
        None => return Err(invalid("policies: required")),
    };
    for (i, pol) in policies.iter_mut().enumerate() {
        validate_policy(i, pol, ids)?;
    }
    Ok(TokenFields {
        name,
        policies: Value::Array(policies),
        condition: validate_condition(body.get("condition"))?,
        expires_on: parse_time(body, "expires_on")?,
        not_before: parse_time(body, "not_before")?,
        status: validate_status(body.get("status"), allow_status)?,
    })
}

/// One policy: effect, resources, permission groups; an id is given when it has none.
fn validate_policy(
    i: usize,
    pol: &mut Value,
    ids: &mut super::seed::IdGen,
) -> Result<(), Response> {
    let Value::Object(pm) = pol else {
        return Err(invalid(format!("policies[{i}]: must be an object")));
    };
    if !matches!(
        pm.get("effect").and_then(Value::as_str),
        Some("allow" | "deny")
    ) {
        return Err(invalid(format!(
            "policies[{i}].effect: must be 'allow' or 'deny'"
        )));
    }
    let resources_ok = matches!(pm.get("resources"), Some(Value::Object(r)) if r.values().all(|v| v.is_string() || v.is_object()));
    if !resources_ok {
        return Err(invalid(format!(
            "policies[{i}].resources: must be an object of resource names"
        )));
    }
    let groups_ok = matches!(pm.get("permission_groups"), Some(Value::Array(g)) if g.iter().all(|g| g.get("id").is_some_and(Value::is_string)));
    if !groups_ok {
        return Err(invalid(format!(
            "policies[{i}].permission_groups: must be an array of {{\"id\": ...}}"
        )));
    }
    if !pm.get("id").is_some_and(Value::is_string) {
        pm.insert("id".into(), json!(ids.id32()));
    }
    Ok(())
}

/// `condition`: only `request_ip` (or its old spelling) with `in` / `not_in` CIDR lists.
fn validate_condition(condition: Option<&Value>) -> Result<Option<Value>, Response> {
    let c = match condition {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(invalid("condition: must be an object")),
    };
    for (k, v) in c {
        if k != "request_ip" && k != "request.ip" {
            return Err(invalid(format!(
                "condition: unknown key '{k}' (expected request_ip)"
            )));
        }
        let cidr_lists = |m: &Map<String, Value>| {
            m.iter().all(|(k, l)| {
                (k == "in" || k == "not_in")
                    && l.as_array().is_some_and(|a| a.iter().all(Value::is_string))
            })
        };
        if !v.as_object().is_some_and(cidr_lists) {
            return Err(invalid(
                "condition.request_ip: expected {\"in\": [CIDR...], \"not_in\": [CIDR...]}",
            ));
        }
    }
    Ok(Some(Value::Object(c.clone())))
}

/// `status`: only on update, and only `active` or `disabled` (`expired` is the API's).
fn validate_status(
    status: Option<&Value>,
    allowed: bool,
) -> Result<Option<StoredStatus>, Response> {
    match status {
        None | Some(Value::Null) => Ok(None),
        Some(v) if !allowed => Err(invalid(format!("status: not accepted on create, got {v}"))),
        Some(Value::String(s)) if s == "active" => Ok(Some(StoredStatus::Active)),
        Some(Value::String(s)) if s == "disabled" => Ok(Some(StoredStatus::Disabled)),
        Some(v) => Err(invalid(format!(
            "status: must be 'active' or 'disabled', got {v}"
        ))),
    }
}

/// POST /user/tokens and the account equivalent: the result carries `value`.
pub async fn create_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_body(&body, false)?;
    let (mut st, owner) = lock_tokens(&s, &c, &p)?;
    let f = validate_token_body(&body, &mut st.ids, false)?;
    let (quota, whose) = match owner {
        Owner::User(_) => (USER_TOKEN_QUOTA, "per user"),
        Owner::Account(_) => (ACCOUNT_TOKEN_QUOTA, "per account"),
    };
    if st
        .tokens_of(&owner)
        .is_some_and(|s| s.tokens.len() >= quota)
    {
        return Err(error(
            400,
            codes::QUOTA,
            format!("Token quota reached: at most {quota} API tokens {whose}; delete one first"),
        ));
    }
    let now = st.now();
    let id = st.ids.id32();
    let secret = st.ids.token_secret();
    let email = st.email.clone();
    let tok = Token {
        id: id.clone(),
        name: f.name,
        status: StoredStatus::Active,
        issued_on: now,
        modified_on: now,
        last_used_on: None,
        not_before: f.not_before,
        expires_on: f.expires_on,
        policies: f.policies,
        condition: f.condition,
        secret: secret.clone(),
        creator_email: Some(email),
    };
    let mut out = tok.to_json(now);
    out["value"] = json!(secret);
    st.secrets.insert(secret, (owner.clone(), id.clone()));
    match st.tokens_of(&owner) {
        Some(store) => store.tokens.insert(id, tok),
        None => return Err(token_not_found()),
    }
    Ok(ok(out))
}

/// PUT /user/tokens/{token_id}: full replacement of the token's fields.
pub async fn update_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_body(&body, false)?;
    let (mut st, owner) = lock_tokens(&s, &c, &p)?;
    let f = validate_token_body(&body, &mut st.ids, true)?;
    let now = st.now();
    let id = path_id(&p, "token_id");
    let Some(tok) = st.tokens_of(&owner).and_then(|s| s.tokens.get_mut(&id)) else {
        return Err(token_not_found());
    };
    tok.name = f.name;
    tok.policies = f.policies;
    tok.condition = f.condition;
    tok.expires_on = f.expires_on;
    tok.not_before = f.not_before;
    if let Some(status) = f.status {
        tok.status = status;
    }
    tok.modified_on = now;
    Ok(ok(tok.to_json(now)))
}

/// DELETE /user/tokens/{token_id}: result `{"id": ...}`.
pub async fn delete_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let (mut st, owner) = lock_tokens(&s, &c, &p)?;
    let id = path_id(&p, "token_id");
    let Some(tok) = st.tokens_of(&owner).and_then(|s| s.tokens.remove(&id)) else {
        return Err(token_not_found());
    };
    st.secrets.remove(&tok.secret);
    Ok(ok(json!({"id": id})))
}

/// PUT /user/tokens/{token_id}/value: a new secret; the result is a bare JSON string.
/// A missing body counts as `{}` (the official SDKs send none).
pub async fn roll_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, Response> {
    parse_body(&body, true)?;
    let (mut st, owner) = lock_tokens(&s, &c, &p)?;
    let now = st.now();
    let id = path_id(&p, "token_id");
    let secret = st.ids.token_secret();
    let Some(tok) = st.tokens_of(&owner).and_then(|s| s.tokens.get_mut(&id)) else {
        return Err(token_not_found());
    };
    let old = std::mem::replace(&mut tok.secret, secret.clone());
    tok.modified_on = now;
    st.secrets.remove(&old);
    st.secrets.insert(secret.clone(), (owner, id));
    Ok(ok(json!(secret)))
}

/// GET /user/tokens/verify (and the account equivalent): the calling token.
pub async fn verify_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let st = lock(&s);
    let owner = owner_of(&c, &p);
    let (tok_owner, id) = match &c {
        Caller::UserToken(u, id) => (Owner::User(*u), id.clone()),
        Caller::AccountToken(a, id) => (Owner::Account(a.clone()), id.clone()),
        Caller::GlobalKey => {
            return Err(error(
                400,
                1000,
                "Invalid API Token: verify needs an API token (Authorization: Bearer)",
            ));
        }
    };
    if tok_owner != owner {
        return Err(error(
            403,
            codes::UNAUTHORIZED_SCOPE,
            "Unauthorized to access requested resource",
        ));
    }
    let now = st.now();
    let tok = match &owner {
        Owner::User(u) => st.users.get(*u).and_then(|s| s.tokens.get(&id)),
        Owner::Account(a) => st.account_tokens.get(a).and_then(|s| s.tokens.get(&id)),
    };
    let Some(tok) = tok else {
        return Err(error(401, 1000, "Invalid API Token"));
    };
    let mut r = json!({"id": tok.id, "status": tok.status_at(now)});
    if let Some(e) = &tok.expires_on {
        r["expires_on"] = json!(super::model::ts(e));
    }
    if let Some(n) = &tok.not_before {
        r["not_before"] = json!(super::model::ts(n));
    }
    Ok(ok(r))
}

/// GET /user/tokens/permission_groups and /accounts/{account_id}/tokens/permission_groups.
pub async fn permission_groups(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let q = query_map(&q);
    let st = lock(&s);
    authorize(&st, &c, &owner_of(&c, &p))?;
    let rows: Vec<Value> = all_permission_groups()
        .filter(|g| q.get("name").is_none_or(|n| g.name == n))
        .filter(|g| {
            q.get("scope")
                .is_none_or(|sc| g.scopes.contains(&sc.as_str()))
        })
        .map(|g| g.to_json())
        .collect();
    let n = rows.len();
    Ok(ok_list(rows, 1, n.max(1), st.list_totals.then_some(n)))
}

/// GET /accounts.
pub async fn list_accounts(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let q = query_map(&q);
    let page = paging(&q, 20, 5, 50)?;
    if matches!(c, Caller::AccountToken(..)) {
        return Err(error(
            403,
            codes::ACCOUNT_OWNED_TOKEN,
            "List accounts endpoint does not support account owned tokens",
        ));
    }
    let st = lock(&s);
    let ids: Vec<String> = match q.get("name") {
        Some(n) => st
            .accounts
            .values()
            .filter(|a| a.name.to_lowercase().contains(&n.to_lowercase()))
            .map(|a| a.id.clone())
            .collect(),
        None => st.accounts.ids().to_vec(),
    };
    let ids: Vec<String> = ids.into_iter().filter(|a| st.sees_account(&c, a)).collect();
    let rows = page
        .slice(&ids)
        .into_iter()
        .filter_map(|id| st.accounts.get(id))
        .map(|a| a.to_json())
        .collect();
    Ok(ok_list(
        rows,
        page.page,
        page.per_page,
        st.list_totals.then_some(ids.len()),
    ))
}

// ---------- Zones ----------

/// Every zone of the accounts a caller sees, with the filters of `GET /zones` (`name`,
/// `status`, `account.id`, `account.name`), paged.
pub async fn list_zones(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let q = query_map(&q);
    let page = paging(&q, 20, 5, 50)?;
    let st = lock(&s);
    let visible = |account: &str| st.sees_account(&c, account);
    let wanted = |key: &str, value: &Value| {
        q.get(key)
            .is_none_or(|w| value.as_str().is_some_and(|v| v.eq_ignore_ascii_case(w)))
    };
    let zones: Vec<Value> = st
        .accounts
        .values()
        .filter(|a| visible(&a.id))
        .flat_map(|a| (0..a.zones.len()).filter_map(|i| a.zone_json(i)))
        .filter(|z| {
            wanted("name", &z["name"])
                && wanted("status", &z["status"])
                && wanted("account.id", &z["account"]["id"])
                && wanted("account.name", &z["account"]["name"])
        })
        .collect();
    let total = zones.len();
    let rows = page.slice(&zones).into_iter().cloned().collect();
    Ok(ok_list(
        rows,
        page.page,
        page.per_page,
        st.list_totals.then_some(total),
    ))
}

/// `GET /zones/{zone_id}`.
pub async fn get_zone(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let st = lock(&s);
    let id = p.get("zone_id").cloned().unwrap_or_default();
    let found = st.accounts.values().find_map(|a| {
        let i = a.zones.iter().position(|z| *z == id)?;
        if st.sees_account(&c, &a.id) {
            a.zone_json(i)
        } else {
            None
        }
    });
    match found {
        Some(z) => Ok(ok(z)),
        None => Err(error(404, codes::NOT_FOUND, "Invalid zone identifier")),
    }
}

// ---------- Access service tokens ----------

/// Which collection of service tokens a path addresses.
enum SvcScope {
    Account(String),
    Zone(String),
}

fn svc_scope(st: &SimState, c: &Caller, p: &HashMap<String, String>) -> Result<SvcScope, Response> {
    let denied = || {
        error(
            403,
            codes::UNAUTHORIZED_SCOPE,
            "Unauthorized to access requested resource",
        )
    };
    let (scope, account) = if let Some(a) = p.get("account_id") {
        (SvcScope::Account(a.clone()), Some(a.clone()))
    } else if let Some(z) = p.get("zone_id") {
        (SvcScope::Zone(z.clone()), st.zone_account.get(z).cloned())
    } else {
        return Err(denied());
    };
    let Some(account) = account else {
        return Err(denied());
    };
    authorize(st, c, &Owner::Account(account))?;
    Ok(scope)
}

/// Locks the state and checks that the caller may act on the service tokens the path names.
fn lock_services<'a>(
    s: &'a Shared,
    c: &Caller,
    p: &HashMap<String, String>,
) -> Result<(MutexGuard<'a, SimState>, SvcScope), Response> {
    let st = lock(s);
    let scope = svc_scope(&st, c, p)?;
    Ok((st, scope))
}

fn svc_store<'a>(st: &'a mut SimState, scope: &SvcScope) -> &'a mut OrderedStore<ServiceToken> {
    match scope {
        SvcScope::Account(a) => st.account_services.entry(a.clone()).or_default(),
        SvcScope::Zone(z) => st.zone_services.entry(z.clone()).or_default(),
    }
}

fn svc_not_found() -> Response {
    error(404, codes::NOT_FOUND, "Service token not found")
}

/// Parses a Go-style duration (`8760h`, `2h45m`, `300ms`); `Ok(None)` for `forever`.
pub fn parse_go_duration(s: &str) -> Result<Option<Duration>, String> {
    if s == "forever" {
        return Ok(None);
    }
    let bad = || format!("duration: '{s}' is not a duration like 8760h, 2h45m or 300ms");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total_ns: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total_ns += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(Some(Duration::nanoseconds(total_ns as i64)))
}

/// GET .../access/service_tokens with `name`, `search`, `page`, `per_page`.
pub async fn list_service_tokens(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let q = query_map(&q);
    let page = paging(&q, 20, 1, 1000)?;
    let (mut st, scope) = lock_services(&s, &c, &p)?;
    let totals = st.list_totals;
    let store = svc_store(&mut st, &scope);
    let name = q.get("name");
    let search = q.get("search").map(|s| s.to_lowercase());
    let rows: Vec<Value>;
    let total;
    if name.is_none() && search.is_none() {
        total = store.len();
        rows = page
            .slice(store.ids())
            .into_iter()
            .filter_map(|id| store.get(id))
            .map(ServiceToken::to_json)
            .collect();
    } else {
        let ids: Vec<String> = store
            .values()
            .filter(|t| name.is_none_or(|n| &t.name == n))
            .filter(|t| {
                search
                    .as_ref()
                    .is_none_or(|q| t.name.to_lowercase().contains(q) || t.client_id.contains(q))
            })
            .map(|t| t.id.clone())
            .collect();
        total = ids.len();
        rows = page
            .slice(&ids)
            .into_iter()
            .filter_map(|id| store.get(id))
            .map(ServiceToken::to_json)
            .collect();
    }
    Ok(ok_list(
        rows,
        page.page,
        page.per_page,
        totals.then_some(total),
    ))
}

/// GET .../access/service_tokens/{service_token_id}.
pub async fn get_service_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let (mut st, scope) = lock_services(&s, &c, &p)?;
    let id = path_id(&p, "service_token_id");
    match svc_store(&mut st, &scope).get(&id) {
        Some(t) => Ok(ok(t.to_json())),
        None => Err(svc_not_found()),
    }
}

/// POST .../access/service_tokens: 201, with `client_secret`.
pub async fn create_service_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_body(&body, false)?;
    let name = match body.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        Some(_) => return Err(invalid("name: must be a non-empty string")),
        None => return Err(invalid("name: required")),
    };
    let duration = match body.get("duration") {
        None | Some(Value::Null) => "8760h".to_string(),
        Some(Value::String(d)) => d.clone(),
        Some(v) => return Err(invalid(format!("duration: must be a string, got {v}"))),
    };
    let dur = match parse_go_duration(&duration) {
        Ok(d) => d,
        Err(e) => return Err(invalid(e)),
    };
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(invalid(format!("enabled: must be true or false, got {v}"))),
    };
    let (mut st, scope) = lock_services(&s, &c, &p)?;
    let now = st.now();
    let tok = ServiceToken {
        id: st.ids.uuid(),
        name,
        client_id: format!("{}.access", st.ids.id32()),
        client_secret: st.ids.hex(64),
        previous_secret: None,
        duration,
        created_at: now,
        updated_at: now,
        expires_at: dur.map(|d| now + d),
        last_seen_at: None,
        enabled,
    };
    let out = tok.to_json_with_secret();
    svc_store(&mut st, &scope).insert(tok.id.clone(), tok);
    Ok(ok_status(201, out))
}

/// PUT .../access/service_tokens/{id}: `name`, `duration`, `enabled`, `previous_client_secret_expires_at`.
pub async fn update_service_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, Response> {
    // The whole body is checked before anything changes: a bad field changes nothing.
    let body = parse_body(&body, false)?;
    let prev_exp = parse_time(&body, "previous_client_secret_expires_at")?;
    let duration = match body.get("duration") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => {
            parse_go_duration(d).map_err(invalid)?;
            Some(d.clone())
        }
        Some(_) => return Err(invalid("duration: must be a string")),
    };
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if !n.trim().is_empty() => Some(n.clone()),
        Some(_) => return Err(invalid("name: must be a non-empty string")),
    };
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => return Err(invalid(format!("enabled: must be true or false, got {v}"))),
    };
    let (mut st, scope) = lock_services(&s, &c, &p)?;
    let now = st.now();
    let id = path_id(&p, "service_token_id");
    let Some(tok) = svc_store(&mut st, &scope).get_mut(&id) else {
        return Err(svc_not_found());
    };
    if let Some(n) = name {
        tok.name = n;
    }
    if let Some(d) = duration {
        tok.duration = d;
    }
    if let Some(e) = enabled {
        tok.enabled = e;
    }
    if let (Some(t), Some(prev)) = (prev_exp, tok.previous_secret.as_mut()) {
        prev.1 = t;
    }
    tok.updated_at = now;
    Ok(ok(tok.to_json()))
}

/// DELETE .../access/service_tokens/{id}: the deleted token.
pub async fn delete_service_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let (mut st, scope) = lock_services(&s, &c, &p)?;
    let id = path_id(&p, "service_token_id");
    match svc_store(&mut st, &scope).remove(&id) {
        Some(t) => Ok(ok(t.to_json())),
        None => Err(svc_not_found()),
    }
}

/// POST /accounts/{account_id}/access/service_tokens/{id}/refresh: expiry moves to now + duration.
pub async fn refresh_service_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
) -> Result<Response, Response> {
    let (mut st, scope) = lock_services(&s, &c, &p)?;
    let now = st.now();
    let id = path_id(&p, "service_token_id");
    let Some(tok) = svc_store(&mut st, &scope).get_mut(&id) else {
        return Err(svc_not_found());
    };
    let dur = parse_go_duration(&tok.duration).unwrap_or(Some(Duration::hours(8760)));
    tok.expires_at = dur.map(|d| now + d);
    tok.updated_at = now;
    Ok(ok(tok.to_json()))
}

/// POST /accounts/{account_id}/access/service_tokens/{id}/rotate: a new `client_secret`;
/// the previous one keeps working until `previous_client_secret_expires_at` (default: now).
pub async fn rotate_service_token(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_body(&body, true)?;
    let prev_exp = parse_time(&body, "previous_client_secret_expires_at")?;
    let (mut st, scope) = lock_services(&s, &c, &p)?;
    let now = st.now();
    let secret = st.ids.hex(64);
    let id = path_id(&p, "service_token_id");
    let Some(tok) = svc_store(&mut st, &scope).get_mut(&id) else {
        return Err(svc_not_found());
    };
    let old = std::mem::replace(&mut tok.client_secret, secret);
    tok.previous_secret = Some((old, prev_exp.unwrap_or(now)));
    tok.updated_at = now;
    Ok(ok(tok.to_json_with_secret()))
}

/// `GET /__sim/access/check`: an Access-protected application. Answers 200 when
/// `CF-Access-Client-Id` + `CF-Access-Client-Secret` name an enabled, unexpired
/// service token (current secret, or the previous one within its grace window).
pub async fn access_check(
    State(s): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let id = headers
        .get("cf-access-client-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let secret = headers
        .get("cf-access-client-secret")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut st = lock(&s);
    let now = st.now();
    let st = &mut *st;
    let stores = st
        .account_services
        .values_mut()
        .chain(st.zone_services.values_mut());
    for store in stores {
        let found = store
            .values()
            .find(|t| t.client_id == id)
            .map(|t| t.id.clone());
        if let Some(tid) = found {
            let tok = store.get_mut_untracked(&tid).expect("found above");
            let secret_ok = tok.client_secret == secret
                || tok
                    .previous_secret
                    .as_ref()
                    .is_some_and(|(p, until)| p == &secret && now < *until);
            let live = tok.enabled && tok.expires_at.is_none_or(|e| now < e);
            if secret_ok && live {
                tok.last_seen_at = Some(now);
                return Ok(ok(json!({"id": tok.id})));
            }
            break;
        }
    }
    Err(error(
        403,
        10000,
        "Forbidden: invalid service token credentials",
    ))
}

// ---------- Audit Logs v2 ----------

/// A `since` / `before` value: RFC 3339, or a date (`2026-11-01`, midnight UTC).
fn audit_time(q: &HashMap<String, String>, key: &str) -> Result<DateTime<Utc>, Response> {
    let bad = |why: &str| error(400, codes::INVALID, format!("{key}: {why}"));
    let v = q.get(key).ok_or_else(|| bad("is required"))?;
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| bad("is not a date (2019-04-30) or an RFC 3339 time"))
}

/// `GET /accounts/{account_id}/logs/audit`: `since` and `before` required, `limit` up to
/// 1,000 (default 100), `direction` desc (default) or asc, field filters, `cursor`.
pub async fn list_audit_logs(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(p): Params,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    use super::audit_log::{AuditQuery, FILTERS, decode_cursor};
    let q = query_map(&q);
    let account = p.get("account_id").cloned().unwrap_or_default();
    let st = lock(&s);
    authorize(&st, &c, &Owner::Account(account.clone()))?;
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if (1..=1000).contains(&l) => l,
        Some(_) => return Err(error(400, codes::INVALID, "limit: must be 1 to 1000")),
    };
    let after = match q.get("cursor") {
        None => None,
        Some(cur) => Some(
            decode_cursor(cur).ok_or_else(|| error(400, codes::INVALID, "cursor: not a cursor"))?,
        ),
    };
    let query = AuditQuery {
        since: Some(audit_time(&q, "since")?),
        before: Some(audit_time(&q, "before")?),
        filters: FILTERS
            .iter()
            .filter_map(|k| q.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect(),
        ascending: q.get("direction").is_some_and(|d| d == "asc"),
        limit,
        after,
    };
    let (rows, cursor) = st.audit.page(&account, &query);
    let info = json!({"count": rows.len(), "cursor": cursor.unwrap_or_default()});
    Ok(super::envelope::json_response(
        200,
        &json!({"success": true, "errors": [], "messages": [], "result": rows, "result_info": info}),
    ))
}
