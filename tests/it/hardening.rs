//! Hardening: flaky networks, hostile input and bad servers never crash cfql or corrupt a
//! result. One test per item of the hardening issue, against the simulator on loopback.

use std::time::Duration;

use cfql::sim::{FaultSpec, SeedOptions};
use cfql::{Config, Error, Session};

use crate::cli::{cfql, run};
use crate::common::*;

/// Item 1: a listing of 2,000 tokens under 429s, 5xx, truncated bodies and dropped
/// connections returns exactly the fault-free rows, run after run.
#[test]
fn a_listing_under_faults_returns_the_fault_free_rows() {
    on_runtime(async {
        let sim = sim_with(2000).await;
        let s = session(&sim).await;
        let q = "SELECT id, name, status, expires_on FROM cloudflare.user.tokens ORDER BY id";
        let clean = s.sql(q).await.unwrap();
        assert_eq!(rows(&clean), 2000);
        let expected = (strings(&clean, "id"), col(&clean, "expires_on"));
        for seed in 1..=4 {
            let spec = format!(
                "429@GET:/user/tokens=0.05,500@GET:/user/tokens=0.02,malformed@GET:/user/tokens=0.01,drop-before@GET:/user/tokens=0.01,drop-after@GET:/user/tokens=0.01,seed={seed},retry-after=0"
            );
            sim.set_faults(FaultSpec::parse(&spec).unwrap());
            sim.reset_counts();
            let b = s
                .sql(q)
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(
                (strings(&b, "id"), col(&b, "expires_on")),
                expected,
                "seed {seed}"
            );
            assert!(
                sim.count("GET", "/user/tokens") > 40,
                "seed {seed}: faults were injected and retried"
            );
        }
    })
}

/// Item 2: failures of many scopes read as one line per cause, not one per scope.
#[test]
fn fan_out_failures_are_grouped_by_cause() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 12,
            account_tokens: 2,
            ..SeedOptions::default()
        })
        .await;
        sim.set_faults(FaultSpec::parse("500@GET:/accounts/{account_id}/tokens").unwrap());
        let mut c = config(&sim);
        c.max_retries = 1;
        let s = Session::new(c).await.unwrap();
        let e = s
            .sql("SELECT id FROM cloudflare.accounts.tokens")
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(
                e,
                Error::FanOut {
                    failed: 12,
                    total: 12,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
        text.contains(
            "12 scope(s): HTTP 500: code 10001: Internal server error (injected) (e.g. account_id "
        ),
        "{text}"
    );
        assert!(text.len() < 600, "{} characters: {text}", text.len());
    })
}

/// Item 3: a server that ignores `page` (and gives no totals) is read once and stopped;
/// a listing longer than `max_pages` is a clear error, not an endless loop.
#[test]
fn paging_stops_on_a_repeated_page_and_at_the_page_cap() {
    on_runtime(async {
        let sim = sim_with(300).await;
        sim.set_list_totals(false);
        sim.set_paging_ignored(true);
        let s = session(&sim).await;
        let out = s
            .execute("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap();
        assert_eq!(out.num_rows(), 50, "page 1, once");
        assert_eq!(sim.count("GET", "/user/tokens"), 2);
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains("page 2 repeats page 1")),
            "{:?}",
            out.warnings
        );

        sim.set_paging_ignored(false);
        let mut c = config(&sim);
        c.max_pages = 3;
        let s = Session::new(c).await.unwrap();
        sim.reset_counts();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("read 3 pages and the API still had more")
                && e.to_string().contains("max_pages"),
            "{e}"
        );
        assert_eq!(sim.count("GET", "/user/tokens"), 3);
        sim.set_list_totals(true);
        sim.reset_counts();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::TooManyPages {
                    pages: Some(6),
                    max: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            sim.count("GET", "/user/tokens"),
            1,
            "the total says it all after one page"
        );
        // LIMIT within the cap still works.
        assert_eq!(
            rows(
                &s.sql("SELECT id FROM cloudflare.user.tokens LIMIT 100")
                    .await
                    .unwrap()
            ),
            100
        );
    })
}

/// Item 4: a body over the cap is an error naming the call, not memory.
#[test]
fn a_body_over_the_cap_is_refused() {
    on_runtime(async {
        let sim = sim_with(100).await;
        let mut c = config(&sim);
        c.max_response_bytes = 8 * 1024;
        let s = Session::new(c).await.unwrap();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(
            e,
            "GET /user/tokens?",
            "larger than 8192 bytes",
            "max_response_mb"
        );
        assert_eq!(sim.count("GET", "/user/tokens"), 1, "not read again");
    })
}

/// Item 5: a list that changes while it is read is said to have changed, and no id
/// is returned twice.
#[test]
fn a_list_that_changes_while_read_is_reported() {
    on_runtime(async {
        let sim = std::sync::Arc::new(sim_with(300).await);
        let mut c = config(&sim);
        c.concurrency = 1;
        let s = Session::new(c).await.unwrap();
        sim.set_latency_ms(150);
        let ids = sim.user_token_ids();
        let task =
            tokio::spawn(async move { s.execute("SELECT id FROM cloudflare.user.tokens").await });
        while sim.count("GET", "/user/tokens") < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for id in &ids[1..6] {
            assert!(sim.delete_user_token(id));
        }
        let out = task.await.unwrap().unwrap();
        sim.set_latency_ms(0);
        let got = strings(&out.batches, "id");
        let unique: std::collections::HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "no id twice");
        assert!(
            out.warnings.iter().any(
                |w| w.contains("the list changed while it was read (total_count 300 then 295)")
            ),
            "{:?}",
            out.warnings
        );
    })
}

/// Item 6: inputs that used to panic are clear errors with the documented exit codes.
#[test]
fn hostile_inputs_are_errors_not_panics() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(10));
    let home = tempfile::tempdir().unwrap();
    let base = sim.base_url();
    let token = sim.admin_token();
    let go = |args: &[&str]| {
        run(cfql(home.path())
            .args(["--base-url", &base])
            .args(args)
            .env("CLOUDFLARE_API_TOKEN", &token))
    };
    let (code, _, err) = go(&["-c", "SET ééé = 1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: -c #1:1:"), "{err}");
    let (code, _, err) = go(&["--concurrency", "18446744073709551615", "-c", "SELECT 1"]);
    assert_eq!(code, 2, "{err}");
    assert_contains!(err, "--concurrency must be between 1 and 1024");
    let profile = home.path().join("cfql.toml");
    std::fs::write(&profile, "[default]\nrate_window_secs = 20000000000\n").unwrap();
    let (code, _, err) = run(cfql(home.path())
        .arg("--config")
        .arg(&profile)
        .args(["-c", "SELECT 1"]));
    assert_eq!(code, 2, "{err}");
    assert_contains!(err, "rate_window_secs must be at most 86400 seconds");
    let long = format!("SELECT {} AS x", vec!["1"; 20_000].join("+"));
    let (code, _, err) = go(&["-c", &long]);
    assert_eq!(code, 1, "{err}");
    assert_contains!(err, "19999 operators; at most 400");
    sim.set_faults(
        FaultSpec::parse("429@GET:/user/tokens,retry-after=18446744073709551615").unwrap(),
    );
    let (code, _, err) = go(&["-c", "SELECT id FROM cloudflare.user.tokens"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Cloudflare answered 429: the statement would have to wait 24h00m"),
        "clamped to a day: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The operator bound keeps the deepest accepted statement safe on a 2 MiB tokio worker
/// stack (the test runs on one), the smallest an embedding program is likely to give cfql.
#[test]
fn the_longest_accepted_expression_plans_on_a_worker_thread() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let n: usize = std::env::var("CFQL_DEPTH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cfql::MAX_OPERATORS);
        let sum = vec!["1"; n].join("+");
        assert_eq!(
            scalar(&s.sql(&format!("SELECT {sum} AS x")).await.unwrap()),
            n.to_string()
        );
        let ors = vec!["name = 'x'"; n / 2].join(" OR ");
        let b = s
            .sql(&format!(
                "SELECT count(*) FROM cloudflare.user.tokens WHERE {ors}"
            ))
            .await
            .unwrap();
        assert_eq!(scalar(&b), "0");
    })
}

/// Item 8: the credential never travels in clear text, and a URL's password is never shown.
#[test]
fn credentials_never_travel_in_clear_or_show_in_messages() {
    on_runtime(async {
        let e = Session::new(Config::new("http://api.example.com/client/v4").with_api_token("t"))
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "plain http to another machine", "use https");
        let e = Session::new(
            Config::new("https://me:hunter2@api.example.com/client/v4").with_api_token("t"),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("holds a user or password") && !e.contains("hunter2"),
            "{e}"
        );
        for ok in [
            "http://127.0.0.1:9/client/v4",
            "http://localhost:9/x",
            "http://[::1]:9/x",
            "https://api.cloudflare.com/client/v4",
        ] {
            assert!(
                Session::new(Config::new(ok).with_api_token("t"))
                    .await
                    .is_ok(),
                "{ok}"
            );
        }
    })
}

/// Item 9: logs on stderr carry no colour codes when stderr is not a terminal.
#[test]
fn logs_off_a_terminal_have_no_colour() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, err) = run(cfql(home.path())
        .args([
            "--demo",
            "-c",
            "SELECT count(*) FROM cloudflare.user.tokens",
        ])
        .env("CFQL_LOG", "debug"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("calling Cloudflare"),
        "debug logs were written: {err}"
    );
    assert!(!err.contains('\u{1b}'), "no ANSI escape in a pipe: {err:?}");
}

/// Items 10 and 12: the simulator logs only authenticated requests, with bodies cut and
/// each answer's status; an undecodable path gets an envelope.
#[test]
fn the_simulator_log_is_bounded_and_answers_are_envelopes() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let http = reqwest::Client::new();
        let big = vec![b'x'; 4 << 20];
        for _ in 0..20 {
            let r = http
                .post(format!("{}/user/tokens", sim.base_url()))
                .body(big.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 401);
        }
        assert_eq!(sim.total_requests(), 20, "counted");
        assert!(
            sim.requests().is_empty(),
            "unauthenticated requests are not kept"
        );
        let r = http
            .post(format!("{}/user/tokens", sim.base_url()))
            .bearer_auth(sim.admin_token())
            .body(vec![b'y'; 100_000])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let logged = sim.requests().pop().unwrap();
        assert!(
            logged.body.len() < 4200 && logged.body.ends_with("...(100000 bytes)"),
            "{}",
            logged.body.len()
        );
        assert_eq!(logged.status, Some(400));
        let report: serde_json::Value =
            reqwest::get(format!("http://{}/__sim/requests", sim.addr()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(report["total"], 21);
        assert_eq!(report["requests"][0]["status"], 400);

        let r = http
            .get(format!("{}/user/tokens/%FF", sim.base_url()))
            .bearer_auth(sim.admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let body: serde_json::Value = r.json().await.expect("a JSON envelope");
        assert_eq!(body["success"], false);
        assert!(body["errors"][0]["code"].as_i64().is_some(), "{body}");
    })
}

/// Item 11: a PUT with one invalid field changes nothing.
#[test]
fn an_invalid_field_changes_nothing() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let a = sim.account_ids()[0].clone();
        let id = sim.service_token_ids(&a)[0].clone();
        let q = format!(
            "SELECT name, duration FROM cloudflare.access.service_tokens WHERE account_id = '{a}' AND id = '{id}'"
        );
        let before = s.sql(&q).await.unwrap();
        let r = reqwest::Client::new()
            .put(format!(
                "{}/accounts/{a}/access/service_tokens/{id}",
                sim.base_url()
            ))
            .bearer_auth(sim.admin_token())
            .json(&serde_json::json!({"name": "renamed", "duration": "1h", "enabled": "nope"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let after = s.sql(&q).await.unwrap();
        assert_eq!(strings(&after, "name"), strings(&before, "name"));
        assert_eq!(strings(&after, "duration"), strings(&before, "duration"));
    })
}

/// Item 13: creates past Cloudflare's quota of 50 user tokens are refused.
#[test]
fn creates_past_the_token_quota_are_refused() {
    on_runtime(async {
        let sim = sim_with(49).await;
        let s = session(&sim).await;
        let insert = r#"INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('fiftieth', '[{"effect":"allow","resources":{},"permission_groups":[]}]')"#;
        s.sql(insert).await.expect("the 50th fits");
        let e = s.sql(insert).await.unwrap_err();
        assert_eq!(e.http_status(), Some(400));
        assert!(
            e.to_string().contains("at most 50 API tokens per user"),
            "{e}"
        );
        assert_eq!(sim.user_token_count(), 50);
    })
}
