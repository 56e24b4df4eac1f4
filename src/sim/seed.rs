//! Deterministic sample data: the same seed gives the same accounts, tokens and secrets.

use chrono::{DateTime, Duration, DurationRound, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::model::{
    Account, PERMISSION_GROUPS, R2_PERMISSION_GROUPS, ServiceToken, StoredStatus, Token,
};

/// How much sample data to make, and from which seed.
#[derive(Clone, Debug)]
pub struct SeedOptions {
    /// RNG seed; the same seed gives the same data (times are relative to the hour the simulator starts).
    pub seed: u64,
    /// User-owned API tokens, the admin token included.
    pub tokens: usize,
    /// Accounts.
    pub accounts: usize,
    /// Account-owned API tokens per account.
    pub account_tokens: usize,
    /// Access service tokens per account (each zone gets a further one or two).
    pub service_tokens: usize,
    /// Users, each with their own credential and `tokens` user tokens. Account `i`
    /// belongs to user `i % users`, and the first account is shared with the second user
    /// (so that one account is seen through two credentials).
    pub users: usize,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            tokens: 25,
            accounts: 3,
            account_tokens: 5,
            service_tokens: 8,
            users: 1,
        }
    }
}

/// Random identifiers and secrets in Cloudflare's formats.
pub struct IdGen {
    rng: ChaCha8Rng,
}

impl IdGen {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The underlying RNG.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// `n` lowercase hex characters.
    pub fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..n)
            .map(|_| HEX[self.rng.random_range(0..16)] as char)
            .collect()
    }

    /// A 32-hex-character Cloudflare identifier.
    pub fn id32(&mut self) -> String {
        self.hex(32)
    }

    /// A version-4 UUID.
    pub fn uuid(&mut self) -> String {
        let h = self.hex(32);
        let variant = ["8", "9", "a", "b"][self.rng.random_range(0..4)];
        format!(
            "{}-{}-4{}-{}{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            variant,
            &h[17..20],
            &h[20..32]
        )
    }

    /// A 40-character API token secret.
    pub fn token_secret(&mut self) -> String {
        const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
        (0..40)
            .map(|_| ALPHA[self.rng.random_range(0..ALPHA.len())] as char)
            .collect()
    }
}

/// Everything the simulator starts with.
pub struct SeedData {
    /// User-owned tokens of each user; the first of each is that user's admin token.
    pub user_tokens: Vec<Vec<Token>>,
    /// The users who are members of each account.
    pub members: std::collections::HashMap<String, Vec<usize>>,
    /// Accounts, with account-owned tokens and service tokens.
    pub accounts: Vec<(Account, Vec<Token>, Vec<ServiceToken>)>,
    /// Zone-level service tokens: (zone id, tokens).
    pub zone_service_tokens: Vec<(String, Vec<ServiceToken>)>,
    /// The user's email for the global key.
    pub email: String,
    /// The global API key.
    pub api_key: String,
    /// Ids generator, carried on for objects created later.
    pub ids: IdGen,
}

const NAMES: &[&str] = &[
    "terraform",
    "ci-deploy",
    "dns-updater",
    "grafana-exporter",
    "wrangler",
    "backup-job",
    "cert-manager",
    "external-dns",
    "logpush",
    "status-page",
    "pagerduty-hook",
    "analytics-ro",
    "cache-purge",
    "waf-tuning",
    "billing-report",
    "legacy-script",
];

/// Builds the sample data for `opts`, with times relative to `now` rounded down to the hour.
pub fn generate(opts: &SeedOptions, now: DateTime<Utc>) -> SeedData {
    let anchor = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let mut ids = IdGen::new(opts.seed);
    let email = "admin@cfql-sim.example".to_string();
    let api_key = ids.hex(37);

    let mut accounts = Vec::new();
    let mut zone_service_tokens = Vec::new();
    for a in 0..opts.accounts {
        let account_id = ids.id32();
        let zones: Vec<String> = (0..2).map(|_| ids.id32()).collect();
        let account = sample_account(a, account_id.clone(), zones.clone(), anchor);
        let toks = (0..opts.account_tokens)
            .map(|i| sample_token(&mut ids, anchor, i, Some(&account_id), &zones))
            .collect();
        let svc = (0..opts.service_tokens)
            .map(|i| sample_service_token(&mut ids, anchor, i))
            .collect();
        for (z, zone) in zones.iter().enumerate() {
            let n = 1 + z;
            let mut zt: Vec<ServiceToken> = (0..n)
                .map(|i| sample_service_token(&mut ids, anchor, i + 100))
                .collect();
            // Zone-level tokens may never expire (`forever`): the first account always has
            // one, so the demo shows the case whatever the draws.
            if a == 0 && z == 1 {
                zt[1].duration = "forever".into();
                zt[1].expires_at = None;
            }
            zone_service_tokens.push((zone.clone(), zt));
        }
        accounts.push((account, toks, svc));
    }

    let first_zones: Vec<String> = accounts
        .first()
        .map(|a| a.0.zones.clone())
        .unwrap_or_default();
    let users = opts.users.max(1);
    let mut user_tokens = Vec::with_capacity(users);
    for u in 0..users {
        let mut tokens = Vec::with_capacity(opts.tokens);
        for i in 0..opts.tokens {
            let mut t = sample_token(&mut ids, anchor, i, None, &first_zones);
            if i == 0 {
                make_admin(&mut t, &mut ids);
                if u > 0 {
                    t.name = format!("cfql-sim admin (user {})", u + 1);
                }
            }
            tokens.push(t);
        }
        user_tokens.push(tokens);
    }
    let mut members = std::collections::HashMap::new();
    for (i, (a, _, _)) in accounts.iter().enumerate() {
        let mut m = vec![i % users];
        if i == 0 && users > 1 {
            m.push(1);
        }
        members.insert(a.id.clone(), m);
    }
    SeedData {
        user_tokens,
        members,
        accounts,
        zone_service_tokens,
        email,
        api_key,
        ids,
    }
}

/// Account `a` of the sample: names, kinds and ages vary with its number.
fn sample_account(a: usize, id: String, zones: Vec<String>, anchor: DateTime<Utc>) -> Account {
    Account {
        id,
        name: format!(
            "{} Account {}",
            ["Acme", "Globex", "Initech", "Umbrella", "Hooli"][a % 5],
            a + 1
        ),
        kind: if a % 3 == 2 { "enterprise" } else { "standard" },
        created_on: anchor - Duration::days(400 + 37 * a as i64),
        enforce_twofactor: a.is_multiple_of(2),
        zones,
    }
}

/// The first user token is the simulator's admin credential: active, never expiring,
/// allowed to manage tokens and service tokens everywhere.
fn make_admin(t: &mut Token, ids: &mut IdGen) {
    t.name = "cfql-sim admin".into();
    t.status = StoredStatus::Active;
    t.expires_on = None;
    t.not_before = None;
    t.condition = None;
    t.policies = json!([{
        "id": ids.id32(),
        "effect": "allow",
        "resources": {"com.cloudflare.api.user.*": "*", "com.cloudflare.api.account.*": "*"},
        "permission_groups": [
            {"id": "686d18d5ac6c441c867cbf6771e58a0a", "name": "API Tokens Write"},
            {"id": "a1c0fec57cf94af79479a6d827fa518c", "name": "Access: Service Tokens Write"}
        ]
    }]);
}

fn pick_groups(ids: &mut IdGen, n: usize) -> Value {
    let mut out = Vec::new();
    for _ in 0..n {
        let g = &PERMISSION_GROUPS[ids.rng().random_range(0..PERMISSION_GROUPS.len())];
        out.push(json!({"id": g.id, "name": g.name}));
    }
    Value::Array(out)
}

/// One sample API token: the mix covers active, disabled, expired, expiring in
/// 7 and 30 days, never used, stale, IP-restricted (both spellings), broad and narrow.
fn sample_token(
    ids: &mut IdGen,
    anchor: DateTime<Utc>,
    i: usize,
    account: Option<&str>,
    zones: &[String],
) -> Token {
    let id = ids.id32();
    let secret = ids.token_secret();
    let base = NAMES[i % NAMES.len()];
    let name = if i < NAMES.len() {
        base.to_string()
    } else {
        format!("{base}-{i}")
    };
    // The order of the draws below is the sample data: keep it.
    let (r, issued_on, expires_on) = sample_lifetime(ids, anchor, i);
    let status = if ids.rng().random_range(0..100) < 12 {
        StoredStatus::Disabled
    } else {
        StoredStatus::Active
    };
    let last_used_on = sample_last_use(ids, anchor).map(|t| t.max(issued_on));
    let condition = sample_condition(ids);
    let mut policies = sample_policies(ids, account, zones);
    if let (Some(r2), Value::Array(list)) = (r2_policy(base, &id, account), &mut policies) {
        list.push(r2);
    }
    let fractional = if ids.rng().random_range(0..100) < 20 {
        Duration::microseconds(123_456)
    } else {
        Duration::zero()
    };
    Token {
        id,
        name,
        status,
        issued_on: issued_on + fractional,
        modified_on: issued_on + Duration::days(ids.rng().random_range(0..20)),
        last_used_on,
        not_before: if r.is_multiple_of(7) {
            Some(issued_on)
        } else {
            None
        },
        expires_on,
        policies,
        condition,
        secret,
        creator_email: Some("admin@cfql-sim.example".into()),
    }
}

/// A token's draw, issue time and expiry: a tenth expired, a tenth within 7 days, a tenth
/// within 30, a third later, the rest never.
fn sample_lifetime(
    ids: &mut IdGen,
    anchor: DateTime<Utc>,
    i: usize,
) -> (u32, DateTime<Utc>, Option<DateTime<Utc>>) {
    let r: u32 = ids.rng().random_range(0..100);
    let issued_on = anchor
        - Duration::days(ids.rng().random_range(30..900))
        - Duration::minutes(i as i64 % 1440);
    let expires_on = match r {
        0..=9 => Some(anchor - Duration::days(ids.rng().random_range(1..200))),
        10..=19 => Some(anchor + Duration::hours(ids.rng().random_range(2..160))),
        20..=29 => Some(anchor + Duration::days(ids.rng().random_range(8..29))),
        30..=64 => Some(anchor + Duration::days(ids.rng().random_range(60..700))),
        _ => None,
    };
    (r, issued_on, expires_on)
}

/// A token's last use: a fifth never, a fifth stale (over 90 days), the rest recent.
fn sample_last_use(ids: &mut IdGen, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match ids.rng().random_range(0..100u32) {
        0..=19 => None,
        20..=39 => Some(anchor - Duration::days(ids.rng().random_range(91..500))),
        _ => Some(anchor - Duration::minutes(ids.rng().random_range(1..60 * 24 * 60))),
    }
}

/// A token's IP condition: a quarter restricted (some with the old `request.ip` key).
fn sample_condition(ids: &mut IdGen) -> Option<Value> {
    match ids.rng().random_range(0..100u32) {
        0..=24 => Some(
            json!({"request_ip": {"in": ["192.0.2.0/24", "2001:db8::/32"], "not_in": ["192.0.2.77/32"]}}),
        ),
        25..=29 => Some(json!({"request.ip": {"in": ["198.51.100.0/24"]}})),
        _ => None,
    }
}

/// R2 for two named families, drawn from no random number (the sample data stays as it
/// was): `logpush` account tokens write the objects of one bucket of their account; `backup-job` tokens write R2
/// in a whole account (or every account, for a user token), the unscoped kind an audit
/// looks for.
fn r2_policy(base: &str, token_id: &str, account: Option<&str>) -> Option<Value> {
    let id: String = token_id.chars().rev().collect();
    let (resource, group) = match base {
        "logpush" => (
            format!("com.cloudflare.edge.r2.bucket.{}_default_logpush", account?),
            &R2_PERMISSION_GROUPS[0],
        ),
        "backup-job" => (
            match account {
                Some(a) => format!("com.cloudflare.api.account.{a}"),
                None => "com.cloudflare.api.account.*".to_string(),
            },
            &R2_PERMISSION_GROUPS[1],
        ),
        _ => return None,
    };
    Some(
        json!({"id": id, "effect": "allow", "resources": {resource: "*"},
        "permission_groups": [{"id": group.id, "name": group.name}]}),
    )
}

/// A token's policies: an allow over broad or narrow resources, sometimes a deny too.
fn sample_policies(ids: &mut IdGen, account: Option<&str>, zones: &[String]) -> Value {
    let p: u32 = ids.rng().random_range(0..100);
    let resources = match (p, account) {
        (0..=29, None) => json!({"com.cloudflare.api.account.*": "*"}),
        (0..=29, Some(a)) => json!({format!("com.cloudflare.api.account.{a}"): "*"}),
        (30..=44, _) => json!({"com.cloudflare.api.account.zone.*": "*"}),
        (45..=59, _) if !zones.is_empty() => {
            let acct = account.map(str::to_string).unwrap_or_else(|| "*".into());
            json!({format!("com.cloudflare.api.account.{acct}"): {format!("com.cloudflare.api.account.zone.{}", zones[1 % zones.len()]): "*"}})
        }
        _ if !zones.is_empty() => {
            json!({format!("com.cloudflare.api.account.zone.{}", zones[0]): "*"})
        }
        _ => json!({"com.cloudflare.api.user.*": "*"}),
    };
    let n_groups = ids.rng().random_range(1..=3);
    let groups = pick_groups(ids, n_groups);
    let mut policies = vec![
        json!({"id": ids.id32(), "effect": "allow", "resources": resources, "permission_groups": groups}),
    ];
    if ids.rng().random_range(0..100) < 10 {
        let deny_groups = pick_groups(ids, 1);
        policies.push(json!({"id": ids.id32(), "effect": "deny", "resources": {"com.cloudflare.api.account.zone.*": "*"}, "permission_groups": deny_groups}));
    }
    Value::Array(policies)
}

fn sample_service_token(ids: &mut IdGen, anchor: DateTime<Utc>, i: usize) -> ServiceToken {
    let id = ids.uuid();
    let client_id = format!("{}.access", ids.id32());
    let client_secret = ids.hex(64);
    let created_at = anchor - Duration::days(ids.rng().random_range(10..700));
    let r: u32 = ids.rng().random_range(0..100);
    let (duration, expires_at) = match r {
        0..=14 => ("forever".to_string(), None),
        15..=29 => (
            "8760h".to_string(),
            Some(anchor + Duration::days(ids.rng().random_range(1..29))),
        ),
        30..=39 => (
            "8760h".to_string(),
            Some(anchor - Duration::days(ids.rng().random_range(1..60))),
        ),
        _ => (
            "8760h".to_string(),
            Some(anchor + Duration::days(ids.rng().random_range(30..365))),
        ),
    };
    let s: u32 = ids.rng().random_range(0..100);
    let last_seen_at = match s {
        0..=19 => None,
        20..=44 => Some(anchor - Duration::days(ids.rng().random_range(91..400))),
        _ => Some(anchor - Duration::hours(ids.rng().random_range(1..24 * 60))),
    };
    ServiceToken {
        id,
        name: format!(
            "{}-svc-{}",
            ["origin", "ci", "monitoring", "backup", "edge-worker"][i % 5],
            i + 1
        ),
        client_id,
        client_secret,
        previous_secret: None,
        duration,
        created_at,
        updated_at: created_at + Duration::days(1),
        expires_at,
        last_seen_at,
        enabled: ids.rng().random_range(0..100) >= 8,
    }
}
