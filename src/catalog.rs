//! The `cloudflare` DataFusion catalog: a schema per service (plus StackQL alias names),
//! a table per resource (plus aliases), and the manifest-defined views.

use std::sync::Arc;

use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::prelude::SessionContext;

use crate::engine::Engine;
use crate::error::Result;
use crate::provider::{CATALOG, Resource};
use crate::table::ResourceTable;

/// Registers the `cloudflare` catalog (tables and views) into `ctx`.
pub fn register_catalog(ctx: &SessionContext, engine: &Arc<Engine>) -> Result<()> {
    let catalog = Arc::new(MemoryCatalogProvider::new());
    let mut schemas = Vec::new();
    for svc in engine.registry.services() {
        let schema = Arc::new(MemorySchemaProvider::new());
        for r in &svc.resources {
            let resource = Resource { service: svc.service.clone(), spec: Arc::new(r.clone()) };
            let table: Arc<dyn TableProvider> = Arc::new(ResourceTable::new(engine.clone(), resource));
            for name in std::iter::once(&r.name).chain(&r.aliases) {
                schema.register_table(name.clone(), table.clone())?;
            }
        }
        for name in std::iter::once(&svc.service).chain(&svc.aliases) {
            catalog.register_schema(name, schema.clone())?;
        }
        schemas.push((svc.clone(), schema));
    }
    ctx.register_catalog(CATALOG, catalog);
    // Views are planned once their tables exist. Planning needs no I/O, so it is driven here.
    for (svc, schema) in schemas {
        for v in &svc.views {
            let plan = futures::executor::block_on(ctx.state().create_logical_plan(&v.sql))?;
            schema.register_table(v.name.clone(), Arc::new(ViewTable::new(plan, Some(v.sql.clone()))))?;
        }
    }
    Ok(())
}
