//! `cfql check` as a CI job runs it: exit codes, titles, reports (JUnit parsed as XML),
//! writes refused with nothing sent; expanded tables on a narrow terminal; completions.

use std::process::Stdio;
use std::time::Duration;

use crate::cli::{cfql, run};
use crate::common::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Files whose controls find nothing, something, and fail: exit 0, 3, 1.
#[test]
fn exit_codes_say_ok_alarm_or_error() {
    let (home, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ok = write(
        dir.path(),
        "ok.sql",
        "SET cfql.dry_run = true;\n-- Nothing is named that\nSELECT id FROM cloudflare.user.tokens WHERE name = 'no-such-token';\n\nSELECT 1 WHERE false;\n",
    );
    let alarm = write(
        dir.path(),
        "alarm.sql",
        "-- Tokens that expire within {{ days }} days\n-- (a second line)\nSELECT id, name FROM cloudflare.user.tokens\n WHERE expires_on < now() + INTERVAL '{{ days }} days';\n",
    );
    let broken = write(
        dir.path(),
        "broken.sql",
        "-- A typo\nSELECT nme FROM cloudflare.user.tokens;\n",
    );
    let check = |files: &[&str]| {
        let mut c = cfql(home.path());
        c.args(["check", "--demo", "--var", "days=30"]);
        for f in files {
            c.args(["-f", f]);
        }
        run(&mut c)
    };
    let (code, out, err) = check(&[&ok]);
    assert_eq!(code, 0, "{out}{err}");
    assert_contains!(out, "OK     [medium] Nothing is named that  (", "ok.sql:3)");
    assert!(
        out.contains(&format!("OK     [medium] {ok}:5")),
        "a control without a comment is titled FILE:LINE: {out}"
    );
    assert!(
        out.ends_with("2 controls: 2 ok, 0 alarm (0 findings), 0 error\n"),
        "{out}"
    );

    let (code, out, err) = check(&[&ok, &alarm]);
    assert_eq!(code, 3, "{out}{err}");
    assert_contains!(
        out,
        "ALARM  [medium] Tokens that expire within 30 days  (",
        "finding(s)"
    );
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("3 controls: 2 ok, 1 alarm (") && last.ends_with(" findings), 0 error"),
        "{last}"
    );

    let (code, out, _) = check(&[&ok, &alarm, &broken]);
    assert_eq!(code, 1, "{out}");
    assert_contains!(out, "ERROR  [medium] A typo", "unknown column 'nme'");
    assert!(out.ends_with("1 error\n"), "{out}");
    let (code, _, err) = run(cfql(home.path()).args(["check", "--demo"]));
    assert_eq!(code, 2, "no file is a usage error: {err}");
}

/// JUnit: a testsuite per file, a testcase per control, a failure holding an alarm's
/// findings, an error for an error.
#[test]
fn junit_report_parses_as_xml() {
    let (home, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = write(
        dir.path(),
        "a.sql",
        "-- Nothing <here> & \"there\"\nSELECT 1 AS x WHERE false;\n-- Two rows\nSELECT * FROM (VALUES (1), (2)) t(x);\n",
    );
    let b = write(
        dir.path(),
        "b.sql",
        "-- Broken\nSELECT * FROM cloudflare.user.tokenz;\n",
    );
    let (code, out, err) =
        run(cfql(home.path()).args(["check", "--demo", "--format", "junit", "-f", &a, "-f", &b]));
    assert_eq!(code, 1, "{err}");
    assert_contains!(err, "3 controls: 1 ok, 1 alarm (2 findings), 1 error");
    let doc = roxmltree::Document::parse(&out).expect("valid XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(
        (
            root.attribute("tests"),
            root.attribute("failures"),
            root.attribute("errors")
        ),
        (Some("3"), Some("1"), Some("1"))
    );
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(
        suites
            .iter()
            .map(|s| s.attribute("name").unwrap())
            .collect::<Vec<_>>(),
        vec![a.as_str(), b.as_str()]
    );
    let cases: Vec<_> = suites[0]
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(
        cases[0].attribute("name"),
        Some("Nothing <here> & \"there\"")
    );
    assert!(
        cases[0].children().all(|c| !c.is_element()),
        "an ok control is a bare testcase"
    );
    let failure = cases[1]
        .children()
        .find(|c| c.has_tag_name("failure"))
        .expect("the alarm is a failure");
    assert_eq!(failure.attribute("message"), Some("2 finding(s)"));
    assert!(
        failure.text().unwrap().contains("| x |"),
        "the findings are in the failure"
    );
    let error = suites[1]
        .descendants()
        .find(|c| c.has_tag_name("error"))
        .expect("an error element");
    assert!(error.attribute("message").unwrap().contains("tokenz"));

    let (_, out, _) =
        run(cfql(home.path()).args(["check", "--demo", "--format", "json", "-f", &a]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[1]["status"], "alarm");
    assert_eq!(v[1]["findings"], serde_json::json!([{"x": 1}, {"x": 2}]));
    assert_eq!(v[0]["line"], 2);
}

/// A write in a check file is an error for that control, and nothing is sent.
#[test]
fn check_mode_never_writes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(10));
    let (home, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = sim.user_token_ids()[2].clone();
    let f = write(
        dir.path(),
        "w.sql",
        &format!(
            "-- Roll it\nEXEC cloudflare.user.tokens.roll @token_id = '{id}';\n-- Drop it\nDELETE FROM cloudflare.user.tokens WHERE id = '{id}';\n-- Count\nSELECT count(*) FROM cloudflare.user.tokens WHERE false;\n"
        ),
    );
    sim.reset_counts();
    let (code, out, err) = run(cfql(home.path())
        .args(["check", "--base-url", &sim.base_url(), "-f", &f])
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token()));
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.matches("check mode never writes").count(), 2, "{out}");
    assert_eq!(sim.mutating_requests(), 0);
    assert!(
        out.ends_with("3 controls: 0 ok, 1 alarm (1 finding), 2 error\n"),
        "count(*) returns a row: {out}"
    );
}

/// Every audit script of examples/ is a check file with a title per control.
#[test]
fn example_audits_are_check_files() {
    let home = tempfile::tempdir().unwrap();
    for name in [
        "expiring_credentials",
        "unused_tokens",
        "unrestricted_tokens",
        "wildcard_policies",
        "stale_service_tokens",
    ] {
        let f = format!("examples/{name}.sql");
        let (code, out, err) =
            run(cfql(home.path()).args(["check", "--demo", "--format", "json", "-f", &f]));
        assert!(code == 0 || code == 3, "{name}: {code} {err}");
        let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        assert!(!v.is_empty(), "{name}");
        for c in v {
            let title = c["title"].as_str().unwrap();
            assert!(
                !title.contains(".sql:") && title.len() < 70,
                "{name}: a real title: {title}"
            );
        }
    }
}

#[test]
fn completions_are_printed() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(cfql(home.path()).args(["completions", shell]));
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("cfql") && out.contains("check") && out.len() > 500,
            "{shell}"
        );
    }
}

/// On an 80-column terminal a wide result switches to one field per line.
#[cfg(unix)]
#[test]
fn wide_tables_expand_on_a_narrow_terminal() {
    let home = tempfile::tempdir().unwrap();
    let mut c = cfql(home.path());
    c.stdin(Stdio::inherit()).env("TERM", "xterm").args([
        "--demo",
        "-c",
        "SELECT * FROM cloudflare.access.service_tokens LIMIT 2",
    ]);
    let mut p = expectrl::Session::spawn(c).expect("pty");
    p.get_process_mut().set_window_size(80, 24).unwrap();
    p.set_expect_timeout(Some(Duration::from_secs(30)));
    let mut screen = Vec::new();
    std::io::Read::read_to_end(&mut p, &mut screen).ok();
    let screen = String::from_utf8_lossy(&screen);
    assert_contains!(screen, "-[ RECORD 2 ]");
    for line in screen.lines() {
        assert!(
            line.trim_end_matches('\r').chars().count() <= 80,
            "a line wider than the terminal: {line:?}"
        );
    }
    // A narrow result stays a table.
    let mut c = cfql(home.path());
    c.stdin(Stdio::inherit()).env("TERM", "xterm").args([
        "--demo",
        "-c",
        "SELECT name FROM cloudflare.access.service_tokens LIMIT 2",
    ]);
    let mut p = expectrl::Session::spawn(c).expect("pty");
    p.get_process_mut().set_window_size(80, 24).unwrap();
    let mut screen = Vec::new();
    std::io::Read::read_to_end(&mut p, &mut screen).ok();
    assert!(
        String::from_utf8_lossy(&screen).contains("| name"),
        "a table"
    );
}
