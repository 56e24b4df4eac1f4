//! Provider manifests: the files of `providers/cloudflare/`, embedded at build time,
//! loaded and validated into a [`Registry`] of services, resources and views.

pub mod model;

use std::collections::HashSet;
use std::sync::Arc;

pub use model::*;

use crate::error::{Error, Result};

/// The manifests shipped with cfql: (file name, text).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "providers/cloudflare/user.toml",
        include_str!("../../providers/cloudflare/user.toml"),
    ),
    (
        "providers/cloudflare/accounts.toml",
        include_str!("../../providers/cloudflare/accounts.toml"),
    ),
    (
        "providers/cloudflare/zones.toml",
        include_str!("../../providers/cloudflare/zones.toml"),
    ),
    (
        "providers/cloudflare/access.toml",
        include_str!("../../providers/cloudflare/access.toml"),
    ),
    (
        "providers/cloudflare/audit.toml",
        include_str!("../../providers/cloudflare/audit.toml"),
    ),
];

/// Name of the catalog every service lives in.
pub const CATALOG: &str = "cloudflare";

/// A resource with the service it belongs to.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Service (schema) name.
    pub service: String,
    /// The resource's spec.
    pub spec: Arc<ResourceSpec>,
}

impl Resource {
    /// `cloudflare.<service>.<resource>`.
    pub fn qualified_name(&self) -> String {
        format!("{CATALOG}.{}.{}", self.service, self.spec.name)
    }

    /// The method serving `verb` (with the id in its path or not), or the error listing
    /// the methods the resource has.
    pub fn method_for(&self, verb: Verb, by_id: bool) -> Result<&MethodSpec> {
        self.spec
            .method(verb, by_id)
            .ok_or_else(|| Error::NotSupported {
                table: self.qualified_name(),
                verb: verb.sql().to_string(),
                methods: self
                    .spec
                    .methods
                    .iter()
                    .map(|m| format!("{} ({})", m.name, m.verb.sql()))
                    .collect(),
            })
    }
}

/// All services, resources and views, validated.
#[derive(Debug, Clone)]
pub struct Registry {
    services: Vec<Arc<ServiceSpec>>,
    /// Every resource with its service, shared (built once at load; lookups clone an `Arc`).
    resources: Vec<Resource>,
}

impl Registry {
    /// Loads the embedded manifests.
    pub fn embedded() -> Result<Self> {
        Self::from_sources(EMBEDDED.iter().map(|(f, t)| (f.to_string(), t.to_string())))
    }

    /// Loads manifests from (file name, text) pairs, validating each.
    pub fn from_sources(sources: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut services: Vec<Arc<ServiceSpec>> = Vec::new();
        let mut names = HashSet::new();
        for (file, text) in sources {
            let spec: ServiceSpec = toml::from_str(&text).map_err(|e| {
                let field = e
                    .span()
                    .map(|s| format!("at byte {}", s.start))
                    .unwrap_or_else(|| "(document)".into());
                Error::Manifest {
                    file: file.clone(),
                    field,
                    message: e.message().to_string(),
                }
            })?;
            validate(&file, &spec)?;
            for n in std::iter::once(&spec.service).chain(&spec.aliases) {
                if !names.insert(n.clone()) {
                    return Err(manifest_err(
                        &file,
                        "service",
                        format!("service name '{n}' is declared twice"),
                    ));
                }
            }
            services.push(Arc::new(spec));
        }
        let resources = services
            .iter()
            .flat_map(|s| {
                s.resources.iter().map(|r| Resource {
                    service: s.service.clone(),
                    spec: Arc::new(r.clone()),
                })
            })
            .collect();
        let reg = Self {
            services,
            resources,
        };
        reg.validate_fanouts()?;
        Ok(reg)
    }

    /// Every fan-out names a table with a list method and an id column.
    fn validate_fanouts(&self) -> Result<()> {
        for s in &self.services {
            for r in &s.resources {
                for sc in &r.scopes {
                    let Some(src) = &sc.fanout else { continue };
                    let parts: Vec<String> = src.split('.').map(str::to_string).collect();
                    let ok = self.resolve(&parts).is_some_and(|t| {
                        t.spec.id.is_some() && t.spec.method(Verb::Select, false).is_some()
                    });
                    if !ok {
                        return Err(manifest_err(
                            &format!("providers/cloudflare/{}.toml", s.service),
                            &format!("resources ({}).scopes ({}).fanout", r.name, sc.column),
                            format!(
                                "'{src}' is not a listable table with an id (expected service.table, such as accounts.accounts)"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Services in manifest order.
    pub fn services(&self) -> &[Arc<ServiceSpec>] {
        &self.services
    }

    /// The service with this name or alias.
    pub fn service(&self, name: &str) -> Option<&Arc<ServiceSpec>> {
        let name = name.to_ascii_lowercase();
        self.services
            .iter()
            .find(|s| s.service == name || s.aliases.contains(&name))
    }

    /// The resource `service.table` (names or aliases).
    pub fn resource(&self, service: &str, table: &str) -> Option<Resource> {
        let svc = self.service(service)?;
        let table = table.to_ascii_lowercase();
        self.resources
            .iter()
            .find(|r| {
                r.service == svc.service
                    && (r.spec.name == table || r.spec.aliases.contains(&table))
            })
            .cloned()
    }

    /// A view by a possibly partial name (`permissions`, `audit.permissions`, ...).
    pub fn view(&self, parts: &[String]) -> Option<ViewSpec> {
        let (service, table) = match parts {
            [c, s, t] if c.eq_ignore_ascii_case(CATALOG) => (s, t),
            [s, t] => (s, t),
            _ => return None,
        };
        let svc = self.service(service)?;
        let table = table.to_ascii_lowercase();
        svc.views.iter().find(|v| v.name == table).cloned()
    }

    /// Every resource.
    pub fn resources(&self) -> impl Iterator<Item = Resource> + '_ {
        self.resources.iter().cloned()
    }

    /// Every `cloudflare.service.table` name, aliases included (for suggestions and completion).
    pub fn all_table_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.services {
            for svc in std::iter::once(&s.service).chain(&s.aliases) {
                for r in &s.resources {
                    for t in std::iter::once(&r.name).chain(&r.aliases) {
                        out.push(format!("{CATALOG}.{svc}.{t}"));
                    }
                }
                for v in &s.views {
                    out.push(format!("{CATALOG}.{svc}.{}", v.name));
                }
            }
        }
        out
    }

    /// [`Registry::resolve`], or the error naming the closest table.
    pub fn resolve_or_suggest(&self, parts: &[String]) -> Result<Resource> {
        self.resolve(parts).ok_or_else(|| self.unknown_table(parts))
    }

    /// The error for a name that is no table, with the closest table name.
    pub fn unknown_table(&self, parts: &[String]) -> Error {
        let name = parts.join(".");
        // Compare like with like: `user.tokns` with the last two parts of each name.
        let tables = self.all_table_names();
        let suffix = |t: &String| {
            t.split('.')
                .rev()
                .take(parts.len())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(".")
        };
        let suffixes: Vec<String> = tables.iter().map(suffix).collect();
        let closest = crate::suggest::closest(
            &name.to_ascii_lowercase(),
            suffixes.iter().map(String::as_str),
        );
        let suggestion = closest
            .and_then(|c| suffixes.iter().position(|s| s == c))
            .map(|i| tables[i].clone());
        Error::UnknownTable { suggestion, name }
    }

    /// Resolves a possibly partial table name (`tokens`, `user.tokens`, `cloudflare.user.tokens`).
    pub fn resolve(&self, parts: &[String]) -> Option<Resource> {
        match parts {
            [c, s, t] if c.eq_ignore_ascii_case(CATALOG) => self.resource(s, t),
            [s, t] => self.resource(s, t),
            _ => None,
        }
    }
}

fn manifest_err(file: &str, field: &str, message: impl Into<String>) -> Error {
    Error::Manifest {
        file: file.into(),
        field: field.into(),
        message: message.into(),
    }
}

fn placeholders(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        out.push(rest[start + 1..start + end].to_string());
        rest = &rest[start + end + 1..];
    }
    out
}

fn validate(file: &str, spec: &ServiceSpec) -> Result<()> {
    let mut seen = HashSet::new();
    for (ri, r) in spec.resources.iter().enumerate() {
        let at = |f: &str| format!("resources[{ri}] ({}).{f}", r.name);
        for n in std::iter::once(&r.name).chain(&r.aliases) {
            ensure(seen.insert(n.clone()), file, &at("name"), || {
                format!("table name '{n}' is declared twice")
            })?;
        }
        validate_resource(r, &|f, ok, why: &dyn Fn() -> String| {
            ensure(ok, file, &at(f), why)
        })?;
        for (mi, m) in r.methods.iter().enumerate() {
            let at = |f: &str| {
                format!(
                    "resources[{ri}] ({}).methods[{mi}] ({}).{f}",
                    r.name, m.name
                )
            };
            validate_method(r, m, &|f, ok, why: &dyn Fn() -> String| {
                ensure(ok, file, &at(f), why)
            })?;
        }
    }
    for (vi, v) in spec.views.iter().enumerate() {
        ensure(
            seen.insert(v.name.clone()),
            file,
            &format!("views[{vi}].name"),
            || format!("table name '{}' is declared twice", v.name),
        )?;
        ensure(
            !v.sql.trim().is_empty(),
            file,
            &format!("views[{vi}].sql"),
            || "empty view".into(),
        )?;
    }
    Ok(())
}

/// One rule of a manifest: `ok`, or the error naming the file, the field and `why`.
fn ensure(ok: bool, file: &str, field: &str, why: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(manifest_err(file, field, why()))
    }
}

/// Checks one rule of the field it names (relative to the item being validated).
type Rule<'a> = dyn Fn(&str, bool, &dyn Fn() -> String) -> Result<()> + 'a;

/// A resource's columns, key, label and scopes.
fn validate_resource(r: &ResourceSpec, rule: &Rule<'_>) -> Result<()> {
    let mut cols = HashSet::new();
    for c in &r.columns {
        rule("columns", cols.insert(c.name.as_str()), &|| {
            format!("column '{}' is declared twice", c.name)
        })?;
    }
    if let Some(id) = &r.id {
        rule("id.column", r.column(&id.column).is_some(), &|| {
            format!("no column named '{}'", id.column)
        })?;
    }
    if let Some(label) = &r.label {
        rule("label", r.column(label).is_some(), &|| {
            format!("no column named '{label}'")
        })?;
    }
    for s in &r.scopes {
        let is_scope_column = r.column(&s.column).is_some_and(|c| c.scope);
        rule("scopes", is_scope_column, &|| {
            format!(
                "scope '{}' needs a column of that name with scope = true",
                s.column
            )
        })?;
        rule(
            "scopes.prefix",
            placeholders(&s.prefix).iter().all(|p| p == &s.column),
            &|| format!("prefix '{}' may only use {{{}}}", s.prefix, s.column),
        )?;
    }
    rule("methods", !r.methods.is_empty(), &|| {
        "a resource needs at least one method".into()
    })
}

/// A method's HTTP verb, path, scopes, filters, body and response.
fn validate_method(r: &ResourceSpec, m: &MethodSpec, rule: &Rule<'_>) -> Result<()> {
    let http_ok = ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.http.as_str());
    rule("http", http_ok, &|| {
        format!("unknown HTTP method '{}'", m.http)
    })?;
    let rooted = m.path.starts_with('/') || m.path.starts_with("{scope}");
    rule("path", rooted, &|| {
        "a path starts with '/' or '{scope}'".into()
    })?;
    for p in placeholders(&m.path) {
        let known =
            (p == "scope" && !r.scopes.is_empty()) || r.id.as_ref().is_some_and(|i| i.param == p);
        rule("path", known, &|| {
            format!("placeholder {{{p}}} is neither {{scope}} nor the id param")
        })?;
    }
    for s in &m.scopes {
        rule("scopes", r.scope(s).is_some(), &|| {
            format!("'{s}' is not a scope of the resource")
        })?;
    }
    for f in &m.filters {
        rule("filters", r.column(&f.column).is_some(), &|| {
            format!("no column named '{}'", f.column)
        })?;
        let bound = matches!(f.op, FilterOp::Lower | FilterOp::Upper);
        let timed = r
            .column(&f.column)
            .is_some_and(|c| c.ty == ColumnType::Timestamp);
        rule("filters", !bound || timed, &|| {
            format!(
                "'{}': lower / upper bounds need a timestamp column",
                f.column
            )
        })?;
        rule(
            "filters",
            !f.default_now || f.op == FilterOp::Upper,
            &|| format!("'{}': default_now is for an upper bound", f.param),
        )?;
    }
    rule(
        "cursor_limit",
        m.per_page.is_none() || m.cursor_limit.is_none(),
        &|| "a method pages by page number (per_page) or by cursor (cursor_limit), not both".into(),
    )?;
    for b in &m.body {
        let known = r.column(b).is_some() || m.optional.contains(b) || m.required.contains(b);
        rule("body", known, &|| {
            format!("'{b}' is neither a column nor a param")
        })?;
    }
    // A column read from a nested path has no key of its own to write back.
    let sent = m.body.iter().chain(&m.required).chain(&m.optional);
    for p in sent.filter(|_| m.verb != Verb::Select) {
        let derived = r.column(p).is_some_and(|c| c.from.is_some());
        rule("body", !derived, &|| {
            format!("'{p}' is read from a nested path (from = ...) and cannot be written")
        })?;
    }
    let value_ok = m.response != ResponseShape::Value
        || m.result_column
            .as_deref()
            .and_then(|c| r.column(c))
            .is_some();
    rule("result_column", value_ok, &|| {
        "a value response needs result_column naming a column".into()
    })?;
    rule("verb", m.verb != Verb::Select || m.http == "GET", &|| {
        "select methods must be GET".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifests_load() {
        let r = Registry::embedded().expect("embedded manifests are valid");
        assert!(r.resource("user", "tokens").is_some());
        assert!(r.resource("zero_trust", "service_tokens").is_some());
        assert!(r.resource("accounts", "account_tokens").is_some());
    }

    #[test]
    fn invalid_manifest_names_file_and_field() {
        let text = r#"
service = "x"
[[resources]]
name = "t"
columns = [{ name = "id", type = "utf8" }]
[[resources.methods]]
name = "get"
verb = "select"
http = "GET"
path = "/x/{nope}"
"#;
        let e =
            Registry::from_sources([("providers/cloudflare/x.toml".to_string(), text.to_string())])
                .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("providers/cloudflare/x.toml"), "{msg}");
        assert!(msg.contains("methods[0] (get).path"), "{msg}");
        assert!(msg.contains("{nope}"), "{msg}");
        let bad_type = "service = \"y\"\n[[resources]]\nname = \"t\"\ncolumns = [{ name = \"id\", type = \"uuid\" }]\nmethods = []\n";
        let e = Registry::from_sources([("y.toml".to_string(), bad_type.to_string())]).unwrap_err();
        assert!(e.to_string().contains("y.toml"), "{e}");
        assert!(e.to_string().contains("uuid"), "{e}");
    }

    #[test]
    fn fanout_must_name_a_listable_table() {
        let mut sources: Vec<(String, String)> = EMBEDDED
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        sources[1].1 = sources[1].1.replace(
            "fanout = \"accounts.accounts\"",
            "fanout = \"accounts.nope\"",
        );
        let e = Registry::from_sources(sources).unwrap_err().to_string();
        assert!(
            e.contains("scopes (account_id).fanout") && e.contains("accounts.nope"),
            "{e}"
        );
    }
}
