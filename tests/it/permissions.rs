//! `cloudflare.audit.permissions`: what each token can do, flattened from its policies,
//! read through the simulator over loopback.

use crate::cli::{cfql, run};
use crate::common::*;

/// A user token with every resource form (a nested account map, one zone, a user, an R2
/// bucket) and a deny policy: each flattens to its own row, with the right type,
/// breadth, ids, scope and `applies`; `token_id = x` reads that token by id alone.
#[test]
fn every_resource_form_flattens_to_its_row_and_token_id_reads_one_token() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let account = sim.account_ids()[0].clone();
        let zone = sim.zone_ids()[0].clone();
        let user = "5f7a3c0e9b1d4e2f8a6c0b9d7e5f3a1c";
        let policies = serde_json::json!([
            {"effect": "allow",
             "permission_groups": [{"id": "4755a26eedb94da69e1066d98aa820be", "name": "DNS Write"}],
             "resources": {
                format!("com.cloudflare.api.account.{account}"): {"com.cloudflare.api.account.zone.*": "*"},
                format!("com.cloudflare.api.account.zone.{zone}"): "*",
                format!("com.cloudflare.api.user.{user}"): "*",
                format!("com.cloudflare.edge.r2.bucket.{account}_default_logs"): "*"
             }},
            {"effect": "deny",
             "permission_groups": [{"id": "7cf72faf220841aabcfdfab81c43c4f6", "name": "Billing Read"}],
             "resources": {"com.cloudflare.api.account.*": "*"}}
        ]);
        let b = s
            .sql(&format!(
                "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('perm-forms', '{policies}') RETURNING id"
            ))
            .await
            .unwrap();
        let id = strings(&b, "id")[0].clone();
        let b = s
            .sql(&format!(
                "SELECT name FROM cloudflare.accounts.accounts WHERE id = '{account}'"
            ))
            .await
            .unwrap();
        let account_name = strings(&b, "name")[0].clone();
        let b = s
            .sql(&format!(
                "SELECT name FROM cloudflare.zones.zones WHERE id = '{zone}'"
            ))
            .await
            .unwrap();
        let zone_name = strings(&b, "name")[0].clone();
        sim.reset_counts();
        let b = s
            .sql(&format!(
                "SELECT effect, permission_group_name, permission_scope, access, resource, \
                 resource_parent, resource_type, resource_breadth, account_id, zone_id, \
                 resource_name, applies FROM cloudflare.audit.permissions \
                 WHERE token_id = '{id}' ORDER BY effect, resource"
            ))
            .await
            .unwrap();
        let rows: Vec<String> = (0..rows(&b))
            .map(|i| {
                [
                    "effect",
                    "permission_group_name",
                    "permission_scope",
                    "access",
                    "resource",
                    "resource_parent",
                    "resource_type",
                    "resource_breadth",
                    "account_id",
                    "zone_id",
                    "resource_name",
                    "applies",
                ]
                .iter()
                .map(|c| col(&b, c)[i].clone().unwrap_or_else(|| "-".into()))
                .collect::<Vec<_>>()
                .join("|")
            })
            .collect();
        let zone_scope = "com.cloudflare.api.account.zone";
        assert_eq!(
            rows,
            [
                format!(
                    "allow|DNS Write|{zone_scope}|write|com.cloudflare.api.account.zone.*|com.cloudflare.api.account.{account}|zone|all_in_account|{account}|-|{account_name}|true"
                ),
                format!(
                    "allow|DNS Write|{zone_scope}|write|com.cloudflare.api.account.zone.{zone}|-|zone|one|-|{zone}|{zone_name}|true"
                ),
                format!(
                    "allow|DNS Write|{zone_scope}|write|com.cloudflare.api.user.{user}|-|user|one|-|-|-|false"
                ),
                format!(
                    "allow|DNS Write|{zone_scope}|write|com.cloudflare.edge.r2.bucket.{account}_default_logs|-|r2_bucket|one|{account}|-|{account_name}|false"
                ),
                "deny|Billing Read|com.cloudflare.api.account|read|com.cloudflare.api.account.*|-|account|all|-|-|-|true".to_string(),
            ]
        );
        // The token by id, never the listing; the account side asks each account for
        // that id; the scopes and account names are one listing each.
        assert_eq!(sim.count("GET", "/user/tokens/{token_id}"), 1);
        assert_eq!(sim.count("GET", "/user/tokens"), 0);
        assert_eq!(sim.count("GET", "/accounts/{account_id}/tokens"), 0);
        assert_eq!(
            sim.count("GET", "/accounts/{account_id}/tokens/{token_id}"),
            sim.account_ids().len() as u64
        );
        assert_eq!(sim.count("GET", "/user/tokens/permission_groups"), 1);
        assert_eq!(sim.count("GET", "/zones"), 1);
    })
}

/// The over-privilege question of the issue, on seeded data: the tokens it finds are
/// exactly those whose policies grant a write group on a wildcard resource, read from
/// the listings alone.
#[test]
fn write_access_on_everything_finds_exactly_the_wildcard_writers() {
    on_runtime(async {
        let sim = sim_with(40).await;
        let s = session(&sim).await;
        // A full scan reads the listings (tokens, accounts, permission groups once),
        // nothing per token.
        s.sql("SELECT * FROM cloudflare.audit.permissions")
            .await
            .unwrap();
        assert_eq!(sim.count("GET", "/user/tokens/{token_id}"), 0);
        assert_eq!(
            sim.count("GET", "/accounts/{account_id}/tokens/{token_id}"),
            0
        );
        assert_eq!(sim.count("GET", "/user/tokens/permission_groups"), 1);
        assert_eq!(
            sim.count("GET", "/accounts/{account_id}/tokens"),
            sim.account_ids().len() as u64
        );
        let b = s
            .sql(
                "SELECT DISTINCT token_id FROM cloudflare.audit.permissions \
                 WHERE access = 'write' AND resource_breadth = 'all' ORDER BY token_id",
            )
            .await
            .unwrap();
        let found = strings(&b, "token_id");
        // Read the policies themselves and decide by hand.
        let b = s
            .sql(
                "SELECT id, policies FROM cloudflare.user.tokens UNION ALL \
                 SELECT id, policies FROM cloudflare.accounts.tokens ORDER BY id",
            )
            .await
            .unwrap();
        let (ids, policies) = (strings(&b, "id"), strings(&b, "policies"));
        let wildcard = [
            "com.cloudflare.api.account.*",
            "com.cloudflare.api.account.zone.*",
            "com.cloudflare.api.user.*",
            "com.cloudflare.edge.r2.bucket.*",
        ];
        let mut expected: Vec<String> = ids
            .iter()
            .zip(&policies)
            .filter(|(_, p)| {
                let v: serde_json::Value = serde_json::from_str(p).unwrap();
                v.as_array().unwrap().iter().any(|policy| {
                    let writes = policy["permission_groups"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|g| {
                            let n = g["name"].as_str().unwrap();
                            n.ends_with(" Write") || n.ends_with(" Edit")
                        });
                    // A wildcard key granted outright, or every zone under every account.
                    let everything =
                        policy["resources"]
                            .as_object()
                            .unwrap()
                            .iter()
                            .any(|(k, v)| match v.as_object() {
                                None => wildcard.contains(&k.as_str()),
                                Some(inner) => {
                                    k == "com.cloudflare.api.account.*"
                                        && inner.contains_key("com.cloudflare.api.account.zone.*")
                                }
                            });
                    writes && everything
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        expected.sort();
        expected.dedup();
        assert!(!expected.is_empty());
        assert_eq!(found, expected);
    })
}

/// The two example audits run as `cfql check` controls on the demo and name the
/// tokens the seed made over-privileged.
#[test]
fn permission_audits_are_check_controls_on_the_demo() {
    let home = tempfile::tempdir().unwrap();
    for (file, expect) in [
        ("examples/overprivileged_tokens.sql", "Zone WAF Write"),
        ("examples/unscoped_r2_tokens.sql", "backup-job"),
    ] {
        let (code, out, err) =
            run(cfql(home.path()).args(["check", "--demo", "--format", "json", "-f", file]));
        assert_eq!(code, 3, "{file}: findings are an alarm: {err}");
        let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(v.len(), 1, "{out}");
        assert_eq!(v[0]["status"], "alarm", "{out}");
        assert!(out.contains(expect), "{file}: {out}");
    }
    let (code, out, err) = run(cfql(home.path()).args([
        "--demo",
        "--format",
        "csv",
        "-c",
        "SELECT DISTINCT token_name FROM cloudflare.audit.permissions WHERE permission_group_name LIKE '%R2%' AND resource_type = 'account'",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().skip(1).all(|l| l.starts_with("backup-job")),
        "{out}"
    );
}

/// DESCRIBE documents every column of the view, and says how `access` is derived.
#[test]
fn describe_documents_the_view() {
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = run(cfql(home.path()).args([
        "--demo",
        "--format",
        "csv",
        "-c",
        "DESCRIBE EXTENDED cloudflare.audit.permissions",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 23, "22 columns and a header: {out}");
    assert!(
        out.contains("access,text,view column,,\"Derived from the group's name"),
        "{out}"
    );
    assert!(out.contains("applies,boolean"), "{out}");
}
