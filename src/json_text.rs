//! JSON values as JSON text in results. `policies->0` (datafusion-functions-json's `->`)
//! yields a union of the JSON kinds, which no PostgreSQL client can receive (every client
//! failed on it) and Arrow prints as `{str=allow}`. A query whose result has such a
//! column gets one more projection turning it into JSON text, as PostgreSQL's `->`
//! returns `json`: a string quoted (`"allow"`), numbers, booleans, arrays and objects as
//! written; a key that is not there is NULL. The column is marked as cfql's JSON columns
//! are, so `cfql serve` sends it as `json`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, StringBuilder, UnionArray,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UnionFields};
use datafusion::common::{Column, DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `plan` with its JSON-union columns turned into JSON text (the plan itself when it has
/// none, or is not a query's).
pub(crate) fn present(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    let is_query = !matches!(
        plan,
        LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
    );
    let any = plan
        .schema()
        .fields()
        .iter()
        .any(|f| is_json_union(f.data_type()));
    if !is_query || !any {
        return Ok(plan);
    }
    let udf = Arc::new(ScalarUDF::new_from_impl(JsonText::default()));
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let col = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            if is_json_union(field.data_type()) {
                udf.call(vec![col])
                    .alias_qualified(qualifier.cloned(), field.name())
            } else {
                col
            }
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

/// The union datafusion-functions-json returns: one of its kinds is marked as JSON.
fn is_json_union(ty: &DataType) -> bool {
    matches!(ty, DataType::Union(fields, _)
        if fields.iter().any(|(_, f)| f.metadata().contains_key("is_json")))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonText {
    signature: Signature,
}

impl Default for JsonText {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonText {
    fn name(&self) -> &str {
        "cfql_json_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let meta = crate::convert::json_metadata();
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, true).with_metadata(meta),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let array = args.args[0].clone().into_array(args.number_rows)?;
        let text = union_as_json_text(&array)
            .ok_or_else(|| DataFusionError::Internal("cfql_json_text: not a union".into()))?;
        Ok(ColumnarValue::Array(text))
    }
}

/// A JSON union array (what `->` yields) as JSON text; None when `array` is no union.
pub(crate) fn union_as_json_text(array: &ArrayRef) -> Option<ArrayRef> {
    let union = array.as_any().downcast_ref::<UnionArray>()?;
    let DataType::Union(fields, _) = union.data_type() else {
        return None;
    };
    let mut out = StringBuilder::new();
    for i in 0..union.len() {
        match text_at(union, fields, i) {
            Some(t) => out.append_value(t),
            None => out.append_null(),
        }
    }
    Some(Arc::new(out.finish()))
}

/// Row `i` of the union as JSON text, by the name of its kind.
fn text_at(union: &UnionArray, fields: &UnionFields, i: usize) -> Option<String> {
    let id = union.type_id(i);
    let name = fields.iter().find(|(t, _)| *t == id)?.1.name().as_str();
    let child = union.child(id);
    let at = union.value_offset(i);
    if child.is_null(at) {
        return None;
    }
    let any = child.as_any();
    Some(match name {
        "bool" => any.downcast_ref::<BooleanArray>()?.value(at).to_string(),
        "int" => any.downcast_ref::<Int64Array>()?.value(at).to_string(),
        "float" => serde_json::Number::from_f64(any.downcast_ref::<Float64Array>()?.value(at))
            .map_or("null".into(), |n| n.to_string()),
        "str" => serde_json::Value::String(any.downcast_ref::<StringArray>()?.value(at).into())
            .to_string(),
        "array" | "object" => any.downcast_ref::<StringArray>()?.value(at).to_string(),
        _ => return None,
    })
}
