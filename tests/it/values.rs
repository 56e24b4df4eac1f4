//! A value is data, everywhere: a string holding a quote, a backslash, a comment or a
//! dollar quote never changes which rows a write picks, whether it comes as a literal, a
//! `--var`, a session variable or a bound parameter over the wire. Each case is counted on
//! the simulator: the calls a write makes equal the rows the same WHERE selects.

use std::time::Duration;

use cfql::Session;
use cfql::sim::Simulator;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cli::{cfql, run};
use crate::common::*;
use crate::serve::{connect, message, simple_rows, sqlstate, writable};

/// The audit's value: a backslash before the quote, then code.
const ATTACK: &str = r"\' OR true --";

/// `text` as a standard SQL string literal (quotes doubled, backslashes as they are).
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Every statement form the audit widened, with the attack as a literal: none makes a
/// call, and the SELECT with the same WHERE agrees.
#[test]
fn a_backslash_in_a_literal_widens_no_write() {
    on_runtime(async {
        let sim = sim_with(12).await;
        let s = session(&sim).await;
        let acct = sim.account_ids()[0].clone();
        let lit = quoted(ATTACK);
        let selected = s
            .sql(&format!(
                "SELECT count(*) FROM cloudflare.user.tokens WHERE name = {lit} AND status = 'disabled'"
            ))
            .await
            .unwrap();
        assert_eq!(scalar(&selected), "0");
        let writes = [
            format!(
                "DELETE FROM cloudflare.user.tokens WHERE name = {lit} AND status = 'disabled'"
            ),
            format!("UPDATE cloudflare.user.tokens SET name = 'x' WHERE name = {lit}"),
            format!("REPLACE cloudflare.user.tokens SET name = 'x' WHERE name = {lit}"),
            format!(
                "DELETE FROM cloudflare.access.service_tokens WHERE account_id = '{acct}' AND name = {lit}"
            ),
            format!(
                "INSERT INTO cloudflare.user.tokens (name, policies) SELECT name, policies FROM cloudflare.user.tokens WHERE name = {lit}"
            ),
            format!(
                "EXEC cloudflare.user.tokens.update_value @token_id = (SELECT id FROM cloudflare.user.tokens WHERE name = {lit})"
            ),
            format!(
                "UPDATE cloudflare.user.tokens SET name = {lit} WHERE name = {lit} ORDER BY name LIMIT 5"
            ),
        ];
        for w in &writes {
            sim.reset_counts();
            let _ = s.execute(w).await;
            assert_eq!(sim.mutating_requests(), 0, "{w}");
        }
        assert_eq!(sim.user_token_count(), 12);
    })
}

/// A token named with the attack itself is picked exactly: the value reaches the API as
/// written, and the other tokens are untouched.
#[test]
fn a_name_with_every_special_character_picks_exactly_its_token() {
    on_runtime(async {
        let sim = sim_with(12).await;
        let s = session(&sim).await;
        let names = [
            ATTACK,
            r"a\",
            "it's",
            "$$ OR true $$",
            "E'x' --",
            "/* a */ b",
            "é'\\ü",
        ];
        for n in names {
            s.sql(&format!(
                "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ({}, '[]')",
                quoted(n)
            ))
            .await
            .unwrap();
        }
        for n in names {
            let b = s
                .sql(&format!(
                    "SELECT name FROM cloudflare.user.tokens WHERE name = {}",
                    quoted(n)
                ))
                .await
                .unwrap();
            assert_eq!(strings(&b, "name"), vec![n.to_string()]);
        }
        sim.reset_counts();
        let out = s
            .execute(&format!(
                "DELETE FROM cloudflare.user.tokens WHERE name = {}",
                quoted(ATTACK)
            ))
            .await
            .unwrap();
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);
        assert_eq!(out.write.as_ref().map(|w| w.took_effect), Some(1));
        assert_eq!(sim.user_token_count(), 12 + names.len() - 1);
        // The same value as a session variable, in '...' and in E'...'.
        s.set_var("n", "it's");
        sim.reset_counts();
        s.sql("DELETE FROM cloudflare.user.tokens WHERE name = '{{ n }}'")
            .await
            .unwrap();
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);
        s.set_var("n", r"a\");
        sim.reset_counts();
        s.sql("DELETE FROM cloudflare.user.tokens WHERE name = E'{{ n }}'")
            .await
            .unwrap();
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);
        assert_eq!(sim.user_token_count(), 12 + names.len() - 3);
    })
}

/// Every mutating call the simulator received went to the object named by `value`
/// itself (a DELETE by id sends the id as written, and the API answers 404).
fn only_calls_for(sim: &Simulator, value: &str) {
    for r in sim.requests().into_iter().filter(|r| r.method != "GET") {
        let path = percent_encoding::percent_decode_str(&r.path).decode_utf8_lossy();
        assert!(
            path.contains(value),
            "a call for another object: {} {}",
            r.method,
            r.path
        );
        assert_eq!(r.status, Some(404), "{} {}", r.method, r.path);
    }
}

/// `--var` with the attack, in '...' and in E'...', through the binary: nothing deleted;
/// inside a $$ string it is refused, naming the variable.
#[test]
fn a_var_holding_the_attack_deletes_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(12));
    let home = tempfile::tempdir().unwrap();
    let go = |var: &str, sql: &str| {
        run(cfql(home.path())
            .args(["--base-url", &sim.base_url(), "--var", var, "-c", sql])
            .env("CLOUDFLARE_API_TOKEN", sim.admin_token()))
    };
    for sql in [
        "DELETE FROM cloudflare.user.tokens WHERE id = '{{ id }}'",
        "DELETE FROM cloudflare.user.tokens WHERE name = E'{{ id }}' AND status = 'disabled'",
        "DELETE FROM cloudflare.user.tokens WHERE name = U&'{{ id }}'",
    ] {
        let (code, _, err) = go(&format!("id={ATTACK}"), sql);
        only_calls_for(&sim, ATTACK);
        assert!(code == 0 || code == 1, "{sql}: exit {code}: {err}");
        assert_eq!(sim.user_token_count(), 12, "{sql}: {err}");
    }
    sim.reset_counts();
    let (code, _, err) = go(
        "id=$$ OR true --",
        "DELETE FROM cloudflare.user.tokens WHERE name = $$ {{ id }} $$",
    );
    assert_eq!(code, 1, "{err}");
    assert_contains!(err, "template variable '{{ id }}'", "$$-quoted string");
    assert_eq!(sim.mutating_requests(), 0);
    assert_eq!(sim.user_token_count(), 12);
}

/// A server that runs writes, and a psycopg-like client binding the attack as a
/// parameter of a prepared DELETE (extended protocol): no call; the honest id deletes one.
#[test]
fn a_bound_parameter_is_a_value_over_the_wire() {
    on_runtime(async {
        let sim = sim_with(12).await;
        let (addr, _secrets, _dir) = writable(&sim, |_| {}).await;
        let c = connect(addr).await;
        let del = c
            .prepare("DELETE FROM cloudflare.user.tokens WHERE id = $1")
            .await
            .unwrap();
        sim.reset_counts();
        let _ = c.query(&del, &[&ATTACK]).await;
        let by_name = c
            .prepare("DELETE FROM cloudflare.user.tokens WHERE name = $1 AND status = 'disabled'")
            .await
            .unwrap();
        let _ = c.query(&by_name, &[&ATTACK]).await;
        let roll = c
            .prepare("EXEC cloudflare.user.tokens.update_value @token_id = $1")
            .await
            .unwrap();
        let _ = c.query(&roll, &[&ATTACK]).await;
        only_calls_for(&sim, ATTACK);
        assert!(
            sim.mutating_requests() <= 2,
            "one call for the id, one roll of it"
        );
        assert_eq!(sim.user_token_count(), 12);
        // The honest value still deletes exactly its token.
        let victim = sim.user_token_ids()[5].clone();
        sim.reset_counts();
        c.query(&del, &[&victim]).await.unwrap();
        assert_eq!(sim.count("DELETE", "/user/tokens/{token_id}"), 1);
        assert_eq!(sim.user_token_count(), 11);
    })
}

/// The audit's client: psycopg 3 binding the attack to prepared writes (`prepare=True`,
/// the extended protocol) on a server that runs writes: no token is deleted or changed.
#[test]
fn psycopg_binds_the_attack_as_a_value() {
    on_runtime(async {
        let sim = sim_with(12).await;
        let (addr, _secrets, _dir) = writable(&sim, |_| {}).await;
        let python = std::env::var("CFQL_PYTHON").unwrap_or_else(|_| "python3".into());
        let dsn = format!(
            "host=127.0.0.1 port={} dbname=cloudflare user=cfql",
            addr.port()
        );
        sim.reset_counts();
        let py = python.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(py)
                .args(["tests/clients/psycopg_values_probe.py", &dsn])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .expect("python runs")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{python} needs psycopg (.ci/run makes a venv and sets CFQL_PYTHON):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_contains!(stdout, "COUNT 0");
        only_calls_for(&sim, ATTACK);
        assert!(
            sim.mutating_requests() <= 1,
            "at most the DELETE of that id"
        );
        assert_eq!(sim.user_token_count(), 12);
        assert_eq!(sim.count("PUT", "/user/tokens/{token_id}"), 0, "{stdout}");
    })
}

/// Every spelling of `SET cfql.dry_run` takes effect over the wire (the next DELETE is a
/// dry run); `SET LOCAL` is refused; every spelling of `SET datafusion.*` is refused.
#[test]
fn settings_are_read_as_the_session_reads_them() {
    on_runtime(async {
        let sim = sim_with(12).await;
        let (addr, _secrets, _dir) = writable(&sim, |_| {}).await;
        let victim = sim.user_token_ids()[3].clone();
        for set in [
            "SET SESSION cfql.dry_run = true",
            "SET \"cfql\".dry_run = true",
            "SET/**/cfql.dry_run = true",
            "SET \"cfql\".\"dry_run\" TO on",
            "set CFQL.DRY_RUN = 'true'",
        ] {
            let c = connect(addr).await;
            simple_rows(&c, set).await;
            sim.reset_counts();
            let rows = simple_rows(
                &c,
                &format!("DELETE FROM cloudflare.user.tokens WHERE id = '{victim}'"),
            )
            .await;
            assert_eq!(rows.len(), 1, "{set}: one call listed");
            assert_eq!(sim.mutating_requests(), 0, "{set}: a dry run");
        }
        let c = connect(addr).await;
        let e = c
            .simple_query("SET LOCAL cfql.dry_run = true")
            .await
            .unwrap_err();
        assert_contains!(message(&e), "SET cfql.* with LOCAL", "no transactions");
        assert_eq!(sqlstate(&e), "0A000");
        for set in [
            "SET \"datafusion\".execution.target_partitions = 200000",
            "SET datafusion.execution.target_partitions = 2",
            "SET \"datafusion.runtime.temp_directory\" = '/tmp/x'",
            "SET DataFusion.runtime.temp_directory = '/tmp/x'",
            "SET /* x */ \"DATAFUSION\".execution.batch_size = 1",
        ] {
            let e = c.simple_query(set).await.unwrap_err();
            assert_eq!(sqlstate(&e), "42501", "{set}: {}", message(&e));
            assert_contains!(message(&e), "DataFusion's settings are the server's");
        }
        assert_eq!(sim.user_token_count(), 12);
    })
}

/// Expressions nested past the limits are refused with a clean error, in the library and
/// over the wire, and the server answers the next client; the deepest accepted chain of
/// each operator plans on a 2 MiB worker stack (the test runtime's).
#[test]
fn deep_expressions_are_refused_and_nothing_aborts() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let chains = [
            ("::text", "SELECT 1"),
            ("->'a'", "SELECT '{}'::json"),
            (" IS NOT NULL", "SELECT 1"),
            (" || 'x'", "SELECT 'x'"),
        ];
        for (op, head) in chains {
            let long = format!("{head}{}", op.repeat(2_000));
            let e = s.sql(&long).await.unwrap_err().to_string();
            assert_contains!(e, "operators; at most 400");
        }
        let deep_not = format!("SELECT {}true", "NOT ".repeat(300));
        assert!(s.sql(&deep_not).await.is_err());
        let deep_case = format!(
            "SELECT {}1{}",
            "CASE WHEN true THEN ".repeat(200),
            " END".repeat(200)
        );
        assert!(s.sql(&deep_case).await.is_err());
        // The deepest accepted: 398 operators after the head.
        let ok = format!("SELECT 1{}", "::text".repeat(cfql::MAX_OPERATORS - 2));
        assert_eq!(rows(&s.sql(&ok).await.unwrap()), 1);
        let ok = format!("SELECT 'x'{}", " || 'x'".repeat(cfql::MAX_OPERATORS - 2));
        assert_eq!(rows(&s.sql(&ok).await.unwrap()), 1);

        let addr = crate::serve::serve_public(&sim).await;
        let a = connect(addr).await;
        let long = format!("SELECT 1{}", "::text".repeat(2_000));
        let e = a.simple_query(&long).await.unwrap_err();
        assert_eq!(sqlstate(&e), "54001", "{}", message(&e));
        let deepest = format!("SELECT 1{}", "::text".repeat(cfql::MAX_OPERATORS - 2));
        assert_eq!(simple_rows(&a, &deepest).await.len(), 1);
        let b = connect(addr).await;
        assert_eq!(
            simple_rows(&b, "SELECT 1").await,
            vec![vec![Some("1".into())]]
        );
        assert_eq!(
            simple_rows(&a, "SELECT 2").await,
            vec![vec![Some("2".into())]]
        );
    })
}

/// The secrets file and the audit log refuse a FIFO at once, before any call (the open
/// used to block forever).
#[test]
fn a_fifo_for_secrets_or_audit_is_refused_before_any_call() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(5));
    let home = tempfile::tempdir().unwrap();
    let fifo = home.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let insert = "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('x', '[]')";
    for flag in ["--secrets-file", "--audit-log"] {
        let start = std::time::Instant::now();
        let (code, _, err) = run(cfql(home.path())
            .args(["--base-url", &sim.base_url(), flag])
            .arg(&fifo)
            .args(["-c", insert])
            .env("CLOUDFLARE_API_TOKEN", sim.admin_token()));
        assert_eq!(code, 1, "{flag}: {err}");
        assert_contains!(err, "not a regular file", "nothing was sent");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{flag} did not block"
        );
        assert_eq!(sim.mutating_requests(), 0, "{flag}");
    }
}

/// A random value built from the characters that end or escape strings and comments.
fn hostile_value(rng: &mut StdRng, names: &[String]) -> String {
    const PIECES: &[&str] = &[
        "'",
        "''",
        "\\",
        "\\'",
        "E'",
        "U&'",
        "$$",
        "$a$",
        "--",
        "/*",
        "*/",
        "\"",
        ";",
        "\n",
        " OR true ",
        " OR 1=1 ",
        "{{",
        "}}",
        "é",
        "ü'",
        "\u{1F600}",
        "%",
        "_",
        "\0x",
        "a",
    ];
    if rng.random_bool(0.1) {
        return names[rng.random_range(0..names.len())].clone();
    }
    let n = rng.random_range(1..8);
    (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

/// Runs `sql` (a dry-run write, or a count) and returns how many rows it picked.
async fn picked(s: &Session, sql: &str) -> Result<usize, String> {
    let out = s.execute(sql).await.map_err(|e| e.to_string())?;
    if sql.starts_with("SELECT") {
        return Ok(scalar(&out.batches).parse().unwrap());
    }
    Ok(rows(&out.batches))
}

/// How many cases the value fuzz runs (`CFQL_FUZZ_VALUES` for a long run).
fn fuzz_cases() -> usize {
    std::env::var("CFQL_FUZZ_VALUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

/// A simulator with tokens named with hostile values, a session on it with the cache on
/// (each case then plans and filters; only the first listing is a call), in dry-run mode.
async fn fuzz_sim() -> (Simulator, Session, Vec<String>, tempfile::TempDir) {
    let sim = sim_with(8).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim);
    cfg.cache_ttl = Duration::from_secs(3600);
    cfg.secrets_file = Some(dir.path().join("secrets.jsonl"));
    let s = Session::new(cfg).await.unwrap();
    for n in [ATTACK, r"a\", "it's", "$$x$$", "é'\\"] {
        s.sql(&format!(
            "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ({}, '[]')",
            quoted(n)
        ))
        .await
        .unwrap();
    }
    let names = strings(
        &s.sql("SELECT name FROM cloudflare.user.tokens")
            .await
            .unwrap(),
        "name",
    );
    s.sql("SET cfql.dry_run = true").await.unwrap();
    sim.reset_counts();
    (sim, s, names, dir)
}

/// Seeded fuzz: for random hostile values as a literal, a variable in '...' and in
/// E'...', a DELETE and an UPDATE pick exactly the rows the SELECT with the same WHERE
/// counts, which is the number of tokens with that name; nothing is ever sent.
#[test]
fn fuzz_values_never_change_what_a_write_picks() {
    on_runtime(async {
        let (sim, s, names, _dir) = fuzz_sim().await;
        let mut rng = StdRng::seed_from_u64(18);
        let started = std::time::Instant::now();
        let cases = fuzz_cases();
        for case in 0..cases {
            let v = hostile_value(&mut rng, &names);
            let want = names.iter().filter(|n| **n == v).count();
            s.set_var("v", v.clone());
            // A literal holding `{{ name }}` is a template by design; a variable's value
            // never is.
            let lit = if v.contains("{{") {
                "'{{ v }}'".to_string()
            } else {
                quoted(&v)
            };
            for w in [lit.as_str(), "'{{ v }}'", "E'{{ v }}'"] {
                let count = format!("SELECT count(*) FROM cloudflare.user.tokens WHERE name = {w}");
                let del = format!("DELETE FROM cloudflare.user.tokens WHERE name = {w}");
                let upd =
                    format!("UPDATE cloudflare.user.tokens SET name = 'renamed' WHERE name = {w}");
                for sql in [count, del, upd] {
                    let got = picked(&s, &sql).await;
                    assert_eq!(got, Ok(want), "case {case}: {v:?}: {sql}");
                }
            }
        }
        assert_eq!(sim.mutating_requests(), 0);
        eprintln!(
            "value fuzz: {cases} values x 3 forms x 3 statements in {:.1?}",
            started.elapsed()
        );
    })
}

/// The same over the wire: hostile values bound as parameters of a prepared DELETE and
/// a prepared SELECT pick the same rows.
#[test]
fn fuzz_bound_parameters_never_change_what_a_write_picks() {
    on_runtime(async {
        let (sim, s, names, _dir) = fuzz_sim().await;
        let addr = crate::serve::serve_session_writable(s).await;
        let c = connect(addr).await;
        simple_rows(&c, "SET cfql.dry_run = true").await;
        let del = c
            .prepare("DELETE FROM cloudflare.user.tokens WHERE name = $1")
            .await
            .unwrap();
        let count = c
            .prepare("SELECT count(*) FROM cloudflare.user.tokens WHERE name = $1")
            .await
            .unwrap();
        let mut rng = StdRng::seed_from_u64(19);
        for case in 0..fuzz_cases() / 3 {
            let v = hostile_value(&mut rng, &names).replace('\0', "");
            let want = names.iter().filter(|n| **n == v).count();
            let n: i64 = c.query_one(&count, &[&v]).await.unwrap().get(0);
            let picked = c
                .query(&del, &[&v])
                .await
                .unwrap_or_else(|e| panic!("case {case}: {v:?}: {}", message(&e)))
                .len();
            assert_eq!((n as usize, picked), (want, want), "case {case}: {v:?}");
        }
        assert_eq!(sim.mutating_requests(), 0);
    })
}
