//! Fuzzing of everything that parses user text: the statement splitter, the sqlparser
//! extension (EXEC, REPLACE, SHOW, DESCRIBE, SET), templates, `--faults` specs and profile
//! files. Seeded and bounded in `cargo test`; the assertion is that nothing panics.
//!
//! Long run (the figure in the closing note):
//! `CFQL_FUZZ_INPUTS=2000000 cargo test --release --lib fuzz -- --nocapture`

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use crate::Config;
use crate::provider::Registry;
use crate::sim::FaultSpec;
use crate::sql::{parse, split, template};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const STATEMENTS: &[&str] = &[
    "EXEC cloudflare.user.tokens.update_value @token_id = 'abc'",
    "EXEC /* c */ cloudflare.user.tokens.roll -- x\n @token_id = (SELECT id FROM cloudflare.user.tokens WHERE expires_on < now() + INTERVAL '7 days')",
    "EXEC cloudflare.access.service_tokens.rotate @account_id='a' @service_token_id='b' @@json='{\"previous_client_secret_expires_at\": \"2030-01-01T00:00:00Z\"}'",
    "REPLACE cloudflare.user.tokens SET name = 'x', policies = '[]' WHERE token_id = '{{ token_id }}' RETURNING errors, result",
    "SHOW SERVICES",
    "SHOW RESOURCES IN cloudflare.user",
    "SHOW METHODS IN cloudflare.access.service_tokens",
    "DESCRIBE EXTENDED cloudflare.accounts.tokens",
    "SET cfql.dry_run = true",
    "SET ééé = 1",
    "SELECT id, policies->0->>'effect' FROM cloudflare.user.tokens WHERE name LIKE '%ci%' ORDER BY expires_on LIMIT 5",
    "INSERT INTO cloudflare.user.tokens (name, policies) VALUES ('a', '[{\"effect\":\"allow\"}]') RETURNING *",
    "DELETE FROM cloudflare.access.service_tokens WHERE account_id = 'a' AND id IN ('x', 'y') ORDER BY name LIMIT 1",
    "UPDATE cloudflare.user.tokens SET status = 'disabled' WHERE status = 'active' ORDER BY last_used_on LIMIT {{ n }}",
    "EXPLAIN DELETE FROM cloudflare.user.tokens WHERE true",
    "SELECT 'it''s; not -- a comment' AS x; SELECT \"q\"\"x\" FROM t /* ; */;",
];

const FAULTS: &[&str] = &[
    "latency=50,500#3,429@GET:/user/tokens=0.2,seed=7",
    "drop-after@PUT:/user/tokens/{token_id}/value#1,retry-after=18446744073709551615",
    "malformed=0.05,mistyped@POST:/user/tokens#2,drop-before#1",
];

const PROFILES: &[&str] = &[
    "[default]\napi_token = \"x\"\nconcurrency = 4\nrate_window_secs = 300\n",
    "[prod]\nemail = \"a@b\"\napi_key = \"k\"\nfanout_errors = \"warn\"\nmax_pages = 3\nmax_response_mb = 1\n",
    "[default]\nrate_window_secs = 20000000000\nconcurrency = 18446744073709551615\n",
];

/// Pieces a mutation inserts: the characters and words the parsers treat specially.
const PIECES: &[&str] = &[
    "'",
    "\"",
    "''",
    "{{",
    "}}",
    "{{ x }}",
    "@",
    "@@json=",
    ";",
    "--",
    "/*",
    "*/",
    "(",
    ")",
    ",",
    "=",
    ".",
    "é",
    "ß",
    "\u{1F600}",
    "\0",
    "\n",
    " ",
    "\\",
    "$$",
    "SELECT",
    "EXEC",
    "cfql.",
    "cloudflare.user.tokens",
    "#",
    "=0.5",
    "@GET:",
    "[",
    "]",
    "=\"",
    "%FF",
    "9999999999999999999999",
];

fn mutate(rng: &mut StdRng, seeds: &[&str]) -> String {
    let mut s: Vec<char> = seeds[rng.random_range(0..seeds.len())].chars().collect();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=s.len());
        match rng.random_range(0..5) {
            0 => s
                .splice(at..at, PIECES[rng.random_range(0..PIECES.len())].chars())
                .for_each(drop),
            1 if !s.is_empty() => {
                let end = (at + rng.random_range(1..8)).min(s.len());
                s.drain(at.min(end)..end);
            }
            2 => s.truncate(at),
            3 => {
                let other: Vec<char> = seeds[rng.random_range(0..seeds.len())].chars().collect();
                let from = rng.random_range(0..=other.len());
                s.splice(at..at, other[from..].iter().copied())
                    .for_each(drop);
            }
            _ => s.insert(
                at.min(s.len()),
                char::from_u32(rng.random_range(0x20..0x3000)).unwrap_or('x'),
            ),
        }
    }
    s.into_iter().collect()
}

fn inputs() -> usize {
    std::env::var("CFQL_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Runs `target` on `inputs()` mutated inputs; fails naming the input that panicked.
fn fuzz(name: &str, seeds: &[&str], seed: u64, mut target: impl FnMut(&str)) {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let n = inputs();
    for i in 0..n {
        let input = mutate(&mut rng, seeds);
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            panic!("{name}: input #{i} panicked: {input:?}");
        }
    }
    println!(
        "fuzz {name}: {n} inputs in {:.2}s, no panic",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn fuzz_statement_parsing() {
    let registry = Registry::embedded().unwrap();
    fuzz("split+parse", STATEMENTS, 1, |input| {
        for st in split::split(input).0 {
            let _ = parse::parse(&st.text, &registry);
        }
        let _ = parse::parse(input, &registry);
    });
}

#[test]
fn fuzz_templates() {
    let vars: HashMap<String, String> = [("x", "1"), ("token_id", "a'b"), ("n", "5")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    fuzz("template", STATEMENTS, 2, |input| {
        let _ = template::render(input, &vars);
    });
}

#[test]
fn fuzz_fault_specs_and_profiles() {
    fuzz("faults", FAULTS, 3, |input| {
        let _ = FaultSpec::parse(input);
    });
    fuzz("profile", PROFILES, 4, |input| {
        let _ = Config::from_profile_text(input, None, Path::new("fuzz.toml")).map(|c| c.check());
        let _ = Config::from_profile_text(input, Some("prod"), Path::new("fuzz.toml"));
    });
}
