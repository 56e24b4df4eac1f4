//! The simulator's mutable world: stores, credentials, rate limits, faults and the request log.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::audit_log::{Actor, AuditLog, Call};
use super::faults::{FaultSpec, FaultState};
use super::generic::GenericStore;
use super::model::{Account, Owner, ServiceToken};
use super::seed::{IdGen, SeedData};
use super::store::{OrderedStore, TokenStore};

/// Who made a request, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The user's global key (`X-Auth-Email` + `X-Auth-Key`).
    GlobalKey,
    /// A user-owned API token: (user, token id).
    UserToken(usize, String),
    /// An account-owned API token: (account id, token id).
    AccountToken(String, String),
}

impl Caller {
    /// Who the caller is, for the request log: users are numbered from 1.
    pub fn label(&self) -> String {
        match self {
            Caller::GlobalKey => "user 1 global key".into(),
            Caller::UserToken(u, id) => format!("user {} token {id}", u + 1),
            Caller::AccountToken(a, id) => format!("account {a} token {id}"),
        }
    }
}

/// How a request authenticated (never the credential itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// `Authorization: Bearer ...`.
    Bearer,
    /// `X-Auth-Email` + `X-Auth-Key`.
    EmailKey,
    /// No credential headers.
    None,
}

/// One request as the simulator received it (after authentication).
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    /// Order of arrival among logged requests, from 1.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path below `/client/v4`.
    pub path: String,
    /// Route template, such as `/user/tokens/{token_id}`.
    pub route: String,
    /// Raw query string.
    pub query: String,
    /// Request body as text (empty when none), cut at 4 KiB.
    pub body: String,
    /// Which credential scheme was used.
    pub auth: AuthKind,
    /// The status of the answer, once the handler answered: the request was processed
    /// (even when `dropped`). `None` while in progress or when dropped unprocessed.
    pub status: Option<u16>,
    /// The connection was closed instead of sending the answer (fault injection).
    pub dropped: bool,
    /// When the request arrived, in milliseconds since the simulator's process started.
    pub arrived_ms: u64,
    /// When it was answered (or dropped), on the same clock.
    pub answered_ms: Option<u64>,
    /// Who made it ([`Caller::label`]: `user 2 token <id>`, `account <id> token <id>`,
    /// `global key`), never the credential itself.
    pub caller: String,
}

/// Milliseconds since the first call in this process: the request log's clock, so tests
/// can tell which calls came while a client should have been waiting.
fn clock_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// Bytes of a request body kept in the log.
pub const LOG_BODY_BYTES: usize = 4096;
/// Requests kept in the log (older ones leave; the counts stay exact).
pub const LOG_CAPACITY: usize = 10_000;

impl RecordedRequest {
    /// An entry for a request, its body cut to 4 KiB.
    pub fn new(
        method: &str,
        path: &str,
        route: &str,
        query: &str,
        body: &[u8],
        auth: AuthKind,
    ) -> Self {
        let mut text =
            String::from_utf8_lossy(&body[..body.len().min(LOG_BODY_BYTES)]).into_owned();
        if body.len() > LOG_BODY_BYTES {
            text.push_str(&format!("...({} bytes)", body.len()));
        }
        Self {
            seq: 0,
            method: method.into(),
            path: path.into(),
            route: route.into(),
            query: query.into(),
            body: text,
            auth,
            status: None,
            dropped: false,
            arrived_ms: clock_ms(),
            answered_ms: None,
            caller: String::new(),
        }
    }
}

/// Requests received: exact counts of every request, and a bounded log of the last
/// [`LOG_CAPACITY`] authenticated ones.
#[derive(Default)]
pub struct RequestLog {
    /// Count per (method, route template), every request included.
    pub counts: HashMap<(String, String), u64>,
    /// Every request received.
    pub total: u64,
    /// Every request received with a method other than GET.
    pub mutating: u64,
    /// The last authenticated requests, oldest first.
    pub requests: VecDeque<RecordedRequest>,
    next_seq: u64,
}

impl RequestLog {
    /// Counts a request on arrival.
    pub fn count(&mut self, method: &str, route: &str) {
        *self
            .counts
            .entry((method.to_string(), route.to_string()))
            .or_insert(0) += 1;
        self.total += 1;
        if method != "GET" {
            self.mutating += 1;
        }
    }

    /// Logs an authenticated request; returns its sequence number.
    pub fn push(&mut self, mut entry: RecordedRequest) -> u64 {
        self.next_seq += 1;
        entry.seq = self.next_seq;
        if self.requests.len() >= LOG_CAPACITY {
            self.requests.pop_front();
        }
        self.requests.push_back(entry);
        self.next_seq
    }

    /// Completes a logged request with its answer.
    pub fn answer(&mut self, seq: u64, status: Option<u16>, dropped: bool) {
        if let Some(r) = self.requests.iter_mut().rev().find(|r| r.seq == seq) {
            r.status = status;
            r.dropped = dropped;
            r.answered_ms = Some(clock_ms());
        }
    }
}

/// The emulated per-credential rate limit (sliding window).
pub struct RateLimit {
    /// Requests allowed per window.
    pub limit: usize,
    /// Window length.
    pub window: StdDuration,
    hits: HashMap<u64, VecDeque<Instant>>,
    blocked: HashMap<u64, Instant>,
}

/// What the limit says of one request: allowed (with what is left) or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateVerdict {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests left in the window after this one.
    pub remaining: usize,
    /// Seconds until the window frees a request (or the block ends), rounded up.
    pub reset_secs: u64,
}

impl RateLimit {
    /// A limit of `limit` requests per `window`.
    pub fn new(limit: usize, window: StdDuration) -> Self {
        Self {
            limit,
            window,
            hits: HashMap::new(),
            blocked: HashMap::new(),
        }
    }

    /// Counts a request of this credential, Cloudflare's way: past the limit, every request
    /// of the credential is refused for one whole window.
    pub fn check(&mut self, credential: u64) -> RateVerdict {
        let now = Instant::now();
        let secs = |d: StdDuration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
        if let Some(until) = self.blocked.get(&credential).copied() {
            if now < until {
                return RateVerdict {
                    allowed: false,
                    remaining: 0,
                    reset_secs: secs(until - now),
                };
            }
            self.blocked.remove(&credential);
            self.hits.remove(&credential);
        }
        let q = self.hits.entry(credential).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.limit {
            self.blocked.insert(credential, now + self.window);
            return RateVerdict {
                allowed: false,
                remaining: 0,
                reset_secs: secs(self.window),
            };
        }
        q.push_back(now);
        let reset = q
            .front()
            .map(|t| self.window.saturating_sub(now.duration_since(*t)))
            .unwrap_or(self.window);
        RateVerdict {
            allowed: true,
            remaining: self.limit - q.len(),
            reset_secs: secs(reset),
        }
    }
}

/// Everything the simulator knows.
pub struct SimState {
    /// User-owned tokens, per user (one user unless `--users`).
    pub users: Vec<TokenStore>,
    /// The users who are members of each account (every account has at least one).
    pub members: HashMap<String, Vec<usize>>,
    /// Each user's admin token secret (the first of their tokens).
    pub admin_secrets: Vec<String>,
    /// Accounts.
    pub accounts: OrderedStore<Account>,
    /// Account-owned tokens per account id.
    pub account_tokens: HashMap<String, TokenStore>,
    /// Account-level service tokens per account id.
    pub account_services: HashMap<String, OrderedStore<ServiceToken>>,
    /// Zone-level service tokens per zone id.
    pub zone_services: HashMap<String, OrderedStore<ServiceToken>>,
    /// Zone id to owning account id.
    pub zone_account: HashMap<String, String>,
    /// API token secret to (owner, token id).
    pub secrets: HashMap<String, (Owner, String)>,
    /// Global-key email.
    pub email: String,
    /// Global key.
    pub api_key: String,
    /// The admin token's secret, printed at start.
    pub admin_secret: String,
    /// Id and secret generator.
    pub ids: IdGen,
    /// Faults in force.
    pub faults: FaultState,
    /// Emulated rate limit.
    pub rate: RateLimit,
    /// Requests received.
    pub log: RequestLog,
    /// Base latency added to every request, in ms.
    pub latency_ms: u64,
    /// Whether list responses carry `total_count` / `total_pages`.
    pub list_totals: bool,
    /// List endpoints ignore `page` (a broken server, for client tests).
    pub paging_ignored: bool,
    /// Shift of the simulator's clock (tests move time forward).
    pub clock_offset: Duration,
    /// Audit Logs v2 entries of every account.
    pub audit: AuditLog,
    /// The objects of the tables served generically (certificates, tunnels).
    pub generic: GenericStore,
}

impl SimState {
    /// A world holding the seed data.
    pub fn new(seed: SeedData, faults: FaultSpec, rate: RateLimit, latency_ms: u64) -> Self {
        let SeedData {
            user_tokens,
            members,
            accounts,
            zone_service_tokens,
            email,
            api_key,
            ids,
        } = seed;
        let mut secrets = HashMap::new();
        let admin_secrets: Vec<String> = user_tokens
            .iter()
            .map(|ts| ts.first().map(|t| t.secret.clone()).unwrap_or_default())
            .collect();
        let admin_secret = admin_secrets.first().cloned().unwrap_or_default();
        let users: Vec<TokenStore> = user_tokens
            .into_iter()
            .enumerate()
            .map(|(u, ts)| token_store(ts, Owner::User(u), &mut secrets))
            .collect();
        let mut acc_store = OrderedStore::default();
        let mut account_tokens = HashMap::new();
        let mut account_services = HashMap::new();
        let mut zone_account = HashMap::new();
        for (a, toks, svcs) in accounts {
            let ts = token_store(toks, Owner::Account(a.id.clone()), &mut secrets);
            let ss = OrderedStore::of(svcs, |s| s.id.clone());
            for z in &a.zones {
                zone_account.insert(z.clone(), a.id.clone());
            }
            account_tokens.insert(a.id.clone(), ts);
            account_services.insert(a.id.clone(), ss);
            acc_store.insert(a.id.clone(), a);
        }
        let zone_services = zone_service_tokens
            .into_iter()
            .map(|(z, svcs)| (z, OrderedStore::of(svcs, |s| s.id.clone())))
            .collect();
        let mut st = Self {
            users,
            members,
            admin_secrets,
            accounts: acc_store,
            account_tokens,
            account_services,
            zone_services,
            zone_account,
            secrets,
            email,
            api_key,
            admin_secret,
            ids,
            faults: FaultState::new(faults),
            rate,
            log: RequestLog::default(),
            latency_ms,
            list_totals: true,
            paging_ignored: false,
            clock_offset: Duration::zero(),
            audit: AuditLog::default(),
            generic: GenericStore::default(),
        };
        st.generic = GenericStore::seeded(&st.accounts.values().collect::<Vec<_>>());
        st.seed_audit_history();
        st
    }

    /// Who a caller is, as the audit log names them.
    fn actor(&self, c: &Caller) -> Actor {
        let named = |store: Option<&TokenStore>, id: &str| {
            store.and_then(|s| s.tokens.get(id)).map(|t| t.name.clone())
        };
        let (token_id, token_name, kind) = match c {
            Caller::GlobalKey => (None, None, "user"),
            Caller::UserToken(u, id) => (Some(id.clone()), named(self.users.get(*u), id), "user"),
            Caller::AccountToken(a, id) => (
                Some(id.clone()),
                named(self.account_tokens.get(a), id),
                "account",
            ),
        };
        Actor {
            context: if token_id.is_some() {
                "api_token"
            } else {
                "api_key"
            },
            token_id,
            token_name,
            kind,
            email: self.email.clone(),
        }
    }

    /// Records an answered call in its account's audit log, when it acted on an account
    /// (`/accounts/{id}/...`) or one of its zones; calls on the user, the account list
    /// and the audit log itself are not account actions and are not recorded.
    pub fn record_call(&mut self, c: &Caller, method: &str, path: &str, route: &str, status: u16) {
        let now = self.now();
        self.record_call_at(c, (method, path, route, status), now);
    }

    /// [`SimState::record_call`] at a given time (seeded history, tests).
    pub fn record_call_at(
        &mut self,
        c: &Caller,
        (method, path, route, status): (&str, &str, &str, u16),
        time: DateTime<Utc>,
    ) {
        if route.ends_with("/logs/audit") {
            return;
        }
        let segment = path.split('/').nth(2).unwrap_or_default().to_string();
        let (account, zone) = if route.starts_with("/accounts/{account_id}") {
            (segment, None)
        } else if route.starts_with("/zones/{zone_id}") {
            match self.zone_account.get(&segment) {
                Some(a) => (a.clone(), Some(segment)),
                None => return,
            }
        } else {
            return;
        };
        let Some(acc) = self.accounts.get(&account) else {
            return;
        };
        let name = acc.name.clone();
        let zone_name = zone.as_ref().and_then(|z| {
            let i = acc.zones.iter().position(|x| x == z)?;
            acc.zone_json(i)?["name"].as_str().map(str::to_string)
        });
        let actor = self.actor(c);
        let call = Call {
            method,
            path,
            route,
            status,
            time,
        };
        let zone = zone.as_deref().zip(zone_name.as_deref());
        self.audit
            .record(&mut self.ids, (&account, &name), zone, &actor, &call);
    }

    /// A month of history so that granted-versus-used has something to find: of each
    /// account's tokens, every third updated service tokens a few days ago, every third
    /// only read them, and the rest made no call at all.
    fn seed_audit_history(&mut self) {
        let now = self.now();
        let accounts: Vec<String> = self.accounts.ids().to_vec();
        for account in accounts {
            let tokens: Vec<String> = self
                .account_tokens
                .get(&account)
                .map(|s| s.tokens.ids().to_vec())
                .unwrap_or_default();
            for (i, token) in tokens.iter().enumerate() {
                let caller = Caller::AccountToken(account.clone(), token.clone());
                let calls: &[&str] = match i % 3 {
                    0 => &["GET", "GET", "PUT"],
                    1 => &["GET", "GET"],
                    _ => &[],
                };
                for (k, m) in calls.iter().enumerate() {
                    let when = now - Duration::days(1 + i as i64) + Duration::minutes(k as i64);
                    let route = "/accounts/{account_id}/access/service_tokens/{service_token_id}";
                    let path = format!(
                        "/accounts/{account}/access/service_tokens/{}",
                        self.ids.uuid()
                    );
                    self.record_call_at(&caller, (m, &path, route, 200), when);
                }
            }
        }
    }

    /// The user a caller acts as (`None` for an account-owned token).
    pub fn user_of(c: &Caller) -> Option<usize> {
        match c {
            Caller::GlobalKey => Some(0),
            Caller::UserToken(u, _) => Some(*u),
            Caller::AccountToken(..) => None,
        }
    }

    /// Whether `c` may see account `a`: a member user, or a token the account owns.
    pub fn sees_account(&self, c: &Caller, a: &str) -> bool {
        match (c, Self::user_of(c)) {
            (Caller::AccountToken(own, _), _) => own == a,
            (_, Some(u)) => self.members.get(a).is_some_and(|m| m.contains(&u)),
            _ => false,
        }
    }

    /// The simulator's current time.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// The token store of an owner, if the owner exists.
    pub fn tokens_of(&mut self, owner: &Owner) -> Option<&mut TokenStore> {
        match owner {
            Owner::User(u) => self.users.get_mut(*u),
            Owner::Account(a) => self.account_tokens.get_mut(a),
        }
    }

    /// Authenticates a bearer token, touching its `last_used_on`.
    /// `Err((status, code, message))` when it does not authenticate.
    pub fn authenticate_bearer(
        &mut self,
        secret: &str,
    ) -> Result<Caller, (u16, u32, &'static str)> {
        let now = self.now();
        let invalid = (401, 1000, "Invalid API Token");
        let (owner, id) = self.secrets.get(secret).cloned().ok_or(invalid)?;
        let store = self.tokens_of(&owner).ok_or(invalid)?;
        let tok = store.tokens.get_mut_untracked(&id).ok_or(invalid)?;
        if !tok.usable_at(now) {
            return Err(invalid);
        }
        tok.last_used_on = Some(now);
        Ok(match owner {
            Owner::User(u) => Caller::UserToken(u, id),
            Owner::Account(a) => Caller::AccountToken(a, id),
        })
    }

    /// Authenticates the global key.
    pub fn authenticate_key(
        &self,
        email: &str,
        key: &str,
    ) -> Result<Caller, (u16, u32, &'static str)> {
        if email.eq_ignore_ascii_case(&self.email) && key == self.api_key {
            Ok(Caller::GlobalKey)
        } else {
            Err((403, 9103, "Unknown X-Auth-Key or X-Auth-Email"))
        }
    }
}

/// A stable fingerprint of a credential, so the rate limiter never stores the credential.
pub fn fingerprint(parts: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// The tokens of one owner, each secret noted as authenticating as its token.
fn token_store(
    tokens: Vec<super::model::Token>,
    owner: Owner,
    secrets: &mut HashMap<String, (Owner, String)>,
) -> TokenStore {
    let mut store = TokenStore::default();
    for t in tokens {
        secrets.insert(t.secret.clone(), (owner.clone(), t.id.clone()));
        store.tokens.insert(t.id.clone(), t);
    }
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_entries_and_exact_counts() {
        let mut log = RequestLog::default();
        for i in 0..LOG_CAPACITY + 50 {
            log.count("GET", "/user/tokens");
            let seq = log.push(RecordedRequest::new(
                "GET",
                "/user/tokens",
                "/user/tokens",
                "",
                &[b'x'; 5000],
                AuthKind::Bearer,
            ));
            log.answer(seq, Some(200 + (i % 2) as u16), false);
        }
        assert_eq!(log.requests.len(), LOG_CAPACITY);
        assert_eq!(log.total, (LOG_CAPACITY + 50) as u64);
        assert_eq!(
            log.counts[&("GET".to_string(), "/user/tokens".to_string())],
            (LOG_CAPACITY + 50) as u64
        );
        assert_eq!(log.requests.front().unwrap().seq, 51);
        assert!(
            log.requests
                .iter()
                .all(|r| r.status.is_some() && r.body.ends_with("...(5000 bytes)"))
        );
    }
}
