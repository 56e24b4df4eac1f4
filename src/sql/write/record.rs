//! What writes leave on disk: the secrets file and the audit log (JSON lines, mode 0600).

use std::io::Write as _;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::PlannedCall;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::provider::Resource;

pub(super) fn audit(engine: &Engine, statement: &str, call: &PlannedCall, outcome: std::result::Result<u16, &Error>) {
    let Some(path) = &engine.config.audit_log else { return };
    let line = json!({
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "statement": statement,
        "method": call.request.method.as_str(),
        "path": call.request.path,
        "status": match outcome { Ok(s) => json!(s), Err(e) => json!(e.http_status()) },
        "object_id": call.id,
        "ok": outcome.is_ok(),
        "error": outcome.err().map(|e| e.to_string()),
    });
    if let Err(e) = append_line(path, &line) {
        engine.warn(format!("warning: cannot write the audit log {}: {e}", path.display()));
    }
}

/// Appends a JSON line to a file created with mode 0600.
pub fn append_line(path: &std::path::Path, line: &Value) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    writeln!(f, "{line}")
}

pub(super) fn save_secrets(engine: &Engine, resource: &Resource, obj: &Map<String, Value>) -> Result<()> {
    let Some(path) = &engine.config.secrets_file else { return Ok(()) };
    let secrets: Vec<_> = resource.spec.columns.iter().filter(|c| c.secret).filter_map(|c| obj.get(&c.name).map(|v| (c, v))).collect();
    if secrets.is_empty() || secrets.iter().all(|(_, v)| v.is_null()) {
        return Ok(());
    }
    let mut line = json!({
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "table": resource.qualified_name(),
        "id": obj.get("id"),
        "name": obj.get("name"),
    });
    for s in &resource.spec.scopes {
        if let Some(v) = obj.get(&s.column).filter(|v| !v.is_null()) {
            line[&s.column] = v.clone();
        }
    }
    for (c, v) in secrets {
        line[&c.name] = v.clone();
    }
    append_line(path, &line).map_err(|source| Error::Io { path: path.clone(), source })
}
