//! PostgreSQL functions that drivers call while they look around and that neither
//! DataFusion nor datafusion-pg-catalog has: `to_regtype` (psycopg, at connect),
//! `pg_get_serial_sequence`, `pg_collation_is_visible` and `json_build_object`
//! (SQLAlchemy's `get_columns`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int32Array, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

/// `session_user` / `current_user`: the user the connection logged in as.
pub(super) fn register_user(ctx: &SessionContext, user: &str) {
    let value = ScalarValue::Utf8(Some(user.to_string()));
    for name in ["session_user", "current_user"] {
        ctx.register_udf(Constant::udf(name, 0, value.clone()));
    }
}

/// `pg_backend_pid()`: the connection's own process id (the one its cancel key names).
pub(super) fn register_backend_pid(ctx: &SessionContext, pid: i32) {
    ctx.register_udf(Constant::udf(
        "pg_backend_pid",
        0,
        ScalarValue::Int32(Some(pid)),
    ));
}

/// Registers the functions in `ctx`.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(to_regtype());
    // No column of cfql's is a serial, and there is one collation, the default.
    ctx.register_udf(Constant::udf(
        "pg_get_serial_sequence",
        2,
        ScalarValue::Utf8(None),
    ));
    ctx.register_udf(Constant::udf(
        "pg_collation_is_visible",
        1,
        ScalarValue::Boolean(Some(true)),
    ));
    // Nothing of cfql's has a comment (psql's `\dn+`, `\d+`, `\l+`).
    for name in ["obj_description", "col_description", "shobj_description"] {
        ctx.register_udf(Constant::udf(name, 2, ScalarValue::Utf8(None)));
    }
    // The default schema is cfql's `user` (datafusion-pg-catalog says `public`, which
    // cfql does not have: SQLAlchemy's default schema would list nothing).
    let user = ScalarValue::Utf8(Some("user".into()));
    ctx.register_udf(Constant::udf("current_schema", 0, user));
    ctx.register_udf(ScalarUDF::new_from_impl(JsonBuildObject::default()));
    // psql's and pgcli's `\df` / `\dT`: every function and type of the catalog is
    // visible (one search path), and cfql keeps no signatures of PostgreSQL's own
    // functions (their argument and result types show empty).
    for name in ["pg_function_is_visible", "pg_type_is_visible"] {
        ctx.register_udf(Constant::udf(name, 1, ScalarValue::Boolean(Some(true))));
    }
    for name in [
        "pg_get_function_result",
        "pg_get_function_arguments",
        "pg_get_function_identity_arguments",
    ] {
        ctx.register_udf(Constant::udf(name, 1, ScalarValue::Utf8(None)));
    }
    // cfql serves no index (pgjdbc's `getIndexInfo` names each one's columns so).
    ctx.register_udf(Constant::udf("pg_get_indexdef", 3, ScalarValue::Utf8(None)));
}

/// `to_regtype(name)`: the OID of a built-in type, NULL for any other (psycopg looks up
/// `hstore` this way at connect; cfql has no extension types).
fn to_regtype() -> ScalarUDF {
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let names = ColumnarValue::values_to_arrays(args)?;
            let names = names[0]
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Plan("to_regtype takes text".into()))?;
            let oids: Int32Array = (0..names.len())
                .map(|i| {
                    (!names.is_null(i))
                        .then(|| builtin_type_oid(names.value(i)))
                        .flatten()
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(oids)))
        }),
    )
}

/// The OIDs of the types cfql's columns (and common casts) use.
fn builtin_type_oid(name: &str) -> Option<i32> {
    Some(match name.trim().trim_start_matches("pg_catalog.") {
        "bool" | "boolean" => 16,
        "int8" | "bigint" => 20,
        "int2" | "smallint" => 21,
        "int4" | "integer" | "int" => 23,
        "text" => 25,
        "oid" => 26,
        "json" => 114,
        "float4" | "real" => 700,
        "float8" | "double precision" => 701,
        "varchar" | "character varying" => 1043,
        "date" => 1082,
        "timestamp" | "timestamp without time zone" => 1114,
        "timestamptz" | "timestamp with time zone" => 1184,
        "numeric" => 1700,
        "uuid" => 2950,
        "jsonb" => 3802,
        _ => return None,
    })
}

/// `json_build_object(key, value, ...)`: a JSON object as text; text values as JSON
/// strings, numbers and booleans as such, NULL as null.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl Default for JsonBuildObject {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return Err(DataFusionError::Plan(
                "json_build_object takes pairs of keys and values".into(),
            ));
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let texts: Vec<ArrayRef> = arrays
            .iter()
            .map(|a| cast(a, &DataType::Utf8))
            .collect::<Result<_, _>>()?;
        let mut out = StringBuilder::new();
        for row in 0..args.number_rows {
            let mut object = serde_json::Map::new();
            for pair in 0..arrays.len() / 2 {
                let (k, v) = (&texts[2 * pair], &texts[2 * pair + 1]);
                let key = text_at(k, row).unwrap_or_default();
                object.insert(key, json_at(arrays[2 * pair + 1].data_type(), v, row));
            }
            out.append_value(serde_json::Value::Object(object).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn text_at(a: &ArrayRef, row: usize) -> Option<String> {
    let s = a.as_any().downcast_ref::<StringArray>()?;
    (!s.is_null(row)).then(|| s.value(row).to_string())
}

fn json_at(ty: &DataType, text: &ArrayRef, row: usize) -> serde_json::Value {
    let Some(t) = text_at(text, row) else {
        return serde_json::Value::Null;
    };
    if ty.is_numeric() || *ty == DataType::Boolean {
        serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t))
    } else {
        serde_json::Value::String(t)
    }
}

/// A function of any `arity` arguments whose answer is always `value`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: &'static str,
    signature: Signature,
    value: ScalarValue,
}

impl Constant {
    fn udf(name: &'static str, arity: usize, value: ScalarValue) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            name,
            signature: match arity {
                0 => Signature::nullary(Volatility::Immutable),
                n => Signature::any(n, Volatility::Immutable),
            },
            value,
        })
    }
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}
