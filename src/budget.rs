//! The API budget. Cloudflare allows `rate_limit` calls per `rate_window` per user, counted
//! across every tool and the dashboard; one call past it blocks every call for a whole
//! window. So no call is sent unless the budget allows it: the server's `Ratelimit` headers
//! are the truth when present (they see other tools and processes; a small reserve is left
//! for them), else a local window of the calls this session sent. When the budget is spent,
//! or a 429 names a `Retry-After`, the statement waits (visibly) instead of failing, up to
//! `budget_wait` in all; past that it fails saying how long it would need.
//!
//! A refilling token bucket (such as `governor`) is the wrong model here: it allows a burst
//! of `limit` and then one call per `window / limit`, which trips Cloudflare's rule.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// Added to the local window: the server counts a call when it arrives, a little after it
/// was sent, so a call must age out of the local window a little later than the nominal end.
const ARRIVAL_MARGIN: Duration = Duration::from_millis(250);

/// A statement under way on a [`Budget`] (see [`Budget::begin_statement`]).
pub struct StatementGuard<'a> {
    budget: &'a Budget,
}

impl Drop for StatementGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.budget.state();
        st.active = st.active.saturating_sub(1);
    }
}

/// Told when a statement starts to wait for the budget: the line to show the user.
pub type NoticeFn = dyn Fn(&str) + Send + Sync;

/// The budget of one session (shared by its tables, statements and connections).
pub struct Budget {
    limit: u32,
    window: Duration,
    max_wait: Duration,
    state: Mutex<State>,
    notice: Mutex<Option<Arc<NoticeFn>>>,
}

#[derive(Default)]
struct State {
    /// When each call of the last window was sent (local accounting).
    sent: VecDeque<Instant>,
    /// The server's last word on the budget.
    server: Option<ServerView>,
    /// No call before this (a 429's Retry-After).
    paused_until: Option<Instant>,
    /// Time this statement has waited (distinct waits, not one per task).
    waited: Duration,
    /// The end of the wait this statement is in, if any.
    waiting_until: Option<Instant>,
    /// Calls sent in this statement.
    calls: u64,
    /// Calls sent and not yet answered (the server's last word may not count them).
    in_flight: u64,
    /// Statements under way (sessions and the server's connections share one budget).
    active: usize,
}

#[derive(Clone, Copy)]
struct ServerView {
    remaining: u64,
    reset_at: Instant,
    /// Calls the server may not have counted yet: sent since this view was read, plus
    /// those in flight when it was.
    sent_since: u64,
    /// Calls left to other tools: 2% of the server's quota (`Ratelimit-Policy`).
    reserve: u64,
    /// The server's quota and window, when it named them.
    policy: Option<(u64, Duration)>,
}

enum Decision {
    Go,
    Wait(Instant, &'static str),
}

impl Budget {
    /// `limit` calls per `window`; a statement waits at most `max_wait` in all.
    pub fn new(limit: u32, window: Duration, max_wait: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            max_wait,
            state: Mutex::default(),
            notice: Mutex::new(None),
        }
    }

    /// Where to tell the user that a statement waits.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    pub fn set_notice(&self, f: Option<Arc<NoticeFn>>) {
        *self.notice.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A statement starts: its waits are counted against `max_wait`, afresh unless other
    /// statements of this budget are under way (sessions side by side, the server's
    /// connections), whose count it then shares: a statement that began later never
    /// resets the count of one still waiting, so none waits past the ceiling. The
    /// statement ends when the guard drops.
    pub fn begin_statement(&self) -> StatementGuard<'_> {
        let mut st = self.state();
        if st.active == 0 {
            st.waited = Duration::ZERO;
            st.waiting_until = None;
            st.calls = 0;
        }
        st.active += 1;
        StatementGuard { budget: self }
    }

    /// Calls the budget allows now, by the server's view or the local window.
    pub fn available(&self) -> u64 {
        let now = Instant::now();
        let mut st = self.state();
        if let Some(sv) = st.server.filter(|sv| now < sv.reset_at) {
            return sv
                .remaining
                .saturating_sub(sv.sent_since)
                .saturating_sub(sv.reserve);
        }
        Self::forget_old(&mut st, now, self.window + ARRIVAL_MARGIN);
        u64::from(self.limit).saturating_sub(st.sent.len() as u64)
    }

    /// The time `calls` more calls need at least: whole windows beyond what is left now.
    pub fn time_for(&self, calls: u64) -> Duration {
        let beyond = calls.saturating_sub(self.available());
        let policy = self.state().server.and_then(|sv| sv.policy);
        let (quota, window) = policy.unwrap_or((u64::from(self.limit), self.window));
        window.saturating_mul(beyond.div_ceil(quota.max(1)) as u32)
    }

    /// Waits until the budget allows one call, then counts it. Fails with
    /// [`Error::BudgetWait`] when the statement would wait longer than `max_wait` in all,
    /// and with [`Error::Cancelled`] when `cancel` fires first (nothing was sent).
    pub async fn acquire(&self, cancel: Option<&Cancel>) -> Result<()> {
        loop {
            let now = Instant::now();
            let (until, why) = match self.decide(now) {
                Decision::Go => return Ok(()),
                Decision::Wait(until, why) => (until, why),
            };
            self.account_wait(now, until, why)?;
            let sleep = tokio::time::sleep_until(until);
            match cancel {
                None => sleep.await,
                Some(c) => tokio::select! {
                    _ = c.cancelled() => return Err(Error::Cancelled { what: "stopped while waiting for the API budget".into() }),
                    _ = sleep => {}
                },
            }
        }
    }

    fn decide(&self, now: Instant) -> Decision {
        let mut st = self.state();
        if let Some(p) = st.paused_until {
            if now < p {
                return Decision::Wait(p, "Cloudflare answered 429");
            }
            st.paused_until = None;
        }
        Self::forget_old(&mut st, now, self.window + ARRIVAL_MARGIN);
        match st.server {
            Some(sv) if now < sv.reset_at => {
                if sv.remaining.saturating_sub(sv.sent_since) <= sv.reserve {
                    return Decision::Wait(
                        sv.reset_at,
                        "the API budget is spent (Cloudflare's Ratelimit header)",
                    );
                }
                st.server = Some(ServerView {
                    sent_since: sv.sent_since + 1,
                    ..sv
                });
            }
            _ => {
                st.server = None;
                if st.sent.len() >= self.limit as usize {
                    let oldest = *st.sent.front().expect("non-empty at the limit");
                    return Decision::Wait(
                        oldest + self.window + ARRIVAL_MARGIN,
                        "the API budget is spent",
                    );
                }
            }
        }
        st.sent.push_back(now);
        st.calls += 1;
        st.in_flight += 1;
        Decision::Go
    }

    fn forget_old(st: &mut State, now: Instant, window: Duration) {
        while st
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            st.sent.pop_front();
        }
    }

    /// Tells the user something about the budget now (not after the statement).
    pub fn notice(&self, line: &str) {
        tracing::debug!("{line}");
        if let Some(f) = self
            .notice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            f(line);
        }
    }

    /// Before a statement's calls: says so when they need more than the budget has left,
    /// with the least time they will take.
    pub fn forecast(&self, what: &str, calls: u64) {
        let left = self.available();
        if calls > left {
            self.notice(&format!(
                "note: {what} needs at least {calls} API calls and the budget allows {left} now: expect at least {} of waiting",
                human(self.time_for(calls))
            ));
        }
    }

    /// Counts a wait against the statement's ceiling and tells the user once per wait.
    fn account_wait(&self, now: Instant, until: Instant, why: &str) -> Result<()> {
        let mut st = self.state();
        // A context that never says where statements begin (`cfql::register`): a wait
        // that ended a window ago belongs to an earlier statement.
        if st.waiting_until.is_some_and(|w| now > w + self.window) {
            st.waited = Duration::ZERO;
        }
        let already = st.waiting_until.filter(|w| *w >= until).is_some();
        if already {
            return Ok(());
        }
        let from = st.waiting_until.filter(|w| *w > now).unwrap_or(now);
        let added = until.saturating_duration_since(from);
        if st.waited + added > self.max_wait {
            return Err(Error::BudgetWait {
                needed: until.saturating_duration_since(now),
                ceiling: self.max_wait,
                why: why.to_string(),
            });
        }
        st.waited += added;
        st.waiting_until = Some(until);
        let calls = st.calls;
        drop(st);
        // A wait under a second (a window sliding by) is not worth a line.
        if until - now >= Duration::from_secs(1) {
            self.notice(&format!(
                "{why}: waiting {} before the next call ({calls} calls so far)",
                human(until - now)
            ));
        }
        Ok(())
    }

    /// A call counted by [`Budget::acquire`] got its answer (or none).
    pub fn complete(&self) {
        let mut st = self.state();
        st.in_flight = st.in_flight.saturating_sub(1);
    }

    /// Reads the server's budget headers (`Ratelimit: "default";r=R;t=T` and
    /// `Ratelimit-Policy: "burst";q=Q;w=W`) from an answer, before that call completes.
    /// An older answer arriving after a newer one does not raise what is left.
    pub fn observe(&self, ratelimit: Option<&str>, policy: Option<&str>) {
        let Some((remaining, reset)) = ratelimit.and_then(parse_ratelimit) else {
            return;
        };
        let policy = policy.and_then(parse_policy);
        let quota = policy.map_or(u64::from(self.limit), |p| p.0);
        let now = Instant::now();
        let mut st = self.state();
        let uncounted = st.in_flight.saturating_sub(1);
        let reset_at = now + Duration::from_secs(reset);
        let view = ServerView {
            remaining,
            reset_at,
            sent_since: uncounted,
            reserve: (quota / 50).max(1),
            policy,
        };
        st.server = match st.server {
            Some(old)
                if now < old.reset_at
                    && old.remaining.saturating_sub(old.sent_since)
                        < remaining.saturating_sub(uncounted) =>
            {
                Some(old)
            }
            _ => Some(view),
        };
    }

    /// A 429 said to wait `secs` (Cloudflare blocks the credential that long).
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut st = self.state();
        st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
    }
}

/// `"default";r=50;t=30` → (50, 30). Parameters in any order; unknown ones ignored.
pub fn parse_ratelimit(v: &str) -> Option<(u64, u64)> {
    let (mut r, mut t) = (None, None);
    for part in v.split([';', ',']) {
        match part.trim().split_once('=') {
            Some(("r", n)) => r = n.trim().parse().ok(),
            Some(("t", n)) => t = n.trim().parse().ok(),
            _ => {}
        }
    }
    Some((r?, t?))
}

/// `"burst";q=1200;w=300` → (1200, 300 s).
pub fn parse_policy(v: &str) -> Option<(u64, Duration)> {
    let (mut q, mut w) = (None, None);
    for part in v.split([';', ',']) {
        match part.trim().split_once('=') {
            Some(("q", n)) => q = n.trim().parse().ok(),
            Some(("w", n)) => w = n.trim().parse().ok().map(Duration::from_secs),
            _ => {}
        }
    }
    Some((q?, w?))
}

/// `3m41s`, `12s`, `1h02m`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cloudflare_headers() {
        assert_eq!(parse_ratelimit("\"default\";r=50;t=30"), Some((50, 30)));
        assert_eq!(parse_ratelimit("\"default\";t=7;r=0"), Some((0, 7)));
        assert_eq!(parse_ratelimit("garbage"), None);
        assert_eq!(human(Duration::from_secs(221)), "3m41s");
    }

    // Real time on short windows, with bounds either way: no paused clock, so the tests need
    // no tokio feature beyond the library's own.
    #[tokio::test]
    async fn a_window_not_a_bucket() {
        let window = Duration::from_millis(300);
        let b = Budget::new(3, window, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            b.acquire(None).await.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "the window's calls go at once"
        );
        b.acquire(None).await.unwrap();
        let waited = start.elapsed();
        assert!(
            waited >= window + ARRIVAL_MARGIN
                && waited < window + ARRIVAL_MARGIN + Duration::from_millis(700),
            "the 4th waits for the window: {waited:?}"
        );
        let tight = Budget::new(1, Duration::from_secs(10), Duration::from_secs(5));
        tight.acquire(None).await.unwrap();
        let e = tight.acquire(None).await.unwrap_err().to_string();
        assert!(
            e.contains("would have to wait 10s") && e.contains("the 5s allowed"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn overlapping_statements_share_one_wait_ceiling() {
        // One call per 400 ms window: each call past it waits 650 ms (window + margin).
        let b = Budget::new(1, Duration::from_millis(400), Duration::from_millis(1000));
        let first = b.begin_statement();
        b.acquire(None).await.unwrap();
        b.acquire(None).await.unwrap();
        // A second statement begins while the first is under way: the 650 ms the first
        // waited still count, so another wait of 650 ms is past the ceiling.
        let second = b.begin_statement();
        let e = b.acquire(None).await.unwrap_err();
        assert!(matches!(e, Error::BudgetWait { .. }), "{e}");
        drop((first, second));
        // With none under way, the next statement counts afresh.
        let _third = b.begin_statement();
        b.acquire(None).await.unwrap();
    }

    #[tokio::test]
    async fn the_server_view_wins_and_keeps_a_reserve() {
        let b = Budget::new(1200, Duration::from_secs(300), Duration::from_secs(900));
        b.acquire(None).await.unwrap();
        b.observe(Some("\"default\";r=30;t=1"), Some("\"burst\";q=1200;w=300"));
        b.complete();
        assert_eq!(
            b.available(),
            6,
            "30 left minus a reserve of 24 (2% of 1,200)"
        );
        let start = Instant::now();
        for _ in 0..7 {
            b.acquire(None).await.unwrap();
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500),
            "the 7th waits for the server's reset, 1 s away: {waited:?}"
        );
        assert_eq!(
            parse_policy("\"burst\";q=50;w=5"),
            Some((50, Duration::from_secs(5)))
        );
    }
}
