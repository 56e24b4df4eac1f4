//! The values a client bound to a prepared query, turned into DataFusion's values, each
//! typed from where its `$n` stands, as PostgreSQL infers an untyped parameter: `LIMIT $1`
//! and `OFFSET $1` take an integer, `x = ANY($1)` an array. Clients such as node-postgres
//! send every value as untyped text, so the text must be read by the type its place needs;
//! an array's text is read here by PostgreSQL's rules (quotes, backslashes, `NULL`), never
//! kept with its quotes, which would silently match nothing.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, ParamValues, ScalarValue};
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters_with_server_types;
use datafusion_postgres::arrow_pg::datatypes::into_pg_type;
use datafusion_postgres::pgwire;
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::error::PgWireResult;

use super::encode;
use super::extended::Prepared;
use crate::error::Error;

/// A prepared query's plan with the portal's values in place of its parameters: what
/// DataFusion then optimises, so `WHERE id = $1` is pushed down as `id = '...'` is.
pub(super) fn bind_plan(
    plan: &LogicalPlan,
    portal: &Portal<Prepared>,
) -> PgWireResult<LogicalPlan> {
    let types = parameter_types(plan)?;
    // An array sent as text is read here (arrow-pg keeps its elements' quotes): arrow-pg
    // is told it is text, and its value is replaced below.
    let arrays: Vec<usize> = (0..portal.parameter_len())
        .filter(|&i| {
            matches!(types.get(i), Some(Some(DataType::List(_))))
                && !portal.parameter_format.is_binary(i)
        })
        .collect();
    let read_as: Vec<Option<DataType>> = types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if arrays.contains(&i) {
                Some(DataType::Utf8)
            } else {
                t.clone()
            }
        })
        .collect();
    let wire = wire_types(&read_as)?;
    let inferred: Vec<Option<&DataType>> = read_as.iter().map(Option::as_ref).collect();
    let wire_refs: Vec<Option<&Type>> = wire.iter().map(Some).collect();
    let mut values = match deserialize_parameters_with_server_types(portal, &inferred, &wire_refs)?
    {
        ParamValues::List(values) => values,
        ParamValues::Map(_) => return Err(encode::refusal("08P01", "named parameters".into())),
    };
    for i in arrays {
        if let (Some(DataType::List(item)), Some(Some(bytes))) =
            (&types[i], portal.parameters.get(i))
        {
            values[i] = array_value(bytes, item.data_type(), i + 1)?.into();
        }
    }
    plan.clone()
        .replace_params_with_values(&ParamValues::List(values))
        .map_err(|e| encode::wire_error(&Error::from(e)))
}

/// `plan` with a type given to each parameter that stands where an array goes
/// (`x = ANY($1)`, `x <> ALL($1)`, `$1::text[]`): an array of the compared value's type.
/// DataFusion leaves those untyped, and an untyped value is read as one string.
/// A parameter in such a place whose type cannot be told is refused (42P18), never guessed.
pub(super) fn type_array_parameters(plan: LogicalPlan) -> PgWireResult<LogicalPlan> {
    let (types, untyped) = array_parameter_types(&plan);
    if let Some(id) = untyped.iter().find(|id| !types.contains_key(*id)) {
        return Err(encode::refusal(
            "42P18",
            format!(
                "could not determine the data type of parameter {id}: cast it, e.g. {id}::text[]"
            ),
        ));
    }
    if types.is_empty() {
        return Ok(plan);
    }
    let typed = plan.transform_up_with_subqueries(|node| {
        let node = node.map_expressions(|e| {
            e.transform(|e| match &e {
                Expr::Placeholder(p) if p.field.is_none() && types.contains_key(&p.id) => {
                    let field = Arc::new(Field::new("", types[&p.id].clone(), true));
                    Ok(Transformed::yes(Expr::Placeholder(
                        Placeholder::new_with_field(p.id.clone(), Some(field)),
                    )))
                }
                _ => Ok(Transformed::no(e)),
            })
        })?;
        if node.transformed {
            node.map_data(LogicalPlan::recompute_schema)
        } else {
            Ok(node)
        }
    });
    typed
        .map(|t| t.data)
        .map_err(|e| encode::wire_error(&Error::from(e)))
}

/// The array types found for parameters in array places, and every parameter id seen in
/// such a place (typed or not).
fn array_parameter_types(plan: &LogicalPlan) -> (HashMap<String, DataType>, Vec<String>) {
    let mut types = HashMap::new();
    let mut seen = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        let schema: DFSchemaRef = match node.inputs().as_slice() {
            [input] => Arc::clone(input.schema()),
            _ => Arc::clone(node.schema()),
        };
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Some((id, ty)) = array_place(e, &schema) {
                    if let Some(ty) = ty {
                        types.entry(id.clone()).or_insert(ty);
                    }
                    seen.push(id);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    (types, seen)
}

/// An untyped parameter standing where an array goes in `e`, with the array type its
/// place gives it (None when the compared value has no type either). The places are those
/// DataFusion plans `ANY`/`ALL` into: `array_has($1, x)`, `array_min($1) < x`, and a cast.
fn array_place(e: &Expr, schema: &DFSchemaRef) -> Option<(String, Option<DataType>)> {
    let list_of = |x: &Expr| match x.get_type(schema.as_ref()) {
        Ok(DataType::Null) | Err(_) => None,
        Ok(t) => Some(DataType::List(Arc::new(Field::new_list_field(t, true)))),
    };
    match e {
        Expr::ScalarFunction(f) if f.name() == "array_has" => {
            let id = untyped(f.args.first()?)?;
            Some((id, list_of(f.args.get(1)?)))
        }
        Expr::BinaryExpr(b) => [(&b.left, &b.right), (&b.right, &b.left)]
            .into_iter()
            .find_map(|(side, other)| match side.as_ref() {
                Expr::ScalarFunction(f) if matches!(f.name(), "array_min" | "array_max") => {
                    Some((untyped(f.args.first()?)?, list_of(other)))
                }
                _ => None,
            }),
        Expr::Cast(c) if matches!(c.field.data_type(), DataType::List(_)) => {
            Some((untyped(&c.expr)?, Some(c.field.data_type().clone())))
        }
        _ => None,
    }
}

fn untyped(e: &Expr) -> Option<String> {
    match e {
        Expr::Placeholder(p) if p.field.is_none() => Some(p.id.clone()),
        _ => None,
    }
}

/// The plan's parameters in order ($1, $2, ...), with the types DataFusion inferred, and
/// `Int64` for a parameter that is a whole LIMIT or OFFSET (which DataFusion leaves untyped).
pub(super) fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let found = plan
        .get_parameter_types()
        .map_err(|e| encode::wire_error(&Error::from(e)))?;
    let counts = limit_parameters(plan);
    let mut ordered: Vec<(usize, Option<DataType>)> = found
        .into_iter()
        .filter_map(|(id, ty)| {
            let ty = ty.or_else(|| counts.contains(&id).then_some(DataType::Int64));
            Some((id.strip_prefix('$')?.parse().ok()?, ty))
        })
        .collect();
    ordered.sort_by_key(|(n, _)| *n);
    Ok(ordered.into_iter().map(|(_, ty)| ty).collect())
}

/// The ids of parameters that stand alone as a LIMIT or an OFFSET anywhere in the plan.
fn limit_parameters(plan: &LogicalPlan) -> Vec<String> {
    let mut ids = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Limit(limit) = node {
            for expr in [&limit.skip, &limit.fetch].into_iter().flatten() {
                if let Expr::Placeholder(p) = expr.as_ref() {
                    ids.push(p.id.clone());
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    ids
}

/// The PostgreSQL types the parameters are described with (`unknown` where untyped).
pub(super) fn wire_types(types: &[Option<DataType>]) -> PgWireResult<Vec<Type>> {
    types
        .iter()
        .map(|t| match t {
            Some(t) => into_pg_type(t),
            None => Ok(Type::UNKNOWN),
        })
        .collect()
}

/// `$n`'s text read as a one-dimensional PostgreSQL array of `item`.
fn array_value(bytes: &[u8], item: &DataType, n: usize) -> PgWireResult<ScalarValue> {
    let malformed = |why: &str| {
        encode::refusal(
            "22P02",
            format!(
                "malformed array literal in ${n}: {why} (an array is written {{a,\"b c\",NULL}})"
            ),
        )
    };
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8"))?;
    let elements = array_elements(text).map_err(|why| malformed(&why))?;
    let values = elements
        .into_iter()
        .map(|e| match e {
            None => ScalarValue::try_from(item),
            Some(s) => ScalarValue::try_from_string(s, item),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(&format!("an element is not {item}: {e}")))?;
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(
        &values, item,
    )))
}

/// The elements of a one-dimensional array literal (`{a,"b c",NULL}`), by PostgreSQL's
/// `array_in` rules: a quoted element keeps everything but its backslashes; an unquoted one
/// is trimmed, may escape with a backslash, and is NULL when it is the bare word `NULL`.
fn array_elements(text: &str) -> Result<Vec<Option<String>>, String> {
    let body = text.trim();
    if body.starts_with('[') {
        return Err("array bounds ([1:2]=) are not supported".into());
    }
    let inner = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or("an array starts with { and ends with }")?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        out.push(array_element(&mut chars)?);
        match chars.next() {
            None => return Ok(out),
            Some(',') => {}
            Some(c) => return Err(format!("unexpected {c:?} after an element")),
        }
    }
}

/// One element, up to (not including) the `,` that ends it.
fn array_element(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<Option<String>, String> {
    while chars.next_if(|c| c.is_whitespace()).is_some() {}
    let mut value = String::new();
    if chars.next_if_eq(&'"').is_some() {
        loop {
            match chars.next().ok_or("a quoted element is not closed")? {
                '"' => break,
                '\\' => value.push(chars.next().ok_or("a backslash ends the array")?),
                c => value.push(c),
            }
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        return Ok(Some(value));
    }
    let mut escaped = false;
    while let Some(c) = chars.next_if(|c| *c != ',') {
        match c {
            '{' | '}' | '"' => {
                return Err(format!(
                    "{c:?} inside an element (nested arrays are not supported)"
                ));
            }
            '\\' => {
                escaped = true;
                value.push(chars.next().ok_or("a backslash ends the array")?);
            }
            c => value.push(c),
        }
    }
    let trimmed = value.trim_end();
    if trimmed.is_empty() {
        return Err("an empty element (quote it: \"\")".into());
    }
    if !escaped && trimmed.eq_ignore_ascii_case("null") {
        return Ok(None);
    }
    Ok(Some(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Option<String>>, String> {
        array_elements(text)
    }

    fn some(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn arrays_are_read_as_postgresql_reads_them() {
        assert_eq!(
            read("{active,disabled}").unwrap(),
            some(&["active", "disabled"])
        );
        assert_eq!(
            read(r#"{"active","disabled"}"#).unwrap(),
            some(&["active", "disabled"])
        );
        assert_eq!(read(" { a , \"b c\" } ").unwrap(), some(&["a", "b c"]));
        assert_eq!(read("{}").unwrap(), Vec::<Option<String>>::new());
        assert_eq!(
            read("{NULL,\"NULL\",nu\\ll}").unwrap(),
            vec![None, Some("NULL".into()), Some("null".into())]
        );
        // What an attacker would send: quotes, backslashes and commas stay data.
        assert_eq!(
            read(r#"{"\\' OR true --","a\"b","x,y"}"#).unwrap(),
            some(&[r"\' OR true --", "a\"b", "x,y"])
        );
    }

    #[test]
    fn malformed_arrays_are_refused() {
        for bad in [
            "active",
            "{a,{b}}",
            "{\"a}",
            "{a,}",
            "{a\\",
            "[1:1]={a}",
            "{\"a\"b}",
        ] {
            assert!(read(bad).is_err(), "{bad} was read");
        }
    }
}
