//! Embedding cfql: start the in-process simulator, open a `Session`, run SQL and print
//! the Arrow batches. Point `Config` at the real API (`Config::from_env()`) in a real program.
//!
//! Run: cargo run --example embed

use cfql::arrow::util::pretty::print_batches;
use cfql::sim::{SimOptions, Simulator};
use cfql::{Config, Session};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimOptions::default()).await?;
    let config = Config::new(sim.base_url()).with_api_token(sim.admin_token());
    let session = Session::new(config).await?;
    let batches = session
        .sql(
            "SELECT kind, name, expires_at FROM cloudflare.audit.credentials \
             WHERE expires_at < now() + INTERVAL '30 days' ORDER BY expires_at LIMIT 10",
        )
        .await?;
    print_batches(&batches)?;

    // The same engine inside a DataFusion context you own (for BI tools and host programs).
    let ctx = cfql::datafusion::prelude::SessionContext::new();
    cfql::register(
        &ctx,
        Config::new(sim.base_url()).with_api_token(sim.admin_token()),
    )?;
    let df = ctx
        .sql("SELECT count(*) AS user_tokens FROM cloudflare.user.tokens")
        .await?;
    print_batches(&df.collect().await?)?;

    // DataFusion's own DML works there too: the expired tokens are disabled, one PUT each,
    // and DataFusion reports how many.
    let df = ctx
        .sql("UPDATE cloudflare.user.tokens SET status = 'disabled' WHERE expires_on < now()")
        .await?;
    print_batches(&df.collect().await?)?;
    Ok(())
}
