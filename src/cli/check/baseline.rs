//! Baselines: an earlier `--format json` report read back, so that each finding of this
//! run is `new` or `known` (matched by control id and the credential's kind and id, never
//! by row position) and the earlier findings that are gone are `resolved`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::meta::finding_key;

/// The findings of an earlier report, by control id.
#[derive(Debug, Default)]
pub struct Baseline {
    keys: BTreeMap<String, BTreeSet<String>>,
}

impl Baseline {
    /// Reads a report written by `cfql check --format json` (an HTML report holds the same
    /// JSON and is read too).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--baseline {}: {e}", path.display()))?;
        let json = super::html::embedded_json(&text).unwrap_or(&text);
        let v: Value = serde_json::from_str(json).map_err(|e| {
            format!(
                "--baseline {}: not a cfql check JSON report ({e}); write one with --format json",
                path.display()
            )
        })?;
        let controls = v.as_array().ok_or_else(|| {
            format!(
                "--baseline {}: not a cfql check JSON report (expected an array of controls)",
                path.display()
            )
        })?;
        let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for c in controls {
            let id = c["id"].as_str().or(c["title"].as_str()).unwrap_or_default();
            let set = keys.entry(id.to_string()).or_default();
            for row in c["findings"].as_array().into_iter().flatten() {
                if let Some(row) = row.as_object() {
                    set.insert(finding_key(id, row));
                }
            }
        }
        Ok(Self { keys })
    }

    /// Whether the earlier report had this finding.
    pub fn knows(&self, control: &str, key: &str) -> bool {
        self.keys.get(control).is_some_and(|s| s.contains(key))
    }

    /// The earlier findings of `control` that are not among `now` (its keys this run).
    pub fn resolved(&self, control: &str, now: &BTreeSet<String>) -> Vec<String> {
        self.keys
            .get(control)
            .map(|s| s.difference(now).cloned().collect())
            .unwrap_or_default()
    }
}
