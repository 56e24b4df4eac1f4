//! `cfql check --benchmark credentials`: the built-in controls find exactly what their
//! rules say on the simulator's data (each rule recomputed here from the raw tables), the
//! HTML report renders in headless Chromium and shows the JSON report's numbers, and
//! baselines mark new findings and gate on them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::cli::{cfql, run};
use crate::common::*;

/// A simulator on a runtime of its own (the CLI runs as a child process beside it).
fn world() -> (tokio::runtime::Runtime, cfql::sim::Simulator) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(40));
    (rt, sim)
}

fn check(sim: &cfql::sim::Simulator, home: &Path, args: &[&str]) -> (i32, String, String) {
    run(cfql(home)
        .args(["check", "--base-url", &sim.base_url()])
        .args(args)
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token()))
}

/// Control id -> the credential ids it names.
fn named(report: &str) -> BTreeMap<String, BTreeSet<String>> {
    let v: Vec<Value> = serde_json::from_str(report).unwrap();
    v.iter()
        .map(|c| {
            let ids = c["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect();
            (c["id"].as_str().unwrap().to_string(), ids)
        })
        .collect()
}

/// One credential as the rules below see it, from the raw tables.
struct Cred {
    id: String,
    kind: &'static str,
    active: bool,
    disabled: bool,
    expires: Option<DateTime<Utc>>,
    last_used: Option<DateTime<Utc>>,
    created: Option<DateTime<Utc>>,
    modified: Option<DateTime<Utc>>,
    ip_allow_list: bool,
    /// The API reports its use (tokens); certificates report none.
    usage: bool,
}

fn time(v: &Option<String>) -> Option<DateTime<Utc>> {
    v.as_deref()
        .map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
}

async fn raw_credentials(s: &cfql::Session) -> Vec<Cred> {
    let mut out = Vec::new();
    for (kind, table) in [
        ("user_token", "cloudflare.user.tokens"),
        ("account_token", "cloudflare.accounts.tokens"),
    ] {
        let b = s
            .sql(&format!(
                "SELECT id, status, CAST(expires_on AS VARCHAR) AS e, CAST(last_used_on AS VARCHAR) AS u, \
                 CAST(issued_on AS VARCHAR) AS c, CAST(modified_on AS VARCHAR) AS m, \
                 CAST(condition AS VARCHAR) AS cond FROM {table}"
            ))
            .await
            .unwrap();
        let (ids, st) = (strings(&b, "id"), strings(&b, "status"));
        let (e, u, c, m, cond) = (
            col(&b, "e"),
            col(&b, "u"),
            col(&b, "c"),
            col(&b, "m"),
            col(&b, "cond"),
        );
        for i in 0..ids.len() {
            let ips = cond[i]
                .as_deref()
                .map(|t| serde_json::from_str::<Value>(t).unwrap())
                .and_then(|v| v["request_ip"]["in"].as_array().map(|a| !a.is_empty()))
                .unwrap_or(false);
            out.push(Cred {
                id: ids[i].clone(),
                kind,
                active: st[i] == "active",
                disabled: st[i] == "disabled",
                expires: time(&e[i]),
                last_used: time(&u[i]),
                created: time(&c[i]),
                modified: time(&m[i]),
                ip_allow_list: ips,
                usage: true,
            });
        }
    }
    for scope in ["zone_id IS NULL", "zone_id IS NOT NULL"] {
        let b = s
            .sql(&format!(
                "SELECT id, CAST(enabled AS VARCHAR) AS en, CAST(expires_at AS VARCHAR) AS e, \
                 CAST(last_seen_at AS VARCHAR) AS u, CAST(created_at AS VARCHAR) AS c \
                 FROM cloudflare.access.service_tokens WHERE {scope}"
            ))
            .await
            .unwrap();
        let (ids, en) = (strings(&b, "id"), col(&b, "en"));
        let (e, u, c) = (col(&b, "e"), col(&b, "u"), col(&b, "c"));
        for i in 0..ids.len() {
            let expires = time(&e[i]);
            let disabled = en[i].as_deref() == Some("false");
            out.push(Cred {
                id: ids[i].clone(),
                kind: "service_token",
                active: !disabled && expires.is_none_or(|x| x > Utc::now()),
                disabled,
                expires,
                last_used: time(&u[i]),
                created: time(&c[i]),
                modified: None,
                ip_allow_list: true,
                usage: true,
            });
        }
    }
    for (kind, sql) in [
        (
            "access_certificate",
            "SELECT id, 'active' AS st, CAST(expires_on AS VARCHAR) AS e, CAST(created_at AS VARCHAR) AS c FROM cloudflare.access.certificates WHERE zone_id IS NULL",
        ),
        (
            "access_certificate",
            "SELECT id, 'active' AS st, CAST(expires_on AS VARCHAR) AS e, CAST(created_at AS VARCHAR) AS c FROM cloudflare.access.certificates WHERE zone_id IS NOT NULL",
        ),
        (
            "client_certificate",
            "SELECT id, status AS st, CAST(expires_on AS VARCHAR) AS e, CAST(issued_on AS VARCHAR) AS c FROM cloudflare.zones.client_certificates WHERE zone_id IS NOT NULL",
        ),
        (
            "mtls_certificate",
            "SELECT id, 'active' AS st, CAST(expires_on AS VARCHAR) AS e, CAST(uploaded_on AS VARCHAR) AS c FROM cloudflare.accounts.mtls_certificates",
        ),
        (
            "origin_ca_certificate",
            "SELECT id, 'active' AS st, CAST(expires_on AS VARCHAR) AS e, CAST(NULL AS VARCHAR) AS c FROM cloudflare.zones.origin_ca_certificates WHERE zone_id IS NOT NULL",
        ),
    ] {
        let b = s.sql(sql).await.unwrap();
        let (ids, st, e, c) = (
            strings(&b, "id"),
            strings(&b, "st"),
            col(&b, "e"),
            col(&b, "c"),
        );
        for i in 0..ids.len() {
            let expires = time(&e[i]);
            out.push(Cred {
                id: ids[i].clone(),
                kind,
                active: st[i] == "active" && expires.is_none_or(|x| x > Utc::now()),
                disabled: false,
                expires,
                last_used: None,
                created: time(&c[i]),
                modified: None,
                ip_allow_list: true,
                usage: false,
            });
        }
    }
    out
}

/// A control's rule over one credential.
type Rule<'a> = Box<dyn Fn(&Cred) -> bool + 'a>;

/// The rules of the benchmark, in Rust, over the raw rows.
fn expected(creds: &[Cred], now: DateTime<Utc>) -> BTreeMap<&'static str, BTreeSet<String>> {
    let api = |c: &Cred| matches!(c.kind, "user_token" | "account_token");
    let rules: Vec<(&'static str, Rule<'_>)> = vec![
        (
            "cred-expiring-soon",
            Box::new(|c: &Cred| {
                c.active
                    && c.expires
                        .is_some_and(|e| e >= now && e < now + Duration::days(30))
            }),
        ),
        (
            "cred-expired-present",
            Box::new(|c: &Cred| c.expires.is_some_and(|e| e < now)),
        ),
        (
            "token-no-expiry",
            Box::new(move |c: &Cred| api(c) && c.active && c.expires.is_none()),
        ),
        (
            "service-token-no-expiry",
            Box::new(move |c: &Cred| c.kind == "service_token" && c.active && c.expires.is_none()),
        ),
        (
            "cred-never-used",
            Box::new(|c: &Cred| {
                c.usage
                    && c.active
                    && c.last_used.is_none()
                    && c.created.is_some_and(|t| t < now - Duration::days(30))
            }),
        ),
        (
            "cred-unused-90d",
            Box::new(|c: &Cred| {
                c.active && c.last_used.is_some_and(|u| u < now - Duration::days(90))
            }),
        ),
        (
            "token-no-ip-restriction",
            Box::new(move |c: &Cred| api(c) && c.active && !c.ip_allow_list),
        ),
        (
            "token-not-rolled-365d",
            Box::new(move |c: &Cred| {
                api(c) && c.active && c.modified.is_some_and(|m| m < now - Duration::days(365))
            }),
        ),
        ("cred-disabled-lingering", Box::new(|c: &Cred| c.disabled)),
    ];
    rules
        .into_iter()
        .map(|(id, rule)| {
            (
                id,
                creds
                    .iter()
                    .filter(|c| rule(c))
                    .map(|c| c.id.clone())
                    .collect(),
            )
        })
        .collect()
}

/// Every control's findings are exactly the credentials its rule names (recomputed from
/// the raw tables); the least-privilege controls name the seeded culprits; exit code 3.
#[test]
fn the_benchmark_finds_what_each_rule_says_on_the_simulator() {
    let (rt, sim) = world();
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = check(
        &sim,
        home.path(),
        &["--benchmark", "credentials", "--format", "json"],
    );
    assert_eq!(code, 3, "{err}");
    let found = named(&out);
    assert_eq!(found.len(), 12, "{:?}", found.keys());
    let s = rt.block_on(session(&sim));
    let creds = rt.block_on(raw_credentials(&s));
    for (id, want) in expected(&creds, Utc::now()) {
        assert_eq!(found[id], want, "{id}");
    }
    for id in [
        "cred-expiring-soon",
        "cred-expired-present",
        "token-no-expiry",
        "service-token-no-expiry",
        "cred-never-used",
        "cred-unused-90d",
        "token-no-ip-restriction",
        "token-not-rolled-365d",
        "cred-disabled-lingering",
        "token-write-everything",
        "token-r2-unscoped",
    ] {
        assert!(
            !found[id].is_empty(),
            "{id} has findings on the seeded data"
        );
    }
    // Granted but unused writes: write-granted active account tokens minus the tokens
    // the raw audit log shows writing in 30 days.
    let granted = rt
        .block_on(s.sql(
            "SELECT DISTINCT token_id FROM cloudflare.audit.permissions WHERE kind = 'account_token' \
             AND status = 'active' AND effect = 'allow' AND access = 'write' AND applies IS NOT FALSE",
        ))
        .unwrap();
    let log = rt
        .block_on(s.sql(
            "SELECT actor_token_id, action_type FROM cloudflare.accounts.audit_logs \
             WHERE action_time >= CAST(current_date - 30 AS TIMESTAMP)",
        ))
        .unwrap();
    let writers: BTreeSet<String> = col(&log, "actor_token_id")
        .into_iter()
        .zip(strings(&log, "action_type"))
        .filter(|(_, a)| a != "view")
        .filter_map(|(t, _)| t)
        .collect();
    let unused: BTreeSet<String> = strings(&granted, "token_id")
        .into_iter()
        .filter(|t| !writers.contains(t))
        .collect();
    assert!(!unused.is_empty());
    assert_eq!(found["token-unused-write"], unused);
    // R2: the seeded backup jobs, and nothing else.
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    let r2 = v.iter().find(|c| c["id"] == "token-r2-unscoped").unwrap();
    assert!(
        r2["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"].as_str().unwrap().starts_with("backup-job"))
    );
    // The fix of an expiring user token is its roll, quoted; a service token's names its scope.
    let exp = v.iter().find(|c| c["id"] == "cred-expiring-soon").unwrap();
    for (row, fix) in exp["findings"]
        .as_array()
        .unwrap()
        .iter()
        .zip(exp["fixes"].as_array().unwrap())
    {
        // Certificates are renewed where they were issued: no statement of cfql's fixes them.
        let Some(fix) = fix.as_str() else {
            assert!(
                row["kind"].as_str().unwrap().ends_with("_certificate"),
                "{row}"
            );
            continue;
        };
        match (
            row["kind"].as_str().unwrap(),
            row["scope"].as_str().unwrap(),
        ) {
            ("user_token", _) => assert_eq!(
                fix,
                format!(
                    "EXEC cloudflare.user.tokens.roll @token_id='{}'",
                    row["id"].as_str().unwrap()
                )
            ),
            ("service_token", "zone") => assert!(
                fix.contains(&format!("@zone_id='{}'", row["zone_id"].as_str().unwrap())),
                "{fix}"
            ),
            _ => assert!(fix.contains(row["id"].as_str().unwrap()), "{fix}"),
        }
    }
    assert_eq!(sim.mutating_requests(), 0, "a benchmark never writes");
}

/// `--severity` and `--tag` choose controls before anything is sent; `--list` needs no
/// credential; an unknown benchmark is a usage error naming the built-in ones.
#[test]
fn controls_are_selected_by_severity_and_tag() {
    let (_rt, sim) = world();
    let home = tempfile::tempdir().unwrap();
    let ids = |out: &str| named(out).into_keys().collect::<Vec<_>>();
    let (_, out, err) = check(
        &sim,
        home.path(),
        &[
            "--benchmark",
            "credentials",
            "--format",
            "json",
            "--severity",
            "high",
        ],
    );
    assert_eq!(
        ids(&out),
        [
            "cred-expiring-soon",
            "service-token-no-expiry",
            "token-r2-unscoped",
            "token-write-everything"
        ],
        "{err}"
    );
    sim.reset_counts();
    let (_, out, _) = check(
        &sim,
        home.path(),
        &[
            "--benchmark",
            "credentials",
            "--format",
            "json",
            "--tag",
            "least-privilege",
            "--severity",
            "critical",
        ],
    );
    assert_eq!(ids(&out), ["token-write-everything"]);
    assert_eq!(
        sim.count("GET", "/accounts/{account_id}/logs/audit"),
        0,
        "controls left out send nothing"
    );
    let (code, out, _) = run(cfql(home.path()).args(["check", "--list"]));
    assert_eq!(code, 0);
    assert_contains!(
        out,
        "cred-expiring-soon",
        "Credentials that expire within 30 days"
    );
    let (code, _, err) = run(cfql(home.path()).args(["check", "--demo", "--benchmark", "nope"]));
    assert_eq!(code, 2);
    assert_contains!(err, "no such benchmark (built in: credentials)");
}

fn chromium() -> String {
    std::env::var("CFQL_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// The numbers a reader sees in `html` (after Chromium rendered it): the summary counts
/// and each control's findings, by control id.
fn shown(dom: &str) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[at..at + tag[at..].find('"')?].to_string())
    };
    let mut counts = BTreeMap::new();
    for part in dom.split("<b data-count=\"").skip(1) {
        let (key, rest) = part.split_once('"').unwrap();
        let n = rest[1..rest.find('<').unwrap()].trim().parse().unwrap();
        counts.insert(key.to_string(), n);
    }
    let mut per_control = BTreeMap::new();
    for part in dom.split("<section class=\"control\"").skip(1) {
        let tag = &part[..part.find('>').unwrap()];
        let rows = part[..part.find("</section>").unwrap()]
            .matches("<tr class=\"finding\"")
            .count();
        let declared: usize = attr(tag, "data-findings").unwrap().parse().unwrap();
        assert_eq!(rows, declared, "rows drawn = rows declared");
        per_control.insert(attr(tag, "id").unwrap(), rows);
    }
    (counts, per_control)
}

/// The HTML report of the demo benchmark: self-contained, screenshotted by headless
/// Chromium, its summary and per-control numbers equal to the JSON report it carries, and
/// no secret of the simulator anywhere in it.
#[test]
fn the_html_report_renders_in_chromium_with_the_numbers_of_the_json_report() {
    let (_rt, sim) = world();
    let home = tempfile::tempdir().unwrap();
    let (code, html, err) = check(
        &sim,
        home.path(),
        &["--benchmark", "credentials", "--format", "html"],
    );
    assert_eq!(code, 3, "{err}");
    for external in [
        "<script src",
        "<link",
        "url(",
        "@import",
        "https://",
        "<img",
    ] {
        assert!(!html.contains(external), "self-contained: {external}");
    }
    assert!(
        !html.contains(&sim.admin_token()),
        "no credential in the report"
    );
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let shot = dir.path().join("report.png");
    let base = |c: &mut Command| {
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2400",
        ])
        .env("HOME", dir.path());
    };
    let mut c = Command::new(chromium());
    base(&mut c);
    let out = c
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (.ci/run installs Debian's chromium; CFQL_CHROMIUM names another)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "a screenshot of a drawn page: {} bytes",
        png.len()
    );
    let mut c = Command::new(chromium());
    base(&mut c);
    let dom = c
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8(dom.stdout).unwrap();
    let (counts, per_control) = shown(&dom);

    // The JSON the page carries is the report of the same run.
    let start = html.find("id=\"cfql-report\">").unwrap() + "id=\"cfql-report\">".len();
    let json: Vec<Value> =
        serde_json::from_str(&html[start..start + html[start..].find("</script>").unwrap()])
            .unwrap();
    let status = |w: &str| json.iter().filter(|c| c["status"] == w).count();
    let findings: usize = json
        .iter()
        .map(|c| c["findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(counts["controls"], json.len());
    assert_eq!(
        (counts["ok"], counts["alarm"], counts["error"]),
        (status("ok"), status("alarm"), status("error"))
    );
    assert_eq!(counts["findings"], findings);
    for c in &json {
        assert_eq!(
            per_control[c["id"].as_str().unwrap()],
            c["findings"].as_array().unwrap().len()
        );
    }
    let secret_columns = ["value", "client_secret"];
    assert!(json.iter().all(|c| {
        c["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| secret_columns.iter().all(|k| r.get(k).is_none()))
    }));
}

/// A run against its own baseline has no new finding and passes `--fail-on new`; a token
/// created without expiry is exactly one new finding (exit 3), and a finding deleted
/// since is listed as resolved.
#[test]
fn baselines_mark_new_and_resolved_findings() {
    let (rt, sim) = world();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let (_, out, _) = check(
        &sim,
        home.path(),
        &["--benchmark", "credentials", "--format", "json"],
    );
    std::fs::write(&base, &out).unwrap();
    let b = base.display().to_string();
    let (code, out, err) = check(
        &sim,
        home.path(),
        &[
            "--benchmark",
            "credentials",
            "--format",
            "json",
            "--baseline",
            &b,
            "--fail-on",
            "new",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_contains!(err, "0 new, 0 resolved");
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(v.iter().all(|c| {
        c["baseline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s == "known")
    }));

    let s = rt.block_on(session(&sim));
    let policies = r#"[{"effect": "allow", "resources": {"com.cloudflare.api.account.zone.*": "*"}, "permission_groups": [{"id": "c8fed203ed3043cba015a93ad1616f1f", "name": "Zone Read"}]}]"#;
    let b2 = rt
        .block_on(s.sql(&format!(
            "INSERT INTO cloudflare.user.tokens (name, policies, condition) VALUES ('fresh-no-expiry', '{policies}', \
             '{{\"request_ip\": {{\"in\": [\"203.0.113.0/24\"]}}}}') RETURNING id"
        )))
        .unwrap();
    let new_id = strings(&b2, "id")[0].clone();
    let v0: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    let lingering = v0
        .iter()
        .find(|c| c["id"] == "cred-disabled-lingering")
        .unwrap();
    let gone = lingering["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] != "service_token")
        .unwrap()
        .clone();
    let gone_id = gone["id"].as_str().unwrap().to_string();
    let delete = match gone["kind"].as_str().unwrap() {
        "user_token" => format!("DELETE FROM cloudflare.user.tokens WHERE id = '{gone_id}'"),
        _ => format!(
            "DELETE FROM cloudflare.accounts.tokens WHERE account_id = '{}' AND id = '{gone_id}'",
            gone["account_id"].as_str().unwrap()
        ),
    };
    rt.block_on(s.sql(&delete)).unwrap();

    let (code, out, err) = check(
        &sim,
        home.path(),
        &[
            "--benchmark",
            "credentials",
            "--format",
            "json",
            "--baseline",
            &b,
            "--fail-on",
            "new",
        ],
    );
    assert_eq!(code, 3, "{err}");
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut new = Vec::new();
    for c in &v {
        for (row, seen) in c["findings"]
            .as_array()
            .unwrap()
            .iter()
            .zip(c["baseline"].as_array().unwrap())
        {
            if seen == "new" {
                new.push((
                    c["id"].as_str().unwrap().to_string(),
                    row["id"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    assert_eq!(new, [("token-no-expiry".to_string(), new_id)]);
    let resolved: Vec<Value> = v
        .iter()
        .flat_map(|c| c["resolved"].as_array().unwrap().clone())
        .collect();
    assert!(
        resolved.contains(&serde_json::json!({"kind": gone["kind"], "id": gone_id})),
        "{resolved:?}"
    );
    // Without --fail-on new, every finding still fails the gate.
    let (code, _, _) = check(
        &sim,
        home.path(),
        &[
            "--benchmark",
            "credentials",
            "--format",
            "json",
            "--baseline",
            &b,
        ],
    );
    assert_eq!(code, 3);
}

/// A team's own control uses the same metadata: its id, severity and fix reach the report.
#[test]
fn a_users_file_carries_the_same_metadata() {
    let (_rt, sim) = world();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("team.sql");
    std::fs::write(
        &f,
        "-- Tokens named like a person\n-- @id: team-personal-tokens\n-- @severity: critical\n-- @tags: naming\n\
         -- @remediation: Give it to a service account.\n-- @fix: DELETE FROM cloudflare.user.tokens WHERE id = '{id}'\n\
         SELECT 'user_token' AS kind, id, name FROM cloudflare.user.tokens WHERE name LIKE 'wrangler%';\n",
    )
    .unwrap();
    let (code, out, err) = check(
        &sim,
        home.path(),
        &["-f", &f.display().to_string(), "--format", "json"],
    );
    assert_eq!(code, 3, "{err}");
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v[0]["id"].as_str(), v[0]["severity"].as_str()),
        (Some("team-personal-tokens"), Some("critical"))
    );
    let id = v[0]["findings"][0]["id"].as_str().unwrap();
    assert_eq!(
        v[0]["fixes"][0],
        format!("DELETE FROM cloudflare.user.tokens WHERE id = '{id}'")
    );
    let (code, _, err) = check(
        &sim,
        home.path(),
        &[
            "-f",
            &f.display().to_string(),
            "--severity",
            "high",
            "--tag",
            "other",
        ],
    );
    assert_eq!(code, 0, "left out by its tag: {err}");
}

/// On `--demo`, the benchmark finds the seeded problems: every control raises an alarm,
/// and the report names the seeded R2 job and the zone-level token that never expires.
#[test]
fn on_the_demo_the_benchmark_finds_the_seeded_problems() {
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = run(cfql(home.path()).args([
        "check",
        "--demo",
        "--benchmark",
        "credentials",
        "--format",
        "json",
    ]));
    assert_eq!(code, 3, "{err}");
    let alarms: Vec<String> = named(&out)
        .into_iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(alarms.len(), 12, "{alarms:?}");
    assert_contains!(out, "backup-job");
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    let forever = v
        .iter()
        .find(|c| c["id"] == "service-token-no-expiry")
        .unwrap();
    assert_eq!(forever["findings"][0]["scope"], "zone");
    assert_contains!(err, "12 controls: 0 ok, 12 alarm (");
}
