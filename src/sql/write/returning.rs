//! RETURNING: which columns a write statement's result has (StackQL's envelope members
//! included), and the default when the statement names none.

use datafusion::sql::sqlparser::ast::{Expr, SelectItem};

use crate::error::{Error, Result};
use crate::provider::{ColumnSpec, ColumnType, ResponseShape, Verb};
use crate::suggest::closest;
use crate::write::Target;

/// Envelope members RETURNING may name (StackQL style).
pub(super) const ENVELOPE: &[(&str, ColumnType)] = &[
    ("success", ColumnType::Boolean),
    ("errors", ColumnType::Json),
    ("messages", ColumnType::Json),
    ("result", ColumnType::Json),
];

/// The RETURNING clause of a statement.
pub(super) enum Returning {
    /// None given: the statement's default columns.
    Default,
    /// Column names (`*` for every column).
    Columns(Vec<String>),
}

impl Returning {
    /// Reads a RETURNING clause: column names or `*`.
    pub(super) fn parse(items: Option<&Vec<SelectItem>>) -> Result<Self> {
        let Some(items) = items else {
            return Ok(Returning::Default);
        };
        let mut cols = Vec::new();
        for it in items {
            match it {
                SelectItem::Wildcard(_) => cols.push("*".to_string()),
                SelectItem::UnnamedExpr(Expr::Identifier(i)) => {
                    cols.push(i.value.to_ascii_lowercase())
                }
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => cols.push(
                    p.last()
                        .map(|i| i.value.to_ascii_lowercase())
                        .unwrap_or_default(),
                ),
                other => {
                    return Err(Error::Syntax {
                        message: format!("RETURNING takes column names or *, found {other}"),
                    });
                }
            }
        }
        Ok(Returning::Columns(cols))
    }

    /// Whether the result needs more than the ids, scopes and envelope (then a DELETE
    /// must read its rows first).
    pub(super) fn needs_read(&self, target: &Target) -> bool {
        let spec = &target.resource.spec;
        match self {
            Returning::Default => false,
            Returning::Columns(cols) => cols.iter().any(|c| {
                let key = c == spec.id_column()
                    || spec.scope(c).is_some()
                    || spec.id.as_ref().is_some_and(|i| &i.param == c);
                !(key || ENVELOPE.iter().any(|(e, _)| e == c))
            }),
        }
    }
}

/// The columns of a write's result.
pub(super) fn result_columns(target: &Target, returning: &Returning) -> Result<Vec<ColumnSpec>> {
    match returning {
        Returning::Default => Ok(default_columns(target)),
        Returning::Columns(names) => names.iter().try_fold(Vec::new(), |mut out, n| {
            named_columns(target, n, &mut out)?;
            Ok(out)
        }),
    }
}

/// Without RETURNING: a DELETE shows what it deleted (keys and label), a roll the new
/// value, an UPDATE the object as it is now, a create every column (the secret too).
fn default_columns(target: &Target) -> Vec<ColumnSpec> {
    let spec = &target.resource.spec;
    let mut keys: Vec<ColumnSpec> = spec
        .columns
        .iter()
        .filter(|c| c.scope || c.name == spec.id_column())
        .cloned()
        .collect();
    match (target.verb, target.method.response) {
        (Verb::Delete, _) => {
            keys.extend(spec.label.as_deref().and_then(|l| spec.column(l)).cloned());
            keys
        }
        (_, ResponseShape::Value) => {
            keys.extend(
                target
                    .method
                    .result_column
                    .as_deref()
                    .and_then(|c| spec.column(c))
                    .cloned(),
            );
            keys
        }
        (Verb::Update, _) => spec.readable_columns().cloned().collect(),
        _ => spec.columns.clone(),
    }
}

fn named_columns(target: &Target, n: &str, out: &mut Vec<ColumnSpec>) -> Result<()> {
    let spec = &target.resource.spec;
    if n == "*" {
        out.extend(spec.columns.iter().cloned());
    } else if let Some(c) = spec.column(n) {
        out.push(c.clone());
    } else if let Some((name, ty)) = ENVELOPE.iter().find(|(e, _)| *e == n) {
        out.push(ColumnSpec::named(name, *ty));
    } else if let Some(id) = spec.id.as_ref().filter(|i| i.param == n) {
        // The id under the API's name for it (`token_id`), as StackQL allows.
        let mut c = spec
            .column(&id.column)
            .cloned()
            .unwrap_or_else(|| ColumnSpec::named(n, ColumnType::Utf8));
        c.name = n.to_string();
        out.push(c);
    } else {
        let columns: Vec<String> = spec
            .columns
            .iter()
            .map(|c| c.name.clone())
            .chain(ENVELOPE.iter().map(|e| e.0.to_string()))
            .collect();
        return Err(Error::UnknownColumn {
            context: Some(format!("RETURNING of {}", target.resource.qualified_name())),
            column: n.to_string(),
            suggestion: closest(n, columns.iter().map(String::as_str)).map(str::to_string),
            columns,
        });
    }
    Ok(())
}
