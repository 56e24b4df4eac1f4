//! `information_schema` as PostgreSQL's clients read it, in place of DataFusion's (which
//! names Arrow types: `Utf8`, `Timestamp(µs, "UTC")`). `columns.data_type` holds the SQL
//! name (`timestamp with time zone`, `ARRAY`) and `udt_name` PostgreSQL's own
//! (`timestamptz`, `_text`), the types the wire sends: Harlequin, Grafana's query
//! builder, Metabase's sync and dbt read these. `key_column_usage`,
//! `table_constraints`, `referential_constraints` and `constraint_column_usage` are
//! there and empty: cfql's tables declare no keys. Only cfql's own schemas are listed
//! (not `pg_catalog`'s tables).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProvider, MemTable, SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::TableType;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::provider::CATALOG;

const SCHEMA: &str = "information_schema";

/// The views this schema has.
const TABLES: &[&str] = &[
    "schemata",
    "tables",
    "columns",
    "views",
    "key_column_usage",
    "table_constraints",
    "referential_constraints",
    "constraint_column_usage",
];

/// Replaces DataFusion's `information_schema` in `ctx` by this one.
pub(super) fn install(ctx: &SessionContext) -> Result<()> {
    let catalog = ctx
        .catalog(CATALOG)
        .ok_or_else(|| Error::Config(format!("catalog {CATALOG} is not registered")))?;
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .catalog
        .information_schema = false;
    let schema = InformationSchema {
        catalog: catalog.clone(),
    };
    catalog
        .register_schema(SCHEMA, Arc::new(schema))
        .map_err(|e| Error::DataFusion(Box::new(e)))?;
    Ok(())
}

#[derive(Debug)]
struct InformationSchema {
    catalog: Arc<dyn CatalogProvider>,
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if !TABLES.contains(&name) {
            return Ok(None);
        }
        let rows = Rows::of(&self.catalog, name).await?;
        let batch = rows.batch()?;
        Ok(Some(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}

/// A view's rows as text or integer columns, in PostgreSQL's column order.
struct Rows {
    names: Vec<&'static str>,
    /// Columns holding integers (`ordinal_position`, ...); all others are text.
    integers: Vec<&'static str>,
    rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    fn new(names: &[&'static str], integers: &[&'static str]) -> Self {
        Self {
            names: names.to_vec(),
            integers: integers.to_vec(),
            rows: Vec::new(),
        }
    }

    async fn of(catalog: &Arc<dyn CatalogProvider>, view: &str) -> DfResult<Self> {
        let mut rows = match view {
            "schemata" => Self::new(
                &["catalog_name", "schema_name", "schema_owner", "sql_path"],
                &[],
            ),
            "tables" => Self::new(
                &[
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "table_type",
                    "is_insertable_into",
                    "is_typed",
                ],
                &[],
            ),
            "columns" => Self::new(COLUMNS, COLUMN_INTEGERS),
            "views" => Self::new(
                &[
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "view_definition",
                    "check_option",
                    "is_updatable",
                    "is_insertable_into",
                ],
                &[],
            ),
            "key_column_usage" | "constraint_column_usage" => Self::new(
                &[
                    "constraint_catalog",
                    "constraint_schema",
                    "constraint_name",
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "column_name",
                    "ordinal_position",
                    "position_in_unique_constraint",
                ],
                &["ordinal_position", "position_in_unique_constraint"],
            ),
            "table_constraints" => Self::new(
                &[
                    "constraint_catalog",
                    "constraint_schema",
                    "constraint_name",
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "constraint_type",
                    "is_deferrable",
                    "initially_deferred",
                    "enforced",
                ],
                &[],
            ),
            _ => Self::new(
                &[
                    "constraint_catalog",
                    "constraint_schema",
                    "constraint_name",
                    "unique_constraint_catalog",
                    "unique_constraint_schema",
                    "unique_constraint_name",
                    "match_option",
                    "update_rule",
                    "delete_rule",
                ],
                &[],
            ),
        };
        rows.fill(catalog, view).await?;
        Ok(rows)
    }

    /// The rows of `view` over cfql's schemas (the key views have none).
    async fn fill(&mut self, catalog: &Arc<dyn CatalogProvider>, view: &str) -> DfResult<()> {
        let text = |s: &str| Some(s.to_string());
        for schema_name in cfql_schemas(catalog) {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            if view == "schemata" {
                self.rows
                    .push(vec![text(CATALOG), text(&schema_name), text("cfql"), None]);
                continue;
            }
            let mut names = schema.table_names();
            names.sort();
            for table_name in names {
                let Some(table) = schema.table(&table_name).await? else {
                    continue;
                };
                let is_view = table.table_type() == TableType::View;
                let at = [text(CATALOG), text(&schema_name), text(&table_name)];
                match view {
                    "tables" => {
                        let kind = if is_view { "VIEW" } else { "BASE TABLE" };
                        self.rows
                            .push([&at[..], &[text(kind), text("NO"), text("NO")]].concat());
                    }
                    "views" if is_view => {
                        let rest = [None, text("NONE"), text("NO"), text("NO")];
                        self.rows.push([&at[..], &rest[..]].concat());
                    }
                    "columns" => {
                        for (i, f) in table.schema().fields().iter().enumerate() {
                            self.rows.push(column_row(&at, i + 1, f));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn batch(&self) -> DfResult<RecordBatch> {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (i, name) in self.names.iter().enumerate() {
            let values = self.rows.iter().map(|r| r.get(i).cloned().flatten());
            if self.integers.contains(name) {
                fields.push(Field::new(*name, DataType::Int32, true));
                let ints: Int32Array = values.map(|v| v.and_then(|v| v.parse().ok())).collect();
                arrays.push(Arc::new(ints));
            } else {
                fields.push(Field::new(*name, DataType::Utf8, true));
                arrays.push(Arc::new(values.collect::<StringArray>()));
            }
        }
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        Ok(RecordBatch::try_new(schema, arrays)?)
    }
}

/// cfql's schemas: the catalog's, without PostgreSQL's own.
fn cfql_schemas(catalog: &Arc<dyn CatalogProvider>) -> Vec<String> {
    let mut names: Vec<String> = catalog
        .schema_names()
        .into_iter()
        .filter(|s| s != "pg_catalog" && s != SCHEMA)
        .collect();
    names.sort();
    names
}

const COLUMNS: &[&str] = &[
    "table_catalog",
    "table_schema",
    "table_name",
    "column_name",
    "ordinal_position",
    "column_default",
    "is_nullable",
    "data_type",
    "character_maximum_length",
    "character_octet_length",
    "numeric_precision",
    "numeric_precision_radix",
    "numeric_scale",
    "datetime_precision",
    "interval_type",
    "udt_catalog",
    "udt_schema",
    "udt_name",
    "is_identity",
    "is_generated",
    "is_updatable",
];

const COLUMN_INTEGERS: &[&str] = &[
    "ordinal_position",
    "character_maximum_length",
    "character_octet_length",
    "numeric_precision",
    "numeric_precision_radix",
    "numeric_scale",
    "datetime_precision",
];

/// One row of `columns`, in [`COLUMNS`]' order.
fn column_row(at: &[Option<String>; 3], position: usize, f: &Field) -> Vec<Option<String>> {
    let text = |s: &str| Some(s.to_string());
    let ty = super::pg_types::of(f);
    let (precision, radix, scale) = match ty.name() {
        "int2" => (text("16"), text("2"), text("0")),
        "int4" => (text("32"), text("2"), text("0")),
        "int8" => (text("64"), text("2"), text("0")),
        "float4" => (text("24"), text("2"), None),
        "float8" => (text("53"), text("2"), None),
        _ => (None, None, None),
    };
    let datetime_precision = matches!(ty.name(), "timestamp" | "timestamptz" | "time" | "date")
        .then(|| if ty.name() == "date" { "0" } else { "6" })
        .and_then(text);
    let octets = (ty.name() == "text").then(|| "1073741824".to_string());
    let mut row = at.to_vec();
    row.extend([
        text(f.name()),
        Some(position.to_string()),
        None,
        text(if f.is_nullable() { "YES" } else { "NO" }),
        Some(super::pg_types::data_type(&ty)),
        None,
        octets,
        precision,
        radix,
        scale,
        datetime_precision,
        None,
        text(CATALOG),
        text("pg_catalog"),
        Some(super::pg_types::udt_name(&ty)),
        text("NO"),
        text("NEVER"),
        text("NO"),
    ]);
    row
}
