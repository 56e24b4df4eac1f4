//! `SHOW SERVICES`, `SHOW RESOURCES`, `SHOW METHODS` and `DESCRIBE`: the catalog as result sets.

use datafusion::arrow::record_batch::RecordBatch;

use crate::convert::text_batch;
use crate::error::{Error, Result};
use crate::provider::{CATALOG, Registry, Verb};

/// `SHOW SERVICES`.
pub fn show_services(reg: &Registry) -> Result<RecordBatch> {
    let rows = reg
        .services()
        .iter()
        .map(|s| {
            vec![
                format!("{CATALOG}.{}", s.service),
                s.aliases
                    .iter()
                    .map(|a| format!("{CATALOG}.{a}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                s.description.clone(),
            ]
        })
        .collect();
    text_batch(&["service", "aliases", "description"], rows)
}

/// `SHOW RESOURCES [IN cloudflare.<service>]`.
pub fn show_resources(reg: &Registry, service: Option<&str>) -> Result<RecordBatch> {
    let services: Vec<_> = match service {
        Some(s) => vec![
            reg.service(s)
                .cloned()
                .ok_or_else(|| Error::UnknownService {
                    name: s.to_string(),
                    services: reg.services().iter().map(|s| s.service.clone()).collect(),
                })?,
        ],
        None => reg.services().to_vec(),
    };
    let mut rows = Vec::new();
    for s in services {
        for r in &s.resources {
            rows.push(vec![
                format!("{CATALOG}.{}.{}", s.service, r.name),
                "table".into(),
                r.aliases.join(", "),
                r.description.clone(),
            ]);
        }
        for v in &s.views {
            rows.push(vec![
                format!("{CATALOG}.{}.{}", s.service, v.name),
                "view".into(),
                String::new(),
                v.description.clone(),
            ]);
        }
    }
    text_batch(&["resource", "kind", "aliases", "description"], rows)
}

/// `SHOW METHODS IN <table>`: each method with its SQL verb and params.
pub fn show_methods(reg: &Registry, parts: &[String]) -> Result<RecordBatch> {
    let r = reg.resolve_or_suggest(parts)?;
    let rows = r
        .spec
        .methods
        .iter()
        .map(|m| {
            let name = if m.aliases.is_empty() {
                m.name.clone()
            } else {
                format!("{} (alias {})", m.name, m.aliases.join(", "))
            };
            let verb = if m.verb == Verb::Exec {
                format!("EXEC {}.{}", r.qualified_name(), m.name)
            } else {
                m.verb.sql().to_string()
            };
            vec![
                name,
                verb,
                m.required.join(", ").replace('|', " or "),
                m.optional.join(", "),
                format!("{} {}", m.http, m.path),
                m.description.clone(),
            ]
        })
        .collect();
    text_batch(
        &[
            "method",
            "sql_verb",
            "required_params",
            "optional_params",
            "http",
            "description",
        ],
        rows,
    )
}

/// `DESCRIBE [EXTENDED] <table>`: columns with types and the params they key.
pub fn describe(reg: &Registry, parts: &[String], extended: bool) -> Result<RecordBatch> {
    if reg.resolve(parts).is_none()
        && let Some(view) = reg.view(parts)
    {
        return describe_view(&view, extended);
    }
    let r = reg.resolve_or_suggest(parts)?;
    let spec = &r.spec;
    let mut rows = Vec::new();
    for c in &spec.columns {
        let mut key = Vec::new();
        if spec.id.as_ref().is_some_and(|i| i.column == c.name) {
            let p = &spec.id.as_ref().expect("checked").param;
            key.push(format!(
                "id (WHERE {} = ... or {p} = ...: GET by id)",
                c.name
            ));
        }
        if let Some(s) = spec.scope(&c.name) {
            let others: Vec<&str> = spec
                .scopes
                .iter()
                .filter(|o| o.column != s.column)
                .map(|o| o.column.as_str())
                .collect();
            key.push(match (&s.fanout, others.is_empty()) {
                (Some(src), _) if s.opt_in => format!(
                    "scope (opt-in: WHERE {} IS NOT NULL fans out over {src}, a call per row; without it these rows are not read and a note says so)",
                    s.column
                ),
                (Some(src), _) => format!("scope (optional: fans out over {src})"),
                (None, true) => "scope (required)".to_string(),
                (None, false) => format!("scope (instead of {})", others.join(", ")),
            });
        }
        let list = spec.method(Verb::Select, false);
        if list.is_some_and(|m| m.filters.iter().any(|f| f.column == c.name)) {
            key.push("API-side filter".into());
        }
        if c.secret {
            key.push("secret: only returned by writes".into());
        }
        let mut row = vec![c.name.clone(), c.ty.name().to_string(), key.join("; ")];
        if extended {
            let writable: Vec<_> = spec
                .methods
                .iter()
                .filter(|m| m.body.contains(&c.name))
                .map(|m| m.name.clone())
                .collect();
            row.push(writable.join(", "));
            row.push(c.description.clone());
        }
        rows.push(row);
    }
    let mut row = vec![
        crate::connections::CONNECTION_COLUMN.to_string(),
        "text".to_string(),
        "connection (WHERE connection = ... / IN / LIKE picks the credentials read, before any call)".to_string(),
    ];
    if extended {
        row.push(String::new());
        row.push("The connection (profile) the row was read through: `default` or the profile's name; with several, an object they share is one row, read through the first of them".to_string());
    }
    rows.push(row);
    if extended {
        text_batch(
            &["column", "type", "key", "writable_by", "description"],
            rows,
        )
    } else {
        text_batch(&["column", "type", "key"], rows)
    }
}

/// `DESCRIBE` of a view: its documented columns (`key` says it is a view).
fn describe_view(view: &crate::provider::ViewSpec, extended: bool) -> Result<RecordBatch> {
    let rows: Vec<Vec<String>> = view
        .columns
        .iter()
        .map(|c| {
            let key = match c.key.as_str() {
                "" => "view column",
                k => k,
            };
            let mut row = vec![c.name.clone(), c.ty.name().to_string(), key.to_string()];
            if extended {
                row.extend([String::new(), c.description.clone()]);
            }
            row
        })
        .collect();
    if extended {
        text_batch(
            &["column", "type", "key", "writable_by", "description"],
            rows,
        )
    } else {
        text_batch(&["column", "type", "key"], rows)
    }
}
