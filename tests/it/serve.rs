//! `cfql serve` through a real PostgreSQL driver (tokio-postgres) over loopback: prepared
//! statements and the exact calls they make, binary results and types, the read-only
//! rules, writes with their secrets and audit lines, cancel, authentication, TLS checks,
//! one engine for many connections.

use std::net::SocketAddr;
use std::time::Duration;

use cfql::serve::{ServeOptions, Server, TlsFiles};
use cfql::sim::Simulator;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::common::*;

/// Options for a read-only server on an ephemeral loopback port.
pub(crate) fn opts() -> ServeOptions {
    ServeOptions::new("127.0.0.1:0".parse().unwrap())
}

/// Serves `config` with `opts`; returns the address.
async fn serve_config(config: cfql::Config, opts: ServeOptions) -> SocketAddr {
    let session = cfql::Session::new(config).await.unwrap();
    let server = Server::bind(session, &opts).await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    addr
}

async fn serve(sim: &Simulator, opts: ServeOptions) -> SocketAddr {
    serve_config(config(sim), opts).await
}

/// A read-only server on the simulator.
pub(crate) async fn serve_public(sim: &Simulator) -> SocketAddr {
    serve(sim, opts()).await
}

/// A server that runs writes through `session` (whose config names a secrets file).
pub(crate) async fn serve_session_writable(session: cfql::Session) -> SocketAddr {
    let opts = ServeOptions {
        allow_writes: true,
        ..opts()
    };
    let server = Server::bind(session, &opts).await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    addr
}

/// A server that runs writes, with its secrets file in a temporary directory (kept while
/// the returned guard lives); `tune` adjusts the configuration first.
pub(crate) async fn writable(
    sim: &Simulator,
    tune: impl FnOnce(&mut cfql::Config),
) -> (SocketAddr, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("s.jsonl");
    let mut cfg = config(sim);
    cfg.secrets_file = Some(secrets.clone());
    tune(&mut cfg);
    let opts = ServeOptions {
        allow_writes: true,
        ..opts()
    };
    (serve_config(cfg, opts).await, secrets, dir)
}

async fn connect_as(addr: SocketAddr, extra: &str) -> Result<Client, tokio_postgres::Error> {
    let dsn = format!(
        "host=127.0.0.1 port={} dbname=cloudflare user=cfql {extra}",
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&dsn, NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

pub(crate) async fn connect(addr: SocketAddr) -> Client {
    connect_as(addr, "").await.expect("connects")
}

pub(crate) fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

pub(crate) fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// The rows of a simple query, as text.
pub(crate) async fn simple_rows(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", message(&e)))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_prepared_select_by_id_makes_one_get_as_the_literal_query_does() {
    on_runtime(async {
        let sim = sim_with(60).await;
        let addr = serve(&sim, opts()).await;
        let c = connect(addr).await;
        let id = sim.user_token_ids()[7].clone();
        let stmt = c
            .prepare("SELECT id, name FROM cloudflare.user.tokens WHERE id = $1")
            .await
            .unwrap();
        assert_eq!(stmt.params(), &[Type::TEXT]);
        sim.reset_counts();
        let rows = c.query(&stmt, &[&id]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, String>("id"), id);
        assert_eq!(sim.count("GET", "/user/tokens/{token_id}"), 1);
        assert_eq!(sim.count("GET", "/user/tokens"), 0, "no listing");

        sim.reset_counts();
        let literal = format!("SELECT id, name FROM cloudflare.user.tokens WHERE id = '{id}'");
        assert_eq!(simple_rows(&c, &literal).await.len(), 1);
        assert_eq!(sim.count("GET", "/user/tokens/{token_id}"), 1);
        assert_eq!(sim.count("GET", "/user/tokens"), 0);
    })
}

#[test]
fn results_come_typed_in_binary_timestamptz_json_bool_and_integers() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let addr = serve(&sim, opts()).await;
        let c = connect(addr).await;
        let rows = c
            .query(
                "SELECT name, expires_on, policies, expires_on IS NULL AS never, count(*) OVER () AS n \
                 FROM cloudflare.user.tokens ORDER BY name",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 5);
        let types: Vec<Type> = rows[0]
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        assert_eq!(
            types,
            vec![
                Type::TEXT,
                Type::TIMESTAMPTZ,
                Type::JSON,
                Type::BOOL,
                Type::INT8
            ]
        );
        let policies: serde_json::Value = rows[0].get("policies");
        assert!(policies.is_array(), "{policies}");
        assert_eq!(rows[0].get::<_, i64>("n"), 5);
        let with_expiry = rows
            .iter()
            .filter(|r| {
                r.get::<_, Option<std::time::SystemTime>>("expires_on")
                    .is_some()
            })
            .count();
        let never = rows.iter().filter(|r| r.get::<_, bool>("never")).count();
        assert_eq!(with_expiry + never, 5);
    })
}

#[test]
fn the_server_is_read_only_unless_writes_are_allowed() {
    on_runtime(async {
        let sim = sim_with(3).await;
        let addr = serve(&sim, opts()).await;
        let c = connect(addr).await;
        let id = sim.user_token_ids()[0].clone();
        let refused = [
            (
                format!("EXEC cloudflare.user.tokens.update_value @token_id='{id}'"),
                "25006",
                "read-only",
            ),
            (
                format!("DELETE FROM cloudflare.user.tokens WHERE id = '{id}'"),
                "25006",
                "--allow-writes",
            ),
            (
                "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('x', '[]')".into(),
                "25006",
                "INSERT",
            ),
            ("CREATE TABLE t AS SELECT 1".into(), "42501", "DDL"),
            (
                "COPY (SELECT 1) TO '/tmp/cfql-copy.csv'".into(),
                "42501",
                "COPY",
            ),
            (
                "SET datafusion.execution.batch_size = 1".into(),
                "42501",
                "datafusion.execution.batch_size",
            ),
            (
                "SET cfql.cache_ttl = 0".into(),
                "42501",
                "shared by every connection",
            ),
        ];
        for (sql, code, words) in refused {
            let e = c.simple_query(&sql).await.expect_err(&sql);
            assert_eq!(sqlstate(&e), code, "{sql}: {}", message(&e));
            assert_contains!(message(&e), words);
            // The extended protocol refuses the same at Parse.
            let e = c.prepare(&sql).await.expect_err(&sql);
            assert_eq!(sqlstate(&e), code, "{sql}");
        }
        // A dry run is a read: EXPLAIN of a write lists its calls, prepared or not.
        let rows = c
            .query(
                "EXPLAIN EXEC cloudflare.user.tokens.update_value @token_id = $1",
                &[&id],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, String>("method"), "PUT");
        assert_eq!(sim.mutating_requests(), 0);
        assert!(!std::path::Path::new("/tmp/cfql-copy.csv").exists());
        // Session talk a driver sends still works.
        c.batch_execute(
            "SET application_name = 'probe'; BEGIN; SAVEPOINT s; SELECT 1; ROLLBACK TO SAVEPOINT s; \
             RELEASE SAVEPOINT s; COMMIT; DISCARD ALL",
        )
            .await
            .unwrap();
    })
}

#[test]
fn an_allowed_write_hands_the_secret_to_the_client_the_file_and_the_audit_log() {
    on_runtime(async {
        let sim = sim_with(3).await;
        let audit_dir = tempfile::tempdir().unwrap();
        let audit = audit_dir.path().join("a.jsonl");
        let log = audit.clone();
        let (addr, secrets, _dir) = writable(&sim, |c| c.audit_log = Some(log)).await;
        let c = connect(addr).await;
        let id = sim.user_token_ids()[1].clone();
        // Extended protocol, with the id as a parameter.
        let rows = c
            .query(
                "EXEC cloudflare.user.tokens.update_value @token_id = $1",
                &[&id],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let value: String = rows[0].get("value");
        assert!(value.len() >= 40, "a new secret: {} chars", value.len());
        assert_eq!(sim.count("PUT", "/user/tokens/{token_id}/value"), 1);
        let file = std::fs::read_to_string(&secrets).unwrap();
        assert_contains!(file, &value, &id);
        let log = std::fs::read_to_string(&audit).unwrap();
        assert_contains!(log, "\"client\":\"cfql@127.0.0.1:", &id);
        assert!(!log.contains(&value), "no secret in the audit log");
        // The simple protocol, with RETURNING.
        let rows = simple_rows(
            &c,
            &format!("UPDATE cloudflare.user.tokens SET name = 'renamed' WHERE id = '{id}' RETURNING id, name"),
        )
        .await;
        assert_eq!(rows, vec![vec![Some(id.clone()), Some("renamed".into())]]);
    })
}

#[test]
fn connections_share_one_cache_and_keep_their_own_settings() {
    on_runtime(async {
        let sim = sim_with(120).await;
        let (addr, _, _dir) = writable(&sim, |c| c.cache_ttl = Duration::from_secs(60)).await;
        let (a, b) = (connect(addr).await, connect(addr).await);
        sim.reset_counts();
        for c in [&a, &b] {
            let rows = simple_rows(c, "SELECT count(*) FROM cloudflare.user.tokens").await;
            assert_eq!(rows[0][0].as_deref(), Some("120"));
        }
        assert_eq!(
            sim.count("GET", "/user/tokens"),
            3,
            "one listing of 3 pages for both"
        );
        // Preparing a setting does not set it (it takes effect when executed).
        b.prepare("SET cfql.dry_run = true").await.unwrap();
        // A dry run set on one connection is that connection's only.
        simple_rows(&a, "SET cfql.dry_run = true").await;
        let id = sim.user_token_ids()[0].clone();
        let exec = format!("EXEC cloudflare.user.tokens.update_value @token_id='{id}'");
        simple_rows(&a, &exec).await;
        assert_eq!(sim.count("PUT", "/user/tokens/{token_id}/value"), 0);
        simple_rows(&b, &exec).await;
        assert_eq!(sim.count("PUT", "/user/tokens/{token_id}/value"), 1);
        // So is a template variable.
        simple_rows(&a, "SET cfql.var.wanted = 'Token-1'").await;
        let templated = "SELECT '{{ wanted }}' AS v";
        assert_eq!(
            simple_rows(&a, templated).await[0][0].as_deref(),
            Some("Token-1")
        );
        let e = b
            .simple_query(templated)
            .await
            .expect_err("b has no such variable");
        assert_contains!(message(&e), "wanted");
    })
}

#[test]
fn a_cancel_request_stops_the_statements_http_calls() {
    on_runtime(async {
        let sim = sim_with(500).await;
        sim.set_latency_ms(150);
        let mut cfg = config(&sim);
        cfg.concurrency = 1;
        let addr = serve_config(cfg, opts()).await;
        let c = connect(addr).await;
        let token = c.cancel_token();
        sim.reset_counts();
        let query = tokio::spawn(async move {
            c.simple_query("SELECT count(*) FROM cloudflare.user.tokens")
                .await
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        token.cancel_query(NoTls).await.unwrap();
        let e = query.await.unwrap().expect_err("cancelled");
        assert_eq!(sqlstate(&e), "57014", "{}", message(&e));
        let made = sim.count("GET", "/user/tokens");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            sim.count("GET", "/user/tokens"),
            made,
            "no call after the cancel"
        );
        assert!(made < 10, "10 pages in all, {made} made");
    })
}

#[test]
fn a_password_is_checked_with_scram_and_a_wrong_one_refused() {
    on_runtime(async {
        let sim = sim_with(2).await;
        let addr = serve(
            &sim,
            ServeOptions {
                password: Some("s3cret pass".into()),
                ..opts()
            },
        )
        .await;
        let e = connect_as(addr, "password=wrong")
            .await
            .expect_err("wrong password");
        assert_eq!(sqlstate(&e), "28P01", "{}", message(&e));
        connect_as(addr, "").await.expect_err("no password");
        let c = connect_as(addr, "password='s3cret pass'").await.unwrap();
        assert_eq!(
            simple_rows(&c, "SELECT 1").await[0][0].as_deref(),
            Some("1")
        );
        let dsn = format!(
            "host=127.0.0.1 port={} dbname=cloudflare user=other password='s3cret pass'",
            addr.port()
        );
        let e = tokio_postgres::connect(&dsn, NoTls)
            .await
            .err()
            .expect("wrong user");
        assert_eq!(sqlstate(&e), "28P01");
        let dsn = format!(
            "host=127.0.0.1 port={} dbname=postgres user=cfql password='s3cret pass'",
            addr.port()
        );
        let e = tokio_postgres::connect(&dsn, NoTls)
            .await
            .err()
            .expect("wrong database");
        assert_eq!(sqlstate(&e), "3D000");
        assert_contains!(message(&e), "dbname=cloudflare");
    })
}

#[test]
fn the_server_refuses_to_start_open_off_loopback_or_with_a_bad_certificate() {
    on_runtime(async {
        let sim = sim_with(1).await;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let tls = Some(TlsFiles {
            cert: cert.clone(),
            key,
        });
        let cases = [
            (
                ServeOptions {
                    listen: "0.0.0.0:0".parse().unwrap(),
                    ..opts()
                },
                "not a loopback address",
            ),
            (
                ServeOptions {
                    listen: "0.0.0.0:0".parse().unwrap(),
                    tls: tls.clone(),
                    ..opts()
                },
                "without both TLS and a password",
            ),
            (
                ServeOptions {
                    tls,
                    password: Some("p".into()),
                    ..opts()
                },
                "cannot load the TLS certificate",
            ),
            (
                ServeOptions {
                    allow_writes: true,
                    ..opts()
                },
                "needs a secrets file",
            ),
        ];
        for (o, words) in cases {
            let e = Server::bind(session(&sim).await, &o)
                .await
                .expect_err("refused");
            assert_contains!(e.to_string(), words);
        }
    })
}

#[test]
fn the_catalog_lists_each_table_once_and_version_looks_like_postgres() {
    on_runtime(async {
        let sim = sim_with(2).await;
        let addr = serve(&sim, opts()).await;
        let c = connect(addr).await;
        let tables = simple_rows(
            &c,
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname IN ('user', 'accounts', 'access') ORDER BY 1, 2",
        )
        .await;
        let names: Vec<String> = tables
            .iter()
            .map(|r| format!("{}.{}", r[0].as_deref().unwrap(), r[1].as_deref().unwrap()))
            .collect();
        assert!(names.contains(&"user.tokens".to_string()), "{names:?}");
        assert!(
            names.contains(&"access.service_tokens".to_string()),
            "{names:?}"
        );
        assert!(
            !names.contains(&"user.user_tokens".to_string()),
            "aliases are not listed: {names:?}"
        );
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique, names, "each table once");
        let who = simple_rows(&c, "SELECT current_schema(), current_user").await;
        assert_eq!(who, vec![vec![Some("user".into()), Some("cfql".into())]]);
        let path = simple_rows(&c, "SHOW search_path").await;
        assert_eq!(path[0][0].as_deref(), Some("user"));
        let v = simple_rows(&c, "SHOW server_version").await;
        assert_eq!(v[0][0].as_deref(), Some("16.6"));
        let v = simple_rows(&c, "SHOW server_version_num").await;
        assert_eq!(v[0][0].as_deref(), Some("160006"));
        let v = simple_rows(&c, "SELECT version()").await;
        assert!(
            v[0][0].as_deref().unwrap().starts_with("PostgreSQL 16."),
            "{v:?}"
        );
        // Aliases still resolve in SQL.
        let n = simple_rows(&c, "SELECT count(*) FROM cloudflare.user.user_tokens").await;
        assert_eq!(n[0][0].as_deref(), Some("2"));
    })
}

#[test]
fn errors_carry_a_sqlstate_and_cfqls_words() {
    on_runtime(async {
        let sim = sim_with(2).await;
        let addr = serve(&sim, opts()).await;
        let c = connect(addr).await;
        let cases = [
            ("SELECT * FROM cloudflare.user.tokenz", "42P01", "tokens"),
            ("SELECT nmae FROM cloudflare.user.tokens", "42703", "name"),
            ("SELEC 1", "42601", "SELEC"),
        ];
        for (sql, code, words) in cases {
            let e = c.simple_query(sql).await.expect_err(sql);
            assert_eq!(sqlstate(&e), code, "{sql}: {}", message(&e));
            assert_contains!(message(&e), words);
        }
        // The connection goes on after an error.
        assert_eq!(
            simple_rows(&c, "SELECT 2").await[0][0].as_deref(),
            Some("2")
        );
    })
}

/// The rows a simple query streamed before it failed, and its error.
async fn rows_then_error(
    c: &Client,
    sql: &str,
) -> (Vec<tokio_postgres::SimpleQueryRow>, tokio_postgres::Error) {
    use futures::StreamExt;
    let stream = c.simple_query_raw(sql).await.expect("sent");
    futures::pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(m) = stream.next().await {
        match m {
            Ok(SimpleQueryMessage::Row(r)) => rows.push(r),
            Ok(_) => {}
            Err(e) => return (rows, e),
        }
    }
    panic!("{sql}: expected an error after {} rows", rows.len());
}

const ROLL: &str = "/user/tokens/{token_id}/value";

#[test]
fn a_write_that_partly_failed_still_hands_every_secret_to_the_client() {
    on_runtime(async {
        let sim = sim_with(4).await;
        let (addr, _, _dir) = writable(&sim, |c| c.concurrency = 1).await;
        let c = connect(addr).await;
        let ids = sim.user_token_ids()[..3].to_vec();
        let list = ids
            .iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(", ");
        sim.set_faults(cfql::sim::FaultSpec::parse(&format!("500@PUT:{ROLL}#1")).unwrap());
        let sql = format!(
            "EXEC cloudflare.user.tokens.update_value @token_id = (SELECT id FROM cloudflare.user.tokens WHERE id IN ({list}))"
        );
        let (rows, e) = rows_then_error(&c, &sql).await;
        assert_eq!(
            rows.len(),
            2,
            "the two rolls that took effect, with their secrets"
        );
        for r in &rows {
            assert!(r.get("value").is_some_and(|v| v.len() >= 40));
        }
        assert_contains!(message(&e), "may have taken effect");
        assert_eq!(sim.count("PUT", ROLL), 3, "never retried");
    })
}

#[test]
fn a_cancel_during_a_write_keeps_every_secret_already_issued() {
    on_runtime(async {
        let sim = sim_with(30).await;
        let (addr, secrets, _dir) = writable(&sim, |c| c.concurrency = 2).await;
        let c = connect(addr).await;
        sim.set_latency_ms(100);
        let token = c.cancel_token();
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            token.cancel_query(NoTls).await.unwrap();
        });
        let (rows, e) = rows_then_error(
            &c,
            "EXEC cloudflare.user.tokens.update_value @token_id = (SELECT id FROM cloudflare.user.tokens)",
        )
        .await;
        canceller.await.unwrap();
        assert_eq!(sqlstate(&e), "57014", "{}", message(&e));
        let rolled = sim.count("PUT", ROLL) as usize;
        assert!(
            rolled > 0 && rolled < 30,
            "{rolled} rolls before the cancel stopped the rest"
        );
        assert_eq!(rows.len(), rolled, "every roll made reached the client");
        assert_contains!(message(&e), "not attempted");
        let file = std::fs::read_to_string(&secrets).unwrap();
        assert_eq!(file.lines().count(), rolled, "and the secrets file");
    })
}

#[test]
fn a_query_over_cfqls_tables_is_never_rewritten_for_the_catalog() {
    on_runtime(async {
        let sim = sim_with(12).await;
        let addr = serve(&sim, opts()).await;
        let c = connect(addr).await;
        // datafusion-pg-catalog would make this correlated subquery NULL; cfql's tables
        // get DataFusion's own answer (or its error), never a silent NULL.
        let sql = "SELECT t.id, (SELECT count(*) FROM cloudflare.user.tokens u WHERE u.status = t.status) AS same \
                   FROM cloudflare.user.tokens t";
        match c.simple_query(sql).await {
            Ok(msgs) => {
                let counts: Vec<Option<String>> = msgs
                    .iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(r) => Some(r.get("same").map(str::to_string)),
                        _ => None,
                    })
                    .collect();
                assert_eq!(counts.len(), 12);
                assert!(
                    counts
                        .iter()
                        .all(|n| n.as_deref().is_some_and(|n| n != "0")),
                    "{counts:?}"
                );
            }
            Err(e) => assert_ne!(sqlstate(&e), "", "an error, not a NULL: {}", message(&e)),
        }
    })
}

#[test]
fn connections_past_the_limit_are_refused_with_53300() {
    on_runtime(async {
        let sim = sim_with(1).await;
        let addr = serve(
            &sim,
            ServeOptions {
                max_connections: 1,
                ..opts()
            },
        )
        .await;
        let first = connect(addr).await;
        let e = connect_as(addr, "").await.expect_err("refused");
        assert_eq!(sqlstate(&e), "53300", "{e}");
        assert_eq!(simple_rows(&first, "SELECT 1").await.len(), 1);
        drop(first);
        // The slot frees when the server sees the connection close: soon, not at once.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            match connect_as(addr, "").await {
                Ok(_) => break,
                Err(e) if std::time::Instant::now() < deadline => assert_eq!(sqlstate(&e), "53300"),
                Err(e) => panic!("no slot freed in 5 s: {e}"),
            }
        }
    })
}

#[test]
fn a_client_that_goes_away_mid_write_loses_no_secret() {
    on_runtime(async {
        let sim = sim_with(20).await;
        let (addr, secrets, _dir) = writable(&sim, |c| c.concurrency = 2).await;
        let c = connect(addr).await;
        sim.set_latency_ms(100);
        let sql = "EXEC cloudflare.user.tokens.update_value @token_id = (SELECT id FROM cloudflare.user.tokens)";
        let client = tokio::spawn(async move { c.simple_query(sql).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.abort(); // the client and its socket are gone mid-statement
        // The write goes on to its end (no one cancelled it); every secret is on disk.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sim.count("PUT", ROLL) < 20 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sim.count("PUT", ROLL), 20);
        let file = std::fs::read_to_string(&secrets).unwrap();
        assert_eq!(file.lines().count(), 20, "one secret per roll made");
    })
}
