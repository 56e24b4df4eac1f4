//! A control's metadata, read from the comment block right above its statement: the
//! title (the first plain line), then `-- @field: value` lines (`@id`, `@severity`,
//! `@tags`, `@rationale`, `@remediation`, `@fix[col=value,...]`, `@var`); a line
//! `--   more` (three spaces or more) continues the field above it. Also what identifies a
//! finding across runs, and the fix statement a finding's row fills in.

use serde_json::{Map, Value};

/// How bad a control's findings are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Fix this cycle.
    Medium,
    /// Fix this week.
    High,
    /// Fix today.
    Critical,
}

impl Severity {
    /// Its name in reports.
    pub fn word(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Every severity, worst first.
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.word() == s.to_ascii_lowercase())
    }
}

/// A statement template that fixes one finding, for the rows that match `when`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// Column = value conditions, all of which the row must meet.
    pub when: Vec<(String, String)>,
    /// The statement, with `{column}` holes.
    pub template: String,
}

/// What a control says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Stable identifier (`@id`, else the title): what baselines match on.
    pub id: String,
    /// One line saying what the control finds.
    pub title: String,
    /// `@severity` (medium when not given).
    pub severity: Severity,
    /// `@tags`, comma-separated.
    pub tags: Vec<String>,
    /// Why it matters.
    pub rationale: String,
    /// What to do.
    pub remediation: String,
    /// Statements that fix a finding, first match wins.
    pub fixes: Vec<Fix>,
    /// `@var: name=value`: defaults for template variables.
    pub vars: Vec<(String, String)>,
}

/// The metadata of the statement `text` (its leading comment block). `fallback` titles a
/// control without comments (`FILE:LINE`). A bad `@severity` is an error naming it.
pub fn parse(text: &str, fallback: &str) -> Result<Meta, String> {
    let mut meta = Meta {
        id: String::new(),
        title: String::new(),
        severity: Severity::Medium,
        tags: Vec::new(),
        rationale: String::new(),
        remediation: String::new(),
        fixes: Vec::new(),
        vars: Vec::new(),
    };
    let mut last: Option<String> = None;
    for c in leading_comments(text) {
        if let Some(rest) = c.strip_prefix('@') {
            let (key, value) = rest.split_once(':').unwrap_or((rest, ""));
            field(&mut meta, key.trim(), value.trim())?;
            last = Some(key.trim().to_string());
        } else if let (Some(more), Some(key)) = (c.strip_prefix("  "), &last) {
            extend(&mut meta, key, more.trim());
        } else {
            last = None;
            if meta.title.is_empty() && !c.trim().is_empty() {
                meta.title = c.trim().to_string();
            }
        }
    }
    if meta.title.is_empty() {
        meta.title = fallback.to_string();
    }
    if meta.id.is_empty() {
        meta.id = meta.title.clone();
    }
    Ok(meta)
}

/// The comment lines right above the code (a blank line ends a block that is not), each
/// without its `--` and the one space after it.
fn leading_comments(text: &str) -> Vec<String> {
    let mut comments: Vec<String> = Vec::new();
    for l in text.lines() {
        let t = l.trim();
        if let Some(c) = t.strip_prefix("--") {
            comments.push(c.strip_prefix(' ').unwrap_or(c).trim_end().to_string());
        } else if !t.is_empty() {
            break;
        } else {
            comments.clear();
        }
    }
    comments
}

fn field(meta: &mut Meta, key: &str, value: &str) -> Result<(), String> {
    match key {
        "id" => meta.id = value.to_string(),
        "severity" => {
            meta.severity = Severity::parse(value).ok_or_else(|| {
                format!("@severity: '{value}' is not critical, high, medium or low")
            })?
        }
        "tags" => meta.tags.extend(
            value
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        ),
        "rationale" => meta.rationale = value.to_string(),
        "remediation" => meta.remediation = value.to_string(),
        "var" => {
            let (k, v) = value
                .split_once('=')
                .ok_or_else(|| format!("@var: '{value}' is not name=value"))?;
            meta.vars.push((k.trim().to_string(), v.trim().to_string()));
        }
        k if k == "fix" || k.starts_with("fix[") => meta.fixes.push(Fix {
            when: conditions(k)?,
            template: value.to_string(),
        }),
        other => {
            return Err(format!(
                "@{other} is not a control field (id, severity, tags, rationale, remediation, fix, var)"
            ));
        }
    }
    Ok(())
}

/// `fix[kind=user_token,scope=zone]` as its conditions.
fn conditions(key: &str) -> Result<Vec<(String, String)>, String> {
    let Some(inner) = key.strip_prefix("fix[").and_then(|k| k.strip_suffix(']')) else {
        return Ok(Vec::new());
    };
    inner
        .split(',')
        .map(|c| {
            c.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("@{key}: '{c}' is not column=value"))
        })
        .collect()
}

/// A continuation line: appended to the field it continues.
fn extend(meta: &mut Meta, key: &str, more: &str) {
    let target = match key {
        "rationale" => &mut meta.rationale,
        "remediation" => &mut meta.remediation,
        k if k.starts_with("fix") => match meta.fixes.last_mut() {
            Some(f) => &mut f.template,
            None => return,
        },
        _ => return,
    };
    target.push(' ');
    target.push_str(more);
}

/// The text of a cell as a fix or a key sees it (`None` for NULL).
fn cell(row: &Map<String, Value>, col: &str) -> Option<String> {
    match row.get(col)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Meta {
    /// The statement that fixes the finding `row`: the first `@fix` whose conditions the
    /// row meets, its holes filled with the row's values (quotes doubled, so a value
    /// cannot end the literal it sits in); `None` when none applies or a hole is NULL.
    pub fn fix_for(&self, row: &Map<String, Value>) -> Option<String> {
        let fix = self.fixes.iter().find(|f| {
            f.when
                .iter()
                .all(|(k, v)| cell(row, k).as_deref() == Some(v.as_str()))
        })?;
        let mut out = String::new();
        let mut rest = fix.template.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let name = &rest[open + 1..open + close];
            let is_hole = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            out.push_str(&rest[..open]);
            if is_hole {
                out.push_str(&cell(row, name)?.replace('\'', "''"));
            } else {
                out.push_str(&rest[open..=open + close]);
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
}

/// What identifies a finding across runs: the control, the credential's kind and its id
/// (`id`, else `token_id`); a row with neither is identified by all its values.
pub fn finding_key(control: &str, row: &Map<String, Value>) -> String {
    let kind = cell(row, "kind").unwrap_or_default();
    match cell(row, "id").or_else(|| cell(row, "token_id")) {
        Some(id) => format!("{control}|{kind}|{id}"),
        None => format!("{control}|{}", Value::Object(row.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CONTROL: &str = "-- Tokens that expire soon\n-- more words\n-- @id: t-exp\n\
        -- @severity: HIGH\n-- @tags: expiry, api_token\n-- @rationale: Outages\n\
        --   at night.\n-- @fix[kind=user_token]: EXEC roll @token_id='{id}'\n\
        -- @fix: DELETE FROM x WHERE id = '{id}' AND a = '{account_id}'\n-- @var: days=30\nSELECT 1";

    #[test]
    fn fields_continuations_and_defaults() {
        let m = parse(CONTROL, "f.sql:1").unwrap();
        assert_eq!(m.title, "Tokens that expire soon");
        assert_eq!(m.id, "t-exp");
        assert_eq!(m.severity, Severity::High);
        assert_eq!(m.tags, ["expiry", "api_token"]);
        assert_eq!(m.rationale, "Outages at night.");
        assert_eq!(m.vars, [("days".to_string(), "30".to_string())]);
        let plain = parse("SELECT 1", "f.sql:4").unwrap();
        assert_eq!(
            (plain.title.as_str(), plain.id.as_str()),
            ("f.sql:4", "f.sql:4")
        );
        assert_eq!(plain.severity, Severity::Medium);
        assert!(
            parse("-- x\n-- @severity: urgent\nSELECT 1", "")
                .unwrap_err()
                .contains("urgent")
        );
        assert!(
            parse("-- x\n-- @owner: me\nSELECT 1", "")
                .unwrap_err()
                .contains("@owner")
        );
    }

    #[test]
    fn fixes_pick_by_condition_and_cannot_be_broken_out_of() {
        let m = parse(CONTROL, "").unwrap();
        let row = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            m.fix_for(&row(json!({"kind": "user_token", "id": "abc"})))
                .unwrap(),
            "EXEC roll @token_id='abc'"
        );
        assert_eq!(
            m.fix_for(&row(
                json!({"kind": "account_token", "id": "x' OR true --", "account_id": "a"})
            ))
            .unwrap(),
            "DELETE FROM x WHERE id = 'x'' OR true --' AND a = 'a'"
        );
        // A hole whose value is NULL gives no statement rather than a wrong one.
        assert_eq!(
            m.fix_for(&row(json!({"kind": "account_token", "id": "x"}))),
            None
        );
        assert_eq!(
            finding_key(
                "t-exp",
                &row(json!({"kind": "user_token", "id": "abc", "n": 1}))
            ),
            "t-exp|user_token|abc"
        );
    }
}
