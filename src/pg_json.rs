//! PostgreSQL's JSON casts and functions over cfql's JSON text, in the CLI and the
//! server alike: `::json` / `::jsonb` (a JSON column, sent as `json`), `json_typeof`,
//! `json_array_length` and `json_extract_path_text` (with their `jsonb_` names).
//! Invalid JSON is an error naming the value, never NULL standing in for one.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int32Builder, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast;
use serde_json::Value;

/// Plans `json` and `jsonb` as JSON text; every other type goes to `next`.
#[derive(Debug)]
pub(crate) struct JsonTypes {
    /// The planner this one wraps (datafusion-pg-catalog's, in the server).
    pub(crate) next: Option<Arc<dyn TypePlanner>>,
}

impl TypePlanner for JsonTypes {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> DfResult<Option<FieldRef>> {
        let json = match sql_type {
            ast::DataType::JSON | ast::DataType::JSONB => true,
            ast::DataType::Custom(name, args) if args.is_empty() => {
                let last = name.0.last().map(|p| p.to_string().to_lowercase());
                matches!(last.as_deref(), Some("json" | "jsonb"))
            }
            _ => false,
        };
        if json {
            let field =
                Field::new("", DataType::Utf8, true).with_metadata(crate::convert::json_metadata());
            return Ok(Some(Arc::new(field)));
        }
        match &self.next {
            Some(next) => next.plan_type_field(sql_type),
            None => Ok(None),
        }
    }
}

/// The functions of this module, under PostgreSQL's names.
pub(crate) fn udfs() -> Vec<ScalarUDF> {
    vec![
        JsonFn::udf(Kind::Typeof, 1),
        JsonFn::udf(Kind::ArrayLength, 1),
        JsonFn::udf(Kind::ExtractPathText, 0),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Kind {
    Typeof,
    ArrayLength,
    ExtractPathText,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonFn {
    kind: Kind,
    signature: Signature,
    aliases: Vec<String>,
}

impl JsonFn {
    /// `arity` 0: variadic (a path of keys after the JSON value).
    fn udf(kind: Kind, arity: usize) -> ScalarUDF {
        let signature = match arity {
            0 => Signature::variadic_any(Volatility::Immutable),
            n => Signature::any(n, Volatility::Immutable),
        };
        let jsonb = format!("jsonb_{}", Self::base_name(kind));
        ScalarUDF::new_from_impl(Self {
            kind,
            signature,
            aliases: vec![jsonb],
        })
    }

    fn base_name(kind: Kind) -> &'static str {
        match kind {
            Kind::Typeof => "typeof",
            Kind::ArrayLength => "array_length",
            Kind::ExtractPathText => "extract_path_text",
        }
    }
}

impl ScalarUDFImpl for JsonFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Typeof => "json_typeof",
            Kind::ArrayLength => "json_array_length",
            Kind::ExtractPathText => "json_extract_path_text",
        }
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind {
            Kind::ArrayLength => DataType::Int32,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if args.args.is_empty() {
            return Err(DataFusionError::Plan(format!(
                "{}() takes a JSON value",
                self.name()
            )));
        }
        // A value of `->` (a JSON union) is read as the JSON text it stands for.
        let texts: Vec<ArrayRef> = ColumnarValue::values_to_arrays(&args.args)?
            .iter()
            .map(|a| match crate::json_text::union_as_json_text(a) {
                Some(text) => Ok(text),
                None => cast(a, &DataType::Utf8),
            })
            .collect::<Result<_, _>>()?;
        let texts: Vec<&StringArray> = texts
            .iter()
            .map(|a| a.as_any().downcast_ref::<StringArray>())
            .collect::<Option<_>>()
            .ok_or_else(|| DataFusionError::Internal("JSON text expected".into()))?;
        let values = (0..args.number_rows).map(|row| parse(self.name(), texts[0], row));
        Ok(ColumnarValue::Array(match self.kind {
            Kind::Typeof => {
                let mut out = StringBuilder::new();
                for v in values {
                    out.append_option(v?.map(|v| type_name(&v)));
                }
                Arc::new(out.finish())
            }
            Kind::ArrayLength => array_lengths(self.name(), values)?,
            Kind::ExtractPathText => {
                let mut out = StringBuilder::new();
                for (row, v) in values.enumerate() {
                    let path: Option<Vec<&str>> = texts[1..]
                        .iter()
                        .map(|t| (!t.is_null(row)).then(|| t.value(row)))
                        .collect();
                    out.append_option(v?.zip(path).and_then(|(v, p)| extract_text(&v, &p)));
                }
                Arc::new(out.finish())
            }
        }))
    }
}

/// The JSON value at `row` (None for SQL NULL); invalid JSON is an error naming it.
fn parse(function: &str, texts: &StringArray, row: usize) -> DfResult<Option<Value>> {
    if texts.is_null(row) {
        return Ok(None);
    }
    let text = texts.value(row);
    serde_json::from_str(text).map(Some).map_err(|e| {
        let shown: String = text.chars().take(40).collect();
        DataFusionError::Execution(format!(
            "{function}: invalid JSON {shown:?}: {e}; pass a JSON value such as '{{\"a\": 1}}'"
        ))
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// PostgreSQL: the length of an array; an error for a scalar or an object.
fn array_lengths(
    function: &str,
    values: impl Iterator<Item = DfResult<Option<Value>>>,
) -> DfResult<ArrayRef> {
    let mut out = Int32Builder::new();
    for v in values {
        match v? {
            None => out.append_null(),
            Some(Value::Array(a)) => out.append_value(i32::try_from(a.len()).unwrap_or(i32::MAX)),
            Some(other) => {
                return Err(DataFusionError::Execution(format!(
                    "{function}: cannot get the array length of a{} {}",
                    if matches!(other, Value::Object(_) | Value::Array(_)) {
                        "n"
                    } else {
                        ""
                    },
                    type_name(&other)
                )));
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// The value at `path` as text: strings unquoted, JSON null as SQL NULL, others as JSON.
fn extract_text(v: &Value, path: &[&str]) -> Option<String> {
    let mut at = v;
    for key in path {
        at = match at {
            Value::Object(m) => m.get(*key)?,
            Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match at {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
