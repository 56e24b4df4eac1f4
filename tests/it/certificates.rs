//! Certificates and tunnels, served by the simulator from the manifests: each table lists,
//! gets by id, pushes its filters, fans out (zone-level only when asked); the simulator's
//! answers match the repository's OpenAPI slice; expiring certificates reach
//! `audit.credentials`; and no read ever calls a tunnel's token endpoint.

use serde_json::Value;

use crate::cli::{cfql, run};
use crate::common::*;
use crate::openapi::Spec;

const TOKEN_ROUTE: &str = "/accounts/{account_id}/cfd_tunnel/{tunnel_id}/token";

/// Each table: the whole list (a call per account, or per zone when asked), a GET by id
/// (one call, no list), and its API-side filters in the query string.
#[test]
fn each_table_lists_gets_by_id_and_pushes_its_filters() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let accounts = sim.account_ids().len() as u64;
        let zones = sim.zone_ids().len() as u64;
        for (table, list_route, get_route, scope, calls) in [
            (
                "cloudflare.access.certificates",
                "/accounts/{account_id}/access/certificates",
                "/accounts/{account_id}/access/certificates/{certificate_id}",
                "account_id",
                accounts,
            ),
            (
                "cloudflare.accounts.mtls_certificates",
                "/accounts/{account_id}/mtls_certificates",
                "/accounts/{account_id}/mtls_certificates/{mtls_certificate_id}",
                "account_id",
                accounts,
            ),
            (
                "cloudflare.accounts.tunnels",
                "/accounts/{account_id}/cfd_tunnel",
                "/accounts/{account_id}/cfd_tunnel/{tunnel_id}",
                "account_id",
                accounts,
            ),
            (
                "cloudflare.zones.client_certificates",
                "/zones/{zone_id}/client_certificates",
                "/zones/{zone_id}/client_certificates/{client_certificate_id}",
                "zone_id",
                zones,
            ),
            (
                "cloudflare.access.certificates",
                "/zones/{zone_id}/access/certificates",
                "/zones/{zone_id}/access/certificates/{certificate_id}",
                "zone_id",
                zones,
            ),
        ] {
            let zone_level = scope == "zone_id";
            let filter = if zone_level {
                " WHERE zone_id IS NOT NULL"
            } else {
                ""
            };
            sim.reset_counts();
            let b = s
                .sql(
                    &format!("SELECT {scope}, id, expires_on FROM {table}{filter}").replace(
                        ", expires_on",
                        if table.ends_with("tunnels") {
                            ""
                        } else {
                            ", expires_on"
                        },
                    ),
                )
                .await
                .unwrap();
            assert!(rows(&b) as u64 >= calls, "{table}: {} rows", rows(&b));
            assert_eq!(sim.count("GET", list_route), calls, "{table}");
            let (owner, id) = (strings(&b, scope)[0].clone(), strings(&b, "id")[0].clone());
            sim.reset_counts();
            let one = s
                .sql(&format!(
                    "SELECT id FROM {table} WHERE {scope} = '{owner}' AND id = '{id}'"
                ))
                .await
                .unwrap();
            assert_eq!(strings(&one, "id"), vec![id.clone()], "{table}");
            assert_eq!(
                (sim.count("GET", get_route), sim.count("GET", list_route)),
                (1, 0),
                "{table}"
            );
        }
        let account = sim.account_ids()[0].clone();
        sim.reset_counts();
        let b = s
            .sql(&format!("SELECT name FROM cloudflare.accounts.tunnels WHERE account_id = '{account}' AND status = 'healthy' AND name = 'none-such'"))
            .await
            .unwrap();
        assert_eq!(rows(&b), 0);
        let q: Vec<String> = sim.requests().into_iter().map(|r| r.query).collect();
        assert!(
            q.iter()
                .any(|x| x.contains("status=healthy") && x.contains("name=none-such")),
            "{q:?}"
        );
        let zone = sim.zone_ids()[0].clone();
        sim.reset_counts();
        s.sql(&format!("SELECT id FROM cloudflare.zones.client_certificates WHERE zone_id = '{zone}' AND status = 'revoked'"))
            .await
            .unwrap();
        let q: Vec<String> = sim.requests().into_iter().map(|r| r.query).collect();
        assert!(q.iter().any(|x| x.contains("status=revoked")), "{q:?}");
    })
}

/// A zone-level-only table read without a zone reads nothing, says so, and makes no call.
#[test]
fn a_zone_level_table_unasked_makes_no_call_and_says_why() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        sim.reset_counts();
        let out = s
            .execute("SELECT count(*) FROM cloudflare.zones.client_certificates")
            .await
            .unwrap();
        assert_eq!(scalar(&out.batches), "0");
        assert_eq!(sim.total_requests(), 0);
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert_contains!(
            out.warnings[0],
            "no rows were read",
            "WHERE zone_id IS NOT NULL"
        );
        let plan = s
            .sql("EXPLAIN SELECT * FROM cloudflare.zones.client_certificates")
            .await
            .unwrap();
        let text = col(&plan, "plan").into_iter().flatten().collect::<String>();
        assert_contains!(text, "cost=0 calls");
    })
}

/// The simulator's answers for every operation cfql reads match the repository's slice.
#[test]
fn the_simulator_answers_as_the_certificates_slice_says() {
    on_runtime(async {
        let spec = Spec::in_repo("certificates");
        let sim = sim_with(3).await;
        let http = reqwest::Client::new();
        let get = |path: String| {
            let (http, base, token) = (http.clone(), sim.base_url(), sim.admin_token());
            async move {
                let r = http
                    .get(format!("{base}{path}"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            }
        };
        let (a, z) = (sim.account_ids()[0].clone(), sim.zone_ids()[0].clone());
        let mut checked = 0;
        for (template, list) in [
            (
                "/accounts/{account_id}/access/certificates",
                format!("/accounts/{a}/access/certificates"),
            ),
            (
                "/zones/{zone_id}/access/certificates",
                format!("/zones/{z}/access/certificates"),
            ),
            (
                "/zones/{zone_id}/client_certificates",
                format!("/zones/{z}/client_certificates"),
            ),
            (
                "/accounts/{account_id}/mtls_certificates",
                format!("/accounts/{a}/mtls_certificates"),
            ),
            (
                "/accounts/{account_id}/cfd_tunnel",
                format!("/accounts/{a}/cfd_tunnel"),
            ),
        ] {
            let (status, body) = get(list.clone()).await;
            assert_eq!(status, 200, "{list}: {body}");
            let schema = spec
                .response_schema("GET", template, 200)
                .unwrap_or_else(|| panic!("{template} in the slice"));
            assert_eq!(spec.validate(schema, &body), Vec::<String>::new(), "{list}");
            let id = body["result"][0]["id"].as_str().unwrap().to_string();
            let one_template = format!(
                "{template}/{}",
                match template.rsplit('/').next().unwrap() {
                    "certificates" => "{certificate_id}",
                    "client_certificates" => "{client_certificate_id}",
                    "mtls_certificates" => "{mtls_certificate_id}",
                    _ => "{tunnel_id}",
                }
            );
            let (status, body) = get(format!("{list}/{id}")).await;
            assert_eq!(status, 200, "{body}");
            let schema = spec.response_schema("GET", &one_template, 200).unwrap();
            assert_eq!(
                spec.validate(schema, &body),
                Vec::<String>::new(),
                "{one_template}"
            );
            checked += 2;
            if template.ends_with("cfd_tunnel") {
                // The token endpoint exists and returns the tunnel's secret.
                let (status, body) = get(format!("{list}/{id}/token")).await;
                assert_eq!(status, 200);
                let schema = spec
                    .response_schema("GET", &format!("{one_template}/token"), 200)
                    .unwrap();
                assert_eq!(spec.validate(schema, &body), Vec::<String>::new());
                assert!(body["result"].as_str().unwrap().len() > 20);
                checked += 1;
            }
        }
        // Origin CA: the zone in the query string; by id and revocation without one.
        let (status, body) = get(format!("/certificates?zone_id={z}")).await;
        assert_eq!(status, 200, "{body}");
        let schema = spec.response_schema("GET", "/certificates", 200).unwrap();
        assert_eq!(spec.validate(schema, &body), Vec::<String>::new());
        let id = body["result"][0]["id"].as_str().unwrap().to_string();
        let (_, body) = get(format!("/certificates/{id}")).await;
        let schema = spec
            .response_schema("GET", "/certificates/{certificate_id}", 200)
            .unwrap();
        assert_eq!(spec.validate(schema, &body), Vec::<String>::new());
        let r = http
            .delete(format!("{}/certificates/{id}", sim.base_url()))
            .bearer_auth(sim.admin_token())
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        let schema = spec
            .response_schema("DELETE", "/certificates/{certificate_id}", 200)
            .unwrap();
        assert_eq!(spec.validate(schema, &body), Vec::<String>::new());
        assert!(body["result"]["revoked_at"].is_string());
        let (status, body) = get("/certificates".to_string()).await;
        assert_eq!(status, 400, "the zone is required: {body}");
        checked += 3;
        assert_eq!(checked, 14);
        let (status, _) = get(format!(
            "/accounts/{a}/mtls_certificates/00000000000000000000000000000000"
        ))
        .await;
        assert_eq!(status, 404);
    })
}

/// Every read that could touch tunnels (the table, by id, DESCRIBE, the credentials view,
/// the benchmark) leaves the token endpoint alone.
#[test]
fn no_read_calls_the_tunnel_token_endpoint() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(sim_with(5));
    let s = rt.block_on(session(&sim));
    let b = rt
        .block_on(s.sql("SELECT * FROM cloudflare.accounts.tunnels"))
        .unwrap();
    let (a, id) = (
        strings(&b, "account_id")[0].clone(),
        strings(&b, "id")[0].clone(),
    );
    for sql in [
        format!(
            "SELECT * FROM cloudflare.accounts.tunnels WHERE account_id = '{a}' AND id = '{id}'"
        ),
        "DESCRIBE cloudflare.accounts.tunnels".to_string(),
        "SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NULL".to_string(),
    ] {
        rt.block_on(s.sql(&sql)).unwrap();
    }
    let home = tempfile::tempdir().unwrap();
    let (code, _, err) = run(cfql(home.path())
        .args([
            "check",
            "--base-url",
            &sim.base_url(),
            "--benchmark",
            "credentials",
            "--format",
            "json",
        ])
        .env("CLOUDFLARE_API_TOKEN", sim.admin_token()));
    assert_eq!(code, 3, "{err}");
    assert!(sim.count("GET", "/accounts/{account_id}/cfd_tunnel") > 0);
    assert_eq!(sim.count("GET", TOKEN_ROUTE), 0);
}

/// On `--demo`, the expiring-credentials audit lists expiring certificates of every kind.
#[test]
fn expiring_certificates_of_the_demo_reach_the_credentials_audit() {
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = run(cfql(home.path()).args([
        "check",
        "--demo",
        "--format",
        "json",
        "-f",
        "examples/expiring_credentials.sql",
    ]));
    assert_eq!(code, 3, "{err}");
    let v: Vec<Value> = serde_json::from_str(&out).unwrap();
    let kinds: std::collections::BTreeSet<&str> = v[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    for k in [
        "origin_ca_certificate",
        "access_certificate",
        "client_certificate",
        "mtls_certificate",
        "service_token",
        "user_token",
        "account_token",
    ] {
        assert!(kinds.contains(k), "{k} in {kinds:?}");
    }
    assert!(
        v[0]["notes"].as_array().unwrap().is_empty(),
        "every kind read: {}",
        v[0]["notes"]
    );
}

/// Origin CA: listed per zone (`?zone_id=`), read by id alone (no zone in the path); a
/// WHERE naming another zone reads and revokes nothing (the call by id cannot check the
/// zone, so the zone is listed first); a dry run shows the revocation, then it happens.
#[test]
fn origin_ca_certificates_are_revoked_only_in_the_zone_the_where_names() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let (z, other) = (sim.zone_ids()[0].clone(), sim.zone_ids()[1].clone());
        sim.reset_counts();
        let b = s
            .sql(&format!(
                "SELECT id FROM cloudflare.zones.origin_ca_certificates WHERE zone_id = '{z}'"
            ))
            .await
            .unwrap();
        assert_eq!(rows(&b), 2);
        let q: Vec<String> = sim.requests().into_iter().map(|r| r.query).collect();
        assert!(q[0].contains(&format!("zone_id={z}")), "{q:?}");
        let id = strings(&b, "id")[0].clone();

        sim.reset_counts();
        let b = s
            .sql(&format!(
                "SELECT zone_id, id FROM cloudflare.zones.origin_ca_certificates WHERE id = '{id}'"
            ))
            .await
            .unwrap();
        assert_eq!(
            (strings(&b, "id"), col(&b, "zone_id")),
            (vec![id.clone()], vec![None])
        );
        assert_eq!(sim.count("GET", "/certificates/{certificate_id}"), 1);

        let wrong = format!(
            "DELETE FROM cloudflare.zones.origin_ca_certificates WHERE zone_id = '{other}' AND id = '{id}'"
        );
        let b = s.sql(&format!("SELECT id FROM cloudflare.zones.origin_ca_certificates WHERE zone_id = '{other}' AND id = '{id}'")).await.unwrap();
        assert_eq!(rows(&b), 0, "not in that zone");
        sim.reset_counts();
        s.sql(&wrong).await.unwrap();
        assert_eq!(
            sim.mutating_requests(),
            0,
            "a zone that does not hold it revokes nothing"
        );

        let right = format!(
            "DELETE FROM cloudflare.zones.origin_ca_certificates WHERE zone_id = '{z}' AND id = '{id}'"
        );
        s.sql("SET cfql.dry_run = true").await.unwrap();
        let plan = s.sql(&right).await.unwrap();
        assert_eq!(strings(&plan, "method"), vec!["DELETE"]);
        assert_eq!(strings(&plan, "path"), vec![format!("/certificates/{id}")]);
        assert_eq!(sim.mutating_requests(), 0, "a dry run sends nothing");
        s.sql("SET cfql.dry_run = false").await.unwrap();
        s.sql(&right).await.unwrap();
        assert_eq!(sim.count("DELETE", "/certificates/{certificate_id}"), 1);
        let b = s
            .sql(&format!(
                "SELECT count(*) FROM cloudflare.zones.origin_ca_certificates WHERE zone_id = '{z}'"
            ))
            .await
            .unwrap();
        assert_eq!(scalar(&b), "1");
    })
}
