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
//!
//! The server's times are whole seconds of unspecified rounding, so both `t` and
//! `Retry-After` are read as "not before": the budget waits [`NOT_BEFORE_SLACK`] past them.
//! Once the server's view has lapsed, the local window counts with the quota and window
//! the server named (`Ratelimit-Policy`), not the configured ones: a session configured for
//! 1,200 calls must not spend 1,200 against a server that allows 80.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// Added to the local window. A call ages out of it a window after its *answer* came back,
/// which is after the server counted it however slow the network or the machine (a call
/// timed from when it was sent could age out before the server's count of it does); the
/// margin covers the timers' granularity.
const ARRIVAL_MARGIN: Duration = Duration::from_millis(100);

/// Added to a reset (`t`) or a `Retry-After` the server gave in whole seconds: its real
/// moment may come up to a second later than the number says.
const NOT_BEFORE_SLACK: Duration = Duration::from_secs(1);

/// A statement under way on a [`Budget`] (see [`Budget::begin_statement`]).
pub struct StatementGuard<'a> {
    budget: &'a Budget,
}

impl Drop for StatementGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.budget.state();
        st.active = st.active.saturating_sub(1);
        if st.active > 0 {
            return;
        }
        let retries = std::mem::take(&mut st.retries);
        drop(st);
        // Retries are told once, at the end, one line per cause (each retry is a debug line).
        for (cause, tally) in retries {
            self.budget.notice(&tally.line(&cause));
        }
    }
}

/// The retries of one cause within a statement.
#[derive(Default, Clone, Copy)]
struct RetryTally {
    /// Calls retried at least once for this cause.
    calls: u64,
    /// Retries in all.
    retries: u64,
    /// The most retries of one call.
    most: u32,
}

impl RetryTally {
    fn line(&self, cause: &str) -> String {
        let (calls, s) = (self.calls, if self.calls == 1 { "" } else { "s" });
        let each = if self.retries == self.calls * u64::from(self.most) {
            format!("{} each", plural(u64::from(self.most), "retry", "retries"))
        } else {
            format!("{} in all, at most {} for one", self.retries, self.most)
        };
        format!("note: retried {calls} call{s} after {cause} ({each})")
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
    /// Woken at every answer that carries the server's budget headers.
    answered: tokio::sync::Notify,
}

impl State {
    /// Calls of the local window: in flight, or answered within it.
    fn in_window(&self) -> u64 {
        self.in_flight + self.answered.len() as u64
    }
}

#[derive(Default)]
struct State {
    /// When each answered call of the last window was answered (local accounting; calls
    /// in flight are counted by `in_flight`).
    answered: VecDeque<Instant>,
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
    /// Retries of the statements under way, by cause (`HTTP 500`, `a network error`).
    retries: std::collections::BTreeMap<String, RetryTally>,
    /// The quota and window the server last named (`Ratelimit-Policy`): they outlive the
    /// server's view, and the local window counts with them.
    policy: Option<(u64, Duration)>,
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
}

/// Calls left to other tools of a quota: 2%, at least one (none of a quota of one).
fn reserve_of(quota: u64) -> u64 {
    if quota < 2 { 0 } else { (quota / 50).max(1) }
}

enum Decision {
    Go,
    Wait(Instant, &'static str),
    /// Wait for the answer of the call in flight (a probe), at most until then; not a
    /// wait for the budget (no line, not counted against the ceiling).
    Hold(Instant),
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
            answered: tokio::sync::Notify::new(),
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
        // The server's view has lapsed: the local window's count (the next call is a probe
        // whose answer says more; a forecast from an idle session must not predict a wait
        // for a window that has long reset).
        let (quota, window, reserve) = self.local_rule(&st);
        Self::forget_old(&mut st, now, window + ARRIVAL_MARGIN);
        quota.saturating_sub(reserve).saturating_sub(st.in_window())
    }

    /// The local window's quota, length and reserve: the server's named policy (with its
    /// reserve for other tools) once known, else the configured limit (no reserve: without
    /// headers there is nothing to share with that cfql could see).
    fn local_rule(&self, st: &State) -> (u64, Duration, u64) {
        match st.policy {
            Some((quota, window)) => (quota, window, reserve_of(quota)),
            None => (u64::from(self.limit), self.window, 0),
        }
    }

    /// The time `calls` more calls need at least: whole windows beyond what is left now.
    pub fn time_for(&self, calls: u64) -> Duration {
        let beyond = calls.saturating_sub(self.available());
        let policy = self.state().policy;
        let (quota, window) = policy.unwrap_or((u64::from(self.limit), self.window));
        window.saturating_mul(beyond.div_ceil(quota.max(1)) as u32)
    }

    /// Waits until the budget allows one call, then counts it. Fails with
    /// [`Error::BudgetWait`] when the statement would wait longer than `max_wait` in all,
    /// and with [`Error::Cancelled`] when `cancel` fires first (nothing was sent).
    pub async fn acquire(&self, cancel: Option<&Cancel>) -> Result<()> {
        loop {
            // Registered before deciding, so an answer that lands in between still wakes
            // this wait: a wait for the budget is decided again at every answer (the calls
            // in flight when it began may show more left than was assumed).
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let now = Instant::now();
            let until = match self.decide(now) {
                Decision::Go => return Ok(()),
                Decision::Hold(until) => until,
                Decision::Wait(until, why) => {
                    self.account_wait(now, until, why)?;
                    until
                }
            };
            let sleep = tokio::time::sleep_until(until);
            let cancelled = async {
                match cancel {
                    Some(c) => c.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancelled => return Err(Error::Cancelled { what: "stopped while waiting for the API budget".into() }),
                _ = sleep => {}
                _ = answered => {}
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
        // The local window always holds: it knows cfql's own calls exactly, while an answer
        // the client read late (a busy machine) can show a count older than calls answered
        // before it; the server's view adds what only it sees (other tools' calls).
        let (quota, window, reserve) = self.local_rule(&st);
        Self::forget_old(&mut st, now, window + ARRIVAL_MARGIN);
        if st.in_window() + reserve >= quota {
            // Every call of the window in flight: an answer wakes this wait.
            let oldest = *st.answered.front().unwrap_or(&now);
            return Decision::Wait(oldest + window + ARRIVAL_MARGIN, "the API budget is spent");
        }
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
            _ if st.policy.is_some() && st.in_flight > 0 => {
                // The server's view has lapsed: its window may not have reset the way the
                // local window thinks (other tools' calls, a sliding window). One call
                // goes (a probe: `t` has passed, so a slot has freed) and its answer's
                // headers say what the new window holds before any other call is sent.
                st.server = None;
                return Decision::Hold(now + window);
            }
            _ => st.server = None,
        }
        st.calls += 1;
        st.in_flight += 1;
        Decision::Go
    }

    fn forget_old(st: &mut State, now: Instant, window: Duration) {
        while st
            .answered
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            st.answered.pop_front();
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
        let ongoing = st.waiting_until.filter(|w| *w > now);
        let from = ongoing.unwrap_or(now);
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
        // One line per wait: a wait that only grows (a block's other 429s, answers of calls
        // in flight) says nothing more; a wait under a second (a window sliding by) none.
        if ongoing.is_none() && until - now >= Duration::from_secs(1) {
            self.notice(&format!(
                "{why}: waiting {} before the next call ({calls} calls so far)",
                human(until - now)
            ));
        }
        Ok(())
    }

    /// A call was retried `retries` times after `cause` (told once, when the statements
    /// under way end).
    pub fn record_retries(&self, cause: &str, retries: u32) {
        if retries == 0 {
            return;
        }
        let mut st = self.state();
        let t = st.retries.entry(cause.to_string()).or_default();
        t.calls += 1;
        t.retries += u64::from(retries);
        t.most = t.most.max(retries);
    }

    /// A call counted by [`Budget::acquire`] got its answer (or none).
    pub fn complete(&self) {
        let mut st = self.state();
        st.in_flight = st.in_flight.saturating_sub(1);
        st.answered.push_back(Instant::now());
        drop(st);
        self.answered.notify_waiters();
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
        if policy.is_some() {
            st.policy = policy;
        }
        let uncounted = st.in_flight.saturating_sub(1);
        let reset_at = now
            + Duration::from_secs(reset)
            + self.reset_slack(&mut st, now, quota, remaining, uncounted);
        let view = ServerView {
            remaining,
            reset_at,
            sent_since: uncounted,
            reserve: reserve_of(quota),
        };
        // An older answer arriving after a newer one does not raise what is left; the
        // newest answer still says best when the window resets (and whether it is ours).
        st.server = match st.server {
            Some(old)
                if now < old.reset_at
                    && old.remaining.saturating_sub(old.sent_since)
                        < remaining.saturating_sub(uncounted) =>
            {
                Some(ServerView { reset_at, ..old })
            }
            _ => Some(view),
        };
        drop(st);
        self.answered.notify_waiters();
    }

    /// How long past the server's `t` its window may really reset. `t` is whole seconds
    /// of unknown rounding: when other tools' calls may be in the window, a second more.
    /// When every call the server counted is one of ours, none: once `t` has passed, the
    /// local window (which knows when each of our calls went out, to the millisecond)
    /// holds each call until the one it replaces has aged out.
    fn reset_slack(
        &self,
        st: &mut State,
        now: Instant,
        quota: u64,
        remaining: u64,
        uncounted: u64,
    ) -> Duration {
        let (_, window, _) = self.local_rule(st);
        Self::forget_old(st, now, window + ARRIVAL_MARGIN);
        // Ours the server has certainly counted: those of the window, less those it may not have.
        let ours_counted = st.in_window().saturating_sub(uncounted);
        let counted = quota.saturating_sub(remaining);
        if counted > ours_counted {
            NOT_BEFORE_SLACK
        } else {
            Duration::ZERO
        }
    }

    /// A 429 said to wait `wait` (Cloudflare blocks the credential that long, counted
    /// from the call the server refused; a second more, as the number is whole seconds).
    /// Every call not yet sent waits; calls in flight may still see a 429 and only
    /// lengthen this pause.
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait + NOT_BEFORE_SLACK;
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
            b.complete();
        }
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "the window's calls go at once"
        );
        b.acquire(None).await.unwrap();
        b.complete();
        let waited = start.elapsed();
        assert!(
            waited >= window + ARRIVAL_MARGIN
                && waited < window + ARRIVAL_MARGIN + Duration::from_millis(700),
            "the 4th waits for the window: {waited:?}"
        );
        let tight = Budget::new(1, Duration::from_secs(10), Duration::from_secs(5));
        tight.acquire(None).await.unwrap();
        tight.complete();
        let e = tight.acquire(None).await.unwrap_err().to_string();
        assert!(
            e.contains("would have to wait 10s") && e.contains("the 5s allowed"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn overlapping_statements_share_one_wait_ceiling() {
        // One call per 400 ms window: each call past it waits 500 ms (window + margin).
        let b = Budget::new(1, Duration::from_millis(400), Duration::from_millis(800));
        let first = b.begin_statement();
        b.acquire(None).await.unwrap();
        b.complete();
        b.acquire(None).await.unwrap();
        b.complete();
        // A second statement begins while the first is under way: the 500 ms the first
        // waited still count, so another wait of 500 ms is past the ceiling.
        let second = b.begin_statement();
        let e = b.acquire(None).await.unwrap_err();
        assert!(matches!(e, Error::BudgetWait { .. }), "{e}");
        drop((first, second));
        // With none under way, the next statement counts afresh.
        let _third = b.begin_statement();
        b.acquire(None).await.unwrap();
        b.complete();
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
            b.complete();
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
