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
//! Data flows one way: SQL -> [`sql::parse`] -> DataFusion plan -> [`table`] provider ->
//! [`http`] client -> Arrow batches -> the caller (or the CLI's printer).

pub mod budget;
pub mod cancel;
pub mod catalog;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod convert;
pub mod engine;
pub mod error;
pub mod http;
pub mod listing;
pub mod output;
pub mod private_file;
pub mod provider;
mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sql;
mod suggest;
pub mod table;
mod write;

pub use cancel::Cancel;
pub use config::{Config, Credentials, FanoutErrors};
pub use error::{Error, Result, RowOutcome, RowState, Rows, WriteDetail};
pub use session::{Output, Session, WriteSummary, register};

/// Re-exports of DataFusion and Arrow, so embedders link the same versions.
pub use datafusion;
pub use datafusion::arrow;
