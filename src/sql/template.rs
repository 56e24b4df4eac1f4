//! `{{ name }}` templates (StackQL style): replaced from the caller's variables before parsing.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Replaces every `{{ name }}` in `sql` with its value. A variable without a value
/// fails the statement, naming it, before anything is sent.
pub fn render(sql: &str, vars: &HashMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else { break };
        let name = rest[start + 2..start + 2 + len].trim();
        let valid = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-');
        out.push_str(&rest[..start]);
        if valid {
            let value = vars.get(name).ok_or_else(|| Error::MissingVariable { name: name.to_string() })?;
            out.push_str(value);
        } else {
            out.push_str(&rest[start..start + 4 + len]);
        }
        rest = &rest[start + 4 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The variable names a text uses, in order of first use.
pub fn variables(sql: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else { break };
        let name = rest[start + 2..start + 2 + len].trim().to_string();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
        rest = &rest[start + 4 + len..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_names_missing() {
        let vars = HashMap::from([("token_id".to_string(), "abc".to_string())]);
        assert_eq!(render("WHERE id = '{{ token_id }}'", &vars).unwrap(), "WHERE id = 'abc'");
        assert_eq!(render("x {{token_id}} y", &vars).unwrap(), "x abc y");
        let e = render("'{{ name }}'", &vars).unwrap_err();
        assert!(e.to_string().contains("--var name=VALUE"), "{e}");
        assert_eq!(variables("{{ a }} {{b}} {{ a }}"), vec!["a", "b"]);
    }
}
