//! The API budget: never trip Cloudflare's limit, wait instead of failing, plan the cost,
//! coalesce and cache. Against the simulator with the window shrunk to seconds. The
//! audits read the token kinds of `audit.credentials` (`kind IN (...)` prunes the
//! certificate branches before any call), two lists per account.

use std::time::{Duration, Instant};

use cfql::sim::{FaultSpec, SeedOptions};
use cfql::{Config, Session};

use crate::cli::{cfql, run};
use crate::common::*;

fn with_cache(mut c: Config) -> Config {
    c.cache_ttl = Duration::from_secs(60);
    c
}

fn count_429(sim: &cfql::sim::Simulator) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count()
}

/// An audit over 60 accounts (about 120 calls) with a budget of 50 calls per 2 s: no call
/// is ever refused, and it takes at least the physical bound.
#[test]
fn an_audit_never_trips_the_limit_and_takes_the_physical_bound() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 60,
            account_tokens: 2,
            service_tokens: 2,
            tokens: 10,
            ..SeedOptions::default()
        })
        .await;
        let (limit, window) = (50u64, Duration::from_secs(2));
        sim.set_rate_limit(limit as usize, window);
        let mut c = with_cache(config(&sim));
        c.rate_limit = limit as u32;
        c.rate_window = window;
        c.concurrency = 8;
        let s = Session::new(c).await.unwrap();
        let start = Instant::now();
        let b = s.sql("SELECT kind, count(*) AS n FROM cloudflare.audit.credentials WHERE kind IN ('user_token', 'account_token', 'service_token') GROUP BY kind ORDER BY kind").await.unwrap();
        let elapsed = start.elapsed();
        assert_eq!(
            strings(&b, "kind"),
            vec!["account_token", "service_token", "user_token"]
        );
        let calls = sim.total_requests() as u64;
        assert_eq!(
            calls,
            1 + 2 + 60 + 60,
            "user tokens, /accounts once (2 pages), 2 lists per account"
        );
        assert_eq!(count_429(&sim), 0, "no call past the limit");
        let bound = window * (calls.div_ceil(limit) - 1) as u32;
        assert!(
            elapsed >= bound - Duration::from_millis(50),
            "{elapsed:?} < the physical bound {bound:?}"
        );
    })
}

/// Two `cfql` processes back to back: the second learns from the headers that the first
/// spent the budget, and waits (one line on stderr) instead of drawing a 429.
#[test]
fn two_processes_share_the_budget_through_the_headers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_opts(SeedOptions {
        accounts: 20,
        account_tokens: 2,
        service_tokens: 1,
        ..SeedOptions::default()
    }));
    // A window of 10 s: the second process must start within it (a machine loaded by the
    // rest of the suite may take seconds to start a debug binary; 5 s was once too short).
    sim.set_rate_limit(30, Duration::from_secs(10));
    let home = tempfile::tempdir().unwrap();
    let go = || {
        let start = Instant::now();
        let r = run(cfql(home.path())
            .args([
                "--base-url",
                &sim.base_url(),
                "--format",
                "csv",
                "-c",
                "SELECT count(*) FROM cloudflare.accounts.tokens",
            ])
            .env("CLOUDFLARE_API_TOKEN", sim.admin_token()));
        (r, start.elapsed())
    };
    let ((code, out, err), _) = go();
    assert_eq!((code, out.as_str()), (0, "count(*)\n40\n"), "{err}");
    let ((code, out, err), second) = go();
    assert_eq!((code, out.as_str()), (0, "count(*)\n40\n"), "{err}");
    assert_eq!(
        count_429(&sim),
        0,
        "{:?}",
        sim.requests().iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.len() >= 2,
        "the forecast, then a line per wait: {err}"
    );
    assert!(
        lines[0].starts_with(
            "note: cloudflare.accounts.tokens needs at least 20 API calls and the budget allows "
        ),
        "{err}"
    );
    assert!(
        lines[0].ends_with("expect at least 10s of waiting"),
        "the server's window, not the default 5 minutes: {err}"
    );
    assert!(
        lines[1].starts_with("the API budget is spent (Cloudflare's Ratelimit header): waiting "),
        "{err}"
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(": waiting ") && l.contains(" calls so far)")),
        "only wait lines: {err}"
    );
    assert!(
        second >= Duration::from_secs(1),
        "the second run waited: {second:?}"
    );
}

/// A 429 with Retry-After is waited out; with a smaller --budget-wait the statement fails
/// with one line saying how long it would need.
#[test]
fn a_429_is_waited_out_or_fails_in_one_line() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(120));
    let home = tempfile::tempdir().unwrap();
    let q = "SELECT count(*) FROM cloudflare.user.tokens";
    let go = |extra: &[&str]| {
        run(cfql(home.path())
            .args(["--base-url", &sim.base_url(), "--format", "csv"])
            .args(extra)
            .args(["-c", q])
            .env("CLOUDFLARE_API_TOKEN", sim.admin_token()))
    };
    sim.set_faults(FaultSpec::parse("429@GET:/user/tokens#2,retry-after=2").unwrap());
    let start = Instant::now();
    let (code, out, err) = go(&[]);
    assert_eq!((code, out.as_str()), (0, "count(*)\n120\n"), "{err}");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // Retry-After is whole seconds: a second more, so the block has surely ended.
    assert_contains!(err, "Cloudflare answered 429: waiting 3s");
    sim.set_faults(FaultSpec::parse("429@GET:/user/tokens#2,retry-after=30").unwrap());
    let (code, _, err) = go(&["--budget-wait", "1"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_contains!(
        err,
        "would have to wait 31s for the API budget, more than the 1s allowed"
    );
}

/// `/accounts` is listed once per statement however many tables fan out over it; the same
/// statement twice makes no call the second time; `SET cfql.cache_ttl = 0` turns it off.
#[test]
fn gets_are_coalesced_and_cached() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 4,
            ..SeedOptions::default()
        })
        .await;
        let s = Session::new(with_cache(config(&sim))).await.unwrap();
        let q = "SELECT kind, count(*) FROM cloudflare.audit.credentials WHERE kind IN ('user_token', 'account_token', 'service_token') GROUP BY kind";
        let first = s.sql(q).await.unwrap();
        assert_eq!(
            sim.count("GET", "/accounts"),
            1,
            "listed once for both fan-outs"
        );
        let made = sim.total_requests();
        let again = s.sql(q).await.unwrap();
        assert_eq!(
            sim.total_requests(),
            made,
            "the second run is served from the cache"
        );
        assert_eq!(rows(&first), rows(&again));
        let out = s
            .execute("EXPLAIN ANALYZE SELECT count(*) FROM cloudflare.user.tokens")
            .await
            .unwrap();
        let plan = format!("{:?}", strings(&out.batches, "plan"));
        assert_contains!(plan, "api_cache_hits=1", "api_calls=0");
        s.sql("SET cfql.cache_ttl = 0").await.unwrap();
        s.sql(q).await.unwrap();
        assert!(
            sim.total_requests() > made,
            "no cache after SET cfql.cache_ttl = 0"
        );
    })
}

/// A write through the session invalidates what it touched: the next SELECT sees it.
#[test]
fn writes_invalidate_the_cache() {
    on_runtime(async {
        let sim = sim_with(10).await;
        let s = Session::new(with_cache(config(&sim))).await.unwrap();
        let id = sim.user_token_ids()[3].clone();
        let get = format!(
            "SELECT name, status, modified_on FROM cloudflare.user.tokens WHERE id = '{id}'"
        );
        let list = "SELECT id FROM cloudflare.user.tokens";
        let before = s.sql(&get).await.unwrap();
        assert_eq!(rows(&s.sql(list).await.unwrap()), 10);
        s.sql(&format!(
            "UPDATE cloudflare.user.tokens SET name = 'renamed' WHERE id = '{id}'"
        ))
        .await
        .unwrap();
        assert_eq!(
            strings(&s.sql(&get).await.unwrap(), "name"),
            vec!["renamed"]
        );
        sim.advance_clock(chrono::Duration::seconds(5));
        s.sql(&format!(
            "EXEC cloudflare.user.tokens.roll @token_id = '{id}'"
        ))
        .await
        .unwrap();
        let after = s.sql(&get).await.unwrap();
        assert_ne!(
            col(&after, "modified_on"),
            col(&before, "modified_on"),
            "the roll's new modified_on is seen"
        );
        s.sql(&format!(
            "DELETE FROM cloudflare.user.tokens WHERE id = '{id}'"
        ))
        .await
        .unwrap();
        assert_eq!(rows(&s.sql(&get).await.unwrap()), 0);
        assert_eq!(
            rows(&s.sql(list).await.unwrap()),
            9,
            "the list is read again too"
        );
    })
}

/// EXPLAIN shows the cost; a statement that needs more than the budget left says so first.
#[test]
fn the_cost_is_planned_and_announced() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_opts(SeedOptions {
        accounts: 30,
        account_tokens: 1,
        service_tokens: 1,
        ..SeedOptions::default()
    }));
    sim.set_rate_limit(20, Duration::from_secs(2));
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = run(cfql(home.path())
        .args([
            "--base-url",
            &sim.base_url(),
            "--format",
            "csv",
            "-c",
            "EXPLAIN SELECT * FROM cloudflare.accounts.tokens",
        ])
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token()));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "cost=ceil(accounts/50) to list the accounts + ceil(rows/50) (at least 1) per account"
        ),
        "{out}"
    );
    let (code, out, err) = run(cfql(home.path())
        .args([
            "--base-url",
            &sim.base_url(),
            "--format",
            "csv",
            "-c",
            "SELECT count(*) FROM cloudflare.accounts.tokens",
        ])
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token()));
    assert_eq!((code, out.as_str()), (0, "count(*)\n30\n"), "{err}");
    assert!(
        err.contains(
            "note: cloudflare.accounts.tokens needs at least 30 API calls and the budget allows"
        ),
        "{err}"
    );
    assert_eq!(count_429(&sim), 0);
}

/// Sessions forked from one share its engine: one response cache and one API budget (the
/// second session's identical query costs no call), while settings stay their own.
#[test]
fn forked_sessions_share_the_cache_and_budget_but_not_settings() {
    on_runtime(async {
        let sim = sim_with(120).await;
        let mut c = config(&sim);
        c.cache_ttl = std::time::Duration::from_secs(60);
        let first = Session::new(c).await.unwrap();
        let second = first.fork().unwrap();
        let q = "SELECT count(*) FROM cloudflare.user.tokens";
        assert_eq!(scalar(&first.sql(q).await.unwrap()), "120");
        let calls = sim.total_requests();
        assert_eq!(scalar(&second.sql(q).await.unwrap()), "120");
        assert_eq!(
            sim.total_requests(),
            calls,
            "the fork is answered from the shared cache"
        );

        second.sql("SET cfql.dry_run = true").await.unwrap();
        let id = strings(
            &first
                .sql("SELECT id FROM cloudflare.user.tokens LIMIT 1")
                .await
                .unwrap(),
            "id",
        )
        .remove(0);
        let dry = second
            .execute(&format!(
                "DELETE FROM cloudflare.user.tokens WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        assert_contains!(
            dry.warnings.join("\n"),
            "dry run: 1 call(s) listed, none sent"
        );
        assert_eq!(sim.mutating_requests(), 0);
        let done = first
            .execute(&format!(
                "DELETE FROM cloudflare.user.tokens WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        assert_eq!(
            done.write.unwrap().took_effect,
            1,
            "the first session's own setting: not a dry run"
        );
        assert_eq!(sim.mutating_requests(), 1);
    })
}

/// An audit over `accounts` accounts under a server allowing `limit` calls per `window`,
/// with the session configured for Cloudflare's usual 1,200 per 5 minutes (as a user's
/// would be: only the server's headers say the quota is smaller). No call is refused, no
/// call is repeated, and it ends within 30% (+2 s) of the physical bound.
async fn paced_audit(accounts: usize, limit: usize, window: Duration) {
    let sim = sim_opts(SeedOptions {
        accounts,
        account_tokens: 2,
        service_tokens: 2,
        tokens: 10,
        ..SeedOptions::default()
    })
    .await;
    sim.set_rate_limit(limit, window);
    // With the CLI's cache: `/accounts` is read once for both fan-outs however the calls
    // interleave (without it, only calls in flight at the same time are shared).
    let s = Session::new(with_cache(config(&sim))).await.unwrap();
    let start = Instant::now();
    let b = s
        .sql("SELECT kind, count(*) AS n FROM cloudflare.audit.credentials WHERE kind IN ('user_token', 'account_token', 'service_token') GROUP BY kind ORDER BY kind")
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(
        strings(&b, "n"),
        vec![
            (2 * accounts).to_string(),
            (2 * accounts).to_string(),
            "10".into()
        ]
    );
    let calls = sim.total_requests();
    let minimum = 1 + accounts.div_ceil(50) + 2 * accounts;
    if calls != minimum {
        let log = sim.requests();
        let t0 = log[0].arrived_ms;
        let lines: Vec<String> = log
            .iter()
            .map(|r| {
                format!(
                    "{}:{}-{}:{}",
                    r.seq,
                    r.arrived_ms - t0,
                    r.answered_ms.unwrap_or(0).saturating_sub(t0),
                    r.status.unwrap_or(0)
                )
            })
            .collect();
        // What a failure needs to be read: seq:arrived-answered:status, ms from the first.
        eprintln!("request log: {}", lines.join(" "));
    }
    assert_eq!(
        calls, minimum,
        "user tokens, the account pages, 2 lists per account"
    );
    assert_eq!(
        count_429(&sim),
        0,
        "{limit} per {window:?}: no call past the limit"
    );
    let bound = window * (calls.div_ceil(limit) - 1) as u32;
    let ceiling = bound.mul_f64(1.3) + Duration::from_secs(2);
    assert!(
        elapsed >= bound.saturating_sub(Duration::from_millis(50)) && elapsed <= ceiling,
        "{limit} per {window:?}: {elapsed:?} outside [{bound:?}, {ceiling:?}]"
    );
}

/// A small quota, where the second-rounding of `t` and `Retry-After` matters.
#[test]
fn a_quota_of_80_per_4s_is_paced_without_a_429() {
    on_runtime(paced_audit(150, 80, Duration::from_secs(4)));
}

/// A smaller one still: 20 calls per 2 s (a reserve of one call for other tools).
#[test]
fn a_quota_of_20_per_2s_is_paced_without_a_429() {
    on_runtime(paced_audit(40, 20, Duration::from_secs(2)));
}

/// Cloudflare's quota of 1,200, its window shrunk from 300 s to 10 s, over 2,000 accounts.
#[test]
fn a_quota_of_1200_per_10s_over_2000_accounts_is_paced_without_a_429() {
    on_runtime(paced_audit(2000, 1200, Duration::from_secs(10)));
}

/// A 429 while the fan-out has more calls queued than in flight: the calls not yet sent
/// wait out the block (none arrives at the server until it ends), only calls already in
/// flight could meet it, and the user reads one line about it.
#[test]
fn the_first_429_holds_every_queued_call_with_one_line() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_opts(SeedOptions {
        accounts: 48,
        account_tokens: 1,
        service_tokens: 1,
        ..SeedOptions::default()
    }));
    // Every call takes 100 ms, so 16 are in flight and the rest queued when the 5th
    // account listing is refused.
    sim.set_faults(
        FaultSpec::parse("latency=100,429@GET:/accounts/{account_id}/tokens#5,retry-after=1")
            .unwrap(),
    );
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = run(cfql(home.path())
        .args([
            "--base-url",
            &sim.base_url(),
            "--format",
            "csv",
            "--concurrency",
            "16",
        ])
        .args(["-c", "SELECT count(*) FROM cloudflare.accounts.tokens"])
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token()));
    assert_eq!((code, out.as_str()), (0, "count(*)\n48\n"), "{err}");
    let log = sim.requests();
    let refused: Vec<_> = log.iter().filter(|r| r.status == Some(429)).collect();
    assert_eq!(refused.len(), 1, "{err}");
    let answered = refused[0].answered_ms.expect("answered");
    // The client hears the 429 a moment after the server answers it; then nothing new
    // may arrive for the Retry-After (1 s, plus the second it is rounded to).
    let during: Vec<u64> = log
        .iter()
        .filter(|r| r.arrived_ms > answered + 30 && r.arrived_ms < answered + 1000)
        .map(|r| r.arrived_ms - answered)
        .collect();
    assert!(
        during.is_empty(),
        "calls arrived during the block, ms after it: {during:?}"
    );
    assert_eq!(
        sim.total_requests(),
        1 + 48 + 1,
        "/accounts, 48 listings, and the refused one again"
    );
    assert_eq!(err.matches("Cloudflare answered 429").count(), 1, "{err}");
}

/// A fan-out whose every listing answers 500 is retried quietly: stderr holds the grouped
/// error and one line per cause of retries, not a line per retry.
#[test]
fn retries_are_told_in_one_line_per_cause() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_opts(SeedOptions {
        accounts: 200,
        account_tokens: 1,
        service_tokens: 0,
        ..SeedOptions::default()
    }));
    sim.set_faults(FaultSpec::parse("500@GET:/accounts/{account_id}/tokens").unwrap());
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("cfql.toml");
    std::fs::write(&cfg, "[default]\nmax_retries = 2\n").unwrap();
    let (code, _, err) = run(cfql(home.path())
        .args([
            "--base-url",
            &sim.base_url(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .args(["-c", "SELECT count(*) FROM cloudflare.accounts.tokens"])
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token()));
    assert_eq!(code, 1, "{err}");
    let listings = sim.count("GET", "/accounts/{account_id}/tokens");
    assert_eq!(
        listings % 200,
        0,
        "each account's listing tried as often: {listings}"
    );
    let retries = listings / 200 - 1;
    assert!(retries >= 1, "{listings}");
    assert_contains!(
        err,
        &format!("note: retried 200 calls after HTTP 500 ({retries} retries each)")
    );
    assert_contains!(
        err,
        "cloudflare.accounts.tokens: 200 of 200 scopes failed",
        "200 scope(s): HTTP 500"
    );
    assert!(!err.contains("configuration error"), "{err}");
    assert!(!err.contains("retrying"), "no line per retry: {err}");
    assert!(
        err.len() < 3 * 1024,
        "{} bytes on stderr:\n{err}",
        err.len()
    );
}

/// A listing of more than 100 pages keeps only its first page in the cache (memory stays
/// near what the rows need); a small listing is kept whole, so its second read is free.
#[test]
fn a_very_large_listing_is_not_kept_in_the_cache() {
    on_runtime(async {
        let sim = sim_with(5_050).await;
        let s = Session::new(with_cache(config(&sim))).await.unwrap();
        let q = "SELECT count(*) AS n FROM cloudflare.user.tokens";
        assert_eq!(scalar(&s.sql(q).await.unwrap()), "5050");
        assert_eq!(sim.total_requests(), 101, "101 pages of 50");
        assert_eq!(scalar(&s.sql(q).await.unwrap()), "5050");
        assert_eq!(
            sim.total_requests(),
            101 + 100,
            "read again: every page but the first"
        );
        let small = "SELECT count(*) AS n FROM cloudflare.accounts.tokens";
        s.sql(small).await.unwrap();
        let made = sim.total_requests();
        s.sql(small).await.unwrap();
        assert_eq!(sim.total_requests(), made, "a small listing is kept");
    })
}
