//! `cfql serve` under hostile and careless clients: memory that returns after connections
//! close, silent sockets that lock no one out, a stop (SIGTERM) that loses no secret, a
//! statement timeout, memory bounds that stop a statement and not the server, a client
//! that hangs up stopping its read, and heavy statements that leave the cores shared.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cfql::serve::{ServeOptions, Server};
use cfql::sim::{SeedOptions, Simulator};
use tokio_postgres::{Client, NoTls};

use crate::cli::cfql;
use crate::common::*;
use crate::serve::{message, opts, simple_rows, sqlstate};
use crate::trust::{processed_rolls, secrets_in};

/// A `cfql serve` process on an ephemeral loopback port; its stderr is kept; killed when
/// dropped.
pub(crate) struct Process {
    child: Child,
    pub(crate) port: u16,
    stderr: Arc<Mutex<Vec<String>>>,
    _home: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// `cfql serve --listen 127.0.0.1:0` with these flags and environment.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut c = cfql(home.path());
        c.args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("cfql serve starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("cfql serve says where it listens")
                .unwrap();
            if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
                break rest.split(' ').next().unwrap().parse().unwrap();
            }
        };
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            port,
            stderr,
            _home: home,
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Resident memory of the process, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Waits for the process to exit; its exit code and stderr.
    fn wait(&mut self, limit: Duration) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // the stderr reader drains
                let err = self.stderr.lock().unwrap().join("\n");
                return (status.code().unwrap_or(-1), err);
            }
            assert!(
                start.elapsed() < limit,
                "cfql serve did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

async fn client(addr: SocketAddr) -> Result<Client, tokio_postgres::Error> {
    let dsn = format!(
        "host=127.0.0.1 port={} dbname=cloudflare user=cfql connect_timeout=10",
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&dsn, NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// An in-process server on `config` with `opts`.
async fn serve_with(config: cfql::Config, opts: ServeOptions) -> SocketAddr {
    let session = cfql::Session::new(config).await.unwrap();
    let server = Server::bind(session, &opts).await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    addr
}

/// 1,000 bare connections and 300 that log in and run a statement leave the server's
/// resident memory within a few megabytes of where it was (each used to keep 4-5 MB).
#[test]
fn connections_leave_no_memory_behind() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = Process::start(&["--demo"], &[]);
    let addr = p.addr();
    let cycle = |n: usize| {
        rt.block_on(async {
            for _ in 0..n {
                let c = client(addr).await.unwrap();
                c.simple_query("SELECT 1").await.unwrap();
            }
        })
    };
    cycle(30); // warm-up: the allocator's arenas and the catalog's first use
    std::thread::sleep(Duration::from_millis(500));
    let before = p.rss_kib();
    for _ in 0..1000 {
        drop(std::net::TcpStream::connect(addr).unwrap());
    }
    cycle(300);
    std::thread::sleep(Duration::from_secs(1));
    let after = p.rss_kib();
    eprintln!(
        "serve RSS: {before} KiB before, {after} KiB after 1,000 bare + 300 logged-in connections"
    );
    assert!(
        after < before + 40 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

/// 100 sockets left open and silent lock nobody out: a client logs in at once, and a
/// cancel request gets through; each connection has a process id of its own.
#[test]
fn silent_sockets_lock_no_one_out() {
    on_runtime(async {
        let sim = sim_with(500).await;
        sim.set_latency_ms(150);
        let mut cfg = config(&sim);
        cfg.concurrency = 1;
        let addr = serve_with(
            cfg,
            ServeOptions {
                max_connections: 4,
                max_startups: 8,
                startup_timeout: Duration::from_secs(60),
                ..opts()
            },
        )
        .await;
        let mut silent = Vec::new();
        for _ in 0..100 {
            silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let started = Instant::now();
        let a = Arc::new(client(addr).await.expect("logs in past 100 silent sockets"));
        let b = client(addr).await.expect("and another");
        let port = addr.port();
        let psql = tokio::task::spawn_blocking(move || {
            std::process::Command::new("psql")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("PGCONNECT_TIMEOUT", "10")
                .args([
                    "-X",
                    "-At",
                    &format!("host=127.0.0.1 port={port} dbname=cloudflare user=cfql"),
                    "-c",
                    "SELECT 41 + 1",
                ])
                .output()
                .expect("psql is installed")
        })
        .await
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&psql.stdout).trim(),
            "42",
            "{}",
            String::from_utf8_lossy(&psql.stderr)
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid = |rows: Vec<Vec<Option<String>>>| rows[0][0].clone().unwrap();
        let pa = pid(simple_rows(&a, "SELECT pg_backend_pid()").await);
        let pb = pid(simple_rows(&b, "SELECT pg_backend_pid()").await);
        assert_ne!(pa, pb, "each connection has its own process id");
        // A cancel request comes on a connection of its own, past the silent sockets.
        let token = a.cancel_token();
        let reader = a.clone();
        let query = tokio::spawn(async move {
            reader
                .simple_query("SELECT count(*) FROM cloudflare.user.tokens")
                .await
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        for _ in 0..20 {
            silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        token.cancel_query(NoTls).await.unwrap();
        let e = query.await.unwrap().expect_err("cancelled");
        assert_eq!(sqlstate(&e), "57014", "{}", message(&e));
        // Logged-in slots are for logged-in clients: the fifth is refused.
        let _c = client(addr).await.unwrap();
        let _d = client(addr).await.unwrap();
        let refused = client(addr).await.expect_err("over --max-connections");
        assert_eq!(sqlstate(&refused), "53300", "{refused}");
    })
}

/// SIGTERM during a bulk roll over the wire: the server stops taking statements, lets the
/// calls in flight return, records every answer, and exits 0. Every roll the simulator
/// carried out (it does even when its client has gone) has its secret in the file.
#[test]
fn sigterm_during_a_bulk_roll_loses_no_secret() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(60));
    let me = rt.block_on(async {
        let s = session(&sim).await;
        strings(
            &s.sql("SELECT id FROM cloudflare.user.tokens_verify")
                .await
                .unwrap(),
            "id",
        )[0]
        .clone()
    });
    sim.set_latency_ms(400);
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.jsonl");
    let audit = dir.path().join("audit.jsonl");
    let mut p = Process::start(
        &[
            "--base-url",
            &sim.base_url(),
            "--concurrency",
            "4",
            "--allow-writes",
            "--secrets-file",
            secrets.to_str().unwrap(),
            "--audit-log",
            audit.to_str().unwrap(),
        ],
        &[("CLOUDFLARE_API_TOKEN", &sim.admin_token())],
    );
    let addr = p.addr();
    let sql = format!(
        "EXEC cloudflare.user.tokens.update_value @token_id = (SELECT id FROM cloudflare.user.tokens WHERE status = 'active' AND id <> '{me}' ORDER BY id LIMIT 40)"
    );
    let psql = std::process::Command::new("psql")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args([
            "-X",
            &format!(
                "host=127.0.0.1 port={} dbname=cloudflare user=cfql",
                addr.port()
            ),
            "-c",
            &sql,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql is installed (.ci/run installs postgresql-client)");
    let start = Instant::now();
    while sim.count("PUT", "/user/tokens/{token_id}/value") < 8 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the roll started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p.signal(libc::SIGTERM);
    let (code, err) = p.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("cfql serve: stopping"), "{err}");
    assert!(
        err.contains("every call sent has its answer recorded"),
        "{err}"
    );
    let shown = psql.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    std::thread::sleep(Duration::from_millis(600)); // no call is still arriving
    let received = sim.count("PUT", "/user/tokens/{token_id}/value") as usize;
    let processed = processed_rolls(&sim);
    assert_eq!(
        processed.len(),
        received,
        "every roll received was carried out"
    );
    assert!(
        received < 40,
        "the stop started no new roll ({received} of 40)"
    );
    let filed = secrets_in(&secrets);
    for id in &processed {
        assert!(filed.contains_key(id), "the secret of {id} is in the file");
        assert!(
            shown.contains(id.as_str()),
            "psql was shown the roll of {id}"
        );
    }
    let audit_lines = std::fs::read_to_string(&audit).unwrap().lines().count();
    assert_eq!(audit_lines, received, "one audit line per call sent");
}

/// A second signal stops at once and says what may have been lost.
#[test]
fn a_second_signal_stops_at_once_and_says_what_may_be_lost() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(20));
    sim.set_latency_ms(5_000);
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.jsonl");
    let mut p = Process::start(
        &[
            "--base-url",
            &sim.base_url(),
            "--allow-writes",
            "--secrets-file",
            secrets.to_str().unwrap(),
        ],
        &[("CLOUDFLARE_API_TOKEN", &sim.admin_token())],
    );
    let addr = p.addr();
    let id = sim.user_token_ids()[3].clone();
    let _roll = rt.spawn(async move {
        let c = client(addr).await.unwrap();
        c.simple_query(&format!(
            "EXEC cloudflare.user.tokens.update_value @token_id = '{id}'"
        ))
        .await
        .map(|m| m.len())
    });
    let start = Instant::now();
    while sim.count("PUT", "/user/tokens/{token_id}/value") < 1 {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    p.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    p.signal(libc::SIGTERM);
    let (code, err) = p.wait(Duration::from_secs(4));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("stopped at once with 1 statement(s)"), "{err}");
    assert!(err.contains("may have taken effect"), "{err}");
}

/// `SET statement_timeout` and the server's default stop a statement (57014, saying why)
/// and its calls; the connection goes on.
#[test]
fn statement_timeout_stops_a_statement_and_the_next_runs() {
    on_runtime(async {
        let sim = sim_with(500).await;
        sim.set_latency_ms(300);
        let mut cfg = config(&sim);
        cfg.concurrency = 1;
        let addr = serve_with(cfg.clone(), opts()).await;
        let c = client(addr).await.unwrap();
        c.simple_query("SET statement_timeout = '200ms'")
            .await
            .unwrap();
        let e = c
            .simple_query("SELECT count(*) FROM cloudflare.user.tokens")
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "57014", "{}", message(&e));
        assert_contains!(message(&e), "statement timeout (200 ms)");
        assert_eq!(simple_rows(&c, "SELECT 1").await.len(), 1);
        let made = sim.total_requests();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(sim.total_requests(), made, "no call after the timeout");

        let addr = serve_with(
            cfg,
            ServeOptions {
                statement_timeout: Some(Duration::from_millis(200)),
                ..opts()
            },
        )
        .await;
        let c = client(addr).await.unwrap();
        let e = c
            .query("SELECT count(*) FROM cloudflare.user.tokens", &[])
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "57014", "{}", message(&e));
        c.simple_query("SET statement_timeout = '60s'")
            .await
            .unwrap();
        let rows = simple_rows(&c, "SELECT count(*) FROM cloudflare.user.tokens").await;
        assert_eq!(rows[0][0].as_deref(), Some("500"));
    })
}

/// A statement over the memory bounds fails with 53200 naming the bound; an over-long
/// statement with 54000; the server answers the next statement.
#[test]
fn memory_bounds_stop_a_statement_not_the_server() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let addr = serve_with(
            config(&sim),
            ServeOptions {
                statement_memory_limit: 16 << 20,
                ..opts()
            },
        )
        .await;
        let c = client(addr).await.unwrap();
        let e = c
            .simple_query("SELECT length(repeat('x', 2147483647))")
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "53200", "{}", message(&e));
        assert_contains!(message(&e), "16 MiB", "--statement-memory-limit");
        let e = c
            .simple_query("SELECT array_agg(v) FROM generate_series(1, 4000000) AS t(v)")
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "53200", "{}", message(&e));
        assert_contains!(message(&e), "16 MiB");
        let e = c
            .simple_query("SELECT v FROM generate_series(1, 4000000) AS t(v) ORDER BY v DESC")
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "53200", "{}", message(&e));
        assert_contains!(message(&e), "--statement-memory-limit");
        let long = format!("SELECT 1 WHERE 'a' IN ({})", vec!["'x'"; 400_000].join(","));
        let e = c.simple_query(&long).await.unwrap_err();
        assert_eq!(sqlstate(&e), "54000", "{}", message(&e));
        assert_contains!(message(&e), "--max-statement-bytes");
        assert_eq!(simple_rows(&c, "SELECT 1").await.len(), 1);
        let other = client(addr).await.unwrap();
        assert_eq!(simple_rows(&other, "SELECT 2").await.len(), 1);
        assert_eq!(
            simple_rows(&c, "SELECT length(repeat('x', 1000))").await[0][0].as_deref(),
            Some("1000")
        );
    })
}

/// A client that hangs up mid-read stops the read's calls (a write it started goes on:
/// `a_client_that_goes_away_mid_write_loses_no_secret`).
#[test]
fn a_read_whose_client_hangs_up_stops_its_calls() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 40,
            account_tokens: 1,
            ..SeedOptions::default()
        })
        .await;
        sim.set_latency_ms(100);
        let mut cfg = config(&sim);
        cfg.concurrency = 1;
        let addr = serve_with(cfg, opts()).await;
        let dsn = format!(
            "host=127.0.0.1 port={} dbname=cloudflare user=cfql",
            addr.port()
        );
        let (c, conn) = tokio_postgres::connect(&dsn, NoTls).await.unwrap();
        let conn = tokio::spawn(conn);
        sim.reset_counts();
        let reader = tokio::spawn(async move {
            c.simple_query("SELECT count(*) FROM cloudflare.accounts.tokens")
                .await
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        conn.abort(); // the client's socket is closed mid-statement
        reader.abort();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let made = sim.total_requests();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(sim.total_requests(), made, "no call after the hang-up");
        assert!(made < 30, "{made} of 41 calls made");
    })
}

/// Two CPU-heavy statements leave the cores shared: a third client's `SELECT 1` answers
/// within a few seconds (it took 19 s).
#[test]
fn heavy_statements_leave_the_cores_shared() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = Process::start(&["--demo"], &[]);
    let addr = p.addr();
    rt.block_on(async {
        let mut heavy = Vec::new();
        for _ in 0..2 {
            let c = client(addr).await.unwrap();
            c.simple_query("SET statement_timeout = '6s'")
                .await
                .unwrap();
            heavy.push(tokio::spawn(async move {
                c.simple_query("SELECT sum(v % 7) FROM generate_series(1, 30000000000) AS t(v)")
                    .await
                    .map(|m| m.len())
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let quick = client(addr).await.unwrap();
        let started = Instant::now();
        assert_eq!(simple_rows(&quick, "SELECT 1").await.len(), 1);
        let took = started.elapsed();
        eprintln!("SELECT 1 beside two heavy statements: {took:?}");
        assert!(heavy.iter().all(|h| !h.is_finished()), "both still running");
        assert!(took < Duration::from_secs(3), "took {took:?}");
        for h in heavy {
            let e = h.await.unwrap().unwrap_err();
            assert_eq!(sqlstate(&e), "57014", "{}", message(&e));
        }
    });
}

/// The simulator carries out a call whose client stopped waiting (as the real API does).
#[test]
fn the_simulator_carries_out_a_call_whose_client_went_away() {
    on_runtime(async {
        let sim = Simulator::start(cfql::sim::SimOptions::default())
            .await
            .unwrap();
        sim.set_latency_ms(500);
        let id = sim.user_token_ids()[2].clone();
        let url = format!("{}/user/tokens/{id}", sim.base_url());
        let http = reqwest::Client::new();
        let call = http
            .delete(&url)
            .bearer_auth(sim.admin_token())
            .timeout(Duration::from_millis(100))
            .send()
            .await;
        assert!(call.is_err(), "the client gave up");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            !sim.user_token_ids().contains(&id),
            "the delete took effect"
        );
        let r = sim
            .requests()
            .into_iter()
            .find(|r| r.method == "DELETE")
            .unwrap();
        assert_eq!(r.status, Some(200));
    })
}
