//! Functions clients call to look around the catalog, which neither DataFusion nor
//! datafusion-pg-catalog has: `pg_typeof` (DBeaver, psql users), `current_schemas`
//! (pgcli's completion), `_pg_expandarray` (pgjdbc's `getPrimaryKeys`, `getIndexInfo`,
//! `getBestRowIdentifier`), the visibility tests of psql's and pgcli's `\df` / `\dT`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

/// Registers the functions in `ctx`.
pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(PgTypeof::default()));
    ctx.register_udf(ScalarUDF::new_from_impl(CurrentSchemas::default()));
    ctx.register_udf(ScalarUDF::new_from_impl(ExpandArray::default()));
}

/// `pg_typeof(x)`: the PostgreSQL name of `x`'s type, as `format_type` prints it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl Default for PgTypeof {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let field = args
            .arg_fields
            .first()
            .ok_or_else(|| DataFusionError::Plan("pg_typeof() takes one value".into()))?;
        let name = super::pg_types::sql_name(&super::pg_types::of(field));
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

/// `current_schemas(include_implicit)`: the search path (`"user"`, cfql's default
/// schema), after `pg_catalog` when implicit schemas are asked for.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSchemas {
    signature: Signature,
}

impl Default for CurrentSchemas {
    fn default() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Boolean], Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for CurrentSchemas {
    fn name(&self) -> &str {
        "current_schemas"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::new_list(DataType::Utf8, true))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let implicit = matches!(
            args.args.first(),
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
        );
        let mut names = Vec::new();
        if implicit {
            names.push(ScalarValue::Utf8(Some("pg_catalog".into())));
        }
        names.push(ScalarValue::Utf8(Some("user".into())));
        let list = ScalarValue::new_list_nullable(&names, &DataType::Utf8);
        Ok(ColumnarValue::Scalar(ScalarValue::List(list)))
    }
}

/// `information_schema._pg_expandarray(a)`: PostgreSQL's set-returning function of
/// `(x, n)` pairs. cfql serves no index or constraint, so the arrays pgjdbc expands
/// (`pg_index.indkey`) never have a row; an array of one element is its one pair, and
/// a longer one is refused rather than answered with its first element only.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for ExpandArray {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
            aliases: vec!["information_schema._pg_expandarray".into()],
        }
    }
}

fn pair_fields(element: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("x", element.clone(), true),
        Field::new("n", DataType::Int32, true),
    ])
}

fn element_type(list: &DataType) -> DataType {
    match list {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.data_type().clone()
        }
        other => other.clone(),
    }
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        "_pg_expandarray"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let element = args.first().map(element_type).unwrap_or(DataType::Null);
        Ok(DataType::Struct(pair_fields(&element)))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let element = args
            .arg_fields
            .first()
            .map(|f| element_type(f.data_type()))
            .unwrap_or(DataType::Null);
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Struct(pair_fields(&element)),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let list = arrays[0]
            .as_list_opt::<i32>()
            .ok_or_else(|| DataFusionError::Plan("_pg_expandarray() takes an array".into()))?;
        if list.iter().flatten().any(|a| a.len() > 1) {
            return Err(DataFusionError::NotImplemented(
                "_pg_expandarray() over an array of more than one element: cfql serve has no \
                 multi-column keys to expand"
                    .into(),
            ));
        }
        let element = element_type(list.data_type());
        let firsts: Vec<ArrayRef> = list
            .iter()
            .map(|a| match a {
                Some(a) if !a.is_empty() => a.slice(0, 1),
                _ => datafusion::arrow::array::new_null_array(&element, 1),
            })
            .collect();
        let refs: Vec<&dyn Array> = firsts.iter().map(|a| a.as_ref()).collect();
        let x = if refs.is_empty() {
            datafusion::arrow::array::new_empty_array(&element)
        } else {
            datafusion::arrow::compute::concat(&refs)?
        };
        let n: Int32Array = list
            .iter()
            .map(|a| a.filter(|a| !a.is_empty()).map(|_| 1))
            .collect();
        let pairs = StructArray::try_new(pair_fields(&element), vec![x, Arc::new(n)], None)?;
        Ok(ColumnarValue::Array(Arc::new(pairs)))
    }
}
