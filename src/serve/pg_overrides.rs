//! The `pg_catalog` tables cfql serve answers itself, over datafusion-pg-catalog's: each
//! override names the clients that need it. The shape of each fix belongs upstream
//! (datafusion-pg-catalog keeps these tables as text snapshots of a real server's).
//!
//! - `pg_constraint` and `pg_index` with their array columns as arrays (`conkey`,
//!   `indkey`, ...): SQLAlchemy's `get_pk_constraint` / `get_indexes` and pandas'
//!   `read_sql_table` `unnest` them, pgjdbc's `getPrimaryKeys` / `getIndexInfo` expand
//!   them. cfql's tables declare no keys or indexes (the API enforces none a query could
//!   rely on), so both are empty: the system tables' own constraints are not served.
//! - `pg_settings` from [`super::settings`] (pgjdbc reads `max_index_keys` there before
//!   `getImportedKeys`).
//! - `pg_class` with `reloptions` and `relacl` (NULL: no storage options, default
//!   privileges): SQLAlchemy's `get_indexes` (so `MetaData.reflect` and pandas'
//!   `read_sql_table`) and pgjdbc's `getTablePrivileges` select them.
//! - `pg_database` with cfql's one database: datafusion-pg-catalog adds a `postgres`
//!   that refuses connections (psql's and pgcli's `\\l`, DBeaver's database list).
//! - `pg_cursors`, empty: psycopg reads it when a named cursor closes.
//! - `pg_proc` with its argument columns (`proargtypes`, `proallargtypes`,
//!   `proargmodes`, `proargnames`) as arrays: pgcli's completion casts them to
//!   `regtype[]` at every start (its traceback: "Cannot cast string '[2276]'").

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, AsArray, Int32Builder, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::provider::CATALOG;

/// Array columns of the overridden tables, with their element type (`int2` or `oid`).
const ARRAY_COLUMNS: &[(&str, DataType)] = &[
    ("conkey", DataType::Int16),
    ("confkey", DataType::Int16),
    ("confdelsetcols", DataType::Int16),
    ("conpfeqop", DataType::Int32),
    ("conppeqop", DataType::Int32),
    ("conffeqop", DataType::Int32),
    ("conexclop", DataType::Int32),
    ("indkey", DataType::Int16),
    ("indoption", DataType::Int16),
    ("indcollation", DataType::Int32),
    ("indclass", DataType::Int32),
];

/// Tables that are empty in cfql serve, with their array columns typed as arrays.
const EMPTY: &[&str] = &["pg_constraint", "pg_index"];

/// Replaces `pg_catalog` in `ctx` by one with cfql's overrides.
pub(super) fn install(ctx: &SessionContext) -> Result<()> {
    let catalog = ctx
        .catalog(CATALOG)
        .ok_or_else(|| Error::Config(format!("catalog {CATALOG} is not registered")))?;
    let inner = catalog
        .schema("pg_catalog")
        .ok_or_else(|| Error::Config("pg_catalog is not registered".into()))?;
    catalog
        .register_schema("pg_catalog", Arc::new(Overrides { inner }))
        .map_err(|e| Error::DataFusion(Box::new(e)))?;
    Ok(())
}

#[derive(Debug)]
struct Overrides {
    inner: Arc<dyn SchemaProvider>,
}

#[async_trait]
impl SchemaProvider for Overrides {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        if !names.iter().any(|n| n == "pg_cursors") {
            names.push("pg_cursors".into());
        }
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if name == "pg_settings" {
            let batch = super::settings::pg_settings()?;
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            return Ok(Some(Arc::new(table)));
        }
        if name == "pg_cursors" {
            return Ok(Some(empty(pg_cursors_schema())?));
        }
        let table = self.inner.table(name).await?;
        if name == "pg_proc"
            && let Some(t) = &table
        {
            return Ok(Some(pg_proc(t).await?));
        }
        if name == "pg_class"
            && let Some(t) = &table
        {
            return Ok(Some(pg_class(t.clone())?));
        }
        if name == "pg_database"
            && let Some(t) = &table
        {
            return Ok(Some(pg_database(t.clone())?));
        }
        match table {
            Some(t) if EMPTY.contains(&name) => Ok(Some(empty(arrays_typed(&t.schema()))?)),
            other => Ok(other),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        name == "pg_cursors" || self.inner.table_exist(name)
    }
}

fn empty(schema: SchemaRef) -> DfResult<Arc<dyn TableProvider>> {
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?))
}

/// `schema` with the columns of [`ARRAY_COLUMNS`] as lists of their element type.
fn arrays_typed(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(
            |f| match ARRAY_COLUMNS.iter().find(|(n, _)| n == f.name()) {
                Some((_, element)) => {
                    Field::new(f.name(), DataType::new_list(element.clone(), true), true)
                }
                None => f.as_ref().clone(),
            },
        )
        .collect();
    Arc::new(Schema::new(fields))
}

/// PostgreSQL's `pg_cursors` columns.
fn pg_cursors_schema() -> SchemaRef {
    use datafusion::arrow::datatypes::TimeUnit;
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("statement", DataType::Utf8, true),
        Field::new("is_holdable", DataType::Boolean, true),
        Field::new("is_binary", DataType::Boolean, true),
        Field::new("is_scrollable", DataType::Boolean, true),
        Field::new(
            "creation_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]))
}

/// The argument columns of `pg_proc`, kept as text by datafusion-pg-catalog (`2276 25`,
/// `[2276]`, `['v']`), with their element type.
const PROC_ARRAYS: &[(&str, DataType)] = &[
    ("proargtypes", DataType::Int32),
    ("proallargtypes", DataType::Int32),
    ("proargmodes", DataType::Utf8),
    ("proargnames", DataType::Utf8),
];

/// `pg_proc` with [`PROC_ARRAYS`] as arrays, converted once per process.
async fn pg_proc(inner: &Arc<dyn TableProvider>) -> DfResult<Arc<dyn TableProvider>> {
    static CONVERTED: tokio::sync::OnceCell<Arc<MemTable>> = tokio::sync::OnceCell::const_new();
    let table = CONVERTED
        .get_or_try_init(|| async {
            let mem = inner
                .downcast_ref::<MemTable>()
                .ok_or_else(|| DataFusionError::Internal("pg_proc is not in memory".into()))?;
            let mut batches = Vec::new();
            for partition in &mem.batches {
                for b in partition.read().await.iter() {
                    batches.push(proc_arrays(b)?);
                }
            }
            let schema = batches
                .first()
                .map(|b| b.schema())
                .unwrap_or_else(|| inner.schema());
            Ok::<_, DataFusionError>(Arc::new(MemTable::try_new(schema, vec![batches])?))
        })
        .await?;
    Ok(table.clone())
}

fn proc_arrays(batch: &RecordBatch) -> DfResult<RecordBatch> {
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, column) in schema.fields().iter().zip(batch.columns()) {
        let array_of = PROC_ARRAYS.iter().find(|(n, _)| n == f.name());
        match (array_of, column.as_string_opt::<i32>()) {
            (Some((_, element)), Some(text)) => {
                fields.push(Field::new(
                    f.name(),
                    DataType::new_list(element.clone(), true),
                    true,
                ));
                columns.push(text_arrays(text, element)?);
            }
            _ => {
                fields.push(f.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Each text of `texts` (`2276 25`, `[2276, 25]`, `['v', 'o']`) as a list of `element`.
fn text_arrays(texts: &StringArray, element: &DataType) -> DfResult<ArrayRef> {
    let items = |t: &str| -> Vec<String> {
        t.trim_matches(|c| matches!(c, '[' | ']' | '{' | '}'))
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    Ok(match element {
        DataType::Int32 => {
            let mut b = ListBuilder::new(Int32Builder::new());
            for t in texts.iter() {
                match t {
                    None => b.append_null(),
                    Some(t) => {
                        for item in items(t) {
                            b.values().append_option(item.parse::<i32>().ok());
                        }
                        b.append(true);
                    }
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for t in texts.iter() {
                match t {
                    None => b.append_null(),
                    Some(t) => {
                        for item in items(t) {
                            b.values().append_value(item);
                        }
                        b.append(true);
                    }
                }
            }
            Arc::new(b.finish())
        }
    })
}

/// `pg_class` with the NULL columns it lacks (`reloptions`, `relacl`), as a view.
fn pg_class(inner: Arc<dyn TableProvider>) -> DfResult<Arc<dyn TableProvider>> {
    use datafusion::catalog::default_table_source::provider_as_source;
    use datafusion::catalog::view::ViewTable;
    use datafusion::logical_expr::{LogicalPlanBuilder, cast, col, lit};
    use datafusion::scalar::ScalarValue;
    let mut columns: Vec<_> = inner
        .schema()
        .fields()
        .iter()
        .map(|f| col(datafusion::common::Column::new_unqualified(f.name())))
        .collect();
    let text_array = DataType::new_list(DataType::Utf8, true);
    for name in ["reloptions", "relacl"] {
        columns.push(cast(lit(ScalarValue::Null), text_array.clone()).alias(name));
    }
    let plan = LogicalPlanBuilder::scan("pg_class", provider_as_source(inner), None)?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `pg_database` with cfql's database only, as a view.
fn pg_database(inner: Arc<dyn TableProvider>) -> DfResult<Arc<dyn TableProvider>> {
    use datafusion::catalog::default_table_source::provider_as_source;
    use datafusion::catalog::view::ViewTable;
    use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
    let plan = LogicalPlanBuilder::scan("pg_database", provider_as_source(inner), None)?
        .filter(col("datname").eq(lit(CATALOG)))?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}
