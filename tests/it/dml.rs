//! DataFusion's own DML through a plain `SessionContext` that `cfql::register` set up (the
//! BI-tool / host-program path): the same write plan as cfql's statements, the same
//! validation and safety rules, and exactly the calls the statement names.

use std::time::Duration;

use cfql::datafusion::prelude::SessionContext;
use cfql::sim::Simulator;
use cfql::{Config, Error};

use crate::common::*;
use crate::trust::{authenticates_as, secrets_in};

const POLICIES: &str = r#"[{"effect":"allow","resources":{},"permission_groups":[]}]"#;

fn context(config: Config) -> SessionContext {
    let ctx = SessionContext::new();
    cfql::register(&ctx, config).expect("register");
    ctx
}

/// Runs a statement through DataFusion and returns its `count`, or cfql's error.
async fn run(ctx: &SessionContext, sql: &str) -> Result<u64, Error> {
    let df = ctx.sql(sql).await.map_err(Error::from)?;
    let batches = df.collect().await.map_err(Error::from)?;
    Ok(scalar(&batches).parse().expect("a count"))
}

/// Ids of `n` user tokens other than the session's own.
async fn some_ids(sim: &Simulator, n: usize) -> Vec<String> {
    let s = session(sim).await;
    let me = strings(
        &s.sql("SELECT id FROM cloudflare.user.tokens_verify")
            .await
            .unwrap(),
        "id",
    )[0]
    .clone();
    let ids = strings(
        &s.sql(&format!(
            "SELECT id FROM cloudflare.user.tokens WHERE id <> '{me}' ORDER BY id LIMIT {n}"
        ))
        .await
        .unwrap(),
        "id",
    );
    sim.reset_counts();
    ids
}

#[test]
fn delete_by_id_makes_exactly_one_delete_call() {
    on_runtime(async {
        let sim = sim_with(20).await;
        let id = some_ids(&sim, 1).await.remove(0);
        let ctx = context(config(&sim));
        let before = sim.user_token_count();
        assert_eq!(
            run(
                &ctx,
                &format!("DELETE FROM cloudflare.user.tokens WHERE id = '{id}'")
            )
            .await
            .unwrap(),
            1
        );
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);
        assert_eq!(
            sim.count("GET", "/user/tokens") + sim.count("GET", "/user/tokens/{token_id}"),
            0,
            "no list, no read"
        );
        assert_eq!(
            sim.total_requests(),
            2,
            "the DELETE and the check of which token is the session's own: {:?}",
            sim.requests()
        );
        assert_eq!(sim.user_token_count(), before - 1);
        assert!(!sim.user_token_ids().contains(&id));
    })
}

#[test]
fn delete_by_another_column_deletes_only_the_rows_that_match() {
    on_runtime(async {
        let sim = sim_with(40).await;
        let s = session(&sim).await;
        let disabled = strings(
            &s.sql("SELECT id FROM cloudflare.user.tokens WHERE status = 'disabled'")
                .await
                .unwrap(),
            "id",
        );
        assert!(!disabled.is_empty(), "the sample data has disabled tokens");
        sim.reset_counts();
        let ctx = context(config(&sim));
        let n = run(
            &ctx,
            "DELETE FROM cloudflare.user.tokens WHERE status = 'disabled'",
        )
        .await
        .unwrap();
        assert_eq!(n as usize, disabled.len());
        assert_eq!(
            sim.count("DELETE", "/user/tokens/{token_id}") as usize,
            disabled.len()
        );
        let left = sim.user_token_ids();
        assert!(disabled.iter().all(|d| !left.contains(d)));
        let still = strings(
            &s.sql("SELECT status FROM cloudflare.user.tokens")
                .await
                .unwrap(),
            "status",
        );
        assert!(
            still.iter().all(|st| st != "disabled") && !still.is_empty(),
            "{still:?}"
        );
    })
}

#[test]
fn update_reads_modifies_and_writes_the_whole_object() {
    on_runtime(async {
        let sim = sim_with(10).await;
        let id = some_ids(&sim, 1).await.remove(0);
        let s = session(&sim).await;
        let before = s
            .sql(&format!(
                "SELECT name, policies, expires_on FROM cloudflare.user.tokens WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        sim.reset_counts();
        let ctx = context(config(&sim));
        let n = run(&ctx, &format!("UPDATE cloudflare.user.tokens SET status = 'disabled', name = name || '-off' WHERE id = '{id}'"))
        .await
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(sim.count("GET", "/user/tokens/{token_id}"), 1, "read by id");
        assert_eq!(sim.count("GET", "/user/tokens"), 0, "no list");
        assert_eq!(sim.count("PUT", "/user/tokens/{token_id}"), 1);
        let put = sim
            .requests()
            .into_iter()
            .find(|r| r.method == "PUT")
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&put.body).unwrap();
        let old_name = strings(&before, "name")[0].clone();
        assert_eq!(body["name"], format!("{old_name}-off"));
        assert_eq!(body["status"], "disabled");
        assert_eq!(
            body["policies"].to_string(),
            serde_json::from_str::<serde_json::Value>(&strings(&before, "policies")[0])
                .unwrap()
                .to_string()
        );
        let after = s
            .sql(&format!(
                "SELECT status, expires_on FROM cloudflare.user.tokens WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&after, "status"), vec!["disabled"]);
        assert_eq!(
            col(&after, "expires_on"),
            col(&before, "expires_on"),
            "fields not assigned are kept"
        );
    })
}

#[test]
fn writes_that_would_reach_past_their_where_are_refused_with_nothing_sent() {
    on_runtime(async {
        let sim = sim_with(10).await;
        let ctx = context(config(&sim));
        for sql in [
            "DELETE FROM cloudflare.user.tokens",
            "UPDATE cloudflare.user.tokens SET status = 'disabled'",
        ] {
            let e = run(&ctx, sql).await.unwrap_err().to_string();
            assert!(
                e.contains("without WHERE would change every row of cloudflare.user.tokens"),
                "{sql}: {e}"
            );
            assert_contains!(e, "Config::allow_unfiltered_writes");
        }
        // DataFusion would hand the table only `status = 'active'` here (the subquery is
        // decorrelated into a join), so a DELETE of the subquery's one row would delete every
        // active token: refused before planning goes on.
        let sql = "DELETE FROM cloudflare.user.tokens WHERE status = 'active' AND id IN (SELECT id FROM cloudflare.user.tokens ORDER BY id LIMIT 1)";
        let e = run(&ctx, sql).await.unwrap_err().to_string();
        assert_contains!(
            e,
            "no subquery or join",
            "Nothing was sent",
            "cfql::Session"
        );
        let e = run(
            &ctx,
            "UPDATE cloudflare.user.tokens SET name = (SELECT 'x') WHERE status = 'active'",
        )
        .await
        .unwrap_err()
        .to_string();
        assert_contains!(e, "no subquery or join");
        let e = run(
            &ctx,
            "UPDATE cloudflare.user.tokens SET issued_on = now() WHERE status = 'active'",
        )
        .await
        .unwrap_err()
        .to_string();
        assert_contains!(e, "column 'issued_on' cannot be changed");
        assert_eq!(sim.mutating_requests(), 0);
        assert_eq!(
            sim.total_requests(),
            0,
            "refused before any read: {:?}",
            sim.requests()
        );
    })
}

#[test]
fn an_invalid_row_refuses_the_update_and_names_the_row() {
    on_runtime(async {
        let sim = sim_with(10).await;
        let ids = some_ids(&sim, 2).await;
        let ctx = context(config(&sim));
        let long = "n".repeat(121);
        let sql = format!(
            "UPDATE cloudflare.user.tokens SET name = '{long}' WHERE id IN ('{}', '{}')",
            ids[0], ids[1]
        );
        let e = match ctx
            .sql(&sql)
            .await
            .unwrap()
            .collect()
            .await
            .map_err(Error::from)
        {
            Err(e) => e,
            Ok(_) => panic!("an over-long name must be refused"),
        };
        let Error::RowsRejected { rows, .. } = &e else {
            panic!("typed: {e:?}")
        };
        assert_eq!(rows.len(), 2);
        assert!(
            e.to_string().contains("longer than 120 characters")
                && e.to_string().contains("nothing was changed"),
            "{e}"
        );
        assert_eq!(sim.mutating_requests(), 0);
    })
}

#[test]
fn insert_needs_somewhere_to_put_the_secret_and_then_keeps_every_one() {
    on_runtime(async {
        let sim = sim_with(3).await;
        let sql = format!(
            "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('dml-a', '{POLICIES}'), ('dml-b', '{POLICIES}')"
        );
        let e = run(&context(config(&sim)), &sql)
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(
            e,
            "returns only a count, so the new secrets would be lost",
            "Config::secrets_file"
        );
        assert_eq!(sim.mutating_requests(), 0);

        let dir = tempfile::tempdir().unwrap();
        let mut c = config(&sim);
        c.secrets_file = Some(dir.path().join("secrets.jsonl"));
        assert_eq!(run(&context(c), &sql).await.unwrap(), 2);
        assert_eq!(sim.count("POST", "/user/tokens"), 2);
        let secrets = secrets_in(&dir.path().join("secrets.jsonl"));
        assert_eq!(secrets.len(), 2);
        for (id, secret) in &secrets {
            assert_eq!(
                authenticates_as(&sim, secret).await.as_deref(),
                Some(id.as_str())
            );
        }
    })
}

#[test]
fn a_dropped_write_stops_starting_calls_and_records_the_ones_in_flight() {
    on_runtime(async {
        let sim = sim_with(3).await;
        sim.set_latency_ms(150);
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(&sim);
        c.secrets_file = Some(dir.path().join("secrets.jsonl"));
        c.concurrency = 2;
        let ctx = context(c);
        let values: Vec<String> = (0..20)
            .map(|i| format!("('drop-{i}', '{POLICIES}')"))
            .collect();
        let df = ctx
            .sql(&format!(
                "INSERT INTO cloudflare.user.tokens (name, policies) VALUES {}",
                values.join(", ")
            ))
            .await
            .unwrap();
        // DataFusion cancels a query by dropping its stream; here after about two rounds of calls.
        let collect = tokio::time::timeout(Duration::from_millis(400), df.collect()).await;
        assert!(
            collect.is_err(),
            "the write was still running when it was dropped"
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        let created = sim.count("POST", "/user/tokens") as usize;
        assert!(
            (1..20).contains(&created),
            "some creates were sent, not all: {created}"
        );
        let secrets = secrets_in(&dir.path().join("secrets.jsonl"));
        assert_eq!(
            secrets.len(),
            created,
            "every create that was sent has its secret on disk"
        );
        for secret in secrets.values() {
            assert!(authenticates_as(&sim, secret).await.is_some());
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            sim.count("POST", "/user/tokens") as usize,
            created,
            "no call started after the drop"
        );
    })
}

#[test]
fn explain_shows_the_write_plan_and_dry_run_sends_nothing() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let id = some_ids(&sim, 1).await.remove(0);
        let ctx = context(config(&sim));
        let plan = ctx
            .sql(&format!(
                "EXPLAIN DELETE FROM cloudflare.user.tokens WHERE id = '{id}'"
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = strings(&plan, "plan").join("\n");
        assert_contains!(
            text,
            "WriteExec: DELETE cloudflare.user.tokens via DELETE /user/tokens/{token_id}, 1 call(s) planned, no read"
        );
        assert_eq!(sim.mutating_requests(), 0);

        let mut c = config(&sim);
        c.dry_run = true;
        let b = context(c)
            .sql(&format!(
                "DELETE FROM cloudflare.user.tokens WHERE id = '{id}'"
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(strings(&b, "path"), vec![format!("/user/tokens/{id}")]);
        assert_eq!(sim.mutating_requests(), 0);
    })
}

/// A write that partly fails comes back from DataFusion as cfql's `PartialFailure`, with
/// every row's outcome and the rows that took effect (their secrets included).
#[test]
fn a_partial_failure_keeps_every_outcome_and_secret_through_datafusion() {
    on_runtime(async {
        let sim = sim_with(3).await;
        sim.set_faults(cfql::sim::FaultSpec::parse("500@POST:/user/tokens#2").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(&sim);
        c.secrets_file = Some(dir.path().join("secrets.jsonl"));
        c.concurrency = 1;
        let ctx = context(c);
        let values: Vec<String> = (0..3)
            .map(|i| format!("('partial-{i}', '{POLICIES}')"))
            .collect();
        let sql = format!(
            "INSERT INTO cloudflare.user.tokens (name, policies) VALUES {}",
            values.join(", ")
        );
        let e = run(&ctx, &sql).await.unwrap_err();
        let Error::PartialFailure {
            failed,
            total,
            outcomes,
            succeeded,
            detail,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!((*failed, *total, detail.uncertain), (1, 3, 1), "{e}");
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| o.state == cfql::RowState::MayHaveTakenEffect)
                .count(),
            1
        );
        let secrets = strings(succeeded, "value");
        assert_eq!(secrets.len(), 2);
        let filed = secrets_in(&dir.path().join("secrets.jsonl"));
        assert_eq!(filed.len(), 2);
        for s in &secrets {
            assert!(
                filed.values().any(|f| f == s),
                "each returned secret is on disk"
            );
            assert!(authenticates_as(&sim, s).await.is_some());
        }
        assert_contains!(e.to_string(), "may have taken effect");
    })
}
