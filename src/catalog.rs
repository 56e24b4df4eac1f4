//! The `cloudflare` DataFusion catalog: a schema per service, a table per resource, and
//! the manifest-defined views. StackQL's alias names (`user.user_tokens`,
//! `zero_trust.service_tokens`) resolve in SQL but are not listed: `information_schema`
//! (and any tool that browses it) sees each table once, under its canonical name, so a BI
//! sync never reads a table twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::prelude::SessionContext;

use crate::connections::Connections;
use crate::error::Result;
use crate::provider::CATALOG;
use crate::table::ResourceTable;
use crate::table::dml::DmlGuard;

/// Registers the `cloudflare` catalog (tables and views) into `ctx`.
pub fn register_catalog(ctx: &SessionContext, connections: &Arc<Connections>) -> Result<()> {
    let catalog = Arc::new(ServiceCatalog::default());
    let mut schemas = Vec::new();
    let registry = &connections.primary().registry;
    for svc in registry.services() {
        let schema = Arc::new(ServiceSchema::default());
        for resource in registry.resources().filter(|r| r.service == svc.service) {
            let table: Arc<dyn TableProvider> =
                Arc::new(ResourceTable::new(connections.clone(), resource.clone()));
            schema.add(&resource.spec.name, &resource.spec.aliases, table);
        }
        catalog.add(&svc.service, &svc.aliases, schema.clone());
        schemas.push((svc.clone(), schema));
    }
    ctx.register_catalog(CATALOG, catalog);
    // DataFusion's own UPDATE / DELETE on these tables must never act on more rows than
    // their WHERE names (see `table::dml`).
    ctx.add_analyzer_rule(Arc::new(DmlGuard));
    // Views are planned once their tables exist. Planning needs no I/O, so it is driven here.
    for (svc, schema) in schemas {
        for v in &svc.views {
            let plan = futures::executor::block_on(ctx.state().create_logical_plan(&v.sql))?;
            check_view_columns(&svc.service, v, &plan)?;
            let view = Arc::new(ViewTable::new(plan, Some(v.sql.clone())));
            schema.add(&v.name, &[], view);
        }
    }
    Ok(())
}

/// A view's documented columns must be what its query returns, name and type.
fn check_view_columns(
    service: &str,
    v: &crate::provider::ViewSpec,
    plan: &datafusion::logical_expr::LogicalPlan,
) -> Result<()> {
    if v.columns.is_empty() {
        return Ok(());
    }
    let got: Vec<(String, String)> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect();
    let want: Vec<(String, String)> = v
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.arrow().to_string()))
        .collect();
    if got != want {
        return Err(crate::error::Error::Manifest {
            file: format!("{service}.toml"),
            field: format!("views ({}).columns", v.name),
            message: format!("the query returns {got:?}, the manifest documents {want:?}"),
        });
    }
    Ok(())
}

/// Items listed under their canonical names, found under their aliases too.
#[derive(Debug)]
struct Named<T> {
    items: BTreeMap<String, T>,
    aliases: HashMap<String, String>,
}

impl<T> Default for Named<T> {
    fn default() -> Self {
        Self {
            items: BTreeMap::new(),
            aliases: HashMap::new(),
        }
    }
}

impl<T: Clone> Named<T> {
    fn add(&mut self, name: &str, aliases: &[String], item: T) {
        self.items.insert(name.to_string(), item);
        for a in aliases {
            self.aliases.insert(a.clone(), name.to_string());
        }
    }

    fn get(&self, name: &str) -> Option<T> {
        let canonical = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.items.get(canonical).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.items.keys().cloned().collect()
    }
}

/// The catalog: one schema per service.
#[derive(Debug, Default)]
struct ServiceCatalog {
    schemas: RwLock<Named<Arc<dyn SchemaProvider>>>,
    /// Schemas added beside the services (`pg_catalog`): these may be replaced.
    added: RwLock<std::collections::HashSet<String>>,
}

impl ServiceCatalog {
    fn add(&self, name: &str, aliases: &[String], schema: Arc<dyn SchemaProvider>) {
        self.schemas
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add(name, aliases, schema);
    }
}

impl CatalogProvider for ServiceCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.schemas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.schemas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
    }

    /// Adds (or replaces) a schema beside the services (the server's `pg_catalog`); a
    /// service's name (or alias) is never taken over.
    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        let mut schemas = self.schemas.write().unwrap_or_else(|p| p.into_inner());
        let mut added = self.added.write().unwrap_or_else(|p| p.into_inner());
        if schemas.get(name).is_some() && !added.contains(name) {
            return Err(DataFusionError::Plan(format!(
                "{name} is a schema of the cloudflare catalog and cannot be replaced"
            )));
        }
        let old = schemas.get(name);
        schemas.add(name, &[], schema);
        added.insert(name.to_string());
        Ok(old)
    }
}

/// A service: its resources' tables and its views.
#[derive(Debug, Default)]
struct ServiceSchema {
    tables: RwLock<Named<Arc<dyn TableProvider>>>,
}

impl ServiceSchema {
    fn add(&self, name: &str, aliases: &[String], table: Arc<dyn TableProvider>) {
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add(name, aliases, table);
    }
}

#[async_trait]
impl SchemaProvider for ServiceSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .is_some()
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot create table {name} in the cloudflare catalog: its tables are the API's resources (add one in providers/)"
        )))
    }
}
