//! The benchmarks built into the binary (`cfql check --benchmark NAME`), written in the
//! same control syntax as a user's `.sql` files, and `cfql check --list`.

use std::io::Write;
use std::process::ExitCode;

use super::meta;
use crate::sql::split::split;

/// (name, file name shown in reports, text).
const BENCHMARKS: &[(&str, &str, &str)] = &[(
    "credentials",
    "benchmarks/credentials.sql",
    include_str!("../../../benchmarks/credentials.sql"),
)];

/// The scripts of the named benchmarks, or the error naming the ones that exist.
pub fn benchmark_scripts(names: &[String]) -> Result<Vec<(String, String)>, String> {
    names
        .iter()
        .map(|n| {
            BENCHMARKS
                .iter()
                .find(|(name, ..)| name == n)
                .map(|(_, file, text)| (file.to_string(), text.to_string()))
                .ok_or_else(|| {
                    let known: Vec<&str> = BENCHMARKS.iter().map(|b| b.0).collect();
                    format!(
                        "--benchmark {n}: no such benchmark (built in: {})",
                        known.join(", ")
                    )
                })
        })
        .collect()
}

/// Prints every control of every built-in benchmark: benchmark, id, severity, tags and
/// title (its `@var` defaults filled in).
pub fn list() -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut rows = vec![[
        "benchmark".to_string(),
        "id".into(),
        "severity".into(),
        "tags".into(),
        "title".into(),
    ]];
    for (name, file, text) in BENCHMARKS {
        for st in split(text).0 {
            if !st
                .text
                .lines()
                .any(|l| l.trim_start().starts_with("SELECT") || l.trim_start().starts_with("WITH"))
            {
                continue;
            }
            let Ok(m) = meta::parse(&st.text, &format!("{file}:{}", st.line)) else {
                continue;
            };
            let mut title = m.title.clone();
            for (k, v) in &m.vars {
                title = title.replace(&format!("{{{{ {k} }}}}"), v);
            }
            rows.push([
                name.to_string(),
                m.id,
                m.severity.word().into(),
                m.tags.join(","),
                title,
            ]);
        }
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        if writeln!(out, "{}", line.join("  ").trim_end()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}
