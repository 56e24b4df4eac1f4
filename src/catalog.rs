//! The `cloudflare` DataFusion catalog: a schema per service (plus StackQL alias names),
//! a table per resource (plus aliases), and the manifest-defined views.

use std::sync::Arc;

use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::prelude::SessionContext;

use crate::engine::Engine;
use crate::error::Result;
use crate::provider::CATALOG;
use crate::table::ResourceTable;
use crate::table::dml::DmlGuard;

/// Registers the `cloudflare` catalog (tables and views) into `ctx`.
pub fn register_catalog(ctx: &SessionContext, engine: &Arc<Engine>) -> Result<()> {
    let catalog = Arc::new(MemoryCatalogProvider::new());
    let mut schemas = Vec::new();
    for svc in engine.registry.services() {
        let schema = Arc::new(MemorySchemaProvider::new());
        for resource in engine
            .registry
            .resources()
            .filter(|r| r.service == svc.service)
        {
            let names: Vec<String> = std::iter::once(&resource.spec.name)
                .chain(&resource.spec.aliases)
                .cloned()
                .collect();
            let table: Arc<dyn TableProvider> =
                Arc::new(ResourceTable::new(engine.clone(), resource));
            for name in &names {
                schema.register_table(name.clone(), table.clone())?;
            }
        }
        for name in std::iter::once(&svc.service).chain(&svc.aliases) {
            catalog.register_schema(name, schema.clone())?;
        }
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
            schema.register_table(
                v.name.clone(),
                Arc::new(ViewTable::new(plan, Some(v.sql.clone()))),
            )?;
        }
    }
    Ok(())
}
