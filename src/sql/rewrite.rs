//! AST rewrite of StackQL parameter names: `token_id` / `service_token_id` in a query
//! over a resource mean its `id` column (unless the table has a real column of that name).

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, Statement, visit_expressions_mut, visit_relations,
};

use super::parse::name_parts;
use crate::provider::Registry;

/// Renames id-param identifiers to the id column in every expression of `stmt`.
pub fn rename_id_params(stmt: &mut Statement, registry: &Registry) {
    let mut resources = Vec::new();
    let _ = visit_relations(stmt, |name| {
        if let Some(r) = registry.resolve(&name_parts(name)) {
            resources.push(r);
        }
        ControlFlow::<()>::Continue(())
    });
    let mut renames: HashMap<String, String> = HashMap::new();
    for r in &resources {
        if let Some(id) = &r.spec.id {
            renames.insert(id.param.clone(), id.column.clone());
        }
    }
    renames.retain(|param, _| !resources.iter().any(|r| r.spec.column(param).is_some()));
    if renames.is_empty() {
        return;
    }
    let _ = visit_expressions_mut(stmt, |e| {
        let rename = |i: &mut Ident| {
            if let Some(col) = renames.get(&i.value.to_ascii_lowercase()) {
                i.value = col.clone();
            }
        };
        match e {
            Expr::Identifier(i) => rename(i),
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last_mut() {
                    rename(last);
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}
