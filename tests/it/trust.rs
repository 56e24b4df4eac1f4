//! Trust in writes, through the library: no secret the API issued is ever lost, and no
//! statement writes more than it names. Each test is one item of the write-trust issue.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use cfql::sim::{FaultSpec, SeedOptions, Simulator};
use cfql::{Config, Error, RowState, Session};

use crate::common::*;

const ROLL: &str = "/user/tokens/{token_id}/value";

/// Ids of the rolls the simulator processed (its handler answered), in order.
pub fn processed_rolls(sim: &Simulator) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.route == ROLL && r.status == Some(200))
        .map(|r| {
            r.path
                .trim_start_matches("/user/tokens/")
                .trim_end_matches("/value")
                .to_string()
        })
        .collect()
}

/// The id a secret authenticates as (through the verify endpoint), if it works.
pub async fn authenticates_as(sim: &Simulator, secret: &str) -> Option<String> {
    let s = Session::new(Config::new(sim.base_url()).with_api_token(secret))
        .await
        .ok()?;
    let b = s
        .sql("SELECT id FROM cloudflare.user.tokens_verify")
        .await
        .ok()?;
    strings(&b, "id").pop()
}

/// id -> secret of every line of a secrets file (`value` or `client_secret`).
pub fn secrets_in(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("each line is JSON"))
        .map(|v| {
            let secret = v
                .get("value")
                .or(v.get("client_secret"))
                .and_then(|s| s.as_str())
                .expect("a secret")
                .to_string();
            (v["id"].as_str().expect("an id").to_string(), secret)
        })
        .collect()
}

/// `n` active user tokens other than the session's own (their rolled secrets verify).
pub async fn active_ids(sim: &Simulator, n: usize) -> Vec<String> {
    let s = session(sim).await;
    let me = strings(
        &s.sql("SELECT id FROM cloudflare.user.tokens_verify")
            .await
            .unwrap(),
        "id",
    )[0]
    .clone();
    let q = format!(
        "SELECT id FROM cloudflare.user.tokens WHERE status = 'active' AND id <> '{me}' ORDER BY id LIMIT {n}"
    );
    let ids = strings(&s.sql(&q).await.unwrap(), "id");
    assert_eq!(ids.len(), n, "the sample data has {n} active tokens");
    sim.reset_counts();
    ids
}

fn config_with_files(sim: &Simulator, dir: &Path) -> Config {
    let mut c = config(sim);
    c.secrets_file = Some(dir.join("secrets.jsonl"));
    c.audit_log = Some(dir.join("audit.jsonl"));
    c
}

fn id_list(ids: &[String]) -> String {
    ids.iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Item 3: a create or rotate that took effect is never reported as failed because its
/// answer has a field cfql cannot convert; the secret, the id and the raw answer are kept.
#[test]
fn an_answer_that_does_not_fit_is_kept_not_failed() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            service_tokens: 4,
            ..SeedOptions::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let s = Session::new(config_with_files(&sim, dir.path()))
            .await
            .unwrap();
        let a = sim.account_ids()[0].clone();
        let ids = sim.service_token_ids(&a);
        sim.set_faults(FaultSpec::parse("mistyped@POST:/accounts/{account_id}/access/service_tokens/{service_token_id}/rotate#2").unwrap());
        let out = s
        .execute(&format!(
            "EXEC cloudflare.access.service_tokens.rotate @account_id = '{a}', @service_token_id = (SELECT id FROM cloudflare.access.service_tokens WHERE account_id = '{a}' AND id IN ({}))",
            id_list(&ids[..3])
        ))
        .await
        .expect("every rotate took effect, so the statement succeeds");
        assert_eq!(rows(&out.batches), 3);
        let secrets = strings(&out.batches, "client_secret");
        assert_eq!(secrets.len(), 3, "every secret is in the result");
        assert_eq!(
            col(&out.batches, "created_at")
                .iter()
                .filter(|c| c.is_none())
                .count(),
            1,
            "the cell that did not fit is NULL"
        );
        let warning = out
            .warnings
            .iter()
            .find(|w| w.contains("took effect, but its answer did not fit"))
            .expect("a warning for that row");
        assert_contains!(warning, "column created_at", "2024-01-01");
        for secret in &secrets {
            assert!(!warning.contains(secret.as_str()), "a secret in a warning");
        }
        assert_eq!(secrets_in(&dir.path().join("secrets.jsonl")).len(), 3);

        // A create whose answer says `enabled: "yes"`: created, kept, warned about.
        sim.set_faults(
            FaultSpec::parse("mistyped@POST:/accounts/{account_id}/access/service_tokens#1")
                .unwrap(),
        );
        let out =
        s.execute(&format!("INSERT INTO cloudflare.access.service_tokens (account_id, name) VALUES ('{a}', 'odd-answer')")).await.unwrap();
        assert_eq!(strings(&out.batches, "name"), vec!["odd-answer"]);
        assert_eq!(strings(&out.batches, "client_secret").len(), 1);
        assert!(
            out.warnings.iter().any(|w| w.contains("column enabled")),
            "{:?}",
            out.warnings
        );
    })
}

/// Item 5: a 5xx answering a create or roll may have come after the action.
#[test]
fn server_errors_on_creates_and_rolls_may_have_taken_effect() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let id = sim.user_token_ids()[2].clone();
        sim.set_faults(FaultSpec::parse(&format!("502@PUT:{ROLL}#1")).unwrap());
        let e = s
            .sql(&format!(
                "EXEC cloudflare.user.tokens.roll @token_id = '{id}'"
            ))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
        let text = e.to_string();
        assert_contains!(text, "HTTP 502", "may have taken effect", "not retried");
        assert_contains!(
            text,
            &format!("EXEC cloudflare.user.tokens.update_value @token_id='{id}'")
        );
        assert_eq!(sim.count("PUT", ROLL), 1, "never retried");

        sim.set_faults(FaultSpec::parse("503@POST:/user/tokens#1").unwrap());
        let e = s
        .sql(r#"INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('five-oh-three', '[{"effect":"allow","resources":{},"permission_groups":[]}]')"#)
        .await
        .unwrap_err();
        assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("SELECT * FROM cloudflare.user.tokens WHERE name = 'five-oh-three'"),
            "{e}"
        );
        assert_eq!(sim.count("POST", "/user/tokens"), 1);
    })
}

/// Item 6: ORDER BY and LIMIT of UPDATE / DELETE pick the rows; other clauses are refused.
#[test]
fn order_by_and_limit_pick_the_rows_and_other_clauses_are_refused() {
    on_runtime(async {
        let sim = sim_with(30).await;
        let s = session(&sim).await;
        let admin = strings(
            &s.sql("SELECT id FROM cloudflare.user.tokens_verify")
                .await
                .unwrap(),
            "id",
        )[0]
        .clone();
        let q = format!(
            "SELECT id FROM cloudflare.user.tokens WHERE status = 'active' AND id <> '{admin}' ORDER BY expires_on, id"
        );
        let order = strings(&s.sql(&q).await.unwrap(), "id");
        assert!(order.len() > 5);
        sim.reset_counts();
        let b = s
        .sql(&format!("DELETE FROM cloudflare.user.tokens WHERE status = 'active' AND id <> '{admin}' ORDER BY expires_on, id LIMIT 1"))
        .await
        .unwrap();
        assert_eq!(
            strings(&b, "id"),
            vec![order[0].clone()],
            "the first match in that order"
        );
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);
        let order = order[1..].to_vec();

        sim.reset_counts();
        let b = s
        .sql(&format!(
            "REPLACE cloudflare.user.tokens SET status = 'disabled' WHERE status = 'active' AND id <> '{admin}' ORDER BY expires_on, id LIMIT 2"
        ))
        .await
        .unwrap();
        let mut changed = strings(&b, "id");
        changed.sort();
        let mut expected = order[0..2].to_vec();
        expected.sort();
        assert_eq!(changed, expected);
        assert_eq!(sim.count("PUT", "/user/tokens/{token_id}"), 2);

        sim.reset_counts();
        let refused = [
        (format!("DELETE FROM cloudflare.user.tokens USING cloudflare.user.tokens t2 WHERE t2.id = '{admin}'"), "USING"),
        ("UPDATE cloudflare.user.tokens SET name = t.x FROM (SELECT 'a' AS x) t WHERE true".to_string(), "FROM"),
        (r#"INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('a', '[]') ON CONFLICT DO NOTHING"#.to_string(), "ON CONFLICT"),
    ];
        for (sql, clause) in refused {
            let e = s.sql(&sql).await.unwrap_err();
            assert!(matches!(e, Error::UnsupportedClause { .. }), "{sql}: {e:?}");
            assert!(
                e.to_string().contains(clause) && e.to_string().contains("nothing was sent"),
                "{e}"
            );
        }
        assert_eq!(sim.mutating_requests(), 0);
    })
}

/// Item 7: a bulk roll that includes the session's own token rolls it last, so every
/// other row succeeds, and the session goes on with the new value.
#[test]
fn the_sessions_own_token_is_rolled_last() {
    on_runtime(async {
        let sim = sim_with(20).await;
        let mut c = config(&sim);
        c.concurrency = 4;
        let s = Session::new(c).await.unwrap();
        let admin = strings(
            &s.sql("SELECT id FROM cloudflare.user.tokens_verify")
                .await
                .unwrap(),
            "id",
        )[0]
        .clone();
        let active = strings(
            &s.sql("SELECT id FROM cloudflare.user.tokens WHERE status = 'active' ORDER BY id")
                .await
                .unwrap(),
            "id",
        );
        assert!(active.contains(&admin) && active.len() > 3);
        sim.reset_counts();
        let out = s
        .execute("EXEC cloudflare.user.tokens.update_value @token_id = (SELECT id FROM cloudflare.user.tokens WHERE status = 'active')")
        .await
        .expect("no row fails with 401");
        assert_eq!(rows(&out.batches), active.len());
        let rolled = processed_rolls(&sim);
        assert_eq!(rolled.len(), active.len());
        assert_eq!(
            rolled.last(),
            Some(&admin),
            "the session's own token is rolled after every other"
        );
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains(&admin) && w.contains("this session authenticates with")),
            "{:?}",
            out.warnings
        );
        // Its new value is in the result, works, and the session itself uses it from now on.
        let ids = strings(&out.batches, "id");
        let values = strings(&out.batches, "value");
        let new_admin = &values[ids.iter().position(|i| i == &admin).unwrap()];
        assert_eq!(authenticates_as(&sim, new_admin).await, Some(admin.clone()));
        assert_eq!(
            rows(
                &s.sql("SELECT id FROM cloudflare.user.tokens")
                    .await
                    .unwrap()
            ),
            20
        );

        // DELETE of the session's token with others: the others first, then it, and a note.
        let others: Vec<String> = active
            .iter()
            .filter(|i| **i != admin)
            .take(2)
            .cloned()
            .collect();
        let victims = vec![others[0].clone(), admin.clone(), others[1].clone()];
        sim.reset_counts();
        let out = s
            .execute(&format!(
                "DELETE FROM cloudflare.user.tokens WHERE id IN ({})",
                id_list(&victims)
            ))
            .await
            .unwrap();
        let deletes: Vec<String> = sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path)
            .collect();
        assert_eq!(deletes.len(), 3);
        assert!(deletes[2].ends_with(&admin), "{deletes:?}");
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains("cannot authenticate")),
            "{:?}",
            out.warnings
        );
    })
}

/// Item 8: an id named twice is called once; a NULL id and a repeated @param are errors.
#[test]
fn ids_are_deduplicated_and_null_ids_refused() {
    on_runtime(async {
        let sim = sim_with(10).await;
        let s = session(&sim).await;
        let ids = active_ids(&sim, 2).await;
        let (x, y) = (ids[0].clone(), ids[1].clone());
        let out = s
        .execute(&format!(
            "EXEC cloudflare.user.tokens.roll @token_id = (SELECT id FROM cloudflare.user.tokens WHERE id IN ('{x}', '{y}') UNION ALL SELECT '{x}')"
        ))
        .await
        .unwrap();
        assert_eq!(sim.count("PUT", ROLL), 2, "each token rolled once");
        assert_eq!(rows(&out.batches), 2);
        for v in strings(&out.batches, "value") {
            assert!(
                authenticates_as(&sim, &v).await.is_some(),
                "every returned secret works"
            );
        }
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains(&x) && w.contains("named 2 times")),
            "{:?}",
            out.warnings
        );

        sim.reset_counts();
        s.sql(&format!(
            "DELETE FROM cloudflare.user.tokens WHERE id IN ('{x}', '{x}')"
        ))
        .await
        .unwrap();
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);

        sim.reset_counts();
        let e = s
        .sql(&format!("EXEC cloudflare.user.tokens.roll @token_id = (SELECT '{y}' UNION ALL SELECT CAST(NULL AS VARCHAR))"))
        .await
        .unwrap_err()
        .to_string();
        assert_contains!(e, "@token_id is NULL in row", "nothing was sent");
        let e = s
            .sql(&format!(
                "EXEC cloudflare.user.tokens.roll @token_id = '{x}', @token_id = '{y}'"
            ))
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "@token_id is given twice");
        assert_eq!(sim.mutating_requests(), 0);
        assert_eq!(sim.count("PUT", "/user/tokens/null/value"), 0);
    })
}

/// Item 9: contradictory scopes never widen a DELETE: it matches what the SELECT does.
#[test]
fn contradictory_scopes_never_widen_a_delete() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let (a, other) = (sim.account_ids()[0].clone(), sim.account_ids()[1].clone());
        let z = sim.zone_ids()[0].clone();
        let id = sim.service_token_ids(&a)[0].clone();
        for wher in [
            format!("account_id = '{a}' AND account_id = '{other}' AND id = '{id}'"),
            format!("account_id = '{a}' AND zone_id = '{z}' AND id = '{id}'"),
        ] {
            let sel = s
                .sql(&format!(
                    "SELECT id FROM cloudflare.access.service_tokens WHERE {wher}"
                ))
                .await
                .unwrap();
            assert_eq!(rows(&sel), 0, "{wher}");
            sim.reset_counts();
            let b = s
                .sql(&format!(
                    "DELETE FROM cloudflare.access.service_tokens WHERE {wher}"
                ))
                .await
                .unwrap();
            assert_eq!(rows(&b), 0, "{wher}");
            assert_eq!(sim.mutating_requests(), 0, "{wher}: {:?}", sim.requests());
        }
        // Narrowed to the other account: the DELETE goes there only (and finds nothing).
        sim.reset_counts();
        let e = s
        .sql(&format!(
            "DELETE FROM cloudflare.access.service_tokens WHERE account_id IN ('{a}', '{other}') AND account_id = '{other}' AND id = '{id}'"
        ))
        .await
        .unwrap_err();
        assert_eq!(e.http_status(), Some(404), "{e}");
        let deletes: Vec<String> = sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path)
            .collect();
        assert_eq!(
            deletes,
            vec![format!("/accounts/{other}/access/service_tokens/{id}")]
        );
        assert!(sim.service_token_ids(&a).contains(&id));
    })
}

/// Item 11: the secrets file is never one others can read, nor reached through a link;
/// either is refused before any call.
#[test]
fn secrets_file_must_be_private_and_not_a_link() {
    on_runtime(async {
        use std::os::unix::fs::PermissionsExt;
        let sim = sim_with(5).await;
        let dir = tempfile::tempdir().unwrap();
        let id = sim.user_token_ids()[1].clone();
        let shared = dir.path().join("shared.jsonl");
        std::fs::write(&shared, "").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
        let real = dir.path().join("real.jsonl");
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        for (file, says) in [(&shared, "mode 644"), (&link, "symbolic link")] {
            let mut c = config(&sim);
            c.secrets_file = Some(file.clone());
            let s = Session::new(c).await.unwrap();
            let e = s
                .sql(&format!(
                    "EXEC cloudflare.user.tokens.roll @token_id = '{id}'"
                ))
                .await
                .unwrap_err()
                .to_string();
            assert_contains!(e, says, "nothing was sent");
        }
        assert_eq!(sim.mutating_requests(), 0);
        assert_eq!(std::fs::read_to_string(&shared).unwrap(), "");
        assert!(!real.exists(), "the link was not followed");
        assert_eq!(
            std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777,
            0o644
        );
    })
}

/// The fault run: a 30-token bulk roll under 500s, 429s and dropped connections. Every roll
/// the simulator processed is in the result and the secrets file with a working secret,
/// or reported as "may have taken effect"; no secret handed back is stale.
#[test]
fn bulk_roll_under_faults_loses_no_secret() {
    on_runtime(async {
        let sim = sim_with(40).await;
        let dir = tempfile::tempdir().unwrap();
        let mut c = config_with_files(&sim, dir.path());
        c.concurrency = 4;
        let s = Session::new(c).await.unwrap();
        let targets = strings(
        &s.sql(
            "SELECT id FROM cloudflare.user.tokens WHERE status = 'active' ORDER BY id LIMIT 30",
        )
        .await
        .unwrap(),
        "id",
    );
        assert_eq!(targets.len(), 30);
        sim.set_faults(
        FaultSpec::parse(&format!(
            "429@PUT:{ROLL}=0.15,500@PUT:{ROLL}=0.1,502@PUT:{ROLL}=0.05,drop-before@PUT:{ROLL}=0.1,drop-after@PUT:{ROLL}=0.1,seed=11,retry-after=0"
        ))
        .unwrap(),
    );
        let result = s
        .execute(&format!(
            "EXEC cloudflare.user.tokens.roll @token_id = (SELECT id FROM cloudflare.user.tokens WHERE id IN ({}))",
            id_list(&targets)
        ))
        .await;
        let (batches, outcomes) = match result {
            Ok(out) => (out.batches, Vec::new()),
            Err(Error::PartialFailure {
                succeeded,
                outcomes,
                ..
            }) => (succeeded.0, outcomes),
            Err(e) => panic!("{e}"),
        };
        let ids = strings(&batches, "id");
        let values = strings(&batches, "value");
        let shown: HashMap<String, String> = ids.into_iter().zip(values).collect();
        let maybe: HashSet<String> = outcomes
            .iter()
            .filter(|o| o.state == RowState::MayHaveTakenEffect)
            .filter_map(|o| o.id.clone())
            .collect();
        let filed = secrets_in(&dir.path().join("secrets.jsonl"));
        let processed = processed_rolls(&sim);
        assert!(
            processed.len() >= 10,
            "the faults left work done: {}",
            processed.len()
        );
        let processed_set: HashSet<&String> = processed.iter().collect();
        assert_eq!(
            processed.len(),
            processed_set.len(),
            "no roll was sent twice"
        );
        for id in &processed {
            match shown.get(id) {
                Some(secret) => {
                    assert_eq!(
                        filed.get(id),
                        Some(secret),
                        "{id}: in the result but not in the secrets file"
                    );
                    assert_eq!(
                        authenticates_as(&sim, secret).await.as_ref(),
                        Some(id),
                        "{id}: the secret handed back works"
                    );
                }
                None => assert!(
                    maybe.contains(id),
                    "{id} was rolled, but is neither in the result nor reported as may-have-taken-effect"
                ),
            }
        }
        for id in shown.keys() {
            assert!(
                processed_set.contains(id),
                "{id} is in the result but was never processed"
            );
        }
        assert!(
            !maybe.is_empty(),
            "the seed drops some answers after processing"
        );
    })
}

/// Item 1 for creates and rotates, through the library's cancel: no new call after the
/// cancel, the ones sent are kept (rows and secrets file), the rest are "not attempted".
#[test]
fn cancel_keeps_the_creates_and_rotates_already_sent() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            service_tokens: 12,
            accounts: 1,
            ..SeedOptions::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut c = config_with_files(&sim, dir.path());
        c.concurrency = 2;
        let s = std::sync::Arc::new(Session::new(c).await.unwrap());
        let a = sim.account_ids()[0].clone();
        let statements = [
            (
                format!(
                    "INSERT INTO cloudflare.access.service_tokens (account_id, name) SELECT '{a}', 'bulk-' || CAST(v AS VARCHAR) FROM unnest(range(1, 21)) AS t(v)"
                ),
                "POST",
                "/accounts/{account_id}/access/service_tokens",
            ),
            (
                format!(
                    "EXEC cloudflare.access.service_tokens.rotate @account_id = '{a}', @service_token_id = (SELECT id FROM cloudflare.access.service_tokens WHERE account_id = '{a}' AND name NOT LIKE 'bulk-%')"
                ),
                "POST",
                "/accounts/{account_id}/access/service_tokens/{service_token_id}/rotate",
            ),
        ];
        for (sql, method, route) in statements {
            std::fs::remove_file(dir.path().join("secrets.jsonl")).ok();
            sim.reset_counts();
            sim.set_latency_ms(150);
            let cancel = cfql::Cancel::new();
            let run = {
                let (s, cancel) = (s.clone(), cancel.clone());
                tokio::spawn(async move { s.execute_with(&sql, &cancel).await })
            };
            let processed = || {
                sim.requests()
                    .into_iter()
                    .filter(|r| r.method == method && r.route == route && r.status.is_some())
                    .count()
            };
            while processed() < 3 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            cancel.cancel();
            let e = run.await.unwrap().unwrap_err();
            sim.set_latency_ms(0);
            let Error::PartialFailure {
                succeeded,
                detail,
                total,
                ..
            } = &e
            else {
                panic!("{e:?}")
            };
            let done = processed();
            assert!(detail.cancelled && done < *total, "{e}");
            assert_eq!(
                rows(succeeded),
                done,
                "every call that was processed is in the result"
            );
            assert_eq!(detail.not_attempted, total - done, "{e}");
            assert_eq!(
                sim.count(method, route) as usize,
                done,
                "no call started after the cancel"
            );
            let filed = secrets_in(&dir.path().join("secrets.jsonl"));
            assert_eq!(filed.len(), done);
            for (id, secret) in strings(succeeded, "id")
                .into_iter()
                .zip(strings(succeeded, "client_secret"))
            {
                assert_eq!(filed.get(&id), Some(&secret));
            }
            assert!(
                e.to_string()
                    .contains(&format!("cancelled: {done} of {total} rows took effect")),
                "{e}"
            );
        }
    })
}

/// Item 7 with an account-owned token: the account's verify endpoint names it, and its
/// own roll runs last.
#[test]
fn an_account_owned_token_rolls_itself_last() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let admin = session(&sim).await;
        let a = sim.account_ids()[0].clone();
        let policies = r#"[{"effect":"allow","resources":{"com.cloudflare.api.account.*":"*"},"permission_groups":[{"id":"c8fed203ed3043cba015a93ad1616f1f"}]}]"#;
        let b = admin
        .sql(&format!("INSERT INTO cloudflare.accounts.tokens (account_id, name, policies) VALUES ('{a}', 'ci-account-bot', '{policies}')"))
        .await
        .unwrap();
        let (own, secret) = (
            strings(&b, "id")[0].clone(),
            strings(&b, "value")[0].clone(),
        );
        let mut c = Config::new(sim.base_url()).with_api_token(secret);
        c.concurrency = 4;
        let bot = Session::new(c).await.unwrap();
        sim.reset_counts();
        let out = bot
        .execute(&format!("EXEC cloudflare.accounts.tokens.roll_token @account_id = '{a}', @token_id = (SELECT id FROM cloudflare.accounts.tokens WHERE account_id = '{a}' AND status = 'active')"))
        .await
        .expect("no row fails with 401");
        let rolls: Vec<String> = sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .map(|r| r.path)
            .collect();
        assert!(rolls.len() > 1);
        assert_eq!(
            rolls.last(),
            Some(&format!("/accounts/{a}/tokens/{own}/value")),
            "{rolls:?}"
        );
        assert_eq!(sim.count("GET", "/accounts/{account_id}/tokens/verify"), 1);
        assert!(
            out.warnings.iter().any(|w| w.contains(&own)),
            "{:?}",
            out.warnings
        );
        // The bot goes on with its new value.
        assert!(
            bot.sql(&format!(
                "SELECT id FROM cloudflare.accounts.tokens WHERE account_id = '{a}'"
            ))
            .await
            .is_ok()
        );
    })
}

/// A program that drops a write's future (a timeout, a task aborted) loses nothing: the
/// rolls already sent finish and their secrets reach the secrets file; no new roll starts.
#[test]
fn a_dropped_statement_future_keeps_the_secrets_of_the_rolls_in_flight() {
    on_runtime(async {
        let sim = sim_with(60).await;
        let targets = active_ids(&sim, 20).await;
        sim.set_latency_ms(150);
        let dir = tempfile::tempdir().unwrap();
        let mut c = config_with_files(&sim, dir.path());
        c.concurrency = 2;
        let s = Session::new(c).await.unwrap();
        // The ids come from VALUES, so the statement's time goes to the rolls alone.
        let values: Vec<String> = targets.iter().map(|t| format!("('{t}')")).collect();
        let sql = format!(
            "EXEC cloudflare.user.tokens.roll @token_id = (SELECT column1 FROM (VALUES {}))",
            values.join(", ")
        );
        let run =
            tokio::time::timeout(std::time::Duration::from_millis(700), s.execute(&sql)).await;
        assert!(
            run.is_err(),
            "the roll was still running when it was dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let processed = processed_rolls(&sim);
        assert!((1..20).contains(&processed.len()), "{}", processed.len());
        let filed = secrets_in(&dir.path().join("secrets.jsonl"));
        for id in &processed {
            let secret = filed
                .get(id)
                .unwrap_or_else(|| panic!("the secret of {id} is on disk"));
            assert_eq!(
                authenticates_as(&sim, secret).await.as_deref(),
                Some(id.as_str())
            );
        }
        assert_eq!(filed.len(), processed.len());
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert_eq!(
            processed_rolls(&sim).len(),
            processed.len(),
            "no roll started after the drop"
        );
    })
}
