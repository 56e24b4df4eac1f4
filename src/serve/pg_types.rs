//! A column's PostgreSQL type, one mapping for the wire, `pg_typeof` and
//! `information_schema`: arrow-pg's mapping from Arrow, with cfql's JSON columns as
//! `json`; and the SQL names PostgreSQL's `format_type` prints for them.

use datafusion::arrow::datatypes::Field;
use datafusion_postgres::arrow_pg::datatypes::into_pg_type;
use datafusion_postgres::pgwire::api::Type;

use crate::convert::is_json;

/// The PostgreSQL type of a column (TEXT where arrow-pg has no mapping).
pub(super) fn of(field: &Field) -> Type {
    if is_json(field) {
        return Type::JSON;
    }
    into_pg_type(field.data_type()).unwrap_or(Type::TEXT)
}

/// The name `format_type` gives `ty` (`timestamp with time zone`, `text[]`): what
/// `pg_typeof` prints and `information_schema.columns.data_type` holds (there, arrays
/// are `ARRAY`, see [`data_type`]).
pub(super) fn sql_name(ty: &Type) -> String {
    // PostgreSQL names an array type after its element: `_text`.
    if let Some(element) = ty.name().strip_prefix('_') {
        return format!("{}[]", base_sql_name(element));
    }
    base_sql_name(ty.name())
}

fn base_sql_name(name: &str) -> String {
    match name {
        "bool" => "boolean",
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "varchar" => "character varying",
        "bpchar" => "character",
        "timestamp" => "timestamp without time zone",
        "timestamptz" => "timestamp with time zone",
        "time" => "time without time zone",
        "timetz" => "time with time zone",
        other => other,
    }
    .to_string()
}

/// `information_schema.columns.data_type` of `ty`: the SQL name, `ARRAY` for arrays.
pub(super) fn data_type(ty: &Type) -> String {
    if ty.name().starts_with('_') {
        "ARRAY".into()
    } else {
        sql_name(ty)
    }
}

/// `information_schema.columns.udt_name` of `ty`: the type's own name (`_text` for an
/// array of text, as PostgreSQL names array types).
pub(super) fn udt_name(ty: &Type) -> String {
    ty.name().to_string()
}
