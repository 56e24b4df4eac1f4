//! `cfql serve` (the binary, on the demo data) with the clients BI users have: psql
//! (meta-commands, the example audits, a wrong password, TLS), pgjdbc (what DBeaver and
//! Metabase call) and SQLAlchemy with psycopg (what Superset calls). None is skipped: a
//! missing client fails the test (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::{cfql, run};

/// A `cfql serve` process on an ephemeral port; killed when dropped.
use crate::serve_limits::Process as Served;

/// `cfql serve --demo` with these flags and environment.
fn serve(args: &[&str], env: &[(&str, &str)]) -> Served {
    start(&[&["--demo"], args].concat(), env)
}

/// `cfql serve` on an ephemeral loopback port with these flags and environment.
fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
    Served::start(args, env)
}

fn psql(s: &Served, extra: &str, password: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let dsn = format!(
        "host=127.0.0.1 port={} dbname=cloudflare user=cfql {extra}",
        s.port
    );
    let mut c = Command::new("psql");
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PGCONNECT_TIMEOUT", "10")
        .args(["-X", "-v", "ON_ERROR_STOP=1", &dsn])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(p) = password {
        c.env("PGPASSWORD", p);
    }
    let out = c
        .output()
        .expect("psql is installed (.ci/run installs postgresql-client)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn psql_meta_commands_browse_the_catalog() {
    let s = serve(&[], &[]);
    let (code, out, err) = psql(&s, "", None, &["-c", r"\dn"]);
    assert_eq!(code, 0, "{err}");
    assert_contains!(out, "user", "accounts", "access");
    let (code, out, err) = psql(&s, "", None, &["-c", r"\dt user.*"]);
    assert_eq!(code, 0, "{err}");
    assert_contains!(out, "tokens");
    assert!(
        !out.contains("user_tokens"),
        "aliases are not listed:\n{out}"
    );
    let (code, out, err) = psql(&s, "", None, &["-c", r"\d user.tokens"]);
    assert_eq!(code, 0, "{err}");
    // JSON columns are `json` in results; datafusion-pg-catalog's pg_attribute maps types
    // from Arrow alone, so `\d` shows them as text.
    assert_contains!(out, "expires_on", "timestamp with time zone", "policies");
}

/// JSON `->` reaches psql as `json` (it failed in every client before).
#[test]
fn psql_reads_json_arrow_as_json() {
    let s = serve(&[], &[]);
    let (code, out, err) = psql(
        &s,
        "",
        None,
        &[
            "-At",
            "-c",
            "SELECT policies->0->'effect' AS e, policies->0->>'effect' AS t FROM user.tokens LIMIT 1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "\"allow\"|allow\n");
    // now() is a timestamptz, as PostgreSQL's: psql prints its offset.
    let (code, out, err) = psql(&s, "", None, &["-At", "-c", "SELECT now()"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim_end().ends_with("+00"), "{out}");
    // Unnamed function columns take PostgreSQL's names; two that would share one keep
    // DataFusion's.
    let sql = "SELECT count(*), max(name), count(id) AS n FROM user.tokens";
    let (code, out, err) = psql(&s, "", None, &["--csv", "-c", sql]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().next(), Some("count,max,n"), "{out}");
}

#[test]
fn psql_runs_the_example_audits() {
    let s = serve(&[], &[]);
    for audit in [
        "expiring_credentials",
        "stale_service_tokens",
        "unrestricted_tokens",
        "unused_tokens",
        "wildcard_policies",
    ] {
        let file = format!("examples/{audit}.sql");
        let (code, out, err) = psql(&s, "", None, &["-f", &file]);
        assert_eq!(code, 0, "{file}: {err}");
        assert_contains!(out, "row");
        assert!(!err.contains("ERROR"), "{file}: {err}");
    }
    // A cfql statement and an error with its SQLSTATE, as psql shows them.
    let (code, out, _) = psql(&s, "", None, &["-c", "SHOW SERVICES"]);
    assert_eq!(code, 0);
    assert_contains!(out, "access");
    let (code, _, err) = psql(
        &s,
        "",
        None,
        &[
            "-v",
            "VERBOSITY=verbose",
            "-c",
            "SELECT nmae FROM cloudflare.user.tokens",
        ],
    );
    assert_eq!(code, 1);
    assert_contains!(err, "42703", "name");
}

#[test]
fn psql_with_a_wrong_password_is_refused() {
    let s = serve(&[], &[("CFQL_SERVE_PASSWORD", "correct horse")]);
    let (code, _, err) = psql(&s, "", Some("wrong"), &["-c", "SELECT 1"]);
    assert_eq!(code, 2, "{err}");
    assert_contains!(err, "assword authentication failed for user \"cfql\"");
    let (code, out, err) = psql(&s, "", Some("correct horse"), &["-At", "-c", "SELECT 1"]);
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
}

/// A self-signed certificate for localhost, made with openssl.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success());
    (cert, key)
}

#[test]
fn psql_connects_over_tls_and_a_bad_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let s = serve(
        &["--tls-cert", cert, "--tls-key", key],
        &[("CFQL_SERVE_PASSWORD", "pw")],
    );
    let (code, out, err) = psql(
        &s,
        "sslmode=require",
        Some("pw"),
        &[
            "-At",
            "-c",
            "SELECT count(*) > 0 FROM cloudflare.user.tokens",
            "-c",
            r"\conninfo",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_contains!(out, "t\n", "SSL connection");
    // A server with TLS serves nothing in clear, not even on loopback.
    let (code, _, err) = psql(&s, "sslmode=disable", Some("pw"), &["-c", "SELECT 1"]);
    assert_eq!(code, 2, "{err}");
    assert_contains!(err, "requires TLS");
    // A key that does not load: the server does not start (never serves in clear).
    let home = tempfile::tempdir().unwrap();
    let (code, _, err) = run(cfql(home.path()).args([
        "serve",
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert,
        "--tls-key",
        cert,
    ]));
    assert_eq!(code, 2, "{err}");
    assert_contains!(err, "cannot load the TLS key");
    // Half a TLS configuration: refused, naming what is missing.
    let (code, _, err) = run(cfql(home.path()).args(["serve", "--demo", "--tls-cert", cert]));
    assert_eq!(code, 2, "{err}");
    assert_contains!(err, "--tls-key");
    // Writes without a secrets file: refused, naming the flag.
    let (code, _, err) = run(cfql(home.path()).args([
        "serve",
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--allow-writes",
    ]));
    assert_eq!(code, 2, "{err}");
    assert_contains!(err, "--secrets-file");
    // Off loopback without TLS and a password: refused, naming the flags.
    let (code, _, err) = run(cfql(home.path()).args(["serve", "--demo", "--listen", "0.0.0.0:0"]));
    assert_eq!(code, 2, "{err}");
    assert_contains!(err, "--tls-cert", "CFQL_SERVE_PASSWORD");
}

/// Runs a client probe from the repository root: (success, stdout, stderr).
fn probe(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pgjdbc_lists_schemas_tables_columns_and_runs_a_prepared_query() {
    let s = serve(&[], &[("CFQL_SERVE_PASSWORD", "pw")]);
    let jar = "/usr/share/java/postgresql.jar";
    assert!(
        Path::new(jar).exists(),
        "pgjdbc is installed (.ci/run installs libpostgresql-jdbc-java)"
    );
    let url = format!("jdbc:postgresql://127.0.0.1:{}/cloudflare", s.port);
    let (ok, stdout, stderr) = probe(
        "java",
        &["-cp", jar, "tests/clients/Probe.java", &url, "cfql", "pw"],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert_contains!(
        stdout,
        "PRODUCT PostgreSQL 16",
        "SCHEMA user",
        "SCHEMA access"
    );
    assert_contains!(
        stdout,
        "TABLE user.tokens\n",
        "TABLE access.service_tokens\n"
    );
    assert_eq!(stdout.matches("TABLE user.tokens\n").count(), 1, "{stdout}");
    assert!(!stdout.contains("TABLE user.user_tokens"), "{stdout}");
    assert_contains!(stdout, "COLUMN expires_on timestamptz", "COLUMN name text");
    assert_eq!(stdout.matches("ROW ").count(), 1, "{stdout}");
}

#[test]
fn sqlalchemy_inspects_and_queries() {
    let s = serve(&[], &[]);
    let python = std::env::var("CFQL_PYTHON").unwrap_or_else(|_| "python3".into());
    let url = format!("postgresql+psycopg://cfql@127.0.0.1:{}/cloudflare", s.port);
    let (ok, stdout, stderr) = probe(&python, &["tests/clients/sqlalchemy_probe.py", &url]);
    assert!(
        ok,
        "{python} needs sqlalchemy and psycopg (.ci/run makes a venv and sets CFQL_PYTHON):\n{stdout}\n{stderr}"
    );
    assert_contains!(
        stdout,
        "DEFAULT user\n",
        "SCHEMA user",
        "SCHEMA access",
        "TABLE user.tokens\n"
    );
    assert_contains!(stdout, "COLUMN expires_on TIMESTAMP", "COUNT 40");
    assert_eq!(stdout.matches("ROW ").count(), 1, "{stdout}");
}

#[test]
fn psql_rolls_a_token_on_a_server_that_allows_writes() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("rolled.jsonl");
    let s = serve(
        &[
            "--allow-writes",
            "--secrets-file",
            secrets.to_str().unwrap(),
        ],
        &[],
    );
    let (code, out, err) = psql(
        &s,
        "",
        None,
        &[
            "-At",
            "-c",
            "EXEC cloudflare.user.tokens.update_value @token_id = (SELECT id FROM cloudflare.user.tokens ORDER BY id LIMIT 1)",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let file = std::fs::read_to_string(&secrets).unwrap();
    let value =
        serde_json::from_str::<serde_json::Value>(file.lines().next().unwrap()).unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string();
    assert_contains!(out, &value);
}

/// psql's Ctrl-C, typed into a real pseudo-terminal: psql sends a cancel request on a
/// connection of its own, the server stops that statement's calls, and the session goes on.
#[test]
fn ctrl_c_in_psql_cancels_the_statements_calls_and_keeps_the_session() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(crate::common::sim_with(200));
    let (base, token) = (sim.base_url(), sim.admin_token());
    let s = start(&["--base-url", &base], &[("CLOUDFLARE_API_TOKEN", &token)]);
    let dsn = format!("host=127.0.0.1 port={} dbname=cloudflare user=cfql", s.port);
    let mut c = Command::new("psql");
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .args(["-X", &dsn]);
    let mut p = expectrl::Session::spawn(c).expect("psql in a pty");
    p.set_expect_timeout(Some(std::time::Duration::from_secs(20)));
    p.expect("cloudflare=>").unwrap();
    sim.set_latency_ms(5000);
    p.send_line("SELECT count(*) FROM cloudflare.user.tokens;")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    p.send("\x03").unwrap();
    p.expect("Cancel request sent").unwrap();
    p.expect("cancelled").unwrap();
    sim.set_latency_ms(0);
    p.send_line("SELECT 40 + 2 AS answer;").unwrap();
    p.expect("42").unwrap();
    p.send_line("\\q").unwrap();
    p.expect(expectrl::Eof).unwrap();
    // The first page was in flight when the cancel came; no later page was asked for.
    assert_eq!(sim.count("GET", "/user/tokens"), 1);
}

/// The node-postgres package the probe loads (`.ci/run` installs it and sets CFQL_NODE_PATH).
fn node_path() -> String {
    let path = std::env::var("CFQL_NODE_PATH")
        .expect("CFQL_NODE_PATH names the node_modules with pg (.ci/run installs it)");
    assert!(
        Path::new(&path).join("pg").exists(),
        "no pg package in {path}"
    );
    path
}

/// Each labelled line of a probe's output, by label.
fn lines_by_label(stdout: &str) -> std::collections::HashMap<&str, &str> {
    stdout.lines().filter_map(|l| l.split_once(' ')).collect()
}

#[test]
fn node_postgres_untyped_arrays_and_pages_answer_as_their_literals_do() {
    let s = serve(&[], &[]);
    let url = format!("postgres://cfql@127.0.0.1:{}/cloudflare", s.port);
    let out = Command::new("node")
        .arg("tests/clients/node_pg_probe.js")
        .arg(&url)
        .env("NODE_PATH", node_path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("node runs (the machine's Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines_by_label(&stdout);
    // A bound array selects what the same list written as literals selects.
    assert_eq!(got["any_param"], got["any_literal"], "{stdout}");
    assert_eq!(got["all_param"], got["all_literal"], "{stdout}");
    assert!(!got["any_literal"].ends_with(" N 0"), "{stdout}");
    assert_eq!(got["any_cast"], got["disabled_literal"], "{stdout}");
    // Quotes, backslashes and commas inside elements stay data: one real id matches.
    assert_eq!(got["any_attack"], "ROWS 1 N 1", "{stdout}");
    assert_eq!(got["any_ts"], got["ts_param"], "{stdout}");
    assert_eq!(got["page_param"], got["page_literal"], "{stdout}");
    assert!(got["page_literal"].starts_with("ROWS 3 IDS "), "{stdout}");
    // Refused with the reason, never an empty answer.
    assert_contains!(
        got["any_not_array"],
        "ERROR 22P02 malformed array literal in $1"
    );
    assert_contains!(got["any_untyped"], "ERROR 42P18", "$2::text[]");
    assert_contains!(got["page_bad"], "ERROR 22P02");
}

/// COPY ... TO STDOUT, as psycopg's copy() reads (binary and text) and psql's `\\copy`
/// writes a CSV file, and psycopg's server-side cursors (text and binary): the same rows
/// a SELECT returns. COPY to a server file and COPY FROM are refused with their true
/// reason.
#[test]
fn copy_to_stdout_reads_what_select_reads() {
    let s = serve(&[], &[]);
    let python = std::env::var("CFQL_PYTHON").unwrap_or_else(|_| "python3".into());
    let url = format!("postgresql://cfql@127.0.0.1:{}/cloudflare", s.port);
    let (ok, stdout, stderr) = probe(&python, &["tests/clients/psycopg_copy_probe.py", &url]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(!stdout.contains("SELECT 0\n"), "{stdout}");
    assert_contains!(stdout, "BINARY_SAME True", "TEXT_IDS_SAME True");
    let count = psql_lines(&s, "SELECT count(*) FROM user.tokens")[0].clone();
    assert_contains!(
        stdout,
        &format!("NAMED_SAME True {count}\n"),
        "BINARY_NAMED_SAME True\n",
        "BACKWARD 0A000 cfql serve does not support FETCH that moves backward"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.csv");
    let copy = format!(
        "\\copy (SELECT id, name FROM user.tokens ORDER BY id) to '{}' with (format csv, header)",
        file.display()
    );
    let (code, out, err) = psql(&s, "", None, &["-c", &copy]);
    assert_eq!(code, 0, "{err}");
    let (_, count, _) = psql(
        &s,
        "",
        None,
        &["-At", "-c", "SELECT count(*) FROM user.tokens"],
    );
    let rows: usize = count.trim().parse().unwrap();
    assert_eq!(
        out.trim(),
        format!("COPY {rows}"),
        "the rows, not the header"
    );
    let csv = std::fs::read_to_string(&file).unwrap();
    assert_eq!(csv.lines().next(), Some("id,name"));
    assert_eq!(csv.lines().count(), rows + 1, "{csv}");

    let (code, _, err) = psql(
        &s,
        "",
        None,
        &["-c", "COPY user.tokens TO '/tmp/cfql-copy'"],
    );
    assert_eq!(code, 1);
    assert_contains!(
        err,
        "COPY to a file or a program on the server",
        "TO STDOUT"
    );
    assert!(!Path::new("/tmp/cfql-copy").exists());
    let (code, _, err) = psql(&s, "", None, &["-c", "COPY user.tokens FROM STDIN"]);
    assert_eq!(code, 1);
    assert_contains!(err, "COPY FROM");
}

/// `psql -At -c sql`'s lines (the reference a client's answer is compared with).
fn psql_lines(s: &Served, sql: &str) -> Vec<String> {
    let (code, out, err) = psql(s, "", None, &["-At", "-F", " ", "-c", sql]);
    assert_eq!(code, 0, "{sql}: {err}");
    out.lines().map(str::to_string).collect()
}

fn python() -> String {
    std::env::var("CFQL_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// ADBC connects (it reads `pg_type`'s regproc columns at connect), reads a query as
/// Arrow and lists the catalog's objects; polars reads over it and over connectorx.
#[test]
fn adbc_polars_and_connectorx_read_what_psql_reads() {
    let s = serve(&[], &[]);
    let url = format!("postgresql://cfql@127.0.0.1:{}/cloudflare", s.port);
    let (ok, stdout, stderr) = probe(&python(), &["tests/clients/arrow_readers_probe.py", &url]);
    assert!(ok, "{stdout}\n{stderr}");
    let count = psql_lines(&s, "SELECT count(*) FROM user.tokens")[0].clone();
    assert_contains!(stdout, &format!("ROWS {count}\n"));
    assert_contains!(stdout, "TYPES string,string,timestamp[us, tz=UTC]\n");
    let columns = psql_lines(
        &s,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'user' AND table_name = 'tokens'",
    );
    assert_contains!(
        stdout,
        &format!("OBJECT cloudflare user tokens {}\n", columns[0])
    );
    for line in psql_lines(
        &s,
        "SELECT status, count(*) FROM user.tokens GROUP BY status ORDER BY status",
    ) {
        assert_contains!(stdout, &format!("POLARS {line}\n"));
    }
    assert_contains!(
        stdout,
        &format!(
            "CONNECTORX {count} 4 String,String,String,Datetime(time_unit='us', time_zone='UTC')\n"
        )
    );
    let first = &psql_lines(&s, "SELECT id, status FROM user.tokens ORDER BY id LIMIT 1")[0];
    assert_contains!(stdout, &format!("CONNECTORX_FIRST {first}\n"));
}

/// SQLAlchemy's reflection and pandas' read_sql_table: no keys, indexes or constraints
/// (cfql declares none), every column, every row; pandas' `chunksize` over SQLAlchemy's
/// `stream_results` and psycopg2's named cursors read every row through a cursor.
#[test]
fn sqlalchemy_and_pandas_reflect_and_read_whole_tables() {
    let s = serve(&[], &[]);
    let url = format!("postgresql://cfql@127.0.0.1:{}/cloudflare", s.port);
    let (ok, stdout, stderr) = probe(&python(), &["tests/clients/reflection_probe.py", &url]);
    assert!(ok, "{stdout}\n{stderr}");
    assert_contains!(stdout, "PK []\n", "INDEXES 0\n", "FKS 0\n", "UNIQUE 0\n");
    let count = psql_lines(&s, "SELECT count(*) FROM user.tokens")[0].clone();
    let columns = psql_lines(
        &s,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'user' AND table_name = 'tokens'",
    )[0]
    .clone();
    assert_contains!(
        stdout,
        &format!("REFLECTED user.tokens {columns}\n"),
        &format!("READ_SQL_TABLE {count} {columns} datetime64[ns, UTC]\n"),
        "AUTOLOAD TIMESTAMP"
    );
    // Streamed through server-side cursors: every row, once.
    assert_contains!(
        stdout,
        &format!("CHUNKS {count}\n"),
        &format!("NAMED {count}\n")
    );
}

/// pgjdbc's DatabaseMetaData calls that DBeaver and Metabase make beyond tables and
/// columns: each answers (no keys or indexes: cfql declares none) instead of failing.
#[test]
fn pgjdbc_metadata_keys_indexes_functions_and_types_answer() {
    let s = serve(&[], &[("CFQL_SERVE_PASSWORD", "pw")]);
    let url = format!("jdbc:postgresql://127.0.0.1:{}/cloudflare", s.port);
    let (ok, stdout, stderr) = probe(
        "java",
        &[
            "-cp",
            "/usr/share/java/postgresql.jar",
            "tests/clients/MetaProbe.java",
            &url,
            "cfql",
            "pw",
        ],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert_contains!(
        stdout,
        "PRIMARY_KEYS 0\n",
        "INDEX_INFO 0\n",
        "IMPORTED_KEYS 0\n",
        "EXPORTED_KEYS 0\n",
        "BEST_ROW 0\n",
        "PROCEDURES 0\n",
        "timestamptz=true\n"
    );
    let functions: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FUNCTIONS "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(functions > 100, "{stdout}");
}

/// pgcli in a pseudo-terminal: its start-up completion refresh runs without a
/// traceback, and `\df`, `\dT`, `\du`, `\l` answer (`\l` lists cfql's one database).
#[test]
fn pgcli_starts_clean_and_its_meta_commands_answer() {
    let s = serve(&[], &[]);
    let url = format!("postgresql://cfql@127.0.0.1:{}/cloudflare", s.port);
    let (ok, stdout, stderr) = probe(
        &python(),
        &[
            "tests/clients/pgcli_pty_probe.py",
            &url,
            "SELECT count(*) AS n FROM tokens",
            "\\df",
            "\\dT",
            "\\du",
            "\\l",
        ],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(!stdout.contains("Traceback"), "{stdout}");
    assert!(!stdout.contains("rror"), "{stdout}");
    let count = psql_lines(&s, "SELECT count(*) FROM user.tokens")[0].clone();
    assert_contains!(stdout, &format!("| {count} "), "| rolname", "| Name ");
    assert_contains!(stdout, "| cloudflare ");
    assert!(!stdout.contains("| postgres   | postgres"), "{stdout}");
    assert_eq!(stdout.matches("SELECT 1\r\n").count(), 2, "{stdout}");
}

/// Settings, JSON functions and casts, and `information_schema` types as PostgreSQL
/// names them.
#[test]
fn psql_settings_json_casts_and_information_schema_types() {
    let s = serve(&[], &[]);
    assert_eq!(psql_lines(&s, "SHOW TimeZone"), ["UTC"]);
    assert_eq!(psql_lines(&s, "SHOW standard_conforming_strings"), ["on"]);
    assert_eq!(
        psql_lines(&s, "SELECT current_setting('max_index_keys') AS k"),
        ["32"]
    );
    let (code, _, err) = psql(&s, "", None, &["-c", "SHOW no_such_setting"]);
    assert_eq!(code, 1);
    assert_contains!(
        err,
        "unrecognized configuration parameter \"no_such_setting\""
    );

    let json = r#"SELECT json_typeof(policies) AS t, json_array_length(policies) AS n,
        json_extract_path_text(policies, '0', 'effect') AS e, pg_typeof(expires_on) AS ty
        FROM user.tokens WHERE policies IS NOT NULL ORDER BY id LIMIT 1"#;
    let line = &psql_lines(&s, json)[0];
    let words: Vec<&str> = line.split(' ').collect();
    assert_eq!(words[0], "array", "{line}");
    assert!(words[1].parse::<u32>().unwrap() >= 1, "{line}");
    assert!(["allow", "deny"].contains(&words[2]), "{line}");
    assert_eq!(&words[3..], ["timestamp", "with", "time", "zone"], "{line}");
    let (code, _, err) = psql(
        &s,
        "",
        None,
        &["-c", "SELECT json_array_length('{\"a\": 1}')"],
    );
    assert_eq!(code, 1);
    assert_contains!(err, "cannot get the array length of an object");

    // `::text` is text and `::jsonb` / `::json` are json, as the wire reports them.
    let dir = tempfile::tempdir().unwrap();
    let gdesc = dir.path().join("gdesc.sql");
    std::fs::write(
        &gdesc,
        "SELECT policies::text AS t, policies::jsonb AS j, '[1]'::json AS l FROM user.tokens LIMIT 1 \\gdesc\n",
    )
    .unwrap();
    let (code, out, err) = psql(&s, "", None, &["-At", "-f", gdesc.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["t|text", "j|json", "l|json"]
    );

    let types = psql_lines(
        &s,
        "SELECT column_name, data_type, udt_name FROM information_schema.columns \
         WHERE table_schema = 'user' AND table_name = 'tokens' \
         AND column_name IN ('name', 'expires_on', 'policies') ORDER BY column_name",
    );
    assert_eq!(
        types,
        [
            "expires_on timestamp with time zone timestamptz",
            "name text text",
            "policies json json"
        ]
    );
    assert_eq!(
        psql_lines(
            &s,
            "SELECT count(*) FROM information_schema.key_column_usage"
        ),
        ["0"]
    );
}

/// Cursors as PostgreSQL keeps them: FETCH hands rows out in order; the end of the
/// transaction drops a cursor WITHOUT HOLD and keeps one WITH HOLD; a missing cursor, a
/// taken name and a backward FETCH are PostgreSQL's errors.
#[test]
fn psql_cursors_fetch_in_order_and_end_with_their_transaction() {
    let s = serve(&[], &[]);
    let ids = psql_lines(&s, "SELECT id FROM user.tokens ORDER BY id");
    let script = "BEGIN;
DECLARE a CURSOR FOR SELECT id FROM user.tokens ORDER BY id;
DECLARE b CURSOR WITH HOLD FOR SELECT id FROM user.tokens ORDER BY id;
FETCH 2 FROM a;
FETCH NEXT FROM a;
FETCH FORWARD ALL FROM b;
COMMIT;
FETCH 1 FROM b;
FETCH 1 FROM a;
";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cursors.sql");
    std::fs::write(&file, script).unwrap();
    let (code, out, err) = psql(&s, "", None, &["-At", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 3, "stops at FETCH FROM a after COMMIT: {out}\n{err}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| !["BEGIN", "DECLARE CURSOR", "COMMIT"].contains(l))
        .collect();
    let mut want: Vec<&str> = ids[..3].iter().map(String::as_str).collect();
    want.extend(ids.iter().map(String::as_str));
    assert_eq!(rows, want, "{out}");
    assert_contains!(err, "cursor \"a\" does not exist");

    let (_, _, err) = psql(
        &s,
        "",
        None,
        &[
            "-c",
            "BEGIN; DECLARE a CURSOR FOR SELECT 1; DECLARE a CURSOR FOR SELECT 2",
        ],
    );
    assert_contains!(err, "cursor \"a\" already exists");
}
