//! `cloudflare.zones.zones` and the zone-level rows it opens: filters pushed to `/zones`,
//! GET by id, and zone-level Access service tokens read only when a statement asks for
//! them, with a note whenever they are left out.

use crate::common::*;

/// The zones of every account, once each; `account_id = x` and `status = y` go to the API
/// as `account.id` / `status`; `id = z` is one GET and no listing; an unknown id is no row.
#[test]
fn zones_list_filter_at_the_api_and_get_by_id() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        sim.reset_counts();
        let b = s
            .sql("SELECT id, name, account_id FROM cloudflare.zones.zones ORDER BY id")
            .await
            .unwrap();
        let mut expected = sim.zone_ids().to_vec();
        expected.sort();
        assert_eq!(strings(&b, "id"), expected);
        assert!(strings(&b, "name").iter().all(|n| n.ends_with(".example")));
        assert_eq!(sim.count("GET", "/zones"), 1);

        // account_name agrees with the account table for every zone (a nested path read).
        let b = s
            .sql(
                "SELECT count(*) FROM cloudflare.zones.zones z JOIN cloudflare.accounts.accounts a \
                 ON a.id = z.account_id AND a.name = z.account_name",
            )
            .await
            .unwrap();
        assert_eq!(scalar(&b), expected.len().to_string());

        let account = sim.account_ids()[1].clone();
        sim.reset_counts();
        let b = s
            .sql(&format!(
                "SELECT account_id FROM cloudflare.zones.zones \
                 WHERE account_id = '{account}' AND status = 'active'"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "account_id"), vec![account.clone(); 2]);
        let asked: Vec<String> = sim.requests().into_iter().map(|r| r.query).collect();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(
            asked[0].contains(&format!("account.id={account}"))
                && asked[0].contains("status=active"),
            "{asked:?}"
        );

        let zone = sim.zone_ids()[3].clone();
        sim.reset_counts();
        let b = s
            .sql(&format!(
                "SELECT id FROM cloudflare.zones.zones WHERE id IN ('{zone}', '00000000000000000000000000000000')"
            ))
            .await
            .unwrap();
        assert_eq!(strings(&b, "id"), vec![zone]);
        assert_eq!(sim.count("GET", "/zones/{zone_id}"), 2);
        assert_eq!(sim.count("GET", "/zones"), 0);
    })
}

const ZONE_ROUTE: &str = "/zones/{zone_id}/access/service_tokens";
const ACCOUNT_ROUTE: &str = "/accounts/{account_id}/access/service_tokens";

/// Without a word about zones a scan reads account-level service tokens and says that
/// zone-level ones were left out; `zone_id IS NOT NULL`, or a join or `IN` on the zones
/// table, reads every zone's tokens (a call per zone), and `zone_id IS NULL` owes no note.
#[test]
fn zone_level_service_tokens_are_read_when_asked_and_never_silently_left_out() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        let zones = sim.zone_ids().len() as u64;
        let expected = sim.zone_service_token_ids();
        assert!(!expected.is_empty());

        sim.reset_counts();
        let out = s
            .execute("SELECT id, zone_id FROM cloudflare.access.service_tokens")
            .await
            .unwrap();
        assert!(col(&out.batches, "zone_id").iter().all(Option::is_none));
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert_contains!(out.warnings[0], "zone-level rows were not read");
        assert_contains!(out.warnings[0], "WHERE zone_id IS NOT NULL");
        assert_eq!(sim.count("GET", ZONE_ROUTE), 0);
        assert_eq!(sim.count("GET", "/zones"), 0);

        for sql in [
            "SELECT id FROM cloudflare.access.service_tokens WHERE zone_id IS NOT NULL ORDER BY id",
            "SELECT id FROM cloudflare.access.service_tokens \
             WHERE zone_id IN (SELECT id FROM cloudflare.zones.zones) ORDER BY id",
            "SELECT t.id FROM cloudflare.access.service_tokens t \
             JOIN cloudflare.zones.zones z ON z.id = t.zone_id ORDER BY t.id",
        ] {
            sim.reset_counts();
            let out = s.execute(sql).await.unwrap();
            assert_eq!(strings(&out.batches, "id"), expected, "{sql}");
            assert!(out.warnings.is_empty(), "{sql}: {:?}", out.warnings);
            assert_eq!(sim.count("GET", ZONE_ROUTE), zones, "{sql}");
            assert_eq!(sim.count("GET", ACCOUNT_ROUTE), 0, "{sql}");
        }

        let out = s
            .execute("SELECT count(*) FROM cloudflare.access.service_tokens WHERE zone_id IS NULL")
            .await
            .unwrap();
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);

        let plan = s
            .sql(
                "EXPLAIN SELECT id FROM cloudflare.access.service_tokens WHERE zone_id IS NOT NULL",
            )
            .await
            .unwrap();
        let text = col(&plan, "plan").into_iter().flatten().collect::<String>();
        assert_contains!(text, "fan-out over every row of cloudflare.zones.zones");
        assert_contains!(text, "ceil(zones/50) to list the zones");
    })
}

/// `audit.credentials` notes the left-out kind on every run and in DESCRIBE; with
/// `zone_id IS NOT NULL` it lists exactly the zone-level tokens and reads no other kind.
#[test]
fn audit_credentials_names_what_it_leaves_out_and_how_to_include_it() {
    on_runtime(async {
        let sim = sim_with(5).await;
        let s = session(&sim).await;
        for _ in 0..2 {
            let out = s
                .execute("SELECT count(*) FROM cloudflare.audit.credentials")
                .await
                .unwrap();
            // One note per zone-level kind: service tokens, Access certificates (both
            // also account-level), client and Origin CA certificates (zone-level only).
            assert_eq!(out.warnings.len(), 4, "{:?}", out.warnings);
            let all = out.warnings.join("\n");
            assert_contains!(
                all,
                "cloudflare.access.service_tokens: zone-level rows were not read"
            );
            assert_contains!(
                all,
                "cloudflare.access.certificates: zone-level rows were not read"
            );
            assert_contains!(
                all,
                "cloudflare.zones.client_certificates: no rows were read"
            );
        }
        let d = s
            .sql("DESCRIBE cloudflare.audit.credentials")
            .await
            .unwrap();
        let keys = col(&d, "key");
        let names = strings(&d, "column");
        let zone_key = keys[names.iter().position(|n| n == "zone_id").unwrap()].clone();
        assert_contains!(zone_key.unwrap(), "WHERE zone_id IS NOT NULL");

        sim.reset_counts();
        let out = s
            .execute(
                "SELECT kind, scope, id FROM cloudflare.audit.credentials \
                 WHERE zone_id IS NOT NULL AND kind = 'service_token' ORDER BY id",
            )
            .await
            .unwrap();
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert_eq!(strings(&out.batches, "id"), sim.zone_service_token_ids());
        assert!(strings(&out.batches, "scope").iter().all(|k| k == "zone"));
        assert_eq!(sim.count("GET", "/user/tokens"), 0);
        assert_eq!(sim.count("GET", "/accounts/{account_id}/tokens"), 0);
        assert_eq!(sim.count("GET", ACCOUNT_ROUTE), 0);
    })
}
