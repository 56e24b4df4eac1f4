//! Several credentials in one session: the `connection` column, pruning by it, one row per
//! object across connections, loud failures, writes routed through each row's credential,
//! and the CLI's repeated and aggregate profiles, `cfql check` and `cfql serve` over them.
//! The simulator plays three users (`SeedOptions::users`): account i belongs to user
//! i mod 3, and the first account is shared with user 2.

use cfql::sim::{SeedOptions, Simulator};
use cfql::{Config, FanoutErrors, Session};

use crate::cli::{cfql, run};
use crate::common::*;

/// Three users, six accounts (two of each, the first shared by users 1 and 2), two
/// account tokens per account, three user tokens per user.
fn seed() -> SeedOptions {
    SeedOptions {
        users: 3,
        accounts: 6,
        tokens: 3,
        account_tokens: 2,
        service_tokens: 1,
        ..SeedOptions::default()
    }
}

/// User `n`'s configuration (no cache: the tests count calls).
fn user(sim: &Simulator, n: usize) -> Config {
    let mut c = config(sim);
    c.credentials = Some(cfql::Credentials::ApiToken(
        sim.admin_token_of(n).expect("a user"),
    ));
    c
}

/// A session over users 1, 2 and 3 named a, b and c, in that order.
async fn abc(sim: &Simulator, tune: impl Fn(&mut Config)) -> Session {
    let named = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut c = user(sim, i + 1);
            tune(&mut c);
            (n.to_string(), c)
        })
        .collect();
    Session::with_connections(named).await.expect("session")
}

/// The users (1, 2, 3) whose credentials made the logged calls after `from`.
fn callers(sim: &Simulator, from: u64) -> Vec<String> {
    let mut users: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.seq > from)
        .map(|r| {
            r.caller
                .split(" token")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    users.sort();
    users.dedup();
    users
}

/// A config file with profiles u1, u2 and u3 (the simulator's three users), then `more`.
fn profiles(sim: &Simulator, more: &str) -> String {
    let mut text = String::new();
    for n in 1..=3 {
        text.push_str(&format!(
            "[u{n}]\napi_token = \"{}\"\nbase_url = \"{}\"\n",
            sim.admin_token_of(n).unwrap(),
            sim.base_url()
        ));
    }
    text + more
}

fn last_seq(sim: &Simulator) -> u64 {
    sim.requests().last().map_or(0, |r| r.seq)
}

#[test]
fn each_row_names_its_connection_and_a_shared_account_is_read_once() {
    on_runtime(async {
        let sim = sim_opts(seed()).await;
        let s = abc(&sim, |_| {}).await;
        let before = sim.count("GET", "/accounts/{account_id}/tokens");
        let out = s
            .execute(
                "SELECT connection, account_id, id FROM cloudflare.audit.credentials \
                 WHERE kind = 'account_token' ORDER BY connection, account_id",
            )
            .await
            .unwrap();
        let b = &out.batches;
        assert_eq!(rows(b), 12, "6 accounts x 2 tokens, each once");
        let conns = strings(b, "connection");
        for (name, n) in [("a", 4), ("b", 4), ("c", 4)] {
            assert_eq!(conns.iter().filter(|c| *c == name).count(), n, "{conns:?}");
        }
        // The shared account (the first) is read through a, the first connection seeing it.
        let shared = &sim.account_ids()[0];
        let accounts = strings(b, "account_id");
        let via: Vec<&String> = accounts
            .iter()
            .zip(&conns)
            .filter(|(acc, _)| *acc == shared)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(via, ["a", "a"]);
        assert_eq!(
            sim.count("GET", "/accounts/{account_id}/tokens") - before,
            6,
            "one listing per account: the shared one is not read twice"
        );
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains("1 scope(s) seen through several connections")),
            "{:?}",
            out.warnings
        );
        // Named in another order, the shared account comes through b.
        let named = vec![
            ("b".to_string(), user(&sim, 2)),
            ("a".to_string(), user(&sim, 1)),
        ];
        let s = Session::with_connections(named).await.unwrap();
        let sql = format!(
            "SELECT DISTINCT connection FROM cloudflare.accounts.tokens WHERE account_id = '{shared}'"
        );
        assert_eq!(strings(&s.sql(&sql).await.unwrap(), "connection"), ["b"]);
        // User tokens: each user's own, named by its connection; accounts once each.
        let s = abc(&sim, |_| {}).await;
        let b = s
            .sql("SELECT connection, count(*) AS n FROM cloudflare.user.tokens GROUP BY connection ORDER BY connection")
            .await
            .unwrap();
        assert_eq!(
            col(&b, "n"),
            [Some("3".into()), Some("3".into()), Some("3".into())]
        );
        let b = s
            .sql("SELECT connection, count(*) AS n FROM cloudflare.accounts.accounts GROUP BY connection ORDER BY connection")
            .await
            .unwrap();
        assert_eq!(strings(&b, "connection"), ["a", "b", "c"]);
        assert_eq!(
            col(&b, "n"),
            [Some("2".into()), Some("2".into()), Some("2".into())]
        );
    });
}

#[test]
fn a_where_on_connection_makes_no_call_through_the_others() {
    on_runtime(async {
        let sim = sim_opts(seed()).await;
        let s = abc(&sim, |_| {}).await;
        for (filter, users) in [
            ("connection = 'b'", vec!["user 2"]),
            ("connection LIKE 'c%'", vec!["user 3"]),
            ("connection IN ('a', 'c')", vec!["user 1", "user 3"]),
            ("connection <> 'a' AND connection <> 'b'", vec!["user 3"]),
        ] {
            let from = last_seq(&sim);
            let sql = format!(
                "SELECT DISTINCT connection FROM cloudflare.audit.credentials WHERE {filter}"
            );
            let b = s.sql(&sql).await.unwrap();
            assert_eq!(callers(&sim, from), users, "{filter}");
            assert_eq!(strings(&b, "connection").len(), users.len(), "{filter}");
        }
        let total = sim.total_requests();
        let b = s
            .sql("SELECT count(*) FROM cloudflare.user.tokens WHERE connection = 'nobody'")
            .await
            .unwrap();
        assert_eq!(scalar(&b), "0");
        assert_eq!(sim.total_requests(), total, "no connection, no call");
        let plan = s
            .sql("EXPLAIN SELECT * FROM cloudflare.accounts.tokens WHERE connection IN ('b', 'c')")
            .await
            .unwrap();
        assert_contains!(strings(&plan, "plan").join("\n"), "connections=[b, c]");
    });
}

#[test]
fn a_pinned_account_is_read_through_a_connection_that_has_it() {
    on_runtime(async {
        let sim = sim_opts(seed()).await;
        let s = abc(&sim, |_| {}).await;
        let third = &sim.accounts_of(3)[0];
        let from = last_seq(&sim);
        let b = s
            .sql(&format!(
                "SELECT connection, count(*) AS n FROM cloudflare.accounts.tokens WHERE account_id = '{third}' GROUP BY connection"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "connection"), ["c"]);
        assert_eq!(col(&b, "n"), [Some("2".into())]);
        let refused = sim
            .requests()
            .into_iter()
            .filter(|r| r.seq > from && r.status == Some(403))
            .count();
        assert_eq!(
            refused, 0,
            "no connection asked for an account it is not in"
        );
    });
}

#[test]
fn a_revoked_credential_fails_the_statement_by_name_or_warns_in_warn_mode() {
    on_runtime(async {
        let sim = sim_opts(seed()).await;
        assert!(sim.revoke_admin_of(2));
        let s = abc(&sim, |_| {}).await;
        let e = s
            .sql("SELECT * FROM cloudflare.audit.credentials")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "connection 'b' failed", "401", "connection <> 'b'");
        let s = abc(&sim, |c| c.fanout_errors = FanoutErrors::Warn).await;
        let out = s
            .execute(
                "SELECT DISTINCT connection FROM cloudflare.accounts.tokens ORDER BY connection",
            )
            .await
            .unwrap();
        assert_eq!(strings(&out.batches, "connection"), ["a", "c"]);
        let w = out.warnings.join("\n");
        assert_contains!(
            w,
            "connection 'b' failed",
            "HTTP 401",
            "their rows are missing"
        );
        // Leaving it out by name is a whole answer.
        let out = s
            .execute("SELECT count(*) FROM cloudflare.user.tokens WHERE connection <> 'b'")
            .await
            .unwrap();
        assert_eq!(scalar(&out.batches), "6");
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    });
}

#[test]
fn an_update_across_two_connections_writes_each_row_through_its_own_credential() {
    on_runtime(async {
        let sim = sim_opts(seed()).await;
        let s = abc(&sim, |_| {}).await;
        let b = s
            .sql("SELECT id, connection FROM cloudflare.user.tokens WHERE name = 'ci-deploy' AND connection IN ('a', 'c') ORDER BY connection")
            .await
            .unwrap();
        let ids = strings(&b, "id");
        assert_eq!(ids.len(), 2);
        // A dry run names the credential each call would go through.
        let listed = s
            .sql("EXPLAIN UPDATE cloudflare.user.tokens SET name = 'ci-deploy-2' WHERE name = 'ci-deploy' AND connection IN ('a', 'c')")
            .await
            .unwrap();
        let mut via = strings(&listed, "connection");
        via.sort();
        assert_eq!(via, ["a", "c"]);
        let from = last_seq(&sim);
        let out = s
            .execute("UPDATE cloudflare.user.tokens SET name = 'ci-deploy-2' WHERE name = 'ci-deploy' AND connection IN ('a', 'c') RETURNING id")
            .await
            .unwrap();
        assert_eq!(rows(&out.batches), 2);
        let puts: Vec<(String, String)> = sim
            .requests()
            .into_iter()
            .filter(|r| r.seq > from && r.method == "PUT")
            .map(|r| (r.path, r.caller.split(" token").next().unwrap().to_string()))
            .collect();
        assert_eq!(puts.len(), 2, "{puts:?}");
        for (id, user) in ids.iter().zip(["user 1", "user 3"]) {
            assert!(
                puts.contains(&(format!("/user/tokens/{id}"), user.to_string())),
                "{id} through {user}: {puts:?}"
            );
        }
        let b = s
            .sql("SELECT connection FROM cloudflare.user.tokens WHERE name = 'ci-deploy-2' ORDER BY connection")
            .await
            .unwrap();
        assert_eq!(strings(&b, "connection"), ["a", "c"]);
    });
}

#[test]
fn exec_and_insert_under_two_connections_must_name_one_before_any_call() {
    on_runtime(async {
        let sim = sim_opts(seed()).await;
        let dir = tempfile::tempdir().unwrap();
        let (secrets, audit) = (dir.path().join("s.jsonl"), dir.path().join("a.jsonl"));
        let s = abc(&sim, |c| {
            c.secrets_file = Some(secrets.clone());
            c.audit_log = Some(audit.clone());
        })
        .await;
        let b = s
            .sql("SELECT id FROM cloudflare.user.tokens WHERE name = 'ci-deploy' AND connection = 'b'")
            .await
            .unwrap();
        let id = scalar(&b);
        let total = sim.total_requests();
        let e = s
            .sql(&format!(
                "EXEC cloudflare.user.tokens.update_value @token_id = (SELECT id FROM cloudflare.user.tokens WHERE id = '{id}')"
            ))
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(
            e,
            "several connections are active (a, b, c)",
            "@connection='<name>'"
        );
        let e = s
            .sql("INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('new', '[]')")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "several connections are active", "connection column");
        assert_eq!(sim.total_requests(), total, "nothing was sent");
        let e = s
            .sql(&format!(
                "EXEC cloudflare.user.tokens.update_value @token_id = '{id}', @connection = 'z'"
            ))
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "there is no connection 'z'", "a, b, c");
        let from = last_seq(&sim);
        let out = s
            .execute(&format!(
                "EXEC cloudflare.user.tokens.update_value @token_id = '{id}', @connection = 'b'"
            ))
            .await
            .unwrap();
        assert_eq!(rows(&out.batches), 1);
        assert_eq!(callers(&sim, from), ["user 2"]);
        // The secrets file and the audit log say whose credential it is.
        let last = |p: &std::path::Path| -> serde_json::Value {
            let text = std::fs::read_to_string(p).unwrap();
            serde_json::from_str(text.lines().last().unwrap()).unwrap()
        };
        let secret = last(&secrets);
        assert_eq!(
            (secret["id"].as_str(), secret["connection"].as_str()),
            (Some(id.as_str()), Some("b"))
        );
        assert_eq!(last(&audit)["connection"], "b");
    });
}

#[test]
fn profiles_given_twice_or_by_an_aggregate_read_through_each_in_the_cli() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_opts(seed()));
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("cfql.toml");
    std::fs::write(
        &file,
        profiles(
            &sim,
            "[all]\nprofiles = [\"u*\"]\n[two]\nprofiles = [\"u3\", \"u1\"]\n",
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let sql = "SELECT connection, count(*) AS n FROM cloudflare.user.tokens GROUP BY connection ORDER BY connection";
    // `cfql --config FILE --profile P ... --format csv -c SQL`.
    let csv = |profiles: &[&str], sql: &str| {
        let mut c = cfql(home.path());
        c.args(["--config", file]);
        for p in profiles {
            c.args(["--profile", p]);
        }
        run(c.args(["--format", "csv", "-c", sql]))
    };
    let (code, out, err) = csv(&["all"], sql);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "connection,n\nu1,3\nu2,3\nu3,3\n");
    let (code, out, err) = csv(&["u2", "two"], sql);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "connection,n\nu1,3\nu2,3\nu3,3\n");
    // One profile: its name is the connection.
    let (code, out, err) = csv(
        &["u2"],
        "SELECT DISTINCT connection FROM cloudflare.user.tokens",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "connection\nu2\n");
    let (code, _, err) =
        run(cfql(home.path()).args(["--config", file, "--profile", "nope*", "-c", "SELECT 1"]));
    assert_eq!(code, 2);
    assert_contains!(err, "no profile matches nope*");
    // cfql check: a control that lost a connection (warn mode) is an error, never ok.
    sim.revoke_admin_of(3);
    std::fs::write(
        home.path().join("cfql.toml"),
        profiles(
            &sim,
            "[all]\nprofiles = [\"u*\"]\nfanout_errors = \"warn\"\n",
        ),
    )
    .unwrap();
    let control = home.path().join("c.sql");
    std::fs::write(
        &control,
        "-- User tokens named nothing\n-- @id: named-nothing\nSELECT id FROM cloudflare.user.tokens WHERE name = 'no such name';\n",
    )
    .unwrap();
    let (code, out, err) = run(cfql(home.path()).args([
        "check",
        "--config",
        file,
        "--profile",
        "all",
        "-f",
        control.to_str().unwrap(),
    ]));
    assert_ne!(code, 0, "{out}{err}");
    assert_contains!(format!("{out}{err}"), "connection 'u3' failed", "partial");
    drop(rt);
}

#[test]
fn serve_answers_over_every_connection_with_the_same_column() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_opts(seed()));
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("cfql.toml");
    std::fs::write(
        &file,
        profiles(&sim, "[all]\nprofiles = [\"u1\", \"u2\", \"u3\"]\n"),
    )
    .unwrap();
    let served = crate::serve_limits::Process::start(
        &["--config", file.to_str().unwrap(), "--profile", "all"],
        &[],
    );
    let dsn = format!(
        "host=127.0.0.1 port={} dbname=cloudflare user=cfql",
        served.port
    );
    let out = std::process::Command::new("psql")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", &dsn, "-c"])
        .arg("SELECT connection, count(*) FROM cloudflare.audit.credentials WHERE kind = 'account_token' GROUP BY connection ORDER BY connection")
        .output()
        .expect("psql is installed (.ci/run installs postgresql-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "u1|4\nu2|4\nu3|4\n");
    drop(rt);
}

#[test]
fn dml_through_register_routes_by_connection_and_hostile_names_match_nothing() {
    on_runtime(async {
        let sim = sim_opts(seed()).await;
        let ctx = cfql::datafusion::prelude::SessionContext::new();
        let named = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), user(&sim, i + 1)))
            .collect();
        cfql::register_connections(&ctx, named).unwrap();
        let count = |sql: String| {
            let ctx = ctx.clone();
            async move {
                let b = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                scalar(&b)
            }
        };
        // A name an attacker would choose is a value compared, never SQL: no connection
        // matches, no call is made, nothing is deleted.
        for hostile in [r"\' OR true --", "a' OR '1'='1", "%", "a\u{0}"] {
            let total = sim.total_requests();
            let lit = hostile.replace('\'', "''");
            let n = count(format!(
                "DELETE FROM cloudflare.user.tokens WHERE name = 'ci-deploy' AND connection = '{lit}'"
            ))
            .await;
            assert_eq!(n, "0", "{hostile}");
            assert_eq!(sim.total_requests(), total, "{hostile}: no call");
        }
        let from = last_seq(&sim);
        let n = count(
            "DELETE FROM cloudflare.user.tokens WHERE name = 'ci-deploy' AND connection = 'b'"
                .into(),
        )
        .await;
        assert_eq!(n, "1");
        let deletes: Vec<String> = sim
            .requests()
            .into_iter()
            .filter(|r| r.seq > from && r.method == "DELETE")
            .map(|r| r.caller.split(" token").next().unwrap().to_string())
            .collect();
        assert_eq!(deletes, ["user 2"]);
        let left =
            count("SELECT count(*) FROM cloudflare.user.tokens WHERE name = 'ci-deploy'".into())
                .await;
        assert_eq!(left, "2", "a's and c's are still there");
        let e = ctx
            .sql("UPDATE cloudflare.user.tokens SET connection = 'a' WHERE name = 'ci-deploy'")
            .await;
        let e = match e {
            Ok(df) => df.collect().await.unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert_contains!(e, "connection");
    });
}
