//! Fault injection: the `--faults` grammar, and the seeded decision made for each request.
//!
//! A spec is a comma-separated list of rules and settings:
//!
//! ```text
//! latency=50            add 50 ms to every request
//! 429=0.1               answer 10% of requests with 429 (Retry-After: retry-after)
//! 500#3                 answer the 3rd request with 500
//! 503@GET:/user/tokens#2   the 2nd GET /user/tokens (route template) gets 503
//! malformed=0.05        corrupt 5% of response bodies (after the request was processed)
//! drop-before#1         close the connection before processing the 1st request
//! drop-after@PUT:/user/tokens/{token_id}/value#1   process the 1st roll, then drop the connection
//! mistyped@POST:/user/tokens#1   process the 1st create, then answer with fields of the wrong
//!                       type (`*_at` / `*_on` times as "2024-01-01", booleans as "yes")
//! seed=7                seed of the probability draws (default 0)
//! retry-after=1         seconds in the Retry-After header of injected 429s (default 1)
//! ```
//!
//! Kinds: `latency`, `429`, `500`, `502`, `503`, `malformed`, `mistyped`, `drop-before`, `drop-after`.
//! `@ROUTE` is `METHOD:TEMPLATE` or just `TEMPLATE` (any method); `#N` counts requests of
//! that route (or of all requests when no route is given), starting at 1 when the
//! faults are installed.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Extra latency, in milliseconds.
    Latency(u64),
    /// An error status with a Cloudflare envelope (429, 500, 502, 503).
    Status(u16),
    /// A body that is not JSON, sent after the request was processed.
    Malformed,
    /// A valid envelope whose result has fields of the wrong type, after processing.
    Mistyped,
    /// Close the connection before the request is processed.
    DropBefore,
    /// Process the request, then close the connection without answering.
    DropAfter,
}

/// When a fault fires.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trigger {
    /// With this probability on each matching request.
    Probability(f64),
    /// On the Nth matching request (1-based).
    Nth(u64),
    /// On every matching request.
    Always,
}

/// One fault rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// Only requests with this method (`None`: any).
    pub method: Option<String>,
    /// Only requests of this route template, such as `/user/tokens/{token_id}` (`None`: any).
    pub route: Option<String>,
    /// When it fires.
    pub trigger: Trigger,
}

/// A set of fault rules plus their settings.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    /// The rules, checked in order.
    pub faults: Vec<Fault>,
    /// Seed of the probability draws.
    pub seed: u64,
    /// Seconds sent in `Retry-After` with injected 429s.
    pub retry_after: u64,
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            faults: Vec::new(),
            seed: 0,
            retry_after: 1,
        }
    }
}

/// A `--faults` spec that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpecError(pub String);

impl fmt::Display for FaultSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid --faults spec: {}", self.0)
    }
}

impl std::error::Error for FaultSpecError {}

impl FaultSpec {
    /// Parses a spec such as `latency=50,500#3,429@GET:/user/tokens=0.2,seed=7`.
    pub fn parse(spec: &str) -> Result<Self, FaultSpecError> {
        let mut out = FaultSpec::default();
        for raw in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let err = |why: &str| {
                FaultSpecError(format!(
                    "rule '{raw}': {why} (expected KIND[@[METHOD:]ROUTE](=P|#N), e.g. 500#3 or 429=0.1 or latency=50)"
                ))
            };
            if let Some(v) = raw.strip_prefix("seed=") {
                out.seed = v.parse().map_err(|_| err("seed must be a whole number"))?;
            } else if let Some(v) = raw.strip_prefix("retry-after=") {
                out.retry_after = v
                    .parse()
                    .map_err(|_| err("retry-after must be whole seconds"))?;
            } else {
                out.faults.push(parse_rule(raw).map_err(|why| err(&why))?);
            }
        }
        Ok(out)
    }
}

/// One rule: `KIND[@[METHOD:]ROUTE](=P|#N)`; `Err` says what is wrong with it.
fn parse_rule(raw: &str) -> Result<Fault, String> {
    let (head, trigger_part) = match raw.find(['=', '#']) {
        Some(i) => (&raw[..i], Some(&raw[i..])),
        None => (raw, None),
    };
    let (kind_s, route_s) = head
        .split_once('@')
        .map_or((head, None), |(k, r)| (k, Some(r)));
    let (method, route) = match route_s.map(|r| r.split_once(':').ok_or(r)) {
        None => (None, None),
        Some(Ok((m, t))) => (Some(m.to_ascii_uppercase()), Some(t.to_string())),
        Some(Err(r)) => (None, Some(r.to_string())),
    };
    if route.as_ref().is_some_and(|r| !r.starts_with('/')) {
        return Err("a route is a path template starting with '/'".into());
    }
    if kind_s == "latency" {
        let ms = trigger_part
            .and_then(|t| t.strip_prefix('='))
            .ok_or("latency needs =MILLISECONDS")?
            .parse::<u64>()
            .map_err(|_| "latency must be whole milliseconds")?;
        return Ok(Fault {
            kind: FaultKind::Latency(ms),
            method,
            route,
            trigger: Trigger::Always,
        });
    }
    Ok(Fault {
        kind: parse_kind(kind_s)?,
        method,
        route,
        trigger: parse_trigger(trigger_part)?,
    })
}

fn parse_kind(kind: &str) -> Result<FaultKind, String> {
    Ok(match kind {
        "429" => FaultKind::Status(429),
        "500" => FaultKind::Status(500),
        "502" => FaultKind::Status(502),
        "503" => FaultKind::Status(503),
        "malformed" => FaultKind::Malformed,
        "mistyped" => FaultKind::Mistyped,
        "drop-before" => FaultKind::DropBefore,
        "drop-after" => FaultKind::DropAfter,
        other => {
            return Err(format!(
                "unknown kind '{other}' (kinds: latency, 429, 500, 502, 503, malformed, mistyped, drop-before, drop-after)"
            ));
        }
    })
}

/// `=P` (a probability), `#N` (the Nth matching request), or nothing (always).
fn parse_trigger(t: Option<&str>) -> Result<Trigger, String> {
    match t {
        None => Ok(Trigger::Always),
        Some(t) if t.starts_with('=') => {
            let p: f64 = t[1..].parse().map_err(|_| "probability must be a number")?;
            if !(0.0..=1.0).contains(&p) {
                return Err("probability must be between 0 and 1".into());
            }
            Ok(Trigger::Probability(p))
        }
        Some(t) => match t[1..].parse::<u64>() {
            Ok(0) => Err("#N counts from 1".into()),
            Ok(n) => Ok(Trigger::Nth(n)),
            Err(_) => Err("#N must be a whole number".into()),
        },
    }
}

/// Faults in force, the seeded RNG that draws the probabilities, and the request
/// counts `#N` refers to (counted from when the faults were installed).
pub struct FaultState {
    spec: FaultSpec,
    rng: ChaCha8Rng,
    per_route: std::collections::HashMap<(String, String), u64>,
    total: u64,
}

/// The faults chosen for one request.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Decision {
    /// Extra milliseconds before answering.
    pub latency_ms: u64,
    /// Answer with this status instead of processing.
    pub status: Option<u16>,
    /// Corrupt the body after processing.
    pub malformed: bool,
    /// Give the result's fields the wrong types after processing.
    pub mistyped: bool,
    /// Drop before processing.
    pub drop_before: bool,
    /// Drop after processing.
    pub drop_after: bool,
}

impl FaultState {
    /// Faults from a spec.
    pub fn new(spec: FaultSpec) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(spec.seed);
        Self {
            spec,
            rng,
            per_route: Default::default(),
            total: 0,
        }
    }

    /// Seconds for injected `Retry-After`.
    pub fn retry_after(&self) -> u64 {
        self.spec.retry_after
    }

    /// Decides the faults of a request to `method` `route` (a route template).
    pub fn decide(&mut self, method: &str, route: &str) -> Decision {
        self.total += 1;
        let total_count = self.total;
        let route_count = {
            let c = self
                .per_route
                .entry((method.to_string(), route.to_string()))
                .or_insert(0);
            *c += 1;
            *c
        };
        let mut d = Decision::default();
        for f in &self.spec.faults {
            if f.method.as_deref().is_some_and(|m| m != method)
                || f.route.as_deref().is_some_and(|r| r != route)
            {
                continue;
            }
            let fires = match f.trigger {
                Trigger::Always => true,
                Trigger::Nth(n) => {
                    n == if f.route.is_some() {
                        route_count
                    } else {
                        total_count
                    }
                }
                Trigger::Probability(p) => self.rng.random_bool(p),
            };
            if !fires {
                continue;
            }
            match f.kind {
                FaultKind::Latency(ms) => d.latency_ms += ms,
                FaultKind::Status(s) => d.status = d.status.or(Some(s)),
                FaultKind::Malformed => d.malformed = true,
                FaultKind::Mistyped => d.mistyped = true,
                FaultKind::DropBefore => d.drop_before = true,
                FaultKind::DropAfter => d.drop_after = true,
            }
        }
        d
    }
}
