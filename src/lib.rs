//! cfql: SQL over Cloudflare API tokens and Access service tokens, on Apache DataFusion.
#![warn(missing_docs)]
//!
//! ```no_run
//! # async fn demo() -> cfql::Result<()> {
//! let session = cfql::Session::new(cfql::Config::from_env()?).await?;
//! let batches = session
//!     .sql("SELECT name, expires_on FROM cloudflare.user.tokens WHERE expires_on < now() + INTERVAL '30 days'")
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! The public surface is what an embedder needs: [`Session`] (cfql's statements, with
//! RETURNING, EXEC and dry runs), [`register`] (the `cloudflare` catalog in a
//! `SessionContext` of your own, where DataFusion's INSERT / UPDATE / DELETE work too),
//! [`Config`], [`Error`] and [`Output`]; [`script`] splits `.sql` files; the simulator
//! ([`sim`], feature `sim`) is what tests and `--demo` run against. Everything else is
//! internal: `ARCHITECTURE.md` maps it.

mod budget;
mod cancel;
mod catalog;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
mod connections;
mod convert;
mod engine;
mod error;
#[cfg(all(test, feature = "sim"))]
mod fuzz;
mod http;
mod json_text;
mod listing;
mod memory;
mod notes;
mod output;
mod pg_json;
mod pg_to_char;
mod policy_grants;
mod private_file;
mod provider;
#[cfg(feature = "serve")]
pub mod serve;
mod session;
#[cfg(feature = "sim")]
pub mod sim;
mod sql;
mod suggest;
mod table;
mod write;

pub use cancel::Cancel;
pub use config::{Config, Credentials, FanoutErrors};
pub use error::{
    ApiMessage, Error, RejectedRow, Result, RowOutcome, RowState, Rows, SetAction, WriteDetail,
};
pub use output::{Output, WriteSummary};
pub use session::{Session, register, register_connections};
pub use sql::parse::MAX_OPERATORS;

/// Splitting a `.sql` script into statements, as the CLI runs them.
pub mod script {
    pub use crate::sql::split::{ScriptStatement, split};
}

/// Re-exports of DataFusion and Arrow, so embedders link the same versions.
pub use datafusion;
pub use datafusion::arrow;
