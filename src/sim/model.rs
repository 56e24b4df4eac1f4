//! The simulator's objects (tokens, service tokens, accounts, permission groups) and their JSON shapes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// Formats a timestamp the way Cloudflare does (`2018-07-01T05:20:00Z`), keeping
/// fractional seconds only when the value has them.
pub fn ts(t: &DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// Who owns an API token: the user, or an account (account-owned tokens).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A token under `/user/tokens` of user `n` (0 is the first; `--users` adds more).
    User(usize),
    /// A token under `/accounts/{account_id}/tokens`.
    Account(String),
}

/// The stored status of an API token; `expired` is derived from `expires_on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredStatus {
    /// Usable.
    Active,
    /// Switched off by its owner.
    Disabled,
}

/// An API token (user- or account-owned) as the simulator keeps it.
#[derive(Clone)]
pub struct Token {
    /// 32 hex characters.
    pub id: String,
    /// Display name, at most 120 characters.
    pub name: String,
    /// Active or disabled; expiry is computed from `expires_on`.
    pub status: StoredStatus,
    /// Creation time.
    pub issued_on: DateTime<Utc>,
    /// Last update, roll or status change.
    pub modified_on: DateTime<Utc>,
    /// Last time the token authenticated a request.
    pub last_used_on: Option<DateTime<Utc>>,
    /// Not valid before this time.
    pub not_before: Option<DateTime<Utc>>,
    /// Not valid on or after this time.
    pub expires_on: Option<DateTime<Utc>>,
    /// Access policies, as JSON.
    pub policies: Value,
    /// Optional `{"request_ip": {...}}` condition, as JSON (kept as sent).
    pub condition: Option<Value>,
    /// The secret value; only ever shown by create and roll.
    pub secret: String,
    /// Email of the creator (2026 field).
    pub creator_email: Option<String>,
}

impl Token {
    /// Status as the API reports it at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> &'static str {
        if self.is_expired(now) {
            "expired"
        } else if self.status == StoredStatus::Disabled {
            "disabled"
        } else {
            "active"
        }
    }

    /// Whether `expires_on` has passed.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_on.is_some_and(|e| e <= now)
    }

    /// Whether the token may authenticate a request at `now`.
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.status == StoredStatus::Active
            && !self.is_expired(now)
            && self.not_before.is_none_or(|nb| nb <= now)
    }

    /// The token's JSON, without its secret.
    pub fn to_json(&self, now: DateTime<Utc>) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("status".into(), json!(self.status_at(now)));
        m.insert("issued_on".into(), json!(ts(&self.issued_on)));
        m.insert("modified_on".into(), json!(ts(&self.modified_on)));
        if let Some(t) = &self.last_used_on {
            m.insert("last_used_on".into(), json!(ts(t)));
        }
        if let Some(t) = &self.not_before {
            m.insert("not_before".into(), json!(ts(t)));
        }
        if let Some(t) = &self.expires_on {
            m.insert("expires_on".into(), json!(ts(t)));
        }
        m.insert("policies".into(), self.policies.clone());
        if let Some(c) = &self.condition {
            m.insert("condition".into(), c.clone());
        }
        if let Some(e) = &self.creator_email {
            m.insert("creator_email_at_creation".into(), json!(e));
        }
        Value::Object(m)
    }
}

/// An Access service token.
#[derive(Clone)]
pub struct ServiceToken {
    /// UUID.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `<32 hex>.access`.
    pub client_id: String,
    /// Current secret; shown only by create and rotate.
    pub client_secret: String,
    /// The secret before the last rotation and until when it still works.
    pub previous_secret: Option<(String, DateTime<Utc>)>,
    /// Go-style duration (`8760h`) or `forever`.
    pub duration: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Expiry; `None` for `forever`.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last time the token authenticated to an Access application.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Disabled tokens keep existing but stop authenticating.
    pub enabled: bool,
}

impl ServiceToken {
    /// The service token's JSON, without its secret.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("client_id".into(), json!(self.client_id));
        m.insert("duration".into(), json!(self.duration));
        m.insert("created_at".into(), json!(ts(&self.created_at)));
        m.insert("updated_at".into(), json!(ts(&self.updated_at)));
        if let Some(t) = &self.expires_at {
            m.insert("expires_at".into(), json!(ts(t)));
        }
        if let Some(t) = &self.last_seen_at {
            m.insert("last_seen_at".into(), json!(ts(t)));
        }
        m.insert("enabled".into(), json!(self.enabled));
        Value::Object(m)
    }

    /// The JSON of create and rotate: the token plus its `client_secret`.
    pub fn to_json_with_secret(&self) -> Value {
        let mut v = self.to_json();
        v["client_secret"] = json!(self.client_secret);
        v
    }
}

/// An account the user can list.
#[derive(Clone)]
pub struct Account {
    /// 32 hex characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `standard` or `enterprise`.
    pub kind: &'static str,
    /// Creation time.
    pub created_on: DateTime<Utc>,
    /// Whether members need 2FA.
    pub enforce_twofactor: bool,
    /// Zones of the account (ids), for zone-level service tokens.
    pub zones: Vec<String>,
}

impl Account {
    /// The JSON of the account's zone `i` (of [`Account::zones`]): its name is made
    /// from the account's (`acme-account-1-2.example`), its times from the account's.
    pub fn zone_json(&self, i: usize) -> Option<Value> {
        let id = self.zones.get(i)?;
        let slug: String = self
            .name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let created = self.created_on + chrono::Duration::days(1 + i as i64);
        let at = created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        Some(json!({
            "id": id,
            "name": format!("{slug}-{}.example", i + 1),
            "status": "active",
            "paused": false,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": null,
            "original_registrar": null,
            "original_dnshost": null,
            "created_on": at,
            "modified_on": at,
            "activated_on": at,
            "account": {"id": self.id, "name": self.name},
            "owner": {"id": null, "type": "organization", "email": null},
            "permissions": ["#zone:read"],
            "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "price": 0, "currency": "USD", "frequency": "", "is_subscribed": false, "can_subscribe": false, "legacy_id": "free", "legacy_discount": false, "externally_managed": false}
        }))
    }

    /// The account's JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "created_on": ts(&self.created_on),
            "settings": {"enforce_twofactor": self.enforce_twofactor, "abuse_contact_email": null},
        })
    }
}

/// A permission group (same catalogue for the user and every account).
#[derive(Clone)]
pub struct PermissionGroup {
    /// 32 hex characters.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// One of the 13 categories.
    pub category: &'static str,
    /// Scopes the group applies to.
    pub scopes: &'static [&'static str],
}

impl PermissionGroup {
    /// The group's JSON.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "name": self.name, "category": self.category, "scopes": self.scopes, "is_selectable": true})
    }
}

const ACCT: &[&str] = &["com.cloudflare.api.account"];
const ZONE: &[&str] = &["com.cloudflare.api.account.zone"];
const USER: &[&str] = &["com.cloudflare.api.user"];

/// The fixed permission-group catalogue.
pub const PERMISSION_GROUPS: &[PermissionGroup] = &[
    PermissionGroup {
        id: "c8fed203ed3043cba015a93ad1616f1f",
        name: "Zone Read",
        category: "dns_and_zones",
        scopes: ZONE,
    },
    PermissionGroup {
        id: "e6d2666161e84845a636613608cee8d5",
        name: "Zone Write",
        category: "dns_and_zones",
        scopes: ZONE,
    },
    PermissionGroup {
        id: "82e64a83756745bbbb1c9c2701bf816b",
        name: "DNS Read",
        category: "dns_and_zones",
        scopes: ZONE,
    },
    PermissionGroup {
        id: "4755a26eedb94da69e1066d98aa820be",
        name: "DNS Write",
        category: "dns_and_zones",
        scopes: ZONE,
    },
    PermissionGroup {
        id: "7cf72faf220841aabcfdfab81c43c4f6",
        name: "Billing Read",
        category: "account_and_billing",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "9d24387c6e8544e2bc4024a03991339f",
        name: "Load Balancing: Monitors and Pools Read",
        category: "network_services",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "d2a1802cc9a34e30852f8b33869b2f3c",
        name: "Load Balancing: Monitors and Pools Write",
        category: "network_services",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "c1fde68c7bcc44588cbb6ddbc16d6480",
        name: "Account Settings Read",
        category: "account_and_billing",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "1af1fa2adc104452b74a9a3364202f20",
        name: "Account Settings Write",
        category: "account_and_billing",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "5bc3f8b21c554832afc660159ab75fa4",
        name: "API Tokens Read",
        category: "account_and_billing",
        scopes: USER,
    },
    PermissionGroup {
        id: "686d18d5ac6c441c867cbf6771e58a0a",
        name: "API Tokens Write",
        category: "account_and_billing",
        scopes: USER,
    },
    PermissionGroup {
        id: "7ea222f6d5064cfa89ea366d7c1fee89",
        name: "Access: Service Tokens Read",
        category: "cloudflare_one_and_zero_trust",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "a1c0fec57cf94af79479a6d827fa518c",
        name: "Access: Service Tokens Write",
        category: "cloudflare_one_and_zero_trust",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "e086da7e2179491d91ee5f35b3ca210a",
        name: "Workers Scripts Write",
        category: "developer_platform",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "1a71c399035b4950a1bd1466bbe4f420",
        name: "Workers Scripts Read",
        category: "developer_platform",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "b89a480218d04ceb98b4fe57ca29dc1f",
        name: "Analytics Read",
        category: "analytics_and_logs",
        scopes: ZONE,
    },
    PermissionGroup {
        id: "3030687196b94b638145a3953da2b699",
        name: "Cache Purge",
        category: "cache_and_performance",
        scopes: ZONE,
    },
    PermissionGroup {
        id: "ed07f6c337da4195b4e72a1fb2c6bcae",
        name: "Page Rules Write",
        category: "rules_and_configuration",
        scopes: ZONE,
    },
    PermissionGroup {
        id: "fb6778dc191143babbfaa57993f1d275",
        name: "Zone WAF Write",
        category: "app_security",
        scopes: ZONE,
    },
    PermissionGroup {
        id: "bf7481a1826f439697cb59a20b22293e",
        name: "Workers AI Read",
        category: "ai_and_machine_learning",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "6c80e02421494afc9ae14414ed442632",
        name: "Stream Write",
        category: "media",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "755c05aa014b4f9ab263aa80b8167bd8",
        name: "Email Routing Rules Write",
        category: "email_and_messaging",
        scopes: ZONE,
    },
    PermissionGroup {
        id: "3b94c49258ec4573b06d51d99b6416c0",
        name: "Magic Transit Read",
        category: "network_services",
        scopes: ACCT,
    },
    PermissionGroup {
        id: "de7a688cc47d43bd9ea700b467a09c96",
        name: "Logs Read",
        category: "other",
        scopes: ACCT,
    },
];

const R2_BUCKET: &[&str] = &["com.cloudflare.edge.r2.bucket"];

/// R2's permission groups: listed with the others, never drawn at random for seeded
/// tokens (that would change the sample data); the seed grants them to two named token
/// families (see `seed.rs`, `r2_policy`).
pub const R2_PERMISSION_GROUPS: &[PermissionGroup] = &[
    PermissionGroup {
        id: "2efd5506f9c8494dacb1fa10a3e7d5b6",
        name: "Workers R2 Storage Bucket Item Write",
        category: "storage",
        scopes: R2_BUCKET,
    },
    PermissionGroup {
        id: "b4992e1108244f5d8bfbd5744320c2e1",
        name: "Workers R2 Storage Write",
        category: "storage",
        scopes: ACCT,
    },
];

/// Every permission group the API lists.
pub fn all_permission_groups() -> impl Iterator<Item = &'static PermissionGroup> {
    PERMISSION_GROUPS.iter().chain(R2_PERMISSION_GROUPS)
}
