//! Trust in writes, through the `cfql` binary as a user runs it: a real SIGINT mid-way,
//! Ctrl-C in the REPL on a pseudo-terminal, table output on a terminal, a full disk
//! (`/dev/full`), a closed pipe, and template values that try to change a statement.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cli::{cfql, run};
use crate::common::*;
use crate::trust::{active_ids, authenticates_as, processed_rolls, secrets_in};

const BULK_ROLL: &str = "EXEC cloudflare.user.tokens.update_value @token_id = (SELECT id FROM cloudflare.user.tokens WHERE status = 'active' ORDER BY id LIMIT 40)";

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every roll the simulator processed has its working secret in the secrets file and
/// its line in the audit log; returns the processed ids.
fn assert_every_processed_roll_kept(
    rt: &tokio::runtime::Runtime,
    sim: &cfql::sim::Simulator,
    dir: &std::path::Path,
) -> Vec<String> {
    let processed = processed_rolls(sim);
    let filed = secrets_in(&dir.join("secrets.jsonl"));
    let want: HashSet<&String> = processed.iter().collect();
    let got: HashSet<&String> = filed.keys().collect();
    assert_eq!(
        want, got,
        "the secrets file holds exactly the rolls that took effect"
    );
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    for id in &processed {
        assert_eq!(
            rt.block_on(authenticates_as(sim, &filed[id])).as_ref(),
            Some(id),
            "{id}: the filed secret works"
        );
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&format!("/user/tokens/{id}/value"))
                    && l.contains("\"ok\":true")),
            "{id}: no audit line"
        );
    }
    processed
}

/// Item 1: SIGINT mid-statement. No new roll starts, the ones in flight are awaited, and
/// every roll that took effect reaches stdout, the secrets file and the audit log.
#[test]
fn sigint_mid_bulk_roll_keeps_every_processed_secret() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(50));
    let (home, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    sim.set_latency_ms(300);
    let child = cfql(home.path())
        .args([
            "--base-url",
            &sim.base_url(),
            "--concurrency",
            "4",
            "--format",
            "csv",
            "-c",
            BULK_ROLL,
            "--secrets-file",
        ])
        .arg(dir.path().join("secrets.jsonl"))
        .arg("--audit-log")
        .arg(dir.path().join("audit.jsonl"))
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("8 rolls", || processed_rolls(&sim).len() >= 8);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let processed = assert_every_processed_roll_kept(&rt, &sim, dir.path());
    assert!(
        processed.len() < 40,
        "the statement stopped early ({} rolls)",
        processed.len()
    );
    let summary = format!("EXEC cancelled: {} of ", processed.len());
    assert_contains!(stderr, &summary, "not attempted");
    // The rows that took effect were printed, secrets included.
    let mut r = csv::Reader::from_reader(stdout.as_bytes());
    let printed: HashSet<String> = r.records().map(|rec| rec.unwrap()[0].to_string()).collect();
    assert_eq!(printed, processed.iter().cloned().collect::<HashSet<_>>());
    for secret in secrets_in(&dir.path().join("secrets.jsonl")).values() {
        assert!(stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()));
    }
}

/// Item 4: stdout on a full disk. The user learns how many rows took effect and where the
/// secrets are; without a secrets file, that they were lost.
#[test]
fn a_full_disk_on_stdout_points_to_the_secrets_file() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(10));
    let (home, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ids = rt.block_on(active_ids(&sim, 3));
    let sql = format!(
        "EXEC cloudflare.user.tokens.roll @token_id = (SELECT id FROM cloudflare.user.tokens WHERE id IN ('{}', '{}', '{}'))",
        ids[0], ids[1], ids[2]
    );
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let secrets = dir.path().join("secrets.jsonl");
    let (code, _, err) = run(cfql(home.path())
        .args(["--base-url", &sim.base_url(), "-c", &sql, "--secrets-file"])
        .arg(&secrets)
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token())
        .stdout(full()));
    assert_eq!(code, 1, "{err}");
    assert_contains!(
        err,
        "cannot write the output",
        "3 row(s) of this EXEC took effect"
    );
    assert!(err.contains(&secrets.display().to_string()), "{err}");
    let filed = secrets_in(&secrets);
    assert_eq!(filed.len(), 3);
    for (id, secret) in &filed {
        assert_eq!(
            rt.block_on(authenticates_as(&sim, secret)).as_ref(),
            Some(id)
        );
    }
    let (code, _, err) = run(cfql(home.path())
        .args(["--base-url", &sim.base_url(), "-c", &sql])
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token())
        .stdout(full()));
    assert_eq!(code, 1);
    assert_contains!(
        err,
        "3 row(s) of this EXEC took effect",
        "lost",
        "--secrets-file"
    );
}

/// A reader that goes away (`| head -1`) ends a read quietly; a write says what it did.
#[test]
fn a_closed_pipe_ends_a_read_quietly_and_a_write_loudly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(10));
    let home = tempfile::tempdir().unwrap();
    let closed = |sql: &str| {
        let mut child = cfql(home.path())
            .args(["--base-url", &sim.base_url(), "-c", sql])
            .env("CLOUDFLARE_API_TOKEN", sim.admin_token())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = closed("SELECT * FROM cloudflare.user.tokens");
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let id = sim.user_token_ids()[3].clone();
    let (code, err) = closed(&format!(
        "EXEC cloudflare.user.tokens.roll @token_id = '{id}'"
    ));
    assert_eq!(code, Some(1));
    assert_contains!(err, "1 row(s) of this EXEC took effect", "lost");
}

/// Item 10: a template value is data. Inside quotes it is escaped; outside, only a plain
/// literal is accepted. The StackQL-style examples still run.
#[test]
fn template_values_cannot_change_a_statement() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(50));
    let home = tempfile::tempdir().unwrap();
    let base = sim.base_url();
    let token = sim.admin_token();
    let (code, _, err) = run(cfql(home.path())
        .args([
            "--base-url",
            &base,
            "--var",
            "days=7 days' OR 'a' <> '",
            "-f",
            "examples/rotate_expiring.sql",
        ])
        .env("CLOUDFLARE_API_TOKEN", &token));
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        sim.count("PUT", "/user/tokens/{token_id}/value"),
        0,
        "no roll: {err}"
    );
    let (code, _, err) = run(cfql(home.path())
        .args([
            "--base-url",
            &base,
            "--var",
            "n=1 OR 1=1",
            "-c",
            "SELECT id FROM cloudflare.user.tokens LIMIT {{ n }}",
        ])
        .env("CLOUDFLARE_API_TOKEN", &token));
    assert_eq!(code, 1);
    assert_contains!(err, "template variable '{{ n }}'", "outside quotes");
    // The honest value still works, and rolls exactly what the WHERE names.
    let q = "SELECT count(*) FROM cloudflare.user.tokens WHERE status = 'active' AND expires_on > now() AND expires_on < now() + INTERVAL '7 days'";
    let (_, out, _) = run(cfql(home.path())
        .args(["--base-url", &base, "--format", "csv", "-c", q])
        .env("CLOUDFLARE_API_TOKEN", &token));
    let expected: u64 = out.lines().nth(1).unwrap().parse().unwrap();
    let (code, _, err) = run(cfql(home.path())
        .args([
            "--base-url",
            &base,
            "--var",
            "days=7",
            "-f",
            "examples/rotate_expiring.sql",
        ])
        .env("CLOUDFLARE_API_TOKEN", &token));
    assert_eq!(code, 0, "{err}");
    assert_eq!(sim.count("PUT", "/user/tokens/{token_id}/value"), expected);
}

#[cfg(unix)]
mod terminal {
    use super::*;
    use expectrl::Session;

    fn spawn(home: &std::path::Path, args: &[&str], token: &str) -> Session {
        let mut c = cfql(home);
        c.stdin(Stdio::inherit())
            .env("TERM", "xterm")
            .env("CLOUDFLARE_API_TOKEN", token)
            .args(args);
        let mut p = Session::spawn(c).expect("pty");
        p.set_expect_timeout(Some(Duration::from_secs(60)));
        p
    }

    /// Item 1 in the REPL: Ctrl-C mid-roll keeps the session and every issued secret.
    #[test]
    fn ctrl_c_in_the_repl_keeps_every_processed_secret() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let sim = rt.block_on(sim_with(50));
        let (home, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let secrets = dir.path().join("secrets.jsonl");
        let audit = dir.path().join("audit.jsonl");
        let base = sim.base_url();
        let args = [
            "--base-url",
            &base,
            "--concurrency",
            "4",
            "--format",
            "csv",
            "--secrets-file",
            secrets.to_str().unwrap(),
            "--audit-log",
            audit.to_str().unwrap(),
        ];
        let mut p = spawn(home.path(), &args, &sim.admin_token());
        p.expect("cfql> ").unwrap();
        sim.set_latency_ms(300);
        p.send_line(format!("{BULK_ROLL};")).unwrap();
        wait_until("8 rolls", || processed_rolls(&sim).len() >= 8);
        p.send("\x03").unwrap();
        p.expect("EXEC cancelled: ").unwrap();
        p.expect("cfql> ").unwrap();
        sim.set_latency_ms(0);
        p.send("\x04").unwrap();
        p.expect(expectrl::Eof).unwrap();
        let processed = assert_every_processed_roll_kept(&rt, &sim, dir.path());
        assert!(processed.len() < 40);
    }

    /// Item 2: on a terminal, table output never shortens a secret (nor any cell of a
    /// write's result), while a long cell of a read is still shortened.
    #[test]
    fn table_output_on_a_terminal_never_cuts_a_secret() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let sim = rt.block_on(sim_opts(cfql::sim::SeedOptions::default()));
        let (home, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = sim.account_ids()[0].clone();
        let id = sim.service_token_ids(&a)[0].clone();
        let secrets = dir.path().join("secrets.jsonl");
        let rotate = format!(
            "EXEC cloudflare.access.service_tokens.rotate @account_id = '{a}', @service_token_id = '{id}'"
        );
        let base = sim.base_url();
        let read = "SELECT policies FROM cloudflare.user.tokens LIMIT 1";
        let mut p = spawn(
            home.path(),
            &[
                "--base-url",
                &base,
                "--secrets-file",
                secrets.to_str().unwrap(),
                "-c",
                &rotate,
                "-c",
                read,
            ],
            &sim.admin_token(),
        );
        let mut screen = Vec::new();
        std::io::Read::read_to_end(&mut p, &mut screen).ok();
        let screen = String::from_utf8_lossy(&screen);
        let secret = secrets_in(&secrets)
            .remove(&id)
            .expect("the rotate's secret was filed");
        assert!(secret.len() > 60, "a long secret: {}", secret.len());
        assert!(
            screen.contains(&secret),
            "the whole secret is on the terminal:\n{screen}"
        );
        assert!(
            screen.contains('…'),
            "a read's long cell is still shortened:\n{screen}"
        );
    }
}
