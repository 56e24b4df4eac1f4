//! `cfql_policy_grants(policies)`: a token's `policies` JSON flattened into what it
//! grants, one element per policy x permission group x resource, each resource read for
//! its type, breadth and ids. `cloudflare.audit.permissions` (a view of
//! `providers/cloudflare/audit.toml`) unnests it. The resource forms, from Cloudflare's
//! token documentation:
//!
//! | key (value `"*"` unless said)                                  | type      | breadth          |
//! |----------------------------------------------------------------|-----------|------------------|
//! | `com.cloudflare.api.account.*`                                 | account   | all              |
//! | `com.cloudflare.api.account.<ACCT>`                            | account   | one              |
//! | `com.cloudflare.api.account.<ACCT>` = `{ "...zone.*": "*" }`   | zone      | all_in_account   |
//! | `com.cloudflare.api.account.<ACCT>` = `{ "...zone.<Z>": "*" }` | zone      | one              |
//! | `com.cloudflare.api.account.*` = `{ "...zone.*": "*" }`        | zone      | all              |
//! | `com.cloudflare.api.account.zone.*`                            | zone      | all              |
//! | `com.cloudflare.api.account.zone.<ZONE>`                       | zone      | one              |
//! | `com.cloudflare.api.user.*` / `com.cloudflare.api.user.<USER>` | user      | all / one        |
//! | `com.cloudflare.edge.r2.bucket.<ACCT>_<JURISDICTION>_<BUCKET>` | r2_bucket | one              |
//! | anything else                                                  | other     | NULL             |
//!
//! `access` is derived from the group's name: `... Read` is read, `... Write` / `... Edit`
//! write, any other NULL (said so in DESCRIBE). A policy without resources or groups still
//! yields a row (with NULLs there), so no policy disappears from the audit.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, ListBuilder, StringArray, StringBuilder, StructBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::{Map, Value};

/// The fields of one grant, in order.
const FIELDS: &[&str] = &[
    "policy_id",
    "effect",
    "permission_group_id",
    "permission_group_name",
    "access",
    "resource",
    "resource_parent",
    "resource_type",
    "resource_breadth",
    "account_id",
    "zone_id",
];

fn fields() -> Fields {
    FIELDS
        .iter()
        .map(|n| Field::new(*n, DataType::Utf8, true))
        .collect()
}

/// The function, for a session's registry.
pub(crate) fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(PolicyGrants {
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PolicyGrants {
    signature: Signature,
}

impl ScalarUDFImpl for PolicyGrants {
    fn name(&self) -> &str {
        "cfql_policy_grants"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::new_list(DataType::Struct(fields()), true))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let array = args.args[0].clone().into_array(args.number_rows)?;
        let texts = array
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| DataFusionError::Internal("cfql_policy_grants takes text".into()))?;
        let mut out = ListBuilder::new(StructBuilder::from_fields(fields(), 0)).with_field(
            Arc::new(Field::new_list_field(DataType::Struct(fields()), true)),
        );
        for row in 0..texts.len() {
            if texts.is_null(row) {
                out.append_null();
                continue;
            }
            let policies: Value = serde_json::from_str(texts.value(row)).map_err(|e| {
                DataFusionError::Execution(format!(
                    "a token's policies are not valid JSON ({e}); the API answered something cfql cannot read"
                ))
            })?;
            for grant in grants(&policies) {
                let s = out.values();
                for (i, value) in grant.iter().enumerate() {
                    s.field_builder::<StringBuilder>(i)
                        .ok_or_else(|| DataFusionError::Internal("grant field".into()))?
                        .append_option(value.as_deref());
                }
                s.append(true);
            }
            out.append(true);
        }
        let list: ArrayRef = Arc::new(out.finish());
        Ok(ColumnarValue::Array(list))
    }
}

/// One grant's values, in [`FIELDS`]' order.
type Grant = Vec<Option<String>>;

/// Every grant of a `policies` array.
fn grants(policies: &Value) -> Vec<Grant> {
    let mut out = Vec::new();
    for policy in policies.as_array().into_iter().flatten() {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let (id, effect) = (text(policy.get("id")), text(policy.get("effect")));
        let mut groups: Vec<(Option<String>, Option<String>)> = policy
            .get("permission_groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|g| (text(g.get("id")), text(g.get("name"))))
            .collect();
        if groups.is_empty() {
            groups.push((None, None));
        }
        let mut resources = policy
            .get("resources")
            .and_then(Value::as_object)
            .map(resources_of)
            .unwrap_or_default();
        if resources.is_empty() {
            resources.push(Resource::default());
        }
        for (group_id, group_name) in &groups {
            for r in &resources {
                let access = group_name
                    .as_deref()
                    .and_then(access_of)
                    .map(str::to_string);
                out.push(vec![
                    id.clone(),
                    effect.clone(),
                    group_id.clone(),
                    group_name.clone(),
                    access,
                    r.key.clone(),
                    r.parent.clone(),
                    r.kind.map(str::to_string),
                    r.breadth.map(str::to_string),
                    r.account.clone(),
                    r.zone.clone(),
                ]);
            }
        }
    }
    out
}

/// `read` or `write` from a permission group's name.
fn access_of(name: &str) -> Option<&'static str> {
    if name.ends_with(" Read") {
        Some("read")
    } else if name.ends_with(" Write") || name.ends_with(" Edit") {
        Some("write")
    } else {
        None
    }
}

#[derive(Default, Debug, PartialEq)]
struct Resource {
    key: Option<String>,
    parent: Option<String>,
    kind: Option<&'static str>,
    breadth: Option<&'static str>,
    account: Option<String>,
    zone: Option<String>,
}

const ACCOUNT: &str = "com.cloudflare.api.account.";
const ZONE: &str = "com.cloudflare.api.account.zone.";
const USER: &str = "com.cloudflare.api.user.";
const R2: &str = "com.cloudflare.edge.r2.bucket.";

/// The resources of one policy's map, a nested account map read key by key.
fn resources_of(map: &Map<String, Value>) -> Vec<Resource> {
    let mut out = Vec::new();
    for (key, value) in map {
        match value.as_object() {
            Some(inner) if key.starts_with(ACCOUNT) && !key.starts_with(ZONE) => {
                let account = key[ACCOUNT.len()..].to_string();
                for inner_key in inner.keys() {
                    let mut r = resource(inner_key);
                    // Every zone of one account; of every account, under `account.*`.
                    if r.kind == Some("zone") && r.breadth == Some("all") && account != "*" {
                        r.breadth = Some("all_in_account");
                    }
                    if account != "*" {
                        r.account = Some(account.clone());
                    }
                    r.parent = Some(key.clone());
                    out.push(r);
                }
            }
            _ => out.push(resource(key)),
        }
    }
    out
}

/// One top-level resource key.
fn resource(key: &str) -> Resource {
    let one_or_all = |id: &str| if id == "*" { "all" } else { "one" };
    let named = |id: &str| (id != "*").then(|| id.to_string());
    let mut r = Resource {
        key: Some(key.to_string()),
        ..Resource::default()
    };
    if let Some(zone) = key.strip_prefix(ZONE) {
        r.kind = Some("zone");
        r.breadth = Some(one_or_all(zone));
        r.zone = named(zone);
    } else if let Some(account) = key.strip_prefix(ACCOUNT) {
        r.kind = Some("account");
        r.breadth = Some(one_or_all(account));
        r.account = named(account);
    } else if let Some(user) = key.strip_prefix(USER) {
        r.kind = Some("user");
        r.breadth = Some(one_or_all(user));
    } else if let Some(bucket) = key.strip_prefix(R2) {
        r.kind = Some("r2_bucket");
        r.breadth = Some(one_or_all(bucket));
        // `<ACCT>_<JURISDICTION>_<BUCKET>`: an account id has no underscore.
        r.account = bucket
            .split_once('_')
            .map(|(a, _)| a.to_string())
            .filter(|a| a != "*");
    } else {
        r.kind = Some("other");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(policies: Value) -> Vec<Vec<Option<String>>> {
        grants(&policies)
    }

    fn get<'a>(g: &'a [Option<String>], field: &str) -> Option<&'a str> {
        let i = FIELDS.iter().position(|f| *f == field).unwrap();
        g[i].as_deref()
    }

    #[test]
    fn every_resource_form_flattens_to_its_type_breadth_and_ids() {
        let a = "0123456789abcdef0123456789abcdef";
        let z = "fedcba9876543210fedcba9876543210";
        let policies = json!([{
            "id": "p1", "effect": "allow",
            "permission_groups": [{"id": "g1", "name": "DNS Write"}],
            "resources": {
                format!("com.cloudflare.api.account.zone.{z}"): "*",
                "com.cloudflare.api.account.*": "*",
                format!("com.cloudflare.api.account.{a}"): {"com.cloudflare.api.account.zone.*": "*"},
                "com.cloudflare.api.user.*": "*",
                format!("com.cloudflare.edge.r2.bucket.{a}_default_logs"): "*",
                "com.example.other": "*"
            }
        }]);
        let rows = row(policies);
        let by_key = |k: &str| {
            rows.iter()
                .find(|g| get(g, "resource") == Some(k))
                .unwrap_or_else(|| panic!("{k} in {rows:?}"))
                .clone()
        };
        let zone = by_key(&format!("com.cloudflare.api.account.zone.{z}"));
        assert_eq!(
            (
                get(&zone, "resource_type"),
                get(&zone, "resource_breadth"),
                get(&zone, "zone_id")
            ),
            (Some("zone"), Some("one"), Some(z))
        );
        let all = by_key("com.cloudflare.api.account.*");
        assert_eq!(
            (
                get(&all, "resource_type"),
                get(&all, "resource_breadth"),
                get(&all, "account_id")
            ),
            (Some("account"), Some("all"), None)
        );
        let nested = by_key("com.cloudflare.api.account.zone.*");
        assert_eq!(
            (
                get(&nested, "resource_type"),
                get(&nested, "resource_breadth"),
                get(&nested, "account_id"),
                get(&nested, "resource_parent")
            ),
            (
                Some("zone"),
                Some("all_in_account"),
                Some(a),
                Some(format!("com.cloudflare.api.account.{a}").as_str())
            )
        );
        let user = by_key("com.cloudflare.api.user.*");
        assert_eq!(get(&user, "resource_type"), Some("user"));
        let r2 = by_key(&format!("com.cloudflare.edge.r2.bucket.{a}_default_logs"));
        assert_eq!(
            (
                get(&r2, "resource_type"),
                get(&r2, "resource_breadth"),
                get(&r2, "account_id")
            ),
            (Some("r2_bucket"), Some("one"), Some(a))
        );
        assert_eq!(
            get(&by_key("com.example.other"), "resource_type"),
            Some("other")
        );
        assert!(rows.iter().all(|g| get(g, "access") == Some("write")));
        assert_eq!(rows.len(), 6);
    }

    #[test]
    fn each_group_meets_each_resource_and_empty_policies_keep_a_row() {
        let rows = row(json!([
            {"id": "p1", "effect": "deny", "resources": {"com.cloudflare.api.account.zone.*": "*", "com.cloudflare.api.user.*": "*"},
             "permission_groups": [{"id": "g1", "name": "Zone Read"}, {"id": "g2", "name": "Billing Edit"}, {"id": "g3", "name": "Odd"}]},
            {"id": "p2", "effect": "allow", "resources": {}, "permission_groups": []}
        ]));
        assert_eq!(rows.len(), 7);
        let access: Vec<Option<&str>> = rows.iter().step_by(2).map(|g| get(g, "access")).collect();
        assert_eq!(access, [Some("read"), Some("write"), None, None]);
        assert!(rows[..6].iter().all(|g| get(g, "effect") == Some("deny")));
        let last = &rows[6];
        assert_eq!(
            (get(last, "policy_id"), get(last, "resource")),
            (Some("p2"), None)
        );
    }
}
