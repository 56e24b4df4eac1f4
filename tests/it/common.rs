//! Shared helpers: a simulator per test, sessions pointed at it, and result readers.

use cfql::arrow::array::{Array, AsArray};
use cfql::arrow::record_batch::RecordBatch;
use cfql::sim::{SeedOptions, SimOptions, Simulator};
use cfql::{Config, Session};

/// A simulator with `tokens` user tokens and default everything else.
pub async fn sim_with(tokens: usize) -> Simulator {
    sim_opts(SeedOptions {
        tokens,
        ..SeedOptions::default()
    })
    .await
}

/// A simulator with these seed options.
pub async fn sim_opts(seed: SeedOptions) -> Simulator {
    Simulator::start(SimOptions {
        seed,
        ..SimOptions::default()
    })
    .await
    .expect("simulator starts")
}

/// A config pointed at the simulator, authenticated with its admin token, quick retries,
/// and no response cache (tests count the calls each statement makes; the cache has tests
/// of its own that turn it on).
pub fn config(sim: &Simulator) -> Config {
    let mut c = Config::new(sim.base_url()).with_api_token(sim.admin_token());
    c.retry_base_delay = std::time::Duration::from_millis(5);
    c.cache_ttl = std::time::Duration::ZERO;
    c
}

/// A session on the simulator.
pub async fn session(sim: &Simulator) -> Session {
    Session::new(config(sim)).await.expect("session")
}

/// Total rows.
pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// A column's values as text (timestamps and numbers formatted by Arrow).
pub fn col(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let i = b
            .schema()
            .index_of(name)
            .unwrap_or_else(|_| panic!("no column {name} in {:?}", b.schema()));
        let a = b.column(i);
        let fmt =
            cfql::arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &Default::default())
                .unwrap();
        for r in 0..a.len() {
            out.push(if a.is_null(r) {
                None
            } else {
                Some(fmt.value(r).to_string())
            });
        }
    }
    out
}

/// A text column's non-null values.
pub fn strings(batches: &[RecordBatch], name: &str) -> Vec<String> {
    col(batches, name).into_iter().flatten().collect()
}

/// The single value of a one-row, one-column result.
pub fn scalar(batches: &[RecordBatch]) -> String {
    let b = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    let a = b.column(0);
    if let Some(s) = a.as_string_opt::<i32>() {
        return s.value(0).to_string();
    }
    cfql::arrow::util::display::ArrayFormatter::try_new(a.as_ref(), &Default::default())
        .unwrap()
        .value(0)
        .to_string()
}

/// Runs a test's body on the runtime every test uses: multi-threaded with two workers,
/// as the CI machine has two cores (the simulator and the engine share them).
pub fn on_runtime(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(test)
}

/// Asserts that `text` contains each of the `parts`, showing the whole text when not.
macro_rules! assert_contains {
    ($text:expr, $($part:expr),+ $(,)?) => {{
        let text: &str = &$text;
        $(
            assert!(text.contains($part), "expected {:?} in:\n{}", $part, text);
        )+
    }};
}
