//! The simulator's Audit Logs v2: every authenticated call on an account's resources (or
//! its zones') is recorded the way Cloudflare records it (actor, action, resource, raw
//! request), and `GET /accounts/{account_id}/logs/audit` serves them newest first with
//! `since` and `before` required, filters, `limit` and keyset cursors. Reads of the audit
//! log itself are not recorded, so that reading it does not change it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::seed::IdGen;

/// Most entries kept: the oldest go first (Cloudflare keeps 18 months; memory is the
/// simulator's limit).
const KEPT: usize = 20_000;

/// One recorded action.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// The account it belongs to.
    pub account_id: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Its id.
    pub id: String,
    /// The entry as the API returns it.
    pub json: Value,
}

/// Who made a call, as the log names them.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The API token's id, when one authenticated the call.
    pub token_id: Option<String>,
    /// That token's name.
    pub token_name: Option<String>,
    /// `api_token` or `api_key`.
    pub context: &'static str,
    /// `user` or `account`.
    pub kind: &'static str,
    /// The user's email.
    pub email: String,
}

/// One call to record.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path below `/client/v4`.
    pub path: &'a str,
    /// Route template.
    pub route: &'a str,
    /// Answer's status.
    pub status: u16,
    /// When.
    pub time: DateTime<Utc>,
}

/// What one request for the log asks.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub before: Option<DateTime<Utc>>,
    /// Field filters: (`actor_token_id` | `action_type` | `resource_product` |
    /// `actor_context` | `raw_method`, value).
    pub filters: Vec<(String, String)>,
    /// Oldest first instead of newest first.
    pub ascending: bool,
    /// Page size.
    pub limit: usize,
    /// The last entry of the previous page: (time in µs, id).
    pub after: Option<(i64, String)>,
}

/// Every entry, oldest first.
#[derive(Debug, Default)]
pub struct AuditLog {
    entries: Vec<AuditEntry>,
}

impl AuditLog {
    /// Records a call made on `account` (and `zone`: id and name) by `actor`.
    pub fn record(
        &mut self,
        ids: &mut IdGen,
        account: (&str, &str),
        zone: Option<(&str, &str)>,
        actor: &Actor,
        call: &Call<'_>,
    ) {
        let id = ids.uuid();
        let json = entry_json(&id, ids.hex(16), account, zone, actor, call);
        let at = self.entries.partition_point(|e| e.time <= call.time);
        self.entries.insert(
            at,
            AuditEntry {
                account_id: account.0.to_string(),
                time: call.time,
                id,
                json,
            },
        );
        if self.entries.len() > KEPT {
            self.entries.remove(0);
        }
    }

    /// One page of the account's entries and the cursor of the next page, if any.
    pub fn page(&self, account: &str, q: &AuditQuery) -> (Vec<Value>, Option<String>) {
        let key = |e: &AuditEntry| (e.time.timestamp_micros(), e.id.clone());
        let mut hits: Vec<&AuditEntry> = self
            .entries
            .iter()
            .filter(|e| e.account_id == account)
            .filter(|e| q.since.is_none_or(|s| e.time >= s))
            .filter(|e| q.before.is_none_or(|b| e.time < b))
            .filter(|e| q.filters.iter().all(|(k, v)| field(&e.json, k) == Some(v)))
            .collect();
        hits.sort_by_key(|e| key(e));
        if !q.ascending {
            hits.reverse();
        }
        let start = match &q.after {
            None => 0,
            Some(after) => hits
                .iter()
                .position(|e| {
                    let k = key(e);
                    if q.ascending { k > *after } else { k < *after }
                })
                .unwrap_or(hits.len()),
        };
        let page: Vec<&AuditEntry> = hits.iter().skip(start).take(q.limit).copied().collect();
        let more = start + page.len() < hits.len();
        let cursor = page
            .last()
            .filter(|_| more)
            .map(|e| encode_cursor(e.time.timestamp_micros(), &e.id));
        (page.into_iter().map(|e| e.json.clone()).collect(), cursor)
    }
}

/// The value of a filterable field of an entry.
fn field<'a>(entry: &'a Value, key: &str) -> Option<&'a String> {
    let (outer, inner) = match key {
        "actor_token_id" => ("actor", "token_id"),
        "actor_context" => ("actor", "context"),
        "action_type" => ("action", "type"),
        "resource_product" => ("resource", "product"),
        "raw_method" => ("raw", "method"),
        _ => return None,
    };
    match &entry[outer][inner] {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// The filters `GET .../logs/audit` accepts.
pub const FILTERS: &[&str] = &[
    "actor_token_id",
    "actor_context",
    "action_type",
    "resource_product",
    "raw_method",
];

/// An opaque cursor: the last entry's time and id, hex-encoded.
fn encode_cursor(micros: i64, id: &str) -> String {
    format!("{micros}:{id}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The entry a cursor names, or `None` for a cursor this simulator did not make.
pub fn decode_cursor(c: &str) -> Option<(i64, String)> {
    if !c.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(c.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (micros, id) = text.split_once(':')?;
    Some((micros.parse().ok()?, id.to_string()))
}

/// What kind of thing a route acts on, and which product it belongs to.
fn resource_of(route: &str) -> (&'static str, &'static str) {
    if route.contains("/access/service_tokens") {
        ("access", "service_token")
    } else if route.contains("/tokens/permission_groups") {
        ("api_tokens", "permission_group")
    } else if route.contains("/tokens") {
        ("api_tokens", "token")
    } else if route.starts_with("/zones") {
        ("zones", "zone")
    } else {
        ("accounts", "account")
    }
}

/// The action a method is logged as.
fn action_of(method: &str) -> &'static str {
    match method {
        "GET" => "view",
        "POST" => "create",
        "PUT" | "PATCH" => "update",
        "DELETE" => "delete",
        _ => "other",
    }
}

fn entry_json(
    id: &str,
    ray: String,
    account: (&str, &str),
    zone: Option<(&str, &str)>,
    actor: &Actor,
    call: &Call<'_>,
) -> Value {
    let (product, kind) = resource_of(call.route);
    let action = action_of(call.method);
    // The resource's id: the last path parameter the route names, if any.
    let resource_id = call
        .route
        .split('/')
        .zip(call.path.split('/'))
        .filter(|(r, _)| r.starts_with('{'))
        .map(|(_, p)| p)
        .last();
    json!({
        "id": id,
        "account": {"id": account.0, "name": account.1},
        "action": {
            "type": action,
            "result": if call.status < 400 { "success" } else { "failure" },
            "time": call.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            "description": format!("{action} {kind}"),
        },
        "actor": {
            "id": "5f7a3c0e9b1d4e2f8a6c0b9d7e5f3a1c",
            "email": actor.email,
            "ip_address": "127.0.0.1",
            "type": actor.kind,
            "context": actor.context,
            "token_id": actor.token_id,
            "token_name": actor.token_name,
        },
        "resource": {"id": resource_id, "product": product, "type": kind, "scope": if zone.is_some() { "zones" } else { "accounts" }},
        "raw": {"method": call.method, "uri": format!("/client/v4{}", call.path), "status_code": call.status, "cf_ray_id": ray},
        "zone": zone.map(|(id, name)| json!({"id": id, "name": name})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(n: i64) -> AuditLog {
        let mut log = AuditLog::default();
        let mut ids = IdGen::new(7);
        let t0 = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        for i in 0..n {
            let call = Call {
                method: if i % 2 == 0 { "GET" } else { "PUT" },
                path: "/accounts/a/tokens/t1",
                route: "/accounts/{account_id}/tokens/{token_id}",
                status: 200,
                // Two entries share each instant: the cursor must still not lose one.
                time: t0 + chrono::Duration::seconds(i / 2),
            };
            log.record(&mut ids, ("a", "A"), None, &Actor::default(), &call);
        }
        log
    }

    #[test]
    fn cursors_walk_every_entry_once_newest_first() {
        let log = log_of(25);
        let mut q = AuditQuery {
            limit: 4,
            ..AuditQuery::default()
        };
        let mut seen = Vec::new();
        loop {
            let (rows, next) = log.page("a", &q);
            seen.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_string()));
            let Some(c) = next else { break };
            q.after = decode_cursor(&c);
        }
        assert_eq!(seen.len(), 25);
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 25);
        let (first, _) = log.page(
            "a",
            &AuditQuery {
                limit: 1,
                ..AuditQuery::default()
            },
        );
        assert_eq!(first[0]["id"], seen[0].as_str());
        assert_eq!(
            field(&first[0], "action_type").map(String::as_str),
            Some("view")
        );
        assert_eq!(decode_cursor("zz"), None);
    }
}
