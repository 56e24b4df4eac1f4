//! What a PostgreSQL client expects of the catalog: `pg_catalog` (from
//! datafusion-pg-catalog, built from the same `cloudflare` catalog, so each table shows
//! once under its canonical name) and a `version()` a driver accepts.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;

use crate::error::{Error, Result};
use crate::provider::CATALOG;

/// The PostgreSQL version the server reports (`server_version`): the one whose catalog
/// datafusion-pg-catalog emulates.
pub(super) const SERVER_VERSION: &str = "16.6";

/// `server_version_num` of [`SERVER_VERSION`]: `16.6` is `160006`.
pub(super) fn server_version_num() -> String {
    let mut parts = SERVER_VERSION
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major * 10_000 + minor).to_string()
}

/// `version()`: PostgreSQL's form, which SQLAlchemy and pgjdbc parse
/// (`PostgreSQL 16.6 (cfql 0.1.0) ...`).
fn version_text() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (cfql {}) on DataFusion {}",
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION
    )
}

/// Adds `pg_catalog`, its functions and `version()` to a session's context.
pub(super) fn install(ctx: &SessionContext) -> Result<()> {
    setup_pg_catalog(ctx, CATALOG, EmptyContextProvider).map_err(Error::DataFusion)?;
    super::pg_overrides::install(ctx)?;
    super::information_schema::install(ctx)?;
    json_casts_over_oid_types(ctx);
    let text = version_text();
    let version = create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    );
    ctx.register_udf(version);
    super::functions::register(ctx);
    super::introspection::register(ctx);
    ctx.register_udf(super::settings::current_setting());
    Ok(())
}

/// `::json` / `::jsonb` ([`crate::pg_json::JsonTypes`]) in front of datafusion-pg-catalog's
/// planner of `regclass`-like types, which `setup_pg_catalog` put in place of cfql's.
fn json_casts_over_oid_types(ctx: &SessionContext) {
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion_postgres::datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner;
    let state = ctx.state_ref();
    let existing = state.read().clone();
    let planner = crate::pg_json::JsonTypes {
        next: Some(Arc::new(PgOidTypePlanner)),
    };
    *state.write() = SessionStateBuilder::new_from_existing(existing)
        .with_type_planner(Arc::new(planner))
        .build();
}
