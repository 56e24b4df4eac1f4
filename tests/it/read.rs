//! The read path: tables, pushdown with exact call counts, types, JSON, views, errors.

use std::time::Duration;

use cfql::sim::{FaultSpec, SeedOptions};
use cfql::{Config, Error, FanoutErrors, Session};

use crate::common::*;

#[test]
fn select_all_pages_at_fifty() {
    on_runtime(async {
        let sim = sim_with(1000).await;
        let s = session(&sim).await;
        let b = s
            .sql("SELECT id, name, expires_on FROM cloudflare.user.tokens")
            .await
            .unwrap();
        assert_eq!(rows(&b), 1000);
        assert_eq!(sim.count("GET", "/user/tokens"), 20);
        // Every list call asked for the maximum page size and for expired tokens too.
        for r in sim.requests() {
            assert!(r.query.contains("per_page=50"), "{}", r.query);
            assert!(r.query.contains("include_expired=true"), "{}", r.query);
        }
        let ids = strings(&b, "id");
        let mut uniq = ids.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 1000, "no page fetched twice or skipped");
    })
}

#[test]
fn id_predicates_become_gets_without_list() {
    on_runtime(async {
        let sim = sim_with(1000).await;
        let s = session(&sim).await;
        let ids = sim.user_token_ids();
        let b = s
            .sql(&format!(
                "SELECT id, name FROM cloudflare.user.tokens WHERE id = '{}'",
                ids[500]
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "id"), vec![ids[500].clone()]);
        assert_eq!(sim.count("GET", "/user/tokens/{token_id}"), 1);
        assert_eq!(sim.count("GET", "/user/tokens"), 0);

        sim.reset_counts();
        let q = format!(
            "SELECT id FROM cloudflare.user.tokens WHERE id IN ('{}', '{}', '{}') ORDER BY id",
            ids[1], ids[2], ids[3]
        );
        let b = s.sql(&q).await.unwrap();
        assert_eq!(rows(&b), 3);
        assert_eq!(sim.count("GET", "/user/tokens/{token_id}"), 3);
        assert_eq!(sim.count("GET", "/user/tokens"), 0);

        // StackQL's parameter name works as an alias of id.
        sim.reset_counts();
        let b = s
            .sql(&format!(
                "SELECT id, name FROM cloudflare.user.tokens WHERE token_id = '{}'",
                ids[7]
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "id"), vec![ids[7].clone()]);
        assert_eq!(sim.total_requests(), 1);

        // An id that does not exist is no row, not an error.
        let b = s
        .sql("SELECT id FROM cloudflare.user.tokens WHERE id = '00000000000000000000000000000000'")
        .await
        .unwrap();
        assert_eq!(rows(&b), 0);
    })
}

#[test]
fn limit_fetches_only_needed_pages() {
    on_runtime(async {
        let sim = sim_with(1000).await;
        let s = session(&sim).await;
        let b = s
            .sql("SELECT id FROM cloudflare.user.tokens LIMIT 10")
            .await
            .unwrap();
        assert_eq!(rows(&b), 10);
        assert_eq!(sim.count("GET", "/user/tokens"), 1);
        sim.reset_counts();
        let b = s
            .sql("SELECT id FROM cloudflare.user.tokens LIMIT 120")
            .await
            .unwrap();
        assert_eq!(rows(&b), 120);
        assert_eq!(sim.count("GET", "/user/tokens"), 3);
    })
}

#[test]
fn account_tokens_fan_out_over_accounts() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 3,
            account_tokens: 60,
            ..SeedOptions::default()
        })
        .await;
        let s = session(&sim).await;
        let b = s
            .sql("SELECT account_id, id FROM cloudflare.accounts.tokens")
            .await
            .unwrap();
        assert_eq!(rows(&b), 180);
        assert_eq!(sim.count("GET", "/accounts"), 1);
        assert_eq!(
            sim.count("GET", "/accounts/{account_id}/tokens"),
            6,
            "60 tokens = 2 pages in each of 3 accounts"
        );
        let mut accts = strings(&b, "account_id");
        accts.sort();
        accts.dedup();
        let mut expected = sim.account_ids().to_vec();
        expected.sort();
        assert_eq!(accts, expected, "scope column filled from the path");

        // The plan says it fans out.
        let plan = s
            .sql("EXPLAIN SELECT id FROM cloudflare.accounts.tokens")
            .await
            .unwrap();
        let text = strings(&plan, "plan").join("\n");
        assert_contains!(
            text,
            "fan-out over every row of cloudflare.accounts.accounts (GET /accounts)"
        );

        // A pinned account: no accounts call.
        sim.reset_counts();
        let a = &sim.account_ids()[1];
        let b = s
            .sql(&format!(
                "SELECT id FROM cloudflare.accounts.account_tokens WHERE account_id = '{a}'"
            ))
            .await
            .unwrap();
        assert_eq!(rows(&b), 60);
        assert_eq!(sim.count("GET", "/accounts"), 0);
        assert_eq!(sim.count("GET", "/accounts/{account_id}/tokens"), 2);

        // The default account from the config.
        let s2 = Session::new(config(&sim).with_account_id(a.clone()))
            .await
            .unwrap();
        sim.reset_counts();
        let b = s2
            .sql("SELECT count(*) FROM cloudflare.accounts.tokens")
            .await
            .unwrap();
        assert_eq!(scalar(&b), "60");
        assert_eq!(sim.count("GET", "/accounts"), 0);
    })
}

#[test]
fn fan_out_failure_names_the_account_or_warns() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 3,
            account_tokens: 5,
            ..SeedOptions::default()
        })
        .await;
        sim.set_faults(FaultSpec::parse("malformed@GET:/accounts/{account_id}/tokens#2").unwrap());
        // No retries, so that the one unreadable page fails its account.
        let mut c = config(&sim);
        c.max_retries = 0;
        let s = Session::new(c).await.unwrap();
        let e = s
            .sql("SELECT id FROM cloudflare.accounts.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "1 of 3 scopes failed");
        assert_contains!(e, "account_id ");
        assert_contains!(e, "unreadable response");

        sim.set_faults(FaultSpec::parse("malformed@GET:/accounts/{account_id}/tokens#2").unwrap());
        sim.reset_counts();
        let mut c = config(&sim);
        c.max_retries = 0;
        c.fanout_errors = FanoutErrors::Warn;
        let s = Session::new(c).await.unwrap();
        let out = s
            .execute("SELECT id FROM cloudflare.accounts.tokens")
            .await
            .unwrap();
        assert_eq!(out.num_rows(), 10, "the two good accounts' rows");
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert!(
            out.warnings[0].contains("skipped 1 scope(s): unreadable response")
                && out.warnings[0].contains("(e.g. account_id "),
            "{:?}",
            out.warnings
        );
    })
}

#[test]
fn missing_account_id_is_named() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let e = s
            .sql("SELECT name FROM cloudflare.accounts.permission_groups")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "cloudflare.accounts.permission_groups needs account_id");
        assert_contains!(e, "WHERE account_id = '<id>'");
        assert_contains!(e, "CLOUDFLARE_ACCOUNT_ID");
        assert_eq!(sim.total_requests(), 0);
        let a = &sim.account_ids()[0];
        let b = s
        .sql(&format!("SELECT name FROM cloudflare.accounts.permission_groups WHERE account_id = '{a}' AND name = 'DNS Read'"))
        .await
        .unwrap();
        assert_eq!(strings(&b, "name"), vec!["DNS Read"]);
        assert!(
            sim.requests()[0].query.contains("name=DNS+Read")
                || sim.requests()[0].query.contains("name=DNS%20Read"),
            "{:?}",
            sim.requests()[0]
        );
    })
}

#[test]
fn unknown_table_and_column_suggest() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let e = s
            .sql("SELECT * FROM cloudflare.user.tokenz")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "did you mean cloudflare.user.tokens?");
        let e = s
            .sql("SELECT naem FROM cloudflare.user.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "unknown column 'naem'");
        assert_contains!(e, "did you mean name?");
        let e = s.sql("SELEC 1").await.unwrap_err().to_string();
        assert_contains!(e, "SQL error", "Line: 1");
        assert_eq!(sim.total_requests(), 0);
    })
}

#[test]
fn auth_errors_carry_status_code_and_message() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = Session::new(
            Config::new(sim.base_url()).with_api_token("not-a-real-token-000000000000000000000"),
        )
        .await
        .unwrap();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), Some(401));
        assert_eq!(e.api_codes(), vec![1000]);
        let text = e.to_string();
        assert_contains!(
            text,
            "HTTP 401 on GET /user/tokens",
            "code 1000: Invalid API Token"
        );
        assert!(
            !text.contains("not-a-real-token"),
            "credential leaked: {text}"
        );

        let s = Session::new(Config::new(sim.base_url()).with_global_key(sim.email(), "wrong-key"))
            .await
            .unwrap();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), Some(403));
        assert!(e.to_string().contains("code 9103"), "{e}");
        assert!(!e.to_string().contains("wrong-key"));

        // The global key works on every table.
        let s =
            Session::new(Config::new(sim.base_url()).with_global_key(sim.email(), sim.api_key()))
                .await
                .unwrap();
        let b = s
            .sql("SELECT count(*) FROM cloudflare.accounts.tokens")
            .await
            .unwrap();
        assert_eq!(scalar(&b), "15");
        assert!(
            sim.requests()
                .iter()
                .all(|r| r.auth == cfql::sim::AuthKind::EmailKey
                    || r.auth == cfql::sim::AuthKind::Bearer)
        );
    })
}

#[test]
fn retries_429_and_500_then_succeeds() {
    on_runtime(async {
        let sim = sim_with(120).await;
        sim.set_faults(
            FaultSpec::parse("429@GET:/user/tokens#1,500@GET:/user/tokens#3,retry-after=0")
                .unwrap(),
        );
        let s = session(&sim).await;
        let b = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap();
        assert_eq!(rows(&b), 120);
        assert_eq!(
            sim.count("GET", "/user/tokens"),
            5,
            "3 pages + one retry after 429 + one after 500"
        );
    })
}

#[test]
fn endless_429s_fail_clearly() {
    on_runtime(async {
        let sim = sim_with(20).await;
        sim.set_faults(FaultSpec::parse("429@GET:/user/tokens,retry-after=0").unwrap());
        let s = session(&sim).await;
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::RateLimited {
                    attempts: 9,
                    code: Some(10100),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("HTTP 429, code 10100"), "{e}");
        assert_eq!(
            sim.count("GET", "/user/tokens"),
            9,
            "each 429 waited out, 8 times"
        );
    })
}

#[test]
fn malformed_json_names_the_endpoint() {
    on_runtime(async {
        let sim = sim_with(20).await;
        // A truncated body is read again, like a 5xx.
        sim.set_faults(FaultSpec::parse("malformed@GET:/user/tokens#1").unwrap());
        let s = session(&sim).await;
        assert_eq!(
            rows(
                &s.sql("SELECT id FROM cloudflare.user.tokens")
                    .await
                    .unwrap()
            ),
            20
        );
        assert_eq!(sim.count("GET", "/user/tokens"), 2);
        // One that stays unreadable fails, naming the call, after the retries.
        sim.set_faults(FaultSpec::parse("malformed@GET:/user/tokens").unwrap());
        sim.reset_counts();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "unreadable response from GET /user/tokens?");
        assert_contains!(e, "invalid JSON");
        assert_eq!(
            sim.count("GET", "/user/tokens"),
            5,
            "the first try and 4 retries"
        );
    })
}

#[test]
fn connection_refused_names_base_url_not_credentials() {
    on_runtime(async {
        let mut c =
            Config::new("http://127.0.0.1:9/client/v4").with_api_token("secret-token-value-xyz");
        c.max_retries = 1;
        c.retry_base_delay = Duration::from_millis(1);
        let s = Session::new(c).await.unwrap();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(
            e,
            "network error on GET http://127.0.0.1:9/client/v4/user/tokens"
        );
        assert!(!e.contains("secret-token-value-xyz"), "{e}");
        let dbg = format!(
            "{:?}",
            Config::new("http://x").with_api_token("secret-token-value-xyz")
        );
        assert!(!dbg.contains("secret-token-value-xyz"), "{dbg}");
    })
}

#[test]
fn hostile_ids_stay_one_path_segment() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        for id in ["../../accounts", "a/b", "x%2Fy", "q?page=2"] {
            sim.reset_counts();
            let b = s
                .sql(&format!(
                    "SELECT id FROM cloudflare.user.tokens WHERE id = '{id}'"
                ))
                .await
                .unwrap();
            assert_eq!(rows(&b), 0);
            let reqs = sim.requests();
            assert_eq!(reqs.len(), 1, "{reqs:?}");
            assert_eq!(
                reqs[0].route, "/user/tokens/{token_id}",
                "{id} became {}",
                reqs[0].path
            );
            assert!(
                reqs[0].query.is_empty(),
                "{id} changed the query: {}",
                reqs[0].query
            );
        }
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens WHERE id = '..'")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "not a valid identifier");
    })
}

#[test]
fn timestamps_filter_with_intervals() {
    on_runtime(async {
        let sim = sim_with(300).await;
        let s = session(&sim).await;
        let all = s
            .sql("SELECT id, CAST(expires_on AS BIGINT) AS exp_us FROM cloudflare.user.tokens")
            .await
            .unwrap();
        let now_us = chrono::Utc::now().timestamp_micros();
        let horizon = now_us + 30 * 86_400 * 1_000_000;
        let expected = col(&all, "exp_us")
            .into_iter()
            .flatten()
            .filter(|v| v.parse::<i64>().unwrap() < horizon)
            .count();
        assert!(
            expected > 20,
            "the sample data has tokens expiring soon or expired"
        );
        let b = s.sql("SELECT count(*) FROM cloudflare.user.tokens WHERE expires_on < now() + INTERVAL '30 days'").await.unwrap();
        assert_eq!(scalar(&b), expected.to_string());
        let ty = s
            .sql("SELECT arrow_typeof(expires_on) FROM cloudflare.user.tokens LIMIT 1")
            .await
            .unwrap();
        assert_eq!(scalar(&ty), "Timestamp(µs, \"UTC\")");
        let statuses = s
            .sql("SELECT DISTINCT status FROM cloudflare.user.tokens ORDER BY status")
            .await
            .unwrap();
        assert_eq!(
            strings(&statuses, "status"),
            vec!["active", "disabled", "expired"]
        );
    })
}

#[test]
fn json_columns_and_operators() {
    on_runtime(async {
        let sim = sim_with(200).await;
        let s = session(&sim).await;
        let b = s.sql("SELECT DISTINCT policies->0->>'effect' AS effect FROM cloudflare.user.tokens ORDER BY effect").await.unwrap();
        assert_eq!(strings(&b, "effect"), vec!["allow"]);
        let b = s.sql("SELECT count(*) FROM cloudflare.user.tokens WHERE json_get_str(policies, 1, 'effect') = 'deny'").await.unwrap();
        assert!(scalar(&b).parse::<u32>().unwrap() > 0);
        // Both spellings of the IP condition read as request_ip.
        let b = s
            .sql("SELECT condition FROM cloudflare.user.tokens WHERE condition IS NOT NULL")
            .await
            .unwrap();
        let conds = strings(&b, "condition");
        assert!(conds.len() > 20);
        assert!(
            conds
                .iter()
                .all(|c| c.contains("\"request_ip\"") && !c.contains("request.ip")),
            "{conds:?}"
        );
        let b = s.sql("SELECT count(*) FROM cloudflare.user.tokens WHERE condition->'request_ip'->'in' IS NOT NULL").await.unwrap();
        assert_eq!(scalar(&b), conds.len().to_string());
    })
}

#[test]
fn catalog_aliases_views_and_information_schema() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            tokens: 10,
            accounts: 2,
            account_tokens: 3,
            service_tokens: 4,
            ..SeedOptions::default()
        })
        .await;
        let s = session(&sim).await;
        let t = s
        .sql("SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_catalog = 'cloudflare'")
        .await
        .unwrap();
        let names = strings(&t, "t");
        let listed: Vec<&String> = names
            .iter()
            .filter(|n| !n.starts_with("information_schema."))
            .collect();
        assert_eq!(
            listed,
            [
                "access.certificates",
                "access.service_tokens",
                "accounts.accounts",
                "accounts.audit_logs",
                "accounts.mtls_certificates",
                "accounts.permission_groups",
                "accounts.tokens",
                "accounts.tunnels",
                "audit.credentials",
                "audit.permissions",
                "audit.token_usage",
                "user.permission_groups",
                "user.tokens",
                "user.tokens_verify",
                "zones.client_certificates",
                "zones.origin_ca_certificates",
                "zones.zones",
            ],
            "each table once, under its canonical name (aliases resolve but are not listed)"
        );
        let shown = s.sql("SHOW TABLES").await.unwrap();
        assert!(strings(&shown, "table_name").contains(&"service_tokens".to_string()));
        let b = s
            .sql("SELECT count(*) FROM cloudflare.user.user_tokens")
            .await
            .unwrap();
        assert_eq!(scalar(&b), "10");
        let b = s
            .sql("SELECT count(*) FROM cloudflare.zero_trust.service_tokens")
            .await
            .unwrap();
        assert_eq!(scalar(&b), "8");
        let b = s.sql("SELECT kind, count(*) AS n FROM cloudflare.audit.credentials GROUP BY kind ORDER BY kind").await.unwrap();
        assert_eq!(
            strings(&b, "kind"),
            vec![
                "access_certificate",
                "account_token",
                "mtls_certificate",
                "service_token",
                "user_token"
            ]
        );
        let mut per_kind = Vec::new();
        for t in [
            "cloudflare.access.certificates",
            "cloudflare.accounts.mtls_certificates",
        ] {
            let b = s.sql(&format!("SELECT count(*) FROM {t}")).await.unwrap();
            per_kind.push(scalar(&b));
        }
        let (certs, mtls) = (per_kind[0].clone(), per_kind[1].clone());
        assert_eq!(
            strings(&b, "n"),
            vec![certs.as_str(), "6", mtls.as_str(), "8", "10"]
        );
        let v = s
            .sql("SELECT id, status FROM cloudflare.user.tokens_verify")
            .await
            .unwrap();
        assert_eq!(strings(&v, "id"), vec![sim.user_token_ids()[0].clone()]);
        assert_eq!(strings(&v, "status"), vec!["active"]);
        let zone = &sim.zone_ids()[1];
        let z = s.sql(&format!("SELECT zone_id, account_id FROM cloudflare.access.service_tokens WHERE zone_id = '{zone}'")).await.unwrap();
        assert_eq!(rows(&z), 2);
        assert_eq!(col(&z, "account_id"), vec![None, None]);
    })
}

#[test]
fn service_token_filters_go_to_the_api() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 1,
            service_tokens: 12,
            ..SeedOptions::default()
        })
        .await;
        let s = session(&sim).await;
        let a = &sim.account_ids()[0];
        let b =
        s.sql(&format!("SELECT name FROM cloudflare.access.service_tokens WHERE account_id = '{a}' AND name = 'ci-svc-2'")).await.unwrap();
        assert_eq!(strings(&b, "name"), vec!["ci-svc-2"]);
        let last = sim.requests().pop().unwrap();
        assert!(last.query.contains("name=ci-svc-2"), "{last:?}");
        let b = s
        .sql(&format!("SELECT name FROM cloudflare.access.service_tokens WHERE account_id = '{a}' AND name LIKE '%origin%' ORDER BY name"))
        .await
        .unwrap();
        assert_eq!(
            strings(&b, "name"),
            vec!["origin-svc-1", "origin-svc-11", "origin-svc-6"]
        );
        let last = sim.requests().pop().unwrap();
        assert!(last.query.contains("search=origin"), "{last:?}");
    })
}

#[test]
fn register_into_an_existing_context() {
    on_runtime(async {
        let sim = sim_with(30).await;
        let ctx = cfql::datafusion::prelude::SessionContext::new();
        cfql::register(&ctx, config(&sim)).unwrap();
        let b = ctx
        .sql("SELECT count(*) FROM cloudflare.user.tokens WHERE policies->0->>'effect' = 'allow'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        assert_eq!(scalar(&b), "30");
    })
}

/// A one-shot HTTP server on loopback answering every request with `response`, and
/// reporting the request heads it received.
async fn canned_server(response: String) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    canned_server_with(|_| response).await
}

/// A server answering every connection with the response `make` writes for its address.
async fn canned_server_with(
    make: impl FnOnce(&str) -> String,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let response = make(&format!("127.0.0.1:{}", addr.port()));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = sock.write_all(response.as_bytes()).await;
        }
    });
    (format!("127.0.0.1:{}", addr.port()), rx)
}

#[test]
fn redirects_to_another_host_are_refused_without_credentials() {
    on_runtime(async {
        // The "other host" is localhost: same machine, different host name.
        let ok_body = r#"{"success":true,"errors":[],"messages":[],"result":[]}"#;
        let (other, mut other_seen) = canned_server(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ok_body}",
        ok_body.len()
    ))
    .await;
        let port = other.rsplit(':').next().unwrap();
        let (first, mut first_seen) = canned_server(format!(
        "HTTP/1.1 302 Found\r\nlocation: http://localhost:{port}/client/v4/user/tokens\r\ncontent-length: 0\r\n\r\n"
    ))
    .await;
        let s = Session::new(
            Config::new(format!("http://{first}/client/v4"))
                .with_api_token("sekret-credential-value"),
        )
        .await
        .unwrap();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "redirect to another host refused");
        assert!(
            first_seen
                .recv()
                .await
                .unwrap()
                .to_lowercase()
                .contains("authorization: bearer sekret-credential-value")
        );
        assert!(
            other_seen.try_recv().is_err(),
            "the other host was contacted"
        );
        assert!(!e.contains("sekret"), "{e}");
        // Same host and port, but a change of scheme is not followed either.
        let (first, mut first_seen) =
        canned_server_with(|me| format!("HTTP/1.1 302 Found\r\nlocation: https://{me}/client/v4/user/tokens\r\ncontent-length: 0\r\n\r\n"))
            .await;
        let s = Session::new(Config::new(format!("http://{first}/client/v4")).with_api_token("t"))
            .await
            .unwrap();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "must keep the scheme, host and port");
        assert!(first_seen.recv().await.is_some());
        assert!(
            first_seen.try_recv().is_err(),
            "the https redirect was not followed"
        );
    })
}

#[test]
fn a_wait_beyond_the_ceiling_fails_at_once() {
    on_runtime(async {
        let sim = sim_with(300).await;
        sim.set_rate_limit(2, Duration::from_secs(120));
        let mut c = config(&sim);
        c.budget_wait = Duration::from_secs(5);
        let s = Session::new(c).await.unwrap();
        let e = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::BudgetWait { .. }), "{e:?}");
        assert_contains!(text, "would have to wait 2m00s", "more than the 5s allowed");
        assert_eq!(
            sim.count("GET", "/user/tokens"),
            1,
            "the first page's Ratelimit header said the budget is spent"
        );
        assert_eq!(
            sim.requests()
                .iter()
                .filter(|r| r.status == Some(429))
                .count(),
            0,
            "no call past the limit"
        );
    })
}

#[test]
fn without_totals_pages_one_by_one_until_a_short_page() {
    on_runtime(async {
        let sim = sim_with(120).await;
        sim.set_list_totals(false);
        let s = session(&sim).await;
        let b = s
            .sql("SELECT id FROM cloudflare.user.tokens")
            .await
            .unwrap();
        assert_eq!(rows(&b), 120);
        assert_eq!(
            sim.count("GET", "/user/tokens"),
            3,
            "50 + 50 + 20: the short page ends it"
        );
        let pages: Vec<String> = sim.requests().iter().map(|r| r.query.clone()).collect();
        assert!(pages[2].contains("page=3"), "{pages:?}");
        // An exact multiple of the page size ends on an empty page.
        let sim = sim_with(100).await;
        sim.set_list_totals(false);
        let s = session(&sim).await;
        assert_eq!(
            rows(
                &s.sql("SELECT id FROM cloudflare.user.tokens")
                    .await
                    .unwrap()
            ),
            100
        );
        assert_eq!(sim.count("GET", "/user/tokens"), 3);
    })
}

/// An unknown table is a typed error with the closest name, whichever way it is written,
/// and nothing is called; a CTE's name is no table to check.
#[test]
fn unknown_tables_are_named_with_a_suggestion_before_any_call() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        for (sql, name, suggestion) in [
            (
                "SELECT * FROM cloudflare.user.tokenz",
                "cloudflare.user.tokenz",
                "cloudflare.user.tokens",
            ),
            (
                "SELECT * FROM access.service_tokenz",
                "access.service_tokenz",
                "cloudflare.access.service_tokens",
            ),
            (
                "SELECT id FROM tokens t JOIN user.tokns u ON t.id = u.id",
                "user.tokns",
                "cloudflare.user.tokens",
            ),
        ] {
            let e = s.sql(sql).await.unwrap_err();
            let cfql::Error::UnknownTable {
                name: n,
                suggestion: Some(sug),
            } = &e
            else {
                panic!("{sql}: {e:?}")
            };
            assert_eq!((n.as_str(), sug.as_str()), (name, suggestion), "{sql}");
            assert_contains!(e.to_string(), "SHOW RESOURCES lists the tables");
        }
        let b = s
            .sql("WITH recent AS (SELECT id FROM cloudflare.user.tokens) SELECT count(*) FROM recent")
            .await
            .unwrap();
        assert_eq!(scalar(&b), "5");
        assert_eq!(
            sim.count("GET", "/user/tokens"),
            1,
            "only the CTE's listing: {:?}",
            sim.requests()
        );
    })
}

/// Each statement has its own notes: two statements running at the same time on one
/// session never see each other's, and a statement that fails leaves none behind.
#[test]
fn notes_belong_to_their_statement() {
    on_runtime(async {
        let sim = sim_opts(SeedOptions {
            accounts: 3,
            account_tokens: 5,
            ..SeedOptions::default()
        })
        .await;
        sim.set_latency_ms(100);
        sim.set_faults(FaultSpec::parse("malformed@GET:/accounts/{account_id}/tokens#2").unwrap());
        let mut c = config(&sim);
        c.max_retries = 0;
        c.fanout_errors = FanoutErrors::Warn;
        let s = Session::new(c).await.unwrap();
        let (fanned, plain) = tokio::join!(
            s.execute("SELECT id FROM cloudflare.accounts.tokens"),
            s.execute("SELECT count(*) FROM cloudflare.user.tokens")
        );
        let (fanned, plain) = (fanned.unwrap(), plain.unwrap());
        assert_eq!(fanned.warnings.len(), 1, "{:?}", fanned.warnings);
        assert!(plain.warnings.is_empty(), "{:?}", plain.warnings);

        // A note made by a statement that then fails goes with it: the scan warns, then
        // the cast of the aggregate fails.
        sim.set_faults(FaultSpec::parse("malformed@GET:/accounts/{account_id}/tokens#2").unwrap());
        let e = s
            .sql("SELECT CAST(max(name) AS INT) FROM cloudflare.accounts.tokens")
            .await
            .unwrap_err();
        assert_contains!(e.to_string(), "Cast");
        let next = s
            .execute("SELECT count(*) FROM cloudflare.user.tokens")
            .await
            .unwrap();
        assert!(next.warnings.is_empty(), "{:?}", next.warnings);
    })
}

/// `to_char` reads PostgreSQL's templates: each token's expiry formatted as `YYYY-MM-DD
/// HH24:MI` is the same instant Arrow prints; a pattern cfql does not render is refused,
/// never copied into the answer.
#[test]
fn to_char_formats_with_postgresql_templates() {
    on_runtime(async {
        let sim = sim_with(30).await;
        let s = session(&sim).await;
        let b = s
            .sql(
                "SELECT to_char(expires_on, 'YYYY-MM-DD HH24:MI') AS pg, \
                  substr(CAST(expires_on AS VARCHAR), 1, 16) AS arrow \
                  FROM cloudflare.user.tokens WHERE expires_on IS NOT NULL",
            )
            .await
            .unwrap();
        let (pg, arrow) = (strings(&b, "pg"), strings(&b, "arrow"));
        assert!(!pg.is_empty());
        let arrow: Vec<String> = arrow.iter().map(|a| a.replace('T', " ")).collect();
        assert_eq!(pg, arrow);
        let e = s
            .sql("SELECT to_char(expires_on, 'YYYY-MM-DD D') FROM cloudflare.user.tokens")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("the pattern D is not supported"), "{e}");
    })
}

/// `->` answers JSON text, as PostgreSQL's `json` prints: a string quoted, an object as
/// written, a missing element NULL; `->>` the text itself.
#[test]
fn json_arrow_answers_json_text() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let b = s
            .sql(
                "SELECT policies->0->'effect' AS e, policies->0->>'effect' AS t, \
                  policies->0->'resources' AS r, policies->99 AS missing \
                  FROM cloudflare.user.tokens ORDER BY id",
            )
            .await
            .unwrap();
        let (e, t) = (strings(&b, "e"), strings(&b, "t"));
        assert!(!e.is_empty());
        let quoted: Vec<String> = t.iter().map(|t| format!("\"{t}\"")).collect();
        assert_eq!(e, quoted);
        for r in strings(&b, "r") {
            let v: serde_json::Value = serde_json::from_str(&r).unwrap();
            assert!(v.is_object(), "{r}");
        }
        assert!(col(&b, "missing").iter().all(Option::is_none));
    })
}

/// PostgreSQL's JSON functions and casts, in the library and the CLI as in the server:
/// each answer agrees with the JSON the column holds; invalid JSON is an error naming it.
#[test]
fn json_functions_and_casts_agree_with_the_column() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let b = s
            .sql(
                "SELECT policies::text AS raw, json_typeof(policies) AS t, \
                  json_array_length(policies) AS n, \
                  json_extract_path_text(policies, '0', 'effect') AS e, \
                  jsonb_typeof(policies::jsonb -> 0) AS first \
                  FROM cloudflare.user.tokens ORDER BY id",
            )
            .await
            .unwrap();
        let raw = strings(&b, "raw");
        assert!(!raw.is_empty());
        let (t, n, e, first) = (col(&b, "t"), col(&b, "n"), col(&b, "e"), col(&b, "first"));
        for (i, text) in raw.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let items = v.as_array().unwrap();
            assert_eq!(t[i].as_deref(), Some("array"));
            assert_eq!(n[i], Some(items.len().to_string()));
            let effect = items.first().and_then(|p| p["effect"].as_str());
            assert_eq!(e[i].as_deref(), effect);
            let kind = items.first().map(|_| "object");
            assert_eq!(first[i].as_deref(), kind);
        }
        let e = s
            .sql("SELECT json_typeof('{\"a\": ') AS t")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("json_typeof: invalid JSON \"{\\\"a\\\": \""),
            "{e}"
        );
    })
}

/// An unknown column written with its table's alias is named (and corrected) with it: a
/// message never suggests the very name it says is unknown.
#[test]
fn a_qualified_unknown_column_is_named_with_its_alias() {
    on_runtime(async {
        let sim = sim_with(3).await;
        let s = session(&sim).await;
        let e = s
            .sql("SELECT t.nme FROM cloudflare.user.tokens t")
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "unknown column 't.nme'; did you mean t.name?");
        let e = s
            .sql(
                "SELECT t.id FROM cloudflare.audit.permissions p \
                 JOIN cloudflare.user.tokens t ON t.idd = p.token_id",
            )
            .await
            .unwrap_err()
            .to_string();
        assert_contains!(e, "unknown column 't.idd'; did you mean t.id?");
    })
}
