//! What a write leaves on disk as each call returns: its secrets (one JSON line each,
//! synced before the next outcome is handled) and its audit line. Both files are opened
//! before the first call, so a file that cannot hold secrets refuses the statement while
//! nothing has been sent.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::PlannedCall;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::private_file::{Shared, open_append};
use crate::provider::Resource;

/// The open secrets file and audit log of one write statement.
pub(super) struct Recorder {
    statement: String,
    origin: Option<String>,
    secrets: Option<(PathBuf, File)>,
    audit: Option<(PathBuf, File)>,
}

impl Recorder {
    /// Opens the files `config` names. The secrets file is opened only when the statement
    /// can return secrets, and refused when others could read it or it is a link.
    pub(super) fn open(
        config: &Config,
        statement: &str,
        origin: Option<String>,
        returns_secrets: bool,
    ) -> Result<Self> {
        let secrets = match (&config.secrets_file, returns_secrets) {
            (Some(p), true) => Some((p.clone(), opened(p, Shared::Refuse, "secrets file")?)),
            _ => None,
        };
        let audit = match &config.audit_log {
            Some(p) => Some((p.clone(), opened(p, Shared::Keep, "audit log")?)),
            None => None,
        };
        Ok(Self {
            statement: statement.to_string(),
            origin,
            secrets,
            audit,
        })
    }

    /// The secrets file, when this statement writes one.
    pub(super) fn secrets_path(&self) -> Option<&Path> {
        self.secrets.as_ref().map(|(p, _)| p.as_path())
    }

    /// Appends the audit line of a call that was sent. `Err` is a warning for the user.
    pub(super) fn audit(
        &self,
        call: &PlannedCall,
        outcome: std::result::Result<u16, &Error>,
    ) -> std::result::Result<(), String> {
        let Some((path, file)) = &self.audit else {
            return Ok(());
        };
        let verdict = match outcome {
            Ok(_) => "ok",
            Err(Error::OutcomeUnknown { .. }) => "may have taken effect",
            Err(_) => "failed",
        };
        let line = json!({
            "time": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "statement": self.statement,
            "client": self.origin,
            "connection": call.via.name,
            "method": call.request.method.as_str(),
            "path": call.request.path,
            "status": match outcome { Ok(s) => json!(s), Err(e) => json!(e.http_status()) },
            "object_id": call.id,
            "ok": outcome.is_ok(),
            "outcome": verdict,
            "error": outcome.err().map(|e| e.to_string()),
        });
        append(file, &line, false).map_err(|e| {
            format!(
                "warning: cannot write the audit log {}: {e}",
                path.display()
            )
        })
    }

    /// Appends the secrets of a result object (if it has any) and syncs the file, so the
    /// secret is on disk before the statement goes on. `Ok(false)`: nothing to save.
    pub(super) fn save_secrets(
        &self,
        resource: &Resource,
        obj: &Map<String, Value>,
        connection: &str,
    ) -> std::io::Result<bool> {
        let Some((_, file)) = &self.secrets else {
            return Ok(false);
        };
        let secrets: Vec<_> = resource
            .spec
            .columns
            .iter()
            .filter(|c| c.secret)
            .filter_map(|c| obj.get(&c.name).filter(|v| !v.is_null()).map(|v| (c, v)))
            .collect();
        if secrets.is_empty() {
            return Ok(false);
        }
        let mut line = json!({
            "time": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "table": resource.qualified_name(),
            "id": obj.get(resource.spec.id_column()),
            "name": resource.spec.label.as_deref().and_then(|l| obj.get(l)),
            // Whose credential it is (several connections: a user token belongs to the
            // user of the connection that created or rolled it).
            "connection": connection,
        });
        for s in &resource.spec.scopes {
            if let Some(v) = obj.get(&s.column).filter(|v| !v.is_null()) {
                line[&s.column] = v.clone();
            }
        }
        for (c, v) in secrets {
            line[&c.name] = v.clone();
        }
        append(file, &line, true).map(|()| true)
    }
}

fn opened(path: &Path, shared: Shared, what: &str) -> Result<File> {
    open_append(path, shared).map_err(|e| {
        Error::Refused(format!(
            "{what} {}: {e}; the statement was refused and nothing was sent",
            path.display()
        ))
    })
}

/// One JSON line in a single write (lines of concurrent outcomes never interleave).
fn append(mut file: &File, line: &Value, sync: bool) -> std::io::Result<()> {
    let mut text = line.to_string();
    text.push('\n');
    file.write_all(text.as_bytes())?;
    if sync { file.sync_data() } else { Ok(()) }
}
