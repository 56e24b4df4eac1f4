//! The read path: tables, pushdown and exact call counts, errors.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_all_pages_at_fifty() {
    let sim = sim_with(1000).await;
    let s = session(&sim).await;
    let b = s.sql("SELECT id, name, expires_on FROM cloudflare.user.tokens").await.unwrap();
    assert_eq!(rows(&b), 1000);
    assert_eq!(sim.count("GET", "/user/tokens"), 20);
}
