//! Benchmarks, printed as figures (not a test). Everything talks to a simulator on 127.0.0.1.
//!
//! Run: cargo run --release --example bench   (`-- wire`: figure 7 alone; `-- audits`: figure 6;
//! `-- copy`: figure 8; `-- permissions`: figure 9; `-- connections`: figure 10)
//!
//! 1. Memory: `SELECT *` over 100,000 tokens served by a simulator in a child process,
//!    so the peak RSS printed is the engine's alone (measured first, in a fresh process).
//! 2. Concurrent paging: `SELECT count(*)` over 10,000 user tokens with 50 ms added to
//!    every request, default settings against `concurrency = 1`, in one run.
//! 3. Simulator page cost at 100,000 tokens: mean round trip of one page on loopback.
//! 4. The write plan: a bulk roll of 200 tokens with 50 ms added to every request, default
//!    settings against `concurrency = 1`; and one UPDATE of 200 tokens through a `Session`
//!    against the same UPDATE as DataFusion DML in a context of `cfql::register`.
//! 5. Org scale under the API budget: an audit over 2,000 accounts with Cloudflare's limit
//!    of 1,200 calls per window, the window shrunk from 300 s to 10 s: calls made against
//!    the minimum, 429s seen (must be 0), wall time against the physical bound.
//! 6. The cache: every `examples/*.sql` audit in one run, against one listing of each table.
//! 7. The server: 10 connections to one `cfql serve` each running the five audits at
//!    once, against the same audits run 10 times through the CLI's engine (a fresh
//!    session each, as 10 `cfql -f` runs), 20 ms added to every request.
//! 8. COPY against SELECT over the wire (`-- copy`, alone): every row of
//!    `audit.credentials` over 10,000 user tokens read by a PostgreSQL client as
//!    `COPY (...) TO STDOUT` (text and binary, as psycopg's copy() and connectorx read)
//!    and as a plain SELECT, the API answers cached, best of 5 each.
//! 10. Several credentials (`-- connections`, alone): `audit.credentials` over 3
//!     credentials x 200 accounts each (one account shared), each credential under its own
//!     rate rule (200 calls per 1 s window, scaled so each credential's audit needs four
//!     windows), against the same audit over one credential x 200 accounts: wall times,
//!     calls against the minimum, responses 429.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cfql::sim::{SeedOptions, SimOptions, Simulator};
use cfql::{Config, Session};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn serve_child(tokens: usize) {
    // 100,000 tokens are 2,000 pages: more than Cloudflare's 1,200 requests per 5 minutes,
    // so the emulated limit is lifted here (and the client's below) to measure the engine.
    let sim = Simulator::start(SimOptions {
        seed: SeedOptions {
            tokens,
            ..SeedOptions::default()
        },
        rate_limit: 1_000_000,
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    println!("{} {}", sim.base_url(), sim.admin_token());
    std::io::stdout().flush().unwrap();
    // Serve until the parent closes our stdin.
    tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        let _ = std::io::stdin().read_line(&mut s);
    })
    .await
    .unwrap();
}

async fn count_all(session: &Session) -> (Duration, String) {
    let t = Instant::now();
    let b = session
        .sql("SELECT count(*) FROM cloudflare.user.tokens")
        .await
        .expect("query");
    let n = cfql::arrow::util::display::array_value_to_string(b[0].column(0), 0).unwrap();
    (t.elapsed(), n)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve-sim") {
        serve_child(args[2].parse().unwrap()).await;
        return;
    }
    // `bench copy`: figure 8 alone.
    if args.get(1).map(String::as_str) == Some("copy") {
        copy_against_select().await;
        return;
    }
    // `bench permissions`: figure 9 alone.
    if args.get(1).map(String::as_str) == Some("permissions") {
        permissions_scan().await;
        return;
    }
    // `bench connections`: figure 10 alone.
    if args.get(1).map(String::as_str) == Some("connections") {
        several_credentials().await;
        return;
    }
    // `bench audits`: figure 6 alone.
    if args.get(1).map(String::as_str) == Some("audits") {
        audits_in_one_run().await;
        return;
    }
    // `bench wire`: figure 7 alone.
    if args.get(1).map(String::as_str) == Some("wire") {
        audits_over_the_wire().await;
        return;
    }

    // 1. Peak memory and end-to-end rate, simulator in a child process (measured first,
    //    so the peak is this query's, in a fresh process).
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["serve-sim", "100000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut parts = line.split_whitespace();
    let (url, token) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
    );
    let rss_before = peak_rss_mb();
    let mut config = Config::new(url.clone()).with_api_token(token.clone());
    config.rate_limit = 1_000_000;
    let session = Session::new(config).await.unwrap();
    let t = Instant::now();
    let batches = session
        .sql("SELECT * FROM cloudflare.user.tokens")
        .await
        .unwrap();
    let elapsed = t.elapsed();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    println!("## SELECT * over 100,000 tokens (simulator in another process, no added latency)");
    println!(
        "rows: {rows}, wall: {:.3} s, rows per second end to end: {:.0}",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
    println!("result size in Arrow: {:.1} MB", bytes as f64 / 1_048_576.0);
    println!(
        "peak RSS of the engine process: {:.1} MB (before the query: {:.1} MB)",
        peak_rss_mb(),
        rss_before
    );
    drop(batches);

    // 2. Concurrency against latency.
    let sim = Simulator::start(SimOptions {
        seed: SeedOptions {
            tokens: 10_000,
            ..SeedOptions::default()
        },
        latency_ms: 50,
        rate_limit: 1_000_000,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let base = Config::new(sim.base_url()).with_api_token(sim.admin_token());
    let fast = Session::new(base.clone()).await.unwrap();
    let slow = Session::new(base.with_concurrency(1)).await.unwrap();
    let (t_fast, n) = count_all(&fast).await;
    let calls_fast = sim.total_requests();
    let (t_slow, n2) = count_all(&slow).await;
    assert_eq!(n, n2);
    println!("\n## concurrent paging: 10,000 tokens, 50 ms per request");
    println!(
        "default (concurrency 16): {:>8.3} s, {calls_fast} calls, count = {n}",
        t_fast.as_secs_f64()
    );
    println!("concurrency 1:            {:>8.3} s", t_slow.as_secs_f64());
    println!(
        "speed-up:                 {:>8.1}x",
        t_slow.as_secs_f64() / t_fast.as_secs_f64()
    );
    drop(sim);

    // 3. Simulator page cost at 100,000 tokens.
    let http = reqwest::Client::new();
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        let page = 1 + (i * 37) % 2000;
        let r = http
            .get(format!(
                "{url}/user/tokens?include_expired=true&per_page=50&page={page}"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
    }
    println!("\n## simulator: one page of 50 out of 100,000 tokens");
    println!(
        "mean round trip on loopback (HTTP + JSON included): {:.3} ms",
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
    drop(child.stdin.take());
    let _ = child.wait();

    bulk_writes().await;
    org_scale().await;
    audits_in_one_run().await;
    audits_over_the_wire().await;
}

/// 5. 2,000 accounts, 1,200 calls per 10 s.
async fn org_scale() {
    let window = Duration::from_secs(10);
    let sim = Simulator::start(SimOptions {
        seed: SeedOptions {
            tokens: 40,
            accounts: 2000,
            account_tokens: 1,
            service_tokens: 1,
            ..SeedOptions::default()
        },
        rate_limit: 1200,
        rate_window: window,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let mut config = Config::new(sim.base_url()).with_api_token(sim.admin_token());
    config.rate_window = window;
    let session = Session::new(config).await.unwrap();
    let t = Instant::now();
    let b = session
        .sql("SELECT kind, count(*) FROM cloudflare.audit.credentials GROUP BY kind")
        .await
        .expect("audit");
    let wall = t.elapsed();
    let calls = sim.total_requests() as u64;
    let minimum = 1 + 2000u64.div_ceil(50) + 2 * 2000;
    let refused = sim
        .requests()
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    let bound = window * (calls.div_ceil(1200) - 1) as u32;
    println!("\n## org scale: audit.credentials over 2,000 accounts, 1,200 calls per 10 s window");
    println!(
        "rows: {}, calls made: {calls} (minimum {minimum}), responses 429: {refused}",
        b.iter().map(|b| b.num_rows()).sum::<usize>()
    );
    println!(
        "wall: {:.2} s, physical bound: {:.0} s, ratio {:.3}",
        wall.as_secs_f64(),
        bound.as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64()
    );
}

/// 10. One audit over 3 credentials x 200 accounts against 1 x 200, each credential with
///     its own budget (see the module comment).
async fn several_credentials() {
    let (limit, window) = (200usize, Duration::from_secs(1));
    let sql = "SELECT kind, connection, count(*) FROM cloudflare.audit.credentials GROUP BY kind, connection";
    let mut walls = Vec::new();
    for users in [1usize, 3] {
        let sim = Simulator::start(SimOptions {
            seed: SeedOptions {
                users,
                tokens: 5,
                accounts: 200 * users,
                account_tokens: 1,
                service_tokens: 1,
                ..SeedOptions::default()
            },
            rate_limit: limit,
            rate_window: window,
            latency_ms: 5,
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let configs: Vec<(String, Config)> = (1..=users)
            .map(|n| {
                let mut c =
                    Config::new(sim.base_url()).with_api_token(sim.admin_token_of(n).unwrap());
                c.rate_limit = limit as u32;
                c.rate_window = window;
                (format!("user{n}"), c)
            })
            .collect();
        let session = Session::with_connections(configs).await.unwrap();
        let t = Instant::now();
        let b = session.sql(sql).await.expect("audit");
        let wall = t.elapsed();
        let calls = sim.total_requests() as u64;
        // Per credential: its user tokens (1 page) and its accounts (listed once, cached);
        // per account, read once: tokens, service tokens, Access and mTLS certificates.
        let listings: u64 = (1..=users)
            .map(|n| 1 + (sim.accounts_of(n).len() as u64).div_ceil(50))
            .sum();
        let minimum = listings + 4 * sim.account_ids().len() as u64;
        let refused = sim
            .requests()
            .iter()
            .filter(|r| r.status == Some(429))
            .count();
        println!(
            "\n## {users} credential(s) x 200 accounts, {limit} calls per {} s window each",
            window.as_secs()
        );
        println!(
            "rows: {}, calls made: {calls} (minimum {minimum}), responses 429: {refused}, wall: {:.2} s",
            b.iter().map(|b| b.num_rows()).sum::<usize>(),
            wall.as_secs_f64()
        );
        walls.push(wall.as_secs_f64());
    }
    println!(
        "\n3 credentials against 1: wall ratio {:.2} (goal: within 1.3)",
        walls[1] / walls[0]
    );
}

/// 9. A full `audit.permissions` scan over 200 accounts: its calls against the listings it
///    needs (user tokens, accounts, each account's tokens, zones, permission groups once),
///    nothing per token.
async fn permissions_scan() {
    let sim = Simulator::start(SimOptions {
        seed: SeedOptions {
            accounts: 200,
            account_tokens: 5,
            tokens: 40,
            ..SeedOptions::default()
        },
        rate_limit: 1_000_000,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    // The CLI's configuration: the response cache on, so the accounts listing serves both
    // the fan-out and the account names (without it, only the calls in flight at the same
    // time are shared, and the listing may be read twice: up to 4 more calls here).
    let session = Session::new(Config::new(sim.base_url()).with_api_token(sim.admin_token()))
        .await
        .unwrap();
    let start = Instant::now();
    let b = session
        .sql(
            "SELECT count(*) AS n, count(DISTINCT token_id) AS t FROM cloudflare.audit.permissions",
        )
        .await
        .unwrap();
    let took = start.elapsed();
    let text = cfql::arrow::util::pretty::pretty_format_batches(&b).unwrap();
    // 1 user-token page (40 < 50), 4 pages of accounts, 200 account listings, 8 pages of
    // zones (400 zones, 50 a page), 1 permission-group listing.
    let minimum = 1 + 200usize.div_ceil(50) + 200 + 400usize.div_ceil(50) + 1;
    println!(
        "\n## audit.permissions: a full scan over 200 accounts (5 tokens each) and 40 user tokens"
    );
    println!("{text}");
    println!(
        "calls: {} (the listings alone: {minimum}; per token: 0), {:.2} s",
        sim.total_requests(),
        took.as_secs_f64()
    );
}

/// 6. Every audit of examples/ in one session (cache on) against one listing per table.
async fn audits_in_one_run() {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    let session = Session::new(Config::new(sim.base_url()).with_api_token(sim.admin_token()))
        .await
        .unwrap();
    // Every table the audits read, account and zone level (the expiring audit reads every
    // kind of credential, certificates included).
    for t in [
        "cloudflare.user.tokens",
        "cloudflare.accounts.tokens",
        "cloudflare.access.service_tokens",
        "cloudflare.access.service_tokens WHERE zone_id IS NOT NULL",
        "cloudflare.access.certificates",
        "cloudflare.access.certificates WHERE zone_id IS NOT NULL",
        "cloudflare.zones.client_certificates WHERE zone_id IS NOT NULL",
        "cloudflare.zones.origin_ca_certificates WHERE zone_id IS NOT NULL",
        "cloudflare.accounts.mtls_certificates",
    ] {
        session.sql(&format!("SELECT * FROM {t}")).await.unwrap();
    }
    let one_listing_each = sim.total_requests();
    sim.reset_counts();
    let session = Session::new(Config::new(sim.base_url()).with_api_token(sim.admin_token()))
        .await
        .unwrap();
    let mut statements = 0;
    for name in [
        "expiring_credentials",
        "unused_tokens",
        "unrestricted_tokens",
        "wildcard_policies",
        "stale_service_tokens",
    ] {
        let text = std::fs::read_to_string(format!("examples/{name}.sql")).unwrap();
        for st in cfql::script::split(&text).0 {
            session.sql(&st.text).await.unwrap();
            statements += 1;
        }
    }
    println!("\n## cache: the five example audits ({statements} statements) in one run");
    println!(
        "calls: {} (one listing of each table: {one_listing_each} calls)",
        sim.total_requests()
    );
}

const AUDITS: [&str; 5] = [
    "expiring_credentials",
    "unused_tokens",
    "unrestricted_tokens",
    "wildcard_policies",
    "stale_service_tokens",
];

/// The statements of the five example audits.
fn audit_statements() -> Vec<String> {
    AUDITS
        .iter()
        .flat_map(|name| {
            let text = std::fs::read_to_string(format!("examples/{name}.sql")).unwrap();
            cfql::script::split(&text).0.into_iter().map(|s| s.text)
        })
        .collect()
}

/// 7. Ten clients of one server (one engine: one cache, one budget) against ten CLI runs.
async fn audits_over_the_wire() {
    let sim = Simulator::start(SimOptions::default()).await.unwrap();
    sim.set_latency_ms(20);
    let config = || Config::new(sim.base_url()).with_api_token(sim.admin_token());
    let statements = audit_statements();
    let t = Instant::now();
    for _ in 0..10 {
        let session = Session::new(config()).await.unwrap();
        for st in &statements {
            session.sql(st).await.unwrap();
        }
    }
    let (cli_time, cli_calls) = (t.elapsed(), sim.total_requests());
    sim.reset_counts();
    let t = Instant::now();
    let runs: Vec<_> = (0..10)
        .map(|_| {
            let (statements, config) = (statements.clone(), config());
            tokio::spawn(async move {
                let session = Session::new(config).await.unwrap();
                for st in &statements {
                    session.sql(st).await.unwrap();
                }
            })
        })
        .collect();
    for r in runs {
        r.await.unwrap();
    }
    let (par_time, par_calls) = (t.elapsed(), sim.total_requests());
    sim.reset_counts();
    let opts = cfql::serve::ServeOptions::new("127.0.0.1:0".parse().unwrap());
    let server = cfql::serve::Server::bind(Session::new(config()).await.unwrap(), &opts)
        .await
        .unwrap();
    let port = server.local_addr().unwrap().port();
    tokio::spawn(server.run());
    let t = Instant::now();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let statements = statements.clone();
            tokio::spawn(async move {
                let dsn = format!("host=127.0.0.1 port={port} dbname=cloudflare user=cfql");
                let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                for st in &statements {
                    client.simple_query(st).await.unwrap();
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let (wire_time, wire_calls) = (t.elapsed(), sim.total_requests());
    // What a connection costs before its first statement: the session fork, pg_catalog,
    // the start-up exchange (no password), one `SELECT 1`.
    let t = Instant::now();
    for _ in 0..20 {
        let dsn = format!("host=127.0.0.1 port={port} dbname=cloudflare user=cfql");
        let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.simple_query("SELECT 1").await.unwrap();
    }
    let connect = t.elapsed() / 20;
    println!(
        "\n## the server: 10 connections x the five audits ({} statements each), 20 ms per request",
        statements.len()
    );
    println!(
        "cfql serve, 10 connections at once: {wire_calls} calls, {:.2} s",
        wire_time.as_secs_f64()
    );
    let vs = |calls: usize, time: Duration| {
        format!(
            "{calls} calls, {:.2} s ({:.1}x the calls, {:.1}x the time)",
            time.as_secs_f64(),
            calls as f64 / wire_calls.max(1) as f64,
            time.as_secs_f64() / wire_time.as_secs_f64()
        )
    };
    println!(
        "CLI engine, 10 runs one after another: {}",
        vs(cli_calls, cli_time)
    );
    println!("CLI engine, 10 runs at once: {}", vs(par_calls, par_time));
    println!(
        "a connection and its first SELECT 1: {:.1} ms (mean of 20, one after another)",
        connect.as_secs_f64() * 1000.0
    );
}

/// Figure 8: one client reads every row of `audit.credentials` (10,000 user tokens) by
/// COPY and by SELECT; the first read fills the cache, so the figures are the wire's.
async fn copy_against_select() {
    use futures::StreamExt;
    let sim = Simulator::start(SimOptions {
        seed: SeedOptions {
            tokens: 10_000,
            ..SeedOptions::default()
        },
        rate_limit: 1_000_000,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let mut config = Config::new(sim.base_url()).with_api_token(sim.admin_token());
    config.rate_limit = 1_000_000;
    let opts = cfql::serve::ServeOptions::new("127.0.0.1:0".parse().unwrap());
    let server = cfql::serve::Server::bind(Session::new(config).await.unwrap(), &opts)
        .await
        .unwrap();
    let port = server.local_addr().unwrap().port();
    tokio::spawn(server.run());
    let dsn = format!("host=127.0.0.1 port={port} dbname=cloudflare user=cfql");
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let query = "SELECT * FROM cloudflare.audit.credentials";
    let rows = |msgs: &[tokio_postgres::SimpleQueryMessage]| {
        msgs.iter()
            .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
            .count()
    };
    let warm = rows(&client.simple_query(query).await.unwrap());
    let (mut select, mut text, mut binary) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let (mut text_bytes, mut binary_bytes) = (0, 0);
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(rows(&client.simple_query(query).await.unwrap()), warm);
        select = select.min(t.elapsed());
        for (format, best, bytes) in [
            ("text", &mut text, &mut text_bytes),
            ("binary", &mut binary, &mut binary_bytes),
        ] {
            let copy = format!("COPY ({query}) TO STDOUT (FORMAT {format})");
            let t = Instant::now();
            let stream = client.copy_out(copy.as_str()).await.unwrap();
            let chunks: Vec<_> = stream.collect().await;
            *bytes = chunks
                .iter()
                .map(|c| c.as_ref().unwrap().len())
                .sum::<usize>();
            *best = (*best).min(t.elapsed());
        }
    }
    println!(
        "\n## COPY against SELECT: every row of audit.credentials ({warm} rows), cached, best of 5"
    );
    println!(
        "SELECT (simple query, text rows): {:.0} ms",
        select.as_secs_f64() * 1000.0
    );
    for (name, t, bytes) in [("text", text, text_bytes), ("binary", binary, binary_bytes)] {
        println!(
            "COPY ... TO STDOUT ({name}): {:.0} ms, {bytes} bytes ({:.2}x the SELECT's time)",
            t.as_secs_f64() * 1000.0,
            t.as_secs_f64() / select.as_secs_f64()
        );
    }
}

/// The write plan under latency (figure 4): calls run `concurrency` at a time, each
/// outcome recorded as it returns; DataFusion's DML goes through the same plan.
async fn bulk_writes() {
    let sim = Simulator::start(SimOptions {
        seed: SeedOptions {
            tokens: 420,
            ..SeedOptions::default()
        },
        latency_ms: 50,
        rate_limit: 1_000_000,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let base = Config::new(sim.base_url()).with_api_token(sim.admin_token());
    let s = Session::new(base.clone()).await.unwrap();
    let me = scalar_text(&s, "SELECT id FROM cloudflare.user.tokens_verify").await;
    let ids = |offset: usize| {
        format!(
            "SELECT id FROM cloudflare.user.tokens WHERE id <> '{me}' AND status = 'active' ORDER BY id LIMIT 100 OFFSET {offset}"
        )
    };
    let roll = |offset| {
        format!(
            "EXEC cloudflare.user.tokens.update_value @token_id = ({})",
            ids(offset)
        )
    };
    let slow = Session::new(base.clone().with_concurrency(1))
        .await
        .unwrap();
    let t = Instant::now();
    let fast_rows: usize = s
        .sql(&roll(0))
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let t_fast = t.elapsed();
    let t = Instant::now();
    let slow_rows: usize = slow
        .sql(&roll(100))
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let t_slow = t.elapsed();
    println!("\n## the write plan: a bulk roll of 100 tokens, 50 ms per request");
    println!(
        "default (concurrency 16): {:>8.3} s, {fast_rows} secrets returned",
        t_fast.as_secs_f64()
    );
    println!(
        "concurrency 1:            {:>8.3} s, {slow_rows} secrets returned",
        t_slow.as_secs_f64()
    );
    println!(
        "speed-up:                 {:>8.1}x",
        t_slow.as_secs_f64() / t_fast.as_secs_f64()
    );

    let update = |offset| {
        format!(
            "UPDATE cloudflare.user.tokens SET status = 'disabled' WHERE id IN ({})",
            ids(offset)
        )
    };
    sim.reset_counts();
    let t = Instant::now();
    s.sql(&update(0)).await.unwrap();
    let (t_session, calls_session) = (t.elapsed(), sim.total_requests());
    let ctx = cfql::datafusion::prelude::SessionContext::new();
    cfql::register(&ctx, base).unwrap();
    let list: Vec<String> = {
        let b = s.sql(&ids(0)).await.unwrap();
        let a = b[0]
            .column(0)
            .as_any()
            .downcast_ref::<cfql::arrow::array::StringArray>()
            .unwrap()
            .clone();
        a.iter().flatten().map(|v| format!("'{v}'")).collect()
    };
    sim.reset_counts();
    let t = Instant::now();
    let sql = format!(
        "UPDATE cloudflare.user.tokens SET status = 'active' WHERE id IN ({})",
        list.join(", ")
    );
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let (t_dml, calls_dml) = (t.elapsed(), sim.total_requests());
    println!(
        "\n## one UPDATE of 100 tokens, 50 ms per request: cfql::Session vs DataFusion DML (cfql::register)"
    );
    println!(
        "Session:        {:>8.3} s, {calls_session} calls",
        t_session.as_secs_f64()
    );
    println!(
        "DataFusion DML: {:>8.3} s, {calls_dml} calls ({:.2}x the Session's time)",
        t_dml.as_secs_f64(),
        t_dml.as_secs_f64() / t_session.as_secs_f64()
    );
}

async fn scalar_text(s: &Session, sql: &str) -> String {
    let b = s.sql(sql).await.unwrap();
    b[0].column(0)
        .as_any()
        .downcast_ref::<cfql::arrow::array::StringArray>()
        .unwrap()
        .value(0)
        .to_string()
}
