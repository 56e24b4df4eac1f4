//! The functions that can build one huge value from a small statement (`repeat('x',
//! 2147483647)`, `lpad`, `rpad`), bounded by the server's per-statement memory limit:
//! DataFusion's memory pool sees what operators reserve, not what a function allocates, so
//! each is wrapped to refuse, before it allocates, a result larger than the limit. The
//! optimizer folds constant calls through the same code, so the refusal comes at planning.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::kernels::{cast, length};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use datafusion::prelude::SessionContext;

use crate::memory::exhausted;

/// Wraps `repeat`, `lpad` and `rpad` of `ctx` so no call builds more than `limit` bytes.
pub(super) fn install(ctx: &SessionContext, limit: usize) {
    let functions = ctx.state().scalar_functions().clone();
    for (name, size) in [
        ("repeat", Size::Repeat),
        ("lpad", Size::Pad),
        ("rpad", Size::Pad),
    ] {
        if let Some(inner) = functions.get(name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Bounded {
                inner: inner.clone(),
                limit,
                size,
            }));
        }
    }
}

/// How a function's result size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Size {
    /// `repeat(text, n)`: the text's bytes times n, per row.
    Repeat,
    /// `lpad(text, n [, fill])`: n characters (up to 4 bytes each), per row.
    Pad,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    limit: usize,
    size: Size,
}

impl Bounded {
    /// The bytes the call would build for all its rows (saturating), from its arguments.
    fn bytes(&self, args: &ScalarFunctionArgs) -> DfResult<u64> {
        let rows = args.number_rows;
        let (Some(first), Some(second)) = (args.args.first(), args.args.get(1)) else {
            return Ok(0);
        };
        let counts = cast::cast(&second.to_array(rows)?, &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        let unit: Option<Arc<dyn Array>> = match self.size {
            Size::Repeat => {
                let text = first.to_array(rows)?;
                Some(cast::cast(&length::length(&text)?, &DataType::Int64)?)
            }
            Size::Pad => None,
        };
        let mut total: u64 = 0;
        for row in 0..rows {
            if counts.is_null(row) {
                continue;
            }
            let n = counts.value(row).max(0) as u64;
            let per = match &unit {
                Some(lengths) => {
                    let lengths = lengths.as_primitive::<Int64Type>();
                    if lengths.is_null(row) {
                        0
                    } else {
                        lengths.value(row).max(0) as u64
                    }
                }
                None => 4,
            };
            total = total.saturating_add(n.saturating_mul(per));
        }
        Ok(total)
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if self.bytes(&args)? > self.limit as u64 {
            return Err(exhausted(
                &format!(
                    "{}() would build it; cfql serve --statement-memory-limit",
                    self.name()
                ),
                self.limit,
            ));
        }
        self.inner.invoke_with_args(args)
    }
}
