//! The `cfql` binary driven as a user would: flags, files, stdin, formats, exit codes,
//! the standalone simulator, and the REPL through a pseudo-terminal.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_cfql");

/// A command with a clean environment: no real credentials, HOME in a temp dir.
pub(crate) fn cfql(home: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CFQL_LOG", "warn")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null());
    c
}

pub(crate) fn run(c: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("cfql runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn demo_query_csv_parses_back() {
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = run(cfql(home.path()).args([
        "--demo",
        "--format",
        "csv",
        "-c",
        "SELECT id, name, expires_on FROM cloudflare.user.tokens WHERE expires_on < now() + INTERVAL '30 days' ORDER BY expires_on",
    ]));
    assert_eq!(code, 0, "{err}");
    let mut r = csv::Reader::from_reader(out.as_bytes());
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        vec!["id", "name", "expires_on"]
    );
    let recs: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert!(!recs.is_empty());
    for rec in &recs {
        assert_eq!(rec[0].len(), 32);
        let t = chrono::DateTime::parse_from_rfc3339(&rec[2]).expect("RFC 3339");
        assert_eq!(t.offset().local_minus_utc(), 0);
        assert!(rec[2].ends_with('Z'), "{}", &rec[2]);
    }
}

#[test]
fn every_format() {
    let home = tempfile::tempdir().unwrap();
    let q = "SELECT id, name, policies, expires_on FROM cloudflare.user.tokens ORDER BY id LIMIT 3";
    let go = |f: &str| {
        let (code, out, err) = run(cfql(home.path()).args(["--demo", "--format", f, "-c", q]));
        assert_eq!(code, 0, "{f}: {err}");
        out
    };
    let json: serde_json::Value = serde_json::from_str(&go("json")).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert!(
        arr[0]["policies"].is_array(),
        "JSON columns stay nested: {}",
        arr[0]
    );
    assert!(arr[0]["policies"][0]["permission_groups"].is_array());
    let nd = go("ndjson");
    let lines: Vec<serde_json::Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, arr.to_vec());
    let tsv = go("tsv");
    let mut r = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_reader(tsv.as_bytes());
    let ids: Vec<String> = r.records().map(|x| x.unwrap()[0].to_string()).collect();
    assert_eq!(
        ids,
        arr.iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    );
    let md = go("markdown");
    assert!(
        md.starts_with("| id | name | policies | expires_on |\n|---|---|---|---|\n"),
        "{md}"
    );
    assert_eq!(md.lines().count(), 5);
    let table = go("table");
    assert_contains!(table, "| id ", "(3 rows)");
    // Not a terminal: long JSON cells are not cut.
    assert!(!table.contains('…'));
    let (code, _, err) =
        run(cfql(home.path()).args(["--demo", "--format", "yaml", "-c", "SELECT 1"]));
    assert_eq!(code, 2);
    assert_contains!(err, "unknown format 'yaml'");
}

#[test]
fn files_run_in_order_and_errors_name_file_and_line() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("audit.sql");
    std::fs::write(&f, "-- first\nSELECT 'one' AS step;\n\nSELECT 'two' AS step;\n\n-- the broken one\nSELECT nope\n  FROM cloudflare.user.tokens;\nSELECT 'never' AS step;\n").unwrap();
    let (code, out, err) = run(cfql(home.path())
        .args([
            "--demo",
            "--format",
            "csv",
            "-c",
            "SELECT 'zero' AS step",
            "-f",
        ])
        .arg(&f));
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "step\nzero\nstep\none\nstep\ntwo\n");
    assert!(err.contains(&format!("{}:7:", f.display())), "{err}");
    assert_contains!(err, "unknown column 'nope'");
    assert!(!out.contains("never"));
    let (code, _, err) = run(cfql(home.path()).args(["-f", "/nonexistent/x.sql"]));
    assert_eq!(code, 2);
    assert_contains!(err, "cannot read /nonexistent/x.sql");
}

#[test]
fn stdin_runs_as_a_script() {
    let home = tempfile::tempdir().unwrap();
    let mut child = cfql(home.path())
        .args(["--demo", "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SHOW SERVICES;\nSELECT count(*) AS n FROM cloudflare.accounts.accounts;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("cloudflare.user,") && text.ends_with("n\n3\n"),
        "{text}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, err) = run(cfql(home.path()).arg("--no-such-flag"));
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"));
    let (code, _, err) = run(cfql(home.path()).args(["--profile", "prod", "-c", "SELECT 1"]));
    assert_eq!(code, 2);
    assert_contains!(err, "profile 'prod'");
    let (code, _, err) = run(cfql(home.path()).args(["--var", "novalue", "-c", "SELECT 1"]));
    assert_eq!(code, 2);
    assert_contains!(err, "expected NAME=VALUE");
    let (code, out, _) = run(cfql(home.path()).arg("--help"));
    assert_eq!(code, 0);
    for flag in [
        "--command",
        "--file",
        "--format",
        "--var",
        "--dry-run",
        "--secrets-file",
        "--audit-log",
        "--profile",
        "--base-url",
        "--demo",
        "Example:",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn vars_substitute_and_missing_ones_are_named() {
    let home = tempfile::tempdir().unwrap();
    let (code, out, _) = run(cfql(home.path()).args([
        "--demo",
        "--format",
        "csv",
        "--var",
        "n=2",
        "-c",
        "SELECT id FROM cloudflare.user.tokens LIMIT {{ n }}",
    ]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3);
    let (code, _, err) = run(cfql(home.path()).args([
        "--demo",
        "-c",
        "SELECT id FROM cloudflare.user.tokens LIMIT {{ n }}",
    ]));
    assert_eq!(code, 1);
    assert_contains!(err, "'{{ n }}' has no value: pass --var n=VALUE");
}

#[test]
fn profile_file_and_env_override() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(7));
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join(".config/cfql");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        format!(
            "[staging]\napi_token = \"{}\"\nbase_url = \"{}\"\nconcurrency = 2\n",
            sim.admin_token(),
            sim.base_url()
        ),
    )
    .unwrap();
    let (code, out, err) = run(cfql(home.path()).args([
        "--profile",
        "staging",
        "--format",
        "csv",
        "-c",
        "SELECT count(*) AS n FROM cloudflare.user.tokens",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "n\n7\n");
    // The environment wins over the file.
    let (code, _, err) = run(cfql(home.path())
        .env("CLOUDFLARE_API_TOKEN", "bogus-token")
        .args([
            "--profile",
            "staging",
            "-c",
            "SELECT count(*) FROM cloudflare.user.tokens",
        ]));
    assert_eq!(code, 1);
    assert_contains!(err, "HTTP 401", "code 1000: Invalid API Token");
    assert!(!err.contains("bogus-token"), "credential on stderr: {err}");
}

#[test]
fn rotation_script_secrets_reach_stdout_and_file_never_stderr() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("rotated.jsonl");
    let audit = dir.path().join("audit.jsonl");
    let (code, out, err) = run(cfql(home.path())
        .args([
            "--demo",
            "--format",
            "json",
            "--var",
            "days=7",
            "-f",
            "examples/rotate_expiring.sql",
            "--secrets-file",
        ])
        .arg(&secrets)
        .arg("--audit-log")
        .arg(&audit)
        .env("CFQL_LOG", "debug"));
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(!rows.is_empty());
    let file = std::fs::read_to_string(&secrets).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let log = std::fs::read_to_string(&audit).unwrap();
    for r in &rows {
        let v = r["value"].as_str().unwrap();
        assert_eq!(v.len(), 40);
        assert!(file.contains(v), "secret missing from the secrets file");
        assert!(!err.contains(v), "secret on stderr");
        assert!(!log.contains(v), "secret in the audit log");
    }
    assert!(
        err.contains("calling Cloudflare"),
        "debug logging was on: {err}"
    );
    // Dry run: the same script sends no mutating call.
    let (code, out, err) = run(cfql(home.path()).args([
        "--demo",
        "--dry-run",
        "--format",
        "csv",
        "--var",
        "days=7",
        "-f",
        "examples/rotate_expiring.sql",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("row,method,path,body,connection\n") && out.contains("PUT,/user/tokens/"),
        "{out}"
    );
    assert_contains!(err, "dry run");
}

#[test]
fn every_example_script_runs_on_the_demo() {
    let home = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "sql") {
            n += 1;
            let (code, out, err) = run(cfql(home.path())
                .args(["--demo", "--format", "csv", "--var", "days=7", "-f"])
                .arg(&p));
            assert_eq!(code, 0, "{}: {err}", p.display());
            assert!(
                out.lines().count() > 1,
                "{} found nothing in the sample data:\n{out}",
                p.display()
            );
        }
    }
    assert!(n >= 6, "examples/*.sql");
}

#[test]
fn sim_subcommand_serves_and_rejects_bad_input() {
    let home = tempfile::tempdir().unwrap();
    let mut child = cfql(home.path())
        .args(["sim", "--listen", "127.0.0.1:0", "--tokens", "12"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first.rsplit(' ').next().unwrap().to_string();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/client/v4"),
        "{first}"
    );
    let _base_line = lines.next().unwrap().unwrap();
    let token_line = lines.next().unwrap().unwrap();
    let bearer = token_line
        .split("CLOUDFLARE_API_TOKEN=")
        .nth(1)
        .expect("the token is printed")
        .trim()
        .to_string();
    let (code, out, err) = run(cfql(home.path())
        .env("CLOUDFLARE_API_TOKEN", &bearer)
        .args([
            "--base-url",
            &base,
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM cloudflare.user.tokens",
        ]));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "n\n12\n");

    let (code, _, err) = run(cfql(home.path()).args(["sim", "--faults", "500#zero"]));
    assert_eq!(code, 2);
    assert_contains!(err, "invalid --faults spec", "500#zero");
    let (code, _, err) = run(cfql(home.path()).args(["sim", "--tokens", "many"]));
    assert_eq!(code, 2, "{err}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, _, err) = run(cfql(home.path()).args(["sim", "--listen", &addr]));
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_contains!(err, &format!("cannot listen on {addr}"));
}

mod repl {
    use super::*;
    use expectrl::Session;

    fn spawn(home: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Session {
        let mut c = cfql(home);
        c.stdin(Stdio::inherit()).env("TERM", "xterm").args(extra);
        for (k, v) in env {
            c.env(k, v);
        }
        let mut p = Session::spawn(c).expect("pty");
        p.set_expect_timeout(Some(Duration::from_secs(20)));
        p
    }

    #[test]
    fn multi_line_backslash_completion_and_history() {
        let home = tempfile::tempdir().unwrap();
        let mut p = spawn(home.path(), &["--demo", "--format", "csv"], &[]);
        p.expect("cfql> ").unwrap();
        p.send_line("SELECT count(*) AS n").unwrap();
        p.send_line("FROM cloudflare.accounts.accounts;").unwrap();
        p.expect("n\r\n3").unwrap();
        p.send_line("\\d").unwrap();
        p.expect("cloudflare.access.service_tokens").unwrap();
        p.send_line("\\d cloudflare.user.tokens").unwrap();
        p.expect("token_id").unwrap();
        // Tab completes a table name.
        p.send("SELECT count(*) AS c FROM cloudflare.user.permission_g\t")
            .unwrap();
        p.send_line(";").unwrap();
        // The simulator lists 26 permission groups (24, and R2's two).
        p.expect("c\r\n26").unwrap();
        p.send_line("\\q").unwrap();
        p.expect(expectrl::Eof).unwrap();
        let hist = home.path().join(".local/share/cfql/history");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&hist).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&hist).unwrap();
        assert_contains!(text, "cloudflare.user.permission_groups");
    }

    #[test]
    fn ctrl_c_cancels_a_slow_query_and_keeps_the_session() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let sim = rt.block_on(sim_with(200));
        let home = tempfile::tempdir().unwrap();
        let token = sim.admin_token();
        let base = sim.base_url();
        let mut p = spawn(
            home.path(),
            &["--base-url", &base, "--format", "csv"],
            &[("CLOUDFLARE_API_TOKEN", &token)],
        );
        p.expect("cfql> ").unwrap();
        sim.set_latency_ms(5000);
        p.send_line("SELECT count(*) FROM cloudflare.user.tokens;")
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        p.send("\x03").unwrap();
        p.expect("cancelled").unwrap();
        sim.set_latency_ms(0);
        p.send_line("SELECT 40 + 2 AS answer;").unwrap();
        p.expect("answer\r\n42").unwrap();
        p.expect("cfql> ").unwrap();
        p.send("\x04").unwrap();
        p.expect(expectrl::Eof).unwrap();
        // The cancelled scan stopped: its first page was in flight, no later page was asked for.
        assert_eq!(sim.count("GET", "/user/tokens"), 1);
    }
}

/// Without a credential nothing is called, and the command line adds the flag that helps;
/// the library's own text names no flag.
#[test]
fn no_credential_is_named_with_the_way_to_give_one() {
    on_runtime(async {
        let sim = sim_with(3).await;
        let home = tempfile::tempdir().unwrap();
        let (code, _, err) = run(cfql(home.path()).args([
            "--base-url",
            &sim.base_url(),
            "-c",
            "SELECT count(*) FROM cloudflare.user.tokens",
        ]));
        assert_eq!(code, 1, "{err}");
        assert_contains!(
            err,
            "no Cloudflare credential: set CLOUDFLARE_API_TOKEN",
            "(--profile NAME picks a profile)"
        );
        assert_eq!(sim.total_requests(), 0);
        let s = cfql::Session::new(cfql::Config::new(sim.base_url()))
            .await
            .unwrap();
        let e = s
            .sql("SELECT count(*) FROM cloudflare.user.tokens")
            .await
            .unwrap_err();
        assert!(matches!(e, cfql::Error::NoCredential), "{e:?}");
        assert!(!e.to_string().contains("--"), "{e}");
    })
}
