//! A validator for the subset of OpenAPI 3.0 schemas the official slice uses
//! ($ref, allOf, anyOf, oneOf, type, nullable, enum, properties, required, items,
//! minimum, maxLength, minLength, format date-time).

use serde_json::Value;

/// The official slice, loaded from `CFQL_OPENAPI` or `../shared/cloudflare/openapi-tokens.json`.
pub struct Spec {
    doc: Value,
}

impl Spec {
    /// Loads the slice; `Err(reason)` when it is not available.
    pub fn load() -> Result<Self, String> {
        let path = std::env::var("CFQL_OPENAPI").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/cloudflare/openapi-tokens.json"
            )
            .to_string()
        });
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let doc = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        Ok(Self { doc })
    }

    /// Loads a slice kept in this repository (`tests/openapi/NAME.json`).
    pub fn in_repo(name: &str) -> Self {
        let path = format!("{}/tests/openapi/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self {
            doc: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")),
        }
    }

    fn resolve(&self, r: &str) -> Option<&Value> {
        let name = r.strip_prefix("#/components/schemas/")?;
        self.doc["components"]["schemas"].get(name)
    }

    /// The response schema of an operation for a status (`4XX` for 400-499).
    pub fn response_schema(&self, method: &str, path: &str, status: u16) -> Option<&Value> {
        let op = self.doc["paths"]
            .get(path)?
            .get(method.to_ascii_lowercase())?;
        let responses = &op["responses"];
        let key = status.to_string();
        let r = responses.get(&key).or_else(|| {
            if (400..500).contains(&status) {
                responses.get("4XX")
            } else {
                None
            }
        })?;
        r["content"]["application/json"].get("schema")
    }

    /// A component schema by name.
    pub fn schema(&self, name: &str) -> &Value {
        &self.doc["components"]["schemas"][name]
    }

    /// Validates `v` against `schema`; returns the violations.
    pub fn validate(&self, schema: &Value, v: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(schema, v, "$", &mut errs);
        errs
    }

    fn check(&self, s: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match self.resolve(r) {
                Some(t) => self.check(t, v, at, errs),
                None => errs.push(format!("{at}: unresolvable {r}")),
            }
            return;
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, v, at, errs);
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(any) = s.get(key).and_then(Value::as_array) {
                let ok = any.iter().any(|sub| {
                    let mut e = Vec::new();
                    self.check(sub, v, at, &mut e);
                    e.is_empty()
                });
                if !ok {
                    errs.push(format!("{at}: matches none of {key}"));
                }
            }
        }
        let nullable = s.get("nullable").and_then(Value::as_bool).unwrap_or(false)
            || s.get("enum")
                .and_then(Value::as_array)
                .is_some_and(|e| e.contains(&Value::Null));
        if v.is_null() {
            if s.get("type").is_some() && !nullable {
                errs.push(format!("{at}: null is not allowed"));
            }
            return;
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string(),
                "number" => v.is_number(),
                "integer" => v.is_i64() || v.is_u64(),
                "boolean" => v.is_boolean(),
                _ => true,
            };
            if !ok {
                errs.push(format!("{at}: expected {t}, got {v}"));
                return;
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array)
            && !e.contains(v)
        {
            errs.push(format!("{at}: {v} not in {}", Value::Array(e.clone())));
        }
        if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64())
            && n < min
        {
            errs.push(format!("{at}: {n} < minimum {min}"));
        }
        if let Some(text) = v.as_str() {
            let len = text.chars().count() as u64;
            if s.get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
            {
                errs.push(format!("{at}: longer than maxLength"));
            }
            if s.get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len < m)
            {
                errs.push(format!("{at}: shorter than minLength"));
            }
            if s.get("format").and_then(Value::as_str) == Some("date-time")
                && chrono::DateTime::parse_from_rfc3339(text).is_err()
            {
                errs.push(format!("{at}: '{text}' is not a date-time"));
            }
        }
        if let Some(obj) = v.as_object() {
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        errs.push(format!("{at}: missing required '{r}'"));
                    }
                }
            }
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, sub) in props {
                    if let Some(val) = obj.get(k) {
                        self.check(sub, val, &format!("{at}.{k}"), errs);
                    }
                }
            }
        }
        if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
            for (i, el) in arr.iter().enumerate() {
                self.check(items, el, &format!("{at}[{i}]"), errs);
            }
        }
    }
}
