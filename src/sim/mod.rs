//! The Cloudflare API simulator: a stateful, fault-injecting fake of the token
//! endpoints, served over real HTTP on loopback, for tests, benchmarks and `--demo`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = cfql::sim::Simulator::start(cfql::sim::SimOptions::default()).await?;
//! println!("{} accepts Bearer {}", sim.base_url(), sim.admin_token());
//! # Ok(()) }
//! ```
//!
//! What it does not model: permission groups are not enforced (any valid user
//! credential may call every user and account endpoint; account-owned tokens are
//! confined to their account), and the sample data's times are relative to the hour
//! the simulator started.

mod audit_log;
mod envelope;
pub mod faults;
mod generic;
mod handlers;
pub mod model;
mod seed;
mod server;
mod state;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use faults::{Fault, FaultKind, FaultSpec, FaultSpecError, Trigger};
pub use handlers::{ACCOUNT_TOKEN_QUOTA, USER_TOKEN_QUOTA};
pub use seed::SeedOptions;
pub use state::{AuthKind, RecordedRequest};

use handlers::Shared;
use state::{RateLimit, SimState};

/// How to start a simulator.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Sample data.
    pub seed: SeedOptions,
    /// Latency added to every request, in milliseconds.
    pub latency_ms: u64,
    /// Faults in force from the start.
    pub faults: FaultSpec,
    /// Emulated rate limit: requests per window per credential.
    pub rate_limit: usize,
    /// Emulated rate limit window.
    pub rate_window: StdDuration,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: SeedOptions::default(),
            latency_ms: 0,
            faults: FaultSpec::default(),
            rate_limit: 1200,
            rate_window: StdDuration::from_secs(300),
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    addr: SocketAddr,
    state: Shared,
    stop: watch::Sender<bool>,
    account_ids: Vec<String>,
    zone_ids: Vec<String>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Starts a simulator on the current tokio runtime.
    pub async fn start(opts: SimOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let data = seed::generate(&opts.seed, chrono::Utc::now());
        let account_ids = data.accounts.iter().map(|a| a.0.id.clone()).collect();
        let zone_ids = data
            .accounts
            .iter()
            .flat_map(|a| a.0.zones.clone())
            .collect();
        let st = SimState::new(
            data,
            opts.faults,
            RateLimit::new(opts.rate_limit, opts.rate_window),
            opts.latency_ms,
        );
        let state: Shared = Arc::new(Mutex::new(st));
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(server::serve(
            listener,
            server::router(state.clone()),
            stop_rx,
        ));
        Ok(Self {
            addr,
            state,
            stop,
            account_ids,
            zone_ids,
        })
    }

    fn st(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, such as `http://127.0.0.1:PORT/client/v4`.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, server::API_PREFIX)
    }

    /// The admin user token's secret (a real credential of the simulator).
    pub fn admin_token(&self) -> String {
        self.st().admin_secret.clone()
    }

    /// The admin token of user `n` (from 1; `SeedOptions::users` of them), `None` past
    /// the last user.
    pub fn admin_token_of(&self, n: usize) -> Option<String> {
        self.st().admin_secrets.get(n.checked_sub(1)?).cloned()
    }

    /// How many users the simulator plays.
    pub fn users(&self) -> usize {
        self.st().users.len()
    }

    /// The accounts user `n` (from 1) is a member of, in creation order.
    pub fn accounts_of(&self, n: usize) -> Vec<String> {
        let st = self.st();
        let Some(u) = n.checked_sub(1) else {
            return Vec::new();
        };
        self.account_ids
            .iter()
            .filter(|a| st.members.get(*a).is_some_and(|m| m.contains(&u)))
            .cloned()
            .collect()
    }

    /// Revokes user `n`'s admin token (from 1): its calls then fail with 401, as a
    /// revoked credential's do.
    pub fn revoke_admin_of(&self, n: usize) -> bool {
        let Some(secret) = self.admin_token_of(n) else {
            return false;
        };
        self.st().secrets.remove(&secret).is_some()
    }

    /// Email of the global key.
    pub fn email(&self) -> String {
        self.st().email.clone()
    }

    /// The global API key.
    pub fn api_key(&self) -> String {
        self.st().api_key.clone()
    }

    /// Account ids, in creation order.
    pub fn account_ids(&self) -> &[String] {
        &self.account_ids
    }

    /// Zone ids (two per account), in creation order.
    pub fn zone_ids(&self) -> &[String] {
        &self.zone_ids
    }

    /// Requests received for this method and route template (such as `/user/tokens/{token_id}`).
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.st()
            .log
            .counts
            .get(&(method.to_string(), route.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The authenticated requests received so far (the last 10,000), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.st().log.requests.iter().cloned().collect()
    }

    /// Total requests received (unauthenticated ones included).
    pub fn total_requests(&self) -> usize {
        self.st().log.total as usize
    }

    /// Requests with a method other than GET (unauthenticated ones included).
    pub fn mutating_requests(&self) -> usize {
        self.st().log.mutating as usize
    }

    /// Forgets the request log and counts.
    pub fn reset_counts(&self) {
        let mut st = self.st();
        st.log = Default::default();
    }

    /// Replaces the faults in force (the probability draws restart from the spec's seed).
    pub fn set_faults(&self, spec: FaultSpec) {
        self.st().faults = faults::FaultState::new(spec);
    }

    /// Whether list responses carry `total_count` / `total_pages` (default true).
    pub fn set_list_totals(&self, on: bool) {
        self.st().list_totals = on;
    }

    /// Makes list endpoints ignore `page` and always answer page 1, as a broken server
    /// would (a client must not page forever).
    pub fn set_paging_ignored(&self, on: bool) {
        self.st().paging_ignored = on;
    }

    /// Deletes a user token behind the API's back (a change made by someone else while
    /// a listing is read).
    pub fn delete_user_token(&self, id: &str) -> bool {
        self.st().users[0].tokens.remove(id).is_some()
    }

    /// Sets the latency added to every request.
    pub fn set_latency_ms(&self, ms: u64) {
        self.st().latency_ms = ms;
    }

    /// Sets the emulated rate limit (and forgets past requests).
    pub fn set_rate_limit(&self, limit: usize, window: StdDuration) {
        self.st().rate = RateLimit::new(limit, window);
    }

    /// Moves the simulator's clock forward.
    pub fn advance_clock(&self, by: Duration) {
        let mut st = self.st();
        st.clock_offset += by;
    }

    /// Number of user-owned tokens (expired included).
    pub fn user_token_count(&self) -> usize {
        self.st().users[0].tokens.len()
    }

    /// Ids of user-owned tokens in creation order.
    pub fn user_token_ids(&self) -> Vec<String> {
        self.st().users[0].tokens.ids().to_vec()
    }

    /// Ids of the account-level service tokens of an account.
    pub fn service_token_ids(&self, account_id: &str) -> Vec<String> {
        self.st()
            .account_services
            .get(account_id)
            .map(|s| s.ids().to_vec())
            .unwrap_or_default()
    }

    /// Records `n` calls (`method` on one of the account's service tokens) by the
    /// account's token `token_id`, one second apart ending at `last`, in the account's
    /// Audit Logs v2, as if they had been made then.
    pub fn add_audit_entries(
        &self,
        account_id: &str,
        token_id: &str,
        method: &str,
        n: usize,
        last: DateTime<Utc>,
    ) {
        let mut st = self.st();
        let caller = state::Caller::AccountToken(account_id.to_string(), token_id.to_string());
        let route = "/accounts/{account_id}/access/service_tokens/{service_token_id}";
        for i in 0..n {
            let path = format!(
                "/accounts/{account_id}/access/service_tokens/{}",
                st.ids.uuid()
            );
            let at = last - Duration::seconds((n - 1 - i) as i64);
            st.record_call_at(&caller, (method, &path, route, 200), at);
        }
    }

    /// Ids of every zone-level service token, sorted.
    pub fn zone_service_token_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .st()
            .zone_services
            .values()
            .flat_map(|s| s.ids().to_vec())
            .collect();
        ids.sort();
        ids
    }

    /// Stops serving. Also happens on drop.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}
