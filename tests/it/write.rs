//! The write path: INSERT, UPDATE/REPLACE, DELETE, EXEC, dry runs, outcomes and secrets.

use cfql::sim::{FaultSpec, SeedOptions};
use cfql::{Config, Error, Session};

use crate::common::*;

const POLICIES: &str = r#"[{"effect":"allow","resources":{"com.cloudflare.api.account.zone.*":"*"},"permission_groups":[{"id":"c8fed203ed3043cba015a93ad1616f1f"}]}]"#;

#[test]
fn insert_creates_and_returns_the_secret_once() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let b = s
        .sql(&format!(
            "INSERT INTO cloudflare.user.tokens (name, policies, expires_on) VALUES ('ci-new', '{POLICIES}', '2030-01-01T00:00:00Z')"
        ))
        .await
        .unwrap();
        assert_eq!(sim.count("POST", "/user/tokens"), 1);
        assert_eq!(sim.mutating_requests(), 1);
        let secret = strings(&b, "value")
            .pop()
            .expect("the secret is in the result");
        assert_eq!(secret.len(), 40);
        let id = strings(&b, "id").pop().unwrap();
        assert_eq!(strings(&b, "expires_on"), vec!["2030-01-01T00:00:00Z"]);
        // The created token is a real credential: it verifies as itself.
        let s2 = Session::new(Config::new(sim.base_url()).with_api_token(secret.clone()))
            .await
            .unwrap();
        let v = s2
            .sql("SELECT id FROM cloudflare.user.tokens_verify")
            .await
            .unwrap();
        assert_eq!(strings(&v, "id"), vec![id.clone()]);
        // SELECT never shows it again.
        let e = s
            .sql("SELECT value FROM cloudflare.user.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "unknown column 'value'");
        let all = s
            .sql(&format!(
                "SELECT * FROM cloudflare.user.tokens WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        let dump = format!("{all:?}");
        assert!(!dump.contains(&secret));
    })
}

#[test]
fn insert_validates_every_row_before_any_call() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let e = s
        .sql(&format!(
            "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('a', '{POLICIES}'), ('b', '[{{not json'), ('c', NULL), ('d', '{POLICIES}')"
        ))
        .await
        .unwrap_err()
        .to_string();
        assert_contains!(e, "nothing was created");
        assert_contains!(e, "row 2: column policies: invalid JSON");
        assert_contains!(e, "row 3: policies is required");
        assert_eq!(sim.mutating_requests(), 0);
        let e = s
        .sql(&format!("INSERT INTO cloudflare.user.tokens (name, policies, expires_on) VALUES ('a', '{POLICIES}', 'next tuesday')"))
        .await
        .unwrap_err()
        .to_string();
        assert_contains!(e, "'next tuesday' is not a date-time");
        let e = s
        .sql(&format!("INSERT INTO cloudflare.user.tokens (name, policies, statuz) VALUES ('a', '{POLICIES}', 'x')"))
        .await
        .unwrap_err()
        .to_string();
        assert_contains!(e, "column 'statuz' cannot be set on create");
        let long = "x".repeat(121);
        let e = s
        .sql(&format!(
            "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('{long}', '{POLICIES}')"
        ))
        .await
        .unwrap_err()
        .to_string();
        assert_contains!(e, "longer than 120");
        assert_eq!(sim.mutating_requests(), 0);
    })
}

#[test]
fn insert_select_with_returning() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let b = s
        .sql(&format!(
            "INSERT INTO cloudflare.user.tokens (name, policies) SELECT 'bulk-' || CAST(v AS VARCHAR), '{POLICIES}' FROM (VALUES (1), (2), (3)) AS t(v) RETURNING id, name"
        ))
        .await
        .unwrap();
        assert_eq!(sim.count("POST", "/user/tokens"), 3);
        assert_eq!(
            b[0].schema()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>(),
            vec!["id", "name"]
        );
        let mut names = strings(&b, "name");
        names.sort();
        assert_eq!(names, vec!["bulk-1", "bulk-2", "bulk-3"]);
    })
}

#[test]
fn stackql_seed_examples_run_verbatim() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        s.set_var("condition", r#"{"request_ip":{"in":["192.0.2.0/24"]}}"#);
        s.set_var("expires_on", "2031-01-01T00:00:00Z");
        s.set_var("name", "stackql token");
        s.set_var("not_before", "2026-01-01T00:00:00Z");
        s.set_var("policies", POLICIES);
        let insert = "INSERT INTO cloudflare.user.tokens (\ncondition,\nexpires_on,\nname,\nnot_before,\npolicies\n)\nSELECT\n'{{ condition }}',\n'{{ expires_on }}',\n'{{ name }}' /* required */,\n'{{ not_before }}',\n'{{ policies }}' /* required */\nRETURNING\nerrors,\nmessages,\nresult,\nsuccess\n;";
        let b = s.sql(insert).await.unwrap();
        assert_eq!(strings(&b, "success"), vec!["true"]);
        assert_eq!(strings(&b, "errors"), vec!["[]"]);
        let result: serde_json::Value = serde_json::from_str(&strings(&b, "result")[0]).unwrap();
        let id = result["id"].as_str().unwrap().to_string();
        assert!(
            result["value"].as_str().is_some_and(|v| v.len() == 40),
            "the secret reaches the user"
        );
        s.set_var("token_id", id.clone());

        let get = "SELECT\nid,\nname,\ncondition,\nexpires_on,\nissued_on,\nlast_used_on,\nmodified_on,\nnot_before,\npolicies,\nstatus\nFROM cloudflare.user.tokens\nWHERE token_id = '{{ token_id }}' -- required\n;";
        let b = s.sql(get).await.unwrap();
        assert_eq!(strings(&b, "name"), vec!["stackql token"]);

        s.set_var("name", "stackql renamed");
        s.set_var("status", "disabled");
        let replace = "REPLACE cloudflare.user.tokens\nSET\ncondition = '{{ condition }}',\nexpires_on = '{{ expires_on }}',\nname = '{{ name }}',\nnot_before = '{{ not_before }}',\npolicies = '{{ policies }}',\nstatus = '{{ status }}'\nWHERE\ntoken_id = '{{ token_id }}' --required\nRETURNING\nerrors,\nmessages,\nresult,\nsuccess;";
        let b = s.sql(replace).await.unwrap();
        assert_eq!(strings(&b, "success"), vec!["true"]);
        let b = s.sql(get).await.unwrap();
        assert_eq!(strings(&b, "name"), vec!["stackql renamed"]);
        assert_eq!(strings(&b, "status"), vec!["disabled"]);

        sim.reset_counts();
        let exec =
            "EXEC cloudflare.user.tokens.update_value\n@token_id='{{ token_id }}' --required\n;";
        let b = s.sql(exec).await.unwrap();
        assert_eq!(strings(&b, "id"), vec![id.clone()]);
        assert_eq!(strings(&b, "value")[0].len(), 40);
        assert_eq!(sim.count("PUT", "/user/tokens/{token_id}/value"), 1);

        let delete =
            "DELETE FROM cloudflare.user.tokens\nWHERE token_id = '{{ token_id }}' --required\n;";
        s.sql(delete).await.unwrap();
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);
        assert_eq!(rows(&s.sql(get).await.unwrap()), 0);
    })
}

#[test]
fn missing_template_variable_fails_before_any_call() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let e = s
            .sql("DELETE FROM cloudflare.user.tokens WHERE token_id = '{{ token_id }}'")
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::MissingVariable { name } if name == "token_id"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "template variable '{{ token_id }}' has no value",
            "the library names the fact, not a flag"
        );
        assert_eq!(sim.total_requests(), 0);
    })
}

#[test]
fn update_reads_then_puts_the_whole_object() {
    on_runtime(async {
        let sim = sim_with(30).await;
        let s = session(&sim).await;
        let id = sim.user_token_ids()[3].clone();
        let before =
        s.sql(&format!("SELECT policies, condition, expires_on, modified_on FROM cloudflare.user.tokens WHERE id = '{id}'")).await.unwrap();
        sim.reset_counts();
        let b = s
            .sql(&format!(
                "UPDATE cloudflare.user.tokens SET name = 'renamed' WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "name"), vec!["renamed"]);
        assert_eq!(sim.count("GET", "/user/tokens/{token_id}"), 1);
        assert_eq!(sim.count("PUT", "/user/tokens/{token_id}"), 1);
        assert_eq!(sim.count("GET", "/user/tokens"), 0);
        let after =
        s.sql(&format!("SELECT policies, condition, expires_on, modified_on FROM cloudflare.user.tokens WHERE id = '{id}'")).await.unwrap();
        for c in ["policies", "condition", "expires_on"] {
            assert_eq!(col(&before, c), col(&after, c), "{c} kept its value");
        }
        assert_ne!(col(&before, "modified_on"), col(&after, "modified_on"));

        // Expressions over the current row work.
        s.sql(&format!("UPDATE cloudflare.user.tokens SET expires_on = TIMESTAMP '2035-06-01T00:00:00Z' WHERE id = '{id}'")).await.unwrap();
        let b = s
            .sql(&format!(
                "SELECT expires_on FROM cloudflare.user.tokens WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "expires_on"), vec!["2035-06-01T00:00:00Z"]);

        let e = s
            .sql(&format!(
                "UPDATE cloudflare.user.tokens SET issued_on = now() WHERE id = '{id}'"
            ))
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "column 'issued_on' cannot be changed");
        let e = s
            .sql(&format!(
                "UPDATE cloudflare.user.tokens SET policies = 'nope' WHERE id = '{id}'"
            ))
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "invalid JSON", "nothing was changed");
    })
}

#[test]
fn unfiltered_writes_are_refused_unless_allowed() {
    on_runtime(async {
        let sim = sim_with(6).await;
        let s = session(&sim).await;
        let e = s
            .sql("DELETE FROM cloudflare.user.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(
            e,
            "DELETE without WHERE",
            "SET cfql.allow_unfiltered_writes = true"
        );
        let e = s
            .sql("UPDATE cloudflare.user.tokens SET name = 'x'")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "UPDATE without WHERE");
        assert_eq!(sim.total_requests(), 0);
        s.sql("SET cfql.allow_unfiltered_writes = true")
            .await
            .unwrap();
        s.sql("SET cfql.dry_run = true").await.unwrap();
        let b = s.sql("DELETE FROM cloudflare.user.tokens").await.unwrap();
        assert_eq!(rows(&b), 6);
        assert_eq!(sim.mutating_requests(), 0);
    })
}

#[test]
fn delete_by_id_makes_no_read_and_reports_gone_ids() {
    on_runtime(async {
        let sim = sim_with(10).await;
        let s = session(&sim).await;
        let ids = sim.user_token_ids();
        let b = s
            .sql(&format!(
                "DELETE FROM cloudflare.user.tokens WHERE id = '{}'",
                ids[4]
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "id"), vec![ids[4].clone()]);
        // The one other call: which token the session is (its own token would go last).
        assert_eq!(sim.count("GET", "/user/tokens/verify"), 1);
        assert_eq!(sim.total_requests(), 2, "{:?}", sim.requests());
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);
        // Already gone, and one that exists: the gone one is reported, the other deleted.
        let e = s
            .sql(&format!(
                "DELETE FROM cloudflare.user.tokens WHERE id IN ('{}', '{}')",
                ids[4], ids[5]
            ))
            .await
            .unwrap_err();
        match e {
            Error::PartialFailure {
                failed: 1,
                total: 2,
                outcomes,
                ..
            } => {
                let bad = outcomes.iter().find(|o| o.error.is_some()).unwrap();
                assert_eq!(bad.id.as_deref(), Some(ids[4].as_str()));
                assert!(bad.error.as_ref().unwrap().contains("HTTP 404"), "{bad:?}");
            }
            other => panic!("expected a partial failure, got {other:?}"),
        }
        assert_eq!(sim.user_token_count(), 8);
        // A non-key predicate reads first.
        sim.reset_counts();
        let b = s
            .sql(
                "DELETE FROM cloudflare.user.tokens WHERE name = 'cert-manager' RETURNING id, name",
            )
            .await
            .unwrap();
        assert_eq!(strings(&b, "name"), vec!["cert-manager"]);
        assert_eq!(sim.count("GET", "/user/tokens"), 1);
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);
    })
}

#[test]
fn bulk_delete_with_injected_500s_reports_exactly_the_failed_ids() {
    on_runtime(async {
        let sim = sim_with(25).await;
        let s = session(&sim).await;
        let ids = sim.user_token_ids();
        let victims: Vec<String> = ids[1..21].to_vec();
        sim.set_faults(
            FaultSpec::parse(
                "500@DELETE:/user/tokens/{token_id}#3,500@DELETE:/user/tokens/{token_id}#7",
            )
            .unwrap(),
        );
        let list = victims
            .iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let e = s
            .sql(&format!(
                "DELETE FROM cloudflare.user.tokens WHERE id IN ({list})"
            ))
            .await
            .unwrap_err();
        let Error::PartialFailure {
            failed,
            total,
            outcomes,
            succeeded,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!((*failed, *total), (2, 20));
        assert_eq!(rows(succeeded), 18);
        assert_eq!(
            sim.count("DELETE", "/user/tokens/{token_id}"),
            20,
            "DELETEs are not retried"
        );
        let failed_ids: Vec<String> = outcomes
            .iter()
            .filter(|o| o.error.is_some())
            .filter_map(|o| o.id.clone())
            .collect();
        let remaining = sim.user_token_ids();
        let mut still_there: Vec<String> = victims
            .iter()
            .filter(|v| remaining.contains(v))
            .cloned()
            .collect();
        let mut f = failed_ids.clone();
        f.sort();
        still_there.sort();
        assert_eq!(
            f, still_there,
            "the failed rows are exactly the ones not deleted"
        );
        assert!(
            e.to_string().contains("DELETE failed for 2 of 20 rows"),
            "{e}"
        );
    })
}

#[test]
fn roll_invalidates_the_old_secret() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let b = s
        .sql(&format!("INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('to-roll', '{POLICIES}') RETURNING id, value"))
        .await
        .unwrap();
        let id = strings(&b, "id")[0].clone();
        let old = strings(&b, "value")[0].clone();
        let b = s
            .sql(&format!(
                "EXEC /* lifecycle */ cloudflare.user.tokens.roll -- alias\n @token_id = '{id}'"
            ))
            .await
            .unwrap();
        let new = strings(&b, "value")[0].clone();
        assert_ne!(old, new);
        let with_old = Session::new(Config::new(sim.base_url()).with_api_token(old))
            .await
            .unwrap();
        let e = with_old
            .sql("SELECT id FROM cloudflare.user.tokens_verify")
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), Some(401));
        let with_new = Session::new(Config::new(sim.base_url()).with_api_token(new))
            .await
            .unwrap();
        let v = with_new
            .sql("SELECT id FROM cloudflare.user.tokens_verify")
            .await
            .unwrap();
        assert_eq!(strings(&v, "id"), vec![id]);
        let e = s
            .sql("EXEC cloudflare.user.tokens.update_value")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "needs token_id", "@token_id='<id>'");
        let e = s
            .sql("EXEC cloudflare.user.tokens.rol @token_id='x'")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did you mean roll?") || e.contains("did you mean update_value?"),
            "{e}"
        );
    })
}

#[test]
fn exec_subquery_rolls_each_matching_token() {
    on_runtime(async {
        let sim = sim_with(200).await;
        let s = session(&sim).await;
        let q = "SELECT id FROM cloudflare.user.tokens WHERE expires_on > now() AND expires_on < now() + INTERVAL '7 days'";
        let n = rows(&s.sql(q).await.unwrap());
        assert!(n > 3, "sample data has tokens expiring within 7 days");
        sim.reset_counts();
        let b = s
            .sql(&format!(
                "EXEC cloudflare.user.tokens.update_value @token_id = ({q})"
            ))
            .await
            .unwrap();
        assert_eq!(rows(&b), n);
        assert_eq!(sim.count("PUT", "/user/tokens/{token_id}/value"), n as u64);
        assert!(strings(&b, "value").iter().all(|v| v.len() == 40));
    })
}

#[test]
fn lost_responses_of_non_idempotent_calls_are_actionable() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let id = sim.user_token_ids()[2].clone();
        sim.set_faults(FaultSpec::parse("drop-after@PUT:/user/tokens/{token_id}/value#1").unwrap());
        let e = s
            .sql(&format!(
                "EXEC cloudflare.user.tokens.update_value @token_id='{id}'"
            ))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
        assert_contains!(text, "may have taken effect", "not retried");
        assert_contains!(
            text,
            &format!("EXEC cloudflare.user.tokens.update_value @token_id='{id}'")
        );
        assert_eq!(
            sim.count("PUT", "/user/tokens/{token_id}/value"),
            1,
            "a roll is never retried"
        );

        sim.set_faults(FaultSpec::parse("drop-after@POST:/user/tokens#1").unwrap());
        let e = s
            .sql(&format!(
                "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('lost', '{POLICIES}')"
            ))
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(
            e,
            "SELECT * FROM cloudflare.user.tokens WHERE name = 'lost'"
        );
        assert_eq!(
            sim.count("POST", "/user/tokens"),
            1,
            "a create is never retried"
        );
        assert_eq!(
            sim.user_token_count(),
            6,
            "the create did happen on the server"
        );
    })
}

#[test]
fn dry_run_sends_no_mutating_call() {
    on_runtime(async {
        let sim = sim_with(10).await;
        let s = Session::new(config(&sim).with_dry_run(true)).await.unwrap();
        let id = sim.user_token_ids()[1].clone();
        let b = s
            .sql(&format!(
                "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('x', '{POLICIES}')"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "method"), vec!["POST"]);
        assert_eq!(strings(&b, "path"), vec!["/user/tokens"]);
        s.sql(&format!(
            "UPDATE cloudflare.user.tokens SET name = 'y' WHERE id = '{id}'"
        ))
        .await
        .unwrap();
        s.sql(&format!(
            "EXEC cloudflare.user.tokens.roll @token_id='{id}'"
        ))
        .await
        .unwrap();
        let b = s
            .sql("DELETE FROM cloudflare.user.tokens WHERE status = 'disabled'")
            .await
            .unwrap();
        assert!(strings(&b, "method").iter().all(|m| m == "DELETE"));
        assert_eq!(sim.mutating_requests(), 0);
        // EXPLAIN on a write is a dry run too.
        let s = session(&sim).await;
        let b = s
            .sql(&format!(
                "EXPLAIN DELETE FROM cloudflare.user.tokens WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "path"), vec![format!("/user/tokens/{id}")]);
        assert_eq!(sim.mutating_requests(), 0);
    })
}

#[test]
fn service_token_lifecycle() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 2,
            service_tokens: 3,
            ..SeedOptions::default()
        })
        .await;
        let s = session(&sim).await;
        let a = sim.account_ids()[0].clone();
        let b = s
        .sql(&format!("INSERT INTO cloudflare.access.service_tokens (account_id, name, duration) VALUES ('{a}', 'deploy-bot', '720h')"))
        .await
        .unwrap();
        assert_eq!(
            sim.count("POST", "/accounts/{account_id}/access/service_tokens"),
            1
        );
        let id = strings(&b, "id")[0].clone();
        let client_id = strings(&b, "client_id")[0].clone();
        let secret1 = strings(&b, "client_secret")[0].clone();
        assert_eq!(secret1.len(), 64);
        assert_eq!(strings(&b, "account_id"), vec![a.clone()]);
        let check = |secret: String| {
            let url = format!("http://{}/__sim/access/check", sim.addr());
            let client_id = client_id.clone();
            async move {
                reqwest::Client::new()
                    .get(url)
                    .header("cf-access-client-id", client_id)
                    .header("cf-access-client-secret", secret)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(check(secret1.clone()).await, 200);
        // Rotate with a grace window: both secrets work until it ends.
        let b = s
        .sql(&format!(
            "EXEC cloudflare.access.service_tokens.rotate @account_id='{a}', @service_token_id='{id}', @previous_client_secret_expires_at = (SELECT now() + INTERVAL '1 hour')"
        ))
        .await
        .unwrap();
        let secret2 = strings(&b, "client_secret")[0].clone();
        assert_ne!(secret1, secret2);
        assert_eq!(
            check(secret1.clone()).await,
            200,
            "previous secret inside the grace window"
        );
        assert_eq!(check(secret2.clone()).await, 200);
        // Without a grace window the previous secret stops at once.
        let b = s.sql(&format!("EXEC cloudflare.access.service_tokens.rotate @account_id='{a}' @service_token_id='{id}'")).await.unwrap();
        let secret3 = strings(&b, "client_secret")[0].clone();
        assert_eq!(check(secret2).await, 403);
        assert_eq!(check(secret3).await, 200);
        // Refresh moves expires_at forward by the duration.
        let before = s
        .sql(&format!(
            "SELECT CAST(expires_at AS BIGINT) AS e FROM cloudflare.access.service_tokens WHERE account_id = '{a}' AND id = '{id}'"
        ))
        .await
        .unwrap();
        sim.advance_clock(chrono::Duration::hours(5));
        let b = s.sql(&format!("EXEC cloudflare.access.service_tokens.refresh @account_id='{a}', @service_token_id='{id}'")).await.unwrap();
        assert!(
            strings(&b, "client_secret").is_empty(),
            "refresh shows no secret"
        );
        let after = s
        .sql(&format!(
            "SELECT CAST(expires_at AS BIGINT) AS e FROM cloudflare.access.service_tokens WHERE account_id = '{a}' AND id = '{id}'"
        ))
        .await
        .unwrap();
        let (b0, a0): (i64, i64) = (
            scalar(&before).parse().unwrap(),
            scalar(&after).parse().unwrap(),
        );
        assert!(
            (a0 - b0 - 5 * 3_600_000_000).abs() < 60_000_000,
            "moved by ~5h: {b0} -> {a0}"
        );
        // Update keeps fields not named; delete by id.
        s.sql(&format!("UPDATE cloudflare.access.service_tokens SET name = 'deploy-bot-2' WHERE account_id = '{a}' AND id = '{id}'"))
        .await
        .unwrap();
        let b = s
        .sql(&format!("SELECT name, duration FROM cloudflare.access.service_tokens WHERE account_id = '{a}' AND id = '{id}'"))
        .await
        .unwrap();
        assert_eq!(strings(&b, "name"), vec!["deploy-bot-2"]);
        assert_eq!(strings(&b, "duration"), vec!["720h"]);
        sim.reset_counts();
        s.sql(&format!("DELETE FROM cloudflare.zero_trust.service_tokens WHERE account_id = '{a}' AND service_token_id = '{id}'"))
        .await
        .unwrap();
        assert_eq!(
            sim.count(
                "DELETE",
                "/accounts/{account_id}/access/service_tokens/{service_token_id}"
            ),
            1
        );
        assert_eq!(sim.total_requests(), 1);
        // Zone level.
        let z = sim.zone_ids()[0].clone();
        let b = s
        .sql(&format!("INSERT INTO cloudflare.access.service_tokens (zone_id, name, duration) VALUES ('{z}', 'zone-bot', 'forever')"))
        .await
        .unwrap();
        assert_eq!(strings(&b, "zone_id"), vec![z.clone()]);
        assert_eq!(col(&b, "expires_at"), vec![None]);
        let e = s
            .sql(&format!(
                "EXEC cloudflare.access.service_tokens.rotate @zone_id='{z}', @service_token_id='x'"
            ))
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "needs account_id");
    })
}

#[test]
fn account_token_roll_with_global_key() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 2,
            account_tokens: 3,
            ..SeedOptions::default()
        })
        .await;
        let s =
            Session::new(Config::new(sim.base_url()).with_global_key(sim.email(), sim.api_key()))
                .await
                .unwrap();
        let a = sim.account_ids()[1].clone();
        let b = s
            .sql(&format!(
                "SELECT id FROM cloudflare.accounts.tokens WHERE account_id = '{a}' LIMIT 1"
            ))
            .await
            .unwrap();
        let id = strings(&b, "id")[0].clone();
        let b = s
            .sql(&format!(
                "EXEC cloudflare.accounts.tokens.roll_token @account_id='{a}', @token_id='{id}'"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "account_id"), vec![a]);
        assert_eq!(strings(&b, "value")[0].len(), 40);
        let r = sim.requests().pop().unwrap();
        assert_eq!(
            (r.method.as_str(), r.route.as_str()),
            ("PUT", "/accounts/{account_id}/tokens/{token_id}/value")
        );
        assert_eq!(r.auth, cfql::sim::AuthKind::EmailKey);
    })
}

#[test]
fn secrets_file_and_audit_log() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets.jsonl");
        let audit = dir.path().join("audit.jsonl");
        let mut c = config(&sim);
        c.secrets_file = Some(secrets.clone());
        c.audit_log = Some(audit.clone());
        let s = Session::new(c).await.unwrap();
        let b = s
            .sql(&format!(
                "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('kept', '{POLICIES}')"
            ))
            .await
            .unwrap();
        let value = strings(&b, "value")[0].clone();
        let id = strings(&b, "id")[0].clone();
        let b = s
            .sql(&format!(
                "EXEC cloudflare.user.tokens.roll @token_id='{id}'"
            ))
            .await
            .unwrap();
        let rolled = strings(&b, "value")[0].clone();
        let text = std::fs::read_to_string(&secrets).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["value"], value.as_str());
        assert_eq!(lines[1]["value"], rolled.as_str());
        assert_eq!(lines[1]["id"], id.as_str());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let log = std::fs::read_to_string(&audit).unwrap();
        assert_eq!(log.lines().count(), 2);
        assert_contains!(
            log,
            "\"method\":\"POST\"",
            "\"method\":\"PUT\"",
            "\"status\":200"
        );
        assert!(
            !log.contains(&value) && !log.contains(&rolled) && !log.contains(&sim.admin_token()),
            "audit log leaked a secret"
        );
        assert_eq!(
            std::fs::metadata(&audit).unwrap().permissions().mode() & 0o777,
            0o600
        );
    })
}

#[test]
fn show_and_describe() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let b = s.sql("SHOW SERVICES").await.unwrap();
        assert_eq!(
            strings(&b, "service"),
            vec![
                "cloudflare.user",
                "cloudflare.accounts",
                "cloudflare.zones",
                "cloudflare.access",
                "cloudflare.audit"
            ]
        );
        let b = s
            .sql("SHOW RESOURCES IN cloudflare.accounts")
            .await
            .unwrap();
        assert_eq!(
            strings(&b, "resource"),
            vec![
                "cloudflare.accounts.accounts",
                "cloudflare.accounts.tokens",
                "cloudflare.accounts.permission_groups",
                "cloudflare.accounts.audit_logs",
                "cloudflare.accounts.mtls_certificates",
                "cloudflare.accounts.tunnels"
            ]
        );
        let b = s
            .sql("SHOW METHODS IN cloudflare.access.service_tokens")
            .await
            .unwrap();
        let methods = strings(&b, "method");
        assert!(
            methods.contains(&"rotate".to_string()) && methods.contains(&"refresh".to_string()),
            "{methods:?}"
        );
        let req = strings(&b, "required_params");
        assert!(
            req.contains(&"account_id, service_token_id".to_string()),
            "{req:?}"
        );
        let b = s.sql("DESCRIBE cloudflare.user.tokens").await.unwrap();
        let cols = strings(&b, "column");
        assert_eq!(cols.first().map(String::as_str), Some("id"));
        assert!(strings(&b, "key")[0].contains("token_id"));
        let b = s
            .sql("DESCRIBE EXTENDED cloudflare.user.tokens")
            .await
            .unwrap();
        assert!(
            strings(&b, "writable_by")
                .iter()
                .any(|w| w.contains("create"))
        );
        assert_eq!(sim.total_requests(), 0);
    })
}

#[test]
fn account_token_writes_with_exact_calls() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 2,
            account_tokens: 4,
            ..SeedOptions::default()
        })
        .await;
        let s = session(&sim).await;
        let a = sim.account_ids()[1].clone();
        let b = s
        .sql(&format!("INSERT INTO cloudflare.accounts.tokens (account_id, name, policies) VALUES ('{a}', 'acct-ci', '{POLICIES}')"))
        .await
        .unwrap();
        assert_eq!(sim.count("POST", "/accounts/{account_id}/tokens"), 1);
        assert_eq!(strings(&b, "account_id"), vec![a.clone()]);
        assert_eq!(strings(&b, "value")[0].len(), 40);
        let id = strings(&b, "id")[0].clone();
        // No account given and no default: a create cannot fan out.
        let e = s
            .sql(&format!(
                "INSERT INTO cloudflare.accounts.tokens (name, policies) VALUES ('x', '{POLICIES}')"
            ))
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "needs account_id", "nothing was created");
        sim.reset_counts();
        s.sql(&format!("UPDATE cloudflare.accounts.tokens SET status = 'disabled' WHERE account_id = '{a}' AND id = '{id}'")).await.unwrap();
        assert_eq!(
            sim.count("GET", "/accounts/{account_id}/tokens/{token_id}"),
            1
        );
        assert_eq!(
            sim.count("PUT", "/accounts/{account_id}/tokens/{token_id}"),
            1
        );
        // The session's token is a user token (asked once): no account verify is needed.
        assert_eq!(sim.count("GET", "/user/tokens/verify"), 1);
        assert_eq!(sim.total_requests(), 3);
        let b = s
        .sql(&format!(
            "SELECT status FROM cloudflare.accounts.tokens WHERE account_id = '{a}' AND id = '{id}'"
        ))
        .await
        .unwrap();
        assert_eq!(strings(&b, "status"), vec!["disabled"]);
        sim.reset_counts();
        s.sql(&format!(
            "DELETE FROM cloudflare.accounts.tokens WHERE account_id = '{a}' AND token_id = '{id}'"
        ))
        .await
        .unwrap();
        assert_eq!(
            sim.count("DELETE", "/accounts/{account_id}/tokens/{token_id}"),
            1
        );
        assert_eq!(sim.total_requests(), 1);
        // Without the account, DELETE by id finds it through the fan-out first.
        let b = s
            .sql(&format!(
                "SELECT id FROM cloudflare.accounts.tokens WHERE account_id = '{a}' LIMIT 1"
            ))
            .await
            .unwrap();
        let other = strings(&b, "id")[0].clone();
        sim.reset_counts();
        let b = s
            .sql(&format!(
                "DELETE FROM cloudflare.accounts.tokens WHERE id = '{other}'"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "account_id"), vec![a]);
        assert_eq!(sim.count("GET", "/accounts"), 1);
        assert_eq!(
            sim.count("DELETE", "/accounts/{account_id}/tokens/{token_id}"),
            1
        );
    })
}

#[test]
fn partial_insert_keeps_secrets_in_results_and_out_of_debug() {
    on_runtime(async {
        let sim = sim_with(3).await;
        let s = session(&sim).await;
        sim.set_faults(FaultSpec::parse("500@POST:/user/tokens#2").unwrap());
        let e = s
        .sql(&format!(
            "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('a', '{POLICIES}'), ('b', '{POLICIES}'), ('c', '{POLICIES}')"
        ))
        .await
        .unwrap_err();
        assert_eq!(
            sim.count("POST", "/user/tokens"),
            3,
            "a failed create is not retried"
        );
        let Error::PartialFailure {
            failed: 1,
            total: 3,
            succeeded,
            ..
        } = &e
        else {
            panic!("{e}")
        };
        let secrets = strings(succeeded, "value");
        assert_eq!(secrets.len(), 2, "the two created tokens' secrets are kept");
        let (debug, display) = (format!("{e:?}"), e.to_string());
        for v in &secrets {
            assert!(
                !debug.contains(v.as_str()) && !display.contains(v.as_str()),
                "secret in the error text"
            );
        }
        assert_contains!(debug, "values redacted");
        let out = s
            .execute(&format!(
                "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('d', '{POLICIES}')"
            ))
            .await
            .unwrap();
        let v = strings(&out.batches, "value")[0].clone();
        assert!(!format!("{out:?}").contains(&v));
    })
}
