//! `cloudflare.accounts.audit_logs` (Audit Logs v2) and what is built on it: a time range
//! required and pushed down as `since` / `before`, cursor paging, filters, the
//! `audit.token_usage` view and the granted-versus-used audit.

use chrono::{Duration, Utc};

use crate::cli::{cfql, run};
use crate::common::*;

const ROUTE: &str = "/accounts/{account_id}/logs/audit";

/// The query strings of every audit-log request since the last reset.
fn audit_queries(sim: &cfql::sim::Simulator) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.route == ROUTE)
        .map(|r| r.query.replace("%3A", ":"))
        .collect()
}

/// No lower bound: refused before any call, naming the column (and the view's column);
/// each spelling of a range reaches the API as `since` / `before` wide enough to keep
/// every row the predicate keeps; `before` left open is sent as now.
#[test]
fn a_time_range_is_required_and_every_spelling_of_it_is_pushed_down() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        sim.reset_counts();
        for sql in [
            "SELECT * FROM cloudflare.accounts.audit_logs",
            "SELECT * FROM cloudflare.accounts.audit_logs WHERE action_time < now()",
            "SELECT * FROM cloudflare.accounts.audit_logs WHERE action_time >= now() OR actor_token_id = 'x'",
        ] {
            let e = s.sql(sql).await.unwrap_err().to_string();
            assert_contains!(e, "needs a bound on action_time");
            assert_contains!(e, "WHERE action_time >= now() - INTERVAL '7 days'");
            assert_contains!(e, "WHERE day >= current_date - 30");
        }
        let e = s
            .sql("SELECT * FROM cloudflare.audit.token_usage")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "bound its day column");
        assert_eq!(sim.total_requests(), 0, "refused before any call");

        let account = sim.account_ids()[0].clone();
        let cases = [
            (
                "action_time >= '2026-11-01T10:00:00Z' AND action_time < '2026-11-02T00:00:00Z'",
                "since=2026-11-01T09:59:59Z",
                Some("before=2026-11-02T00:00:01Z"),
            ),
            (
                "action_time BETWEEN '2026-11-01T10:00:00.5Z' AND '2026-11-03T00:00:00Z'",
                "since=2026-11-01T09:59:59Z",
                Some("before=2026-11-03T00:00:01Z"),
            ),
            (
                "CAST(action_time AS DATE) >= DATE '2026-11-01' AND CAST(action_time AS DATE) <= DATE '2026-11-05'",
                "since=2026-10-31T23:59:59Z",
                Some("before=2026-11-06T00:00:01Z"),
            ),
            // The tighter of two lower bounds is the one sent; no upper bound: now.
            (
                "action_time > '2026-10-01T00:00:00Z' AND action_time > '2026-11-20T00:00:00Z'",
                "since=2026-11-19T23:59:59Z",
                None,
            ),
        ];
        for (range, since, before) in cases {
            sim.reset_counts();
            s.sql(&format!(
                "SELECT count(*) FROM cloudflare.accounts.audit_logs WHERE account_id = '{account}' AND {range} AND actor_token_id = 'abc'"
            ))
            .await
            .unwrap();
            let q = audit_queries(&sim);
            assert_eq!(q.len(), 1, "{range}: {q:?}");
            assert!(q[0].contains(since), "{range}: {q:?}");
            assert!(q[0].contains("actor_token_id=abc"), "{range}: {q:?}");
            match before {
                Some(b) => assert!(q[0].contains(b), "{range}: {q:?}"),
                None => {
                    let sent = q[0]
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("before="))
                        .unwrap();
                    let sent = chrono::DateTime::parse_from_rfc3339(sent).unwrap();
                    assert!(
                        sent > Utc::now() && sent < Utc::now() + Duration::minutes(2),
                        "{q:?}"
                    );
                }
            }
        }
    })
}

/// 2,500 entries in one account: three pages of 1,000, the second and third each asked
/// with the cursor of the page before; every entry once; a window keeps exactly the
/// entries inside it.
#[test]
fn cursor_paging_reads_every_entry_once() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let account = sim.account_ids()[1].clone();
        let token = "0123456789abcdef0123456789abcdef";
        let last = Utc::now() - Duration::days(40);
        sim.add_audit_entries(&account, token, "DELETE", 2500, last);

        sim.reset_counts();
        let b = s
            .sql(&format!(
                "SELECT id, action_time FROM cloudflare.accounts.audit_logs \
                 WHERE account_id = '{account}' AND actor_token_id = '{token}' \
                 AND action_time >= now() - INTERVAL '60 days'"
            ))
            .await
            .unwrap();
        let ids = strings(&b, "id");
        assert_eq!(ids.len(), 2500);
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 2500, "no entry twice");
        let q = audit_queries(&sim);
        assert_eq!(q.len(), 3, "{q:?}");
        assert!(!q[0].contains("cursor="), "{q:?}");
        assert!(
            q[1].contains("cursor=") && q[2].contains("cursor="),
            "{q:?}"
        );
        assert!(q.iter().all(|x| x.contains("limit=1000")), "{q:?}");

        // The 100 seconds before `last`: the entries 0..=99 seconds old of the batch.
        let from = (last - Duration::seconds(99)).to_rfc3339();
        let b = s
            .sql(&format!(
                "SELECT count(*) FROM cloudflare.accounts.audit_logs WHERE account_id = '{account}' \
                 AND action_time >= '{from}' AND action_time <= '{}'",
                last.to_rfc3339()
            ))
            .await
            .unwrap();
        assert_eq!(scalar(&b), "100");
    })
}

/// A write the session makes shows up in the account's log with the session's token,
/// product and action; `token_usage` groups it; the granted-versus-used control names
/// exactly the write-granted account tokens with no write in the window, by a rule
/// computed here from the raw rows.
#[test]
fn granted_versus_used_finds_the_writers_that_did_not_write() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let account = sim.account_ids()[0].clone();
        s.sql(&format!(
            "INSERT INTO cloudflare.access.service_tokens (account_id, name) VALUES ('{account}', 'audit-probe')"
        ))
        .await
        .unwrap();
        let b = s
            .sql(&format!(
                "SELECT actor_token_id, actor_context, resource_product, raw_method, raw_status_code \
                 FROM cloudflare.accounts.audit_logs WHERE account_id = '{account}' \
                 AND action_time >= now() - INTERVAL '1 hour' AND action_type = 'create'"
            ))
            .await
            .unwrap();
        assert_eq!(rows(&b), 1);
        assert_eq!(
            strings(&b, "actor_token_id"),
            vec![sim.user_token_ids()[0].clone()]
        );
        assert_eq!(strings(&b, "actor_context"), vec!["api_token"]);
        assert_eq!(strings(&b, "resource_product"), vec!["access"]);
        assert_eq!(strings(&b, "raw_status_code"), vec!["201"]);

        let b = s
            .sql(
                "SELECT calls FROM cloudflare.audit.token_usage WHERE day >= current_date - 1 \
                 AND method = 'POST' AND product = 'access'",
            )
            .await
            .unwrap();
        assert_eq!(strings(&b, "calls"), vec!["1"]);

        // The rule, from the raw rows: write-granted active account tokens minus those
        // with a create / update / delete in 30 days.
        let granted = s
            .sql(
                "SELECT DISTINCT token_id FROM cloudflare.audit.permissions WHERE kind = 'account_token' \
                 AND status = 'active' AND effect = 'allow' AND access = 'write' AND applies IS NOT FALSE",
            )
            .await
            .unwrap();
        let wrote = s
            .sql(
                "SELECT actor_token_id, action_type FROM cloudflare.accounts.audit_logs \
                 WHERE action_time >= CAST(current_date - 30 AS TIMESTAMP)",
            )
            .await
            .unwrap();
        let writers: Vec<String> = strings(&wrote, "actor_token_id")
            .into_iter()
            .zip(strings(&wrote, "action_type"))
            .filter(|(_, a)| a != "view")
            .map(|(t, _)| t)
            .collect();
        let mut expected: Vec<String> = strings(&granted, "token_id")
            .into_iter()
            .filter(|t| !writers.contains(t))
            .collect();
        expected.sort();
        assert!(!expected.is_empty() && !writers.is_empty());

        let sql = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/unused_write_permissions.sql"
        ))
        .unwrap();
        let b = s.sql(sql.trim().trim_end_matches(';')).await.unwrap();
        let mut found = strings(&b, "token_id");
        found.sort();
        assert_eq!(found, expected);
    })
}

/// The example is a `cfql check` control on the demo: an alarm naming a seeded token
/// that holds a write grant it never used.
#[test]
fn unused_write_permissions_is_a_check_control_on_the_demo() {
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = run(cfql(home.path()).args([
        "check",
        "--demo",
        "--format",
        "json",
        "-f",
        "examples/unused_write_permissions.sql",
    ]));
    assert_eq!(code, 3, "findings are an alarm: {err}");
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["status"], "alarm", "{out}");
    assert!(out.contains("backup-job"), "{out}");
}

/// `token_usage` counts exactly the calls that a token the test created made: three reads
/// and one create of service tokens, through a session of its own.
#[test]
fn token_usage_counts_the_calls_of_a_token_the_test_created() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let account = sim.account_ids()[0].clone();
        let policies = serde_json::json!([{"effect": "allow",
            "resources": {format!("com.cloudflare.api.account.{account}"): "*"},
            "permission_groups": [{"id": "e086da7e2179491d91ee5f35b3ca210a", "name": "Access: Service Tokens Write"}]}]);
        let b = s
            .sql(&format!(
                "INSERT INTO cloudflare.accounts.tokens (account_id, name, policies) \
                 VALUES ('{account}', 'usage-probe', '{policies}') RETURNING id, value"
            ))
            .await
            .unwrap();
        let (id, value) = (
            strings(&b, "id")[0].clone(),
            strings(&b, "value")[0].clone(),
        );
        let mut c = cfql::Config::new(sim.base_url()).with_api_token(value);
        c.cache_ttl = std::time::Duration::ZERO;
        let t = cfql::Session::new(c).await.unwrap();
        for _ in 0..3 {
            t.sql(&format!(
                "SELECT count(*) FROM cloudflare.access.service_tokens WHERE account_id = '{account}'"
            ))
            .await
            .unwrap();
        }
        t.sql(&format!(
            "INSERT INTO cloudflare.access.service_tokens (account_id, name) VALUES ('{account}', 'made-by-probe')"
        ))
        .await
        .unwrap();
        let u = s
            .sql(&format!(
                "SELECT token_name, account_id, method, action_type, calls FROM cloudflare.audit.token_usage \
                 WHERE day >= current_date - 1 AND token_id = '{id}' AND product = 'access' ORDER BY method"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&u, "method"), vec!["GET", "POST"]);
        assert_eq!(strings(&u, "action_type"), vec!["view", "create"]);
        assert_eq!(strings(&u, "calls"), vec!["3", "1"]);
        assert_eq!(strings(&u, "token_name"), vec!["usage-probe"; 2]);
        assert_eq!(strings(&u, "account_id"), vec![account.clone(); 2]);
    })
}
