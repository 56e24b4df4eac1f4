//! The Cloudflare HTTP client: authentication, envelope decoding, retries with backoff,
//! a session-wide rate limiter and concurrency limit. Credentials never reach logs or errors.

pub mod envelope;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Semaphore;

pub use envelope::{ApiResponse, ResultInfo};

use crate::budget::Budget;
use crate::cancel::Cancel;
use crate::config::{Config, Credentials, MAX_DURATION};
use crate::error::{Error, Result};

/// One call to make.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: Method,
    /// Path below the base URL, already percent-encoded.
    pub path: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<Value>,
    /// For a call that must not be retried blindly: a statement showing whether it happened.
    pub check_hint: Option<String>,
    /// Whether a GET's answer may stay in the session's cache (a page of a very large
    /// listing is not kept: no later statement is likely to reuse such a listing whole, and
    /// it would push out the small answers that are reused).
    pub keep: bool,
}

impl ApiRequest {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            check_hint: None,
            keep: true,
        }
    }

    /// Whether any failure may be retried (GET only; other methods retry only
    /// when the server certainly did not act: 429, or no connection made).
    pub fn idempotent(&self) -> bool {
        self.method == Method::GET
    }

    /// Path plus query, for messages and dry runs.
    pub fn display_path(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{k}={}", encode_component(v)))
                .collect();
            format!("{}?{}", self.path, q.join("&"))
        }
    }
}

/// Percent-encodes a query value or path segment (`/`, `%`, `?`, `#` and `.` included).
pub fn encode_component(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// One path segment from a user-supplied value (an id): percent-encoded so that it
/// can never name a different path; empty, `.` and `..` are refused, since URL
/// parsers resolve dot segments even when percent-encoded.
pub fn path_segment(param: &str, value: &str) -> Result<String> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(Error::InvalidValue {
            place: param.to_string(),
            problem: format!("'{value}' is not a valid identifier"),
        });
    }
    Ok(encode_component(value))
}

/// The client shared by every table of a session.
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    max_body: u64,
    /// Behind a lock because rolling the session's own token swaps in its new value.
    credentials: RwLock<Option<Credentials>>,
    /// The API budget: no call is sent unless it allows it.
    pub budget: Budget,
    cache: ResponseCache,
    cache_ttl: RwLock<Duration>,
    cache_hits: AtomicU64,
    permits: Semaphore,
    max_retries: u32,
    retry_budget: Duration,
    base_delay: Duration,
    calls: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("credentials", &self.credentials())
            .finish_non_exhaustive()
    }
}

/// A cached GET answer: when, its status, its body.
type CacheEntry = Arc<(std::time::Instant, u16, bytes::Bytes)>;

/// Cached GET answers by (credential fingerprint, path and query).
type ResponseCache = moka::future::Cache<(u64, String), CacheEntry>;

/// A cache bounded to 32 MiB of response bodies, entries kept at most an hour (the
/// session's TTL, checked on each read, is usually far shorter). A listing larger than
/// that (100,000 tokens) keeps only some of its pages: memory stays bounded.
fn new_cache() -> ResponseCache {
    moka::future::Cache::builder()
        .max_capacity(32 << 10)
        .weigher(|_, v: &CacheEntry| u32::try_from(v.2.len() / 1024 + 1).unwrap_or(u32::MAX))
        .time_to_live(Duration::from_secs(3600))
        .support_invalidation_closures()
        .build()
}

/// Marks a budgeted call answered when dropped.
struct Answered<'a>(&'a Budget);

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        self.0.complete();
    }
}

/// 429s one call waits out before it gives up (each wait is bounded by the budget's ceiling).
const MAX_429_RETRIES: u32 = 8;

/// What one attempt of a call came back with.
enum Answer {
    /// The server answered (any status).
    Reply {
        status: StatusCode,
        retry_after: Option<u64>,
        body: bytes::Bytes,
    },
    /// No (complete) answer. `not_sent`: the request certainly did not reach the server.
    Lost { not_sent: bool, detail: String },
    /// An answer larger than `max_response_bytes`: not read further.
    Oversized { status: StatusCode },
}

/// What to do after an attempt.
enum Step {
    Done(Result<ApiResponse>),
    /// Try again after the wait; the cause is tallied for the statement's retry line
    /// (none for a 429: the budget's wait line tells that).
    RetryAfter(Duration, Option<String>),
}

impl Client {
    /// A client for `config`: TLS verification always on (rustls), redirects followed
    /// only within the same host (so credential headers never go elsewhere).
    pub fn new(config: &Config) -> Result<Arc<Self>> {
        let base_url = checked_base_url(&config.base_url)?;
        // Redirects: same scheme, host and port only, so credential headers never travel
        // elsewhere nor in clear text.
        let redirect = reqwest::redirect::Policy::custom(|attempt| {
            let origin = |u: &url::Url| {
                (
                    u.scheme().to_string(),
                    u.host_str().map(str::to_string),
                    u.port_or_known_default(),
                )
            };
            let same_origin = attempt.previous().first().map(origin) == Some(origin(attempt.url()));
            if attempt.previous().len() >= 5 || !same_origin {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(redirect)
            .user_agent(concat!("cfql/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Arc::new(Self {
            http,
            base_url,
            max_body: config.max_response_bytes,
            credentials: RwLock::new(config.credentials.clone()),
            budget: Budget::new(config.rate_limit, config.rate_window, config.budget_wait),
            cache: new_cache(),
            cache_ttl: RwLock::new(config.cache_ttl),
            cache_hits: AtomicU64::new(0),
            permits: Semaphore::new(config.concurrency.max(1)),
            max_retries: config.max_retries,
            retry_budget: config.retry_budget,
            base_delay: config.retry_base_delay,
            calls: AtomicU64::new(0),
        }))
    }

    /// HTTP requests sent so far (retries included).
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn credentials(&self) -> Option<Credentials> {
        self.credentials
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the session authenticates with an API token (which can roll itself).
    pub fn uses_api_token(&self) -> bool {
        matches!(self.credentials(), Some(Credentials::ApiToken(_)))
    }

    /// Uses `token` from now on: after the session rolled the token it authenticates
    /// with, the old value is dead and only the new one works.
    pub fn replace_api_token(&self, token: String) {
        *self.credentials.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Credentials::ApiToken(token));
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(10));
        let jitter = rand::rng().random_range(0.5..1.5);
        exp.mul_f64(jitter)
    }

    /// Makes the call, retrying as its method allows, and decodes the envelope.
    pub async fn call(&self, req: &ApiRequest) -> Result<ApiResponse> {
        self.call_with(req, None).await
    }

    /// [`Client::call`], which gives up with [`Error::Cancelled`] once `cancel` fires, but
    /// only while the request has not been sent: a call in flight is always awaited, so
    /// the answer of a create or roll (its secret) is never dropped. A GET is answered from
    /// the session's cache when a fresh answer is there, and shares one call with an
    /// identical GET in flight. Other methods are never cached (their answers hold secrets).
    pub async fn call_with(
        &self,
        req: &ApiRequest,
        cancel: Option<&Cancel>,
    ) -> Result<ApiResponse> {
        if !req.idempotent() {
            return self.call_uncached(req, cancel).await;
        }
        let ttl = *self.cache_ttl.read().unwrap_or_else(|p| p.into_inner());
        let key = (self.credential_fingerprint(), req.display_path());
        if let Some(hit) = self.cache.get(&key).await {
            if !ttl.is_zero() && hit.0.elapsed() <= ttl {
                return self.answer_from_cache(req, &hit);
            }
            self.cache.invalidate(&key).await;
        }
        // The first caller makes the call and keeps its parsed answer; callers that came
        // while it was in flight decode the same body.
        let mine: Mutex<Option<ApiResponse>> = Mutex::new(None);
        let load = async {
            let resp = self.call_uncached(req, cancel).await?;
            let entry = Arc::new((std::time::Instant::now(), resp.status, resp.body.clone()));
            *mine.lock().unwrap_or_else(|p| p.into_inner()) = Some(resp);
            Ok::<_, Error>(entry)
        };
        let loaded = self.cache.try_get_with(key.clone(), load).await;
        if ttl.is_zero() || !req.keep {
            // Not kept: the entry only let identical calls in flight share one answer.
            self.cache.invalidate(&key).await;
        }
        let entry = loaded.map_err(|e| e.duplicate())?;
        match mine.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(resp) => Ok(resp),
            None => self.answer_from_cache(req, &entry),
        }
    }

    /// An answer from the cache: its body decoded again (bodies are what the cache holds).
    fn answer_from_cache(&self, req: &ApiRequest, entry: &CacheEntry) -> Result<ApiResponse> {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
        let resp = envelope::decode(req.method.as_str(), &req.display_path(), entry.1, &entry.2)?;
        Ok(ApiResponse {
            cached: true,
            ..resp
        })
    }

    /// GETs answered from the cache (or shared with an identical call) so far.
    #[cfg_attr(not(feature = "cli"), allow(dead_code))] // used by the CLI only
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Sets how long GET answers are reused (zero: not at all, from now on).
    pub fn set_cache_ttl(&self, ttl: Duration) {
        *self.cache_ttl.write().unwrap_or_else(|p| p.into_inner()) = ttl;
        if ttl.is_zero() {
            self.cache.invalidate_all();
        }
    }

    /// Forgets every cached answer whose path starts with `prefix` (a write changed it).
    pub fn invalidate(&self, prefix: &str) {
        let prefix = prefix.to_string();
        let _ = self
            .cache
            .invalidate_entries_if(move |k, _| k.1.starts_with(&prefix));
    }

    /// Keys the cache by credential without keeping the credential.
    fn credential_fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match self.credentials() {
            Some(Credentials::ApiToken(t)) => t.hash(&mut h),
            Some(Credentials::GlobalKey { email, key }) => (email, key).hash(&mut h),
            None => {}
        }
        h.finish()
    }

    async fn call_uncached(
        &self,
        req: &ApiRequest,
        cancel: Option<&Cancel>,
    ) -> Result<ApiResponse> {
        let Some(creds) = self.credentials() else {
            return Err(Error::NoCredential);
        };
        let mut attempt: u32 = 0;
        let mut waited = Duration::ZERO;
        let mut retried: Option<(String, u32)> = None;
        let result = loop {
            attempt += 1;
            let answer = match self.attempt(req, &creds, cancel).await {
                Ok(answer) => answer,
                Err(e) => break Err(e),
            };
            match self.judge(req, answer, attempt, waited) {
                Step::Done(result) => break result,
                Step::RetryAfter(wait, cause) => {
                    if let Some(cause) = cause {
                        let n = retried.as_ref().map_or(0, |(_, n)| *n);
                        retried = Some((cause, n + 1));
                    }
                    if let Err(e) = until_cancelled(cancel, tokio::time::sleep(wait), req).await {
                        break Err(e);
                    }
                    waited = waited.saturating_add(wait);
                }
            }
        };
        if let Some((cause, n)) = retried {
            self.budget.record_retries(&cause, n);
        }
        result
    }

    /// One attempt: wait for the rate limiter and a connection slot (both cancellable,
    /// nothing is sent yet), then send and read the whole answer.
    async fn attempt(
        &self,
        req: &ApiRequest,
        creds: &Credentials,
        cancel: Option<&Cancel>,
    ) -> Result<Answer> {
        // The connection slot first, the budget last: a call counted by the budget is sent
        // at once, so a pause (a 429) holds every call not yet counted, and only the calls
        // already in flight can meet the block.
        let _permit = until_cancelled(cancel, self.permits.acquire(), req)
            .await?
            .expect("semaphore is never closed");
        self.budget.acquire(cancel).await?;
        // However this attempt ends, its call no longer counts as in flight.
        let _answered = Answered(&self.budget);
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Err(not_sent(req));
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(method = %req.method, path = %req.display_path(), "calling Cloudflare");
        Ok(match self.request(req, creds).send().await {
            Ok(resp) => self.answer(resp).await,
            Err(e) => Answer::Lost {
                not_sent: e.is_connect(),
                detail: describe(e),
            },
        })
    }

    /// The HTTP request of a call, with its credential.
    fn request(&self, req: &ApiRequest, creds: &Credentials) -> reqwest::RequestBuilder {
        let rb = self
            .http
            .request(req.method.clone(), format!("{}{}", self.base_url, req.path))
            .query(&req.query);
        let rb = match creds {
            Credentials::ApiToken(t) => rb.bearer_auth(t),
            Credentials::GlobalKey { email, key } => {
                rb.header("X-Auth-Email", email).header("X-Auth-Key", key)
            }
        };
        match &req.body {
            Some(b) => rb.json(b),
            None => rb,
        }
    }

    /// The answer of a response: its rate-limit headers go to the budget, its body is
    /// read up to the cap.
    async fn answer(&self, resp: reqwest::Response) -> Answer {
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        self.budget.observe(
            header("ratelimit").as_deref(),
            header("ratelimit-policy").as_deref(),
        );
        match read_capped(resp, self.max_body).await {
            Ok(Some(body)) => Answer::Reply {
                status,
                retry_after,
                body,
            },
            Ok(None) => Answer::Oversized { status },
            Err(e) => Answer::Lost {
                not_sent: false,
                detail: describe(e),
            },
        }
    }

    /// Decides what an attempt means: a result, or a wait and another attempt. A call that
    /// may have acted (not a GET) is retried only when the server certainly did not act.
    fn judge(&self, req: &ApiRequest, answer: Answer, attempt: u32, waited: Duration) -> Step {
        // One backoff per attempt (it has jitter): the wait checked is the wait taken.
        let backoff = self.backoff(attempt);
        let can_retry =
            attempt <= self.max_retries && waited.saturating_add(backoff) <= self.retry_budget;
        let at = Attempt {
            req,
            attempt,
            backoff,
            can_retry,
        };
        match answer {
            Answer::Lost { not_sent, detail } => self.judge_lost(&at, not_sent, detail),
            Answer::Oversized { status } => Step::Done(Err(self.oversized(req, status))),
            Answer::Reply {
                status,
                retry_after,
                body,
            } if status == StatusCode::TOO_MANY_REQUESTS => self.judge_429(&at, retry_after, &body),
            Answer::Reply { status, body, .. } => self.judge_reply(&at, status, &body),
        }
    }

    /// No answer: retried when the call was never sent or is a GET; otherwise it may
    /// have acted.
    fn judge_lost(&self, at: &Attempt<'_>, not_sent: bool, detail: String) -> Step {
        let req = at.req;
        let (method, path) = (req.method.as_str(), req.display_path());
        if (not_sent || req.idempotent()) && at.can_retry {
            tracing::debug!(method, path = %path, error = %detail, "network error; retrying");
            return Step::RetryAfter(at.backoff, Some("a network error".into()));
        }
        if !not_sent && !req.idempotent() {
            return Step::Done(Err(outcome_unknown(req, format!("no answer ({detail})"))));
        }
        let url = format!("{}{}", self.base_url, path);
        Step::Done(Err(Error::Network {
            method: method.to_string(),
            url,
            detail,
        }))
    }

    /// A body over the cap: never read whole, so a write's outcome is unknown.
    fn oversized(&self, req: &ApiRequest, status: StatusCode) -> Error {
        let limit = if self.max_body >= 1 << 20 {
            format!("{} MiB", self.max_body >> 20)
        } else {
            format!("{} bytes", self.max_body)
        };
        let e = Error::Decode {
            method: req.method.as_str().to_string(),
            path: req.display_path(),
            status: status.as_u16(),
            detail: format!(
                "the body is larger than {limit} (max_response_mb in the profile raises the limit)"
            ),
        };
        if req.idempotent() {
            e
        } else {
            outcome_unknown(req, e.to_string())
        }
    }

    /// A 429 means the server did nothing, so any call may wait and try again: the budget
    /// pauses every call for the Retry-After (clamped: u64::MAX seconds must not overflow a
    /// deadline), and the wait counts against the statement's ceiling.
    fn judge_429(&self, at: &Attempt<'_>, retry_after: Option<u64>, body: &[u8]) -> Step {
        let (method, path) = (at.req.method.as_str(), at.req.display_path());
        let wait = retry_after
            .map(|s| Duration::from_secs(s.min(MAX_DURATION.as_secs())))
            .unwrap_or(at.backoff);
        if at.attempt <= MAX_429_RETRIES {
            tracing::debug!(method, path = %path, wait_ms = wait.as_millis() as u64, "rate limited (429); waiting");
            self.budget.pause(wait);
            return Step::RetryAfter(Duration::ZERO, None);
        }
        Step::Done(Err(Error::RateLimited {
            method: method.to_string(),
            path,
            code: envelope::first_code(body),
            attempts: at.attempt,
            retry_after,
        }))
    }

    /// An answer: a redirect is refused, a GET's 5xx or garbled body is read again, and a
    /// write's 5xx or unreadable 2xx may have acted.
    fn judge_reply(&self, at: &Attempt<'_>, status: StatusCode, body: &bytes::Bytes) -> Step {
        let req = at.req;
        let (method, path) = (req.method.as_str(), req.display_path());
        if status.is_redirection() {
            let detail = format!(
                "HTTP {} redirect to another host refused (a redirect must keep the scheme, host and port: credentials are never sent elsewhere or in clear text)",
                status.as_u16()
            );
            let url = format!("{}{}", self.base_url, path);
            return Step::Done(Err(Error::Network {
                method: method.to_string(),
                url,
                detail,
            }));
        }
        if status.is_server_error() && req.idempotent() && at.can_retry {
            tracing::debug!(method, path = %path, status = status.as_u16(), "server error; retrying");
            return Step::RetryAfter(at.backoff, Some(format!("HTTP {}", status.as_u16())));
        }
        let decoded = envelope::decode(method, &path, status.as_u16(), body);
        if req.idempotent() {
            // A truncated or garbled body is a network fault: read it again.
            if matches!(decoded, Err(Error::Decode { .. })) && at.can_retry {
                tracing::debug!(method, path = %path, "unreadable response; retrying");
                return Step::RetryAfter(at.backoff, Some("an unreadable answer".into()));
            }
            return Step::Done(decoded);
        }
        // A 5xx may come from a gateway after the API acted; an unreadable 2xx did act.
        Step::Done(match decoded {
            Err(e @ Error::Api { status: 500.., .. }) => Err(outcome_unknown(
                req,
                format!("{e} (a server error can come after the API acted)"),
            )),
            Err(e @ Error::Decode { .. }) => Err(outcome_unknown(
                req,
                format!("{e}; the API accepted the call"),
            )),
            other => other,
        })
    }
}

/// One attempt of a call, as [`Client::judge`] weighs it.
struct Attempt<'a> {
    req: &'a ApiRequest,
    attempt: u32,
    /// The wait before the next attempt, if there is one.
    backoff: Duration,
    /// Whether another attempt fits the retry count and budget.
    can_retry: bool,
}

/// Reads a whole body, or `None` once it passes `max` bytes (the rest is not read).
async fn read_capped(
    mut resp: reqwest::Response,
    max: u64,
) -> reqwest::Result<Option<bytes::Bytes>> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await? {
        if (body.len() + chunk.len()) as u64 > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// The base URL without a trailing slash, refused when it would leak the credential:
/// plain `http://` to anything but this machine, or a user and password inside it.
fn checked_base_url(raw: &str) -> Result<String> {
    let base_url = raw.trim_end_matches('/').to_string();
    let parsed = url::Url::parse(&base_url).map_err(|e| {
        Error::Config(format!(
            "base URL '{}' is not a URL ({e}); set CLOUDFLARE_BASE_URL",
            redact_userinfo(&base_url)
        ))
    })?;
    let shown = redact_userinfo(&base_url);
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Config(format!(
            "base URL '{shown}' holds a user or password; credentials go in CLOUDFLARE_API_TOKEN (or a profile), never in the URL"
        )));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(base_url),
        "http" if loopback => Ok(base_url),
        "http" => Err(Error::Config(format!(
            "base URL '{shown}' is plain http to another machine: the credential would travel in clear text; use https (plain http is allowed only to loopback, such as the simulator)"
        ))),
        other => Err(Error::Config(format!(
            "base URL '{shown}' must be https (got {other}://)"
        ))),
    }
}

/// A URL with any `user:password@` replaced by `***@`, for messages.
fn redact_userinfo(raw: &str) -> String {
    match (raw.find("://"), raw.find('@')) {
        (Some(scheme_end), Some(at))
            if at > scheme_end && !raw[scheme_end + 3..at].contains('/') =>
        {
            format!("{}***{}", &raw[..scheme_end + 3], &raw[at..])
        }
        _ => raw.to_string(),
    }
}

/// `fut`, unless `cancel` fires first: then the request was not sent.
async fn until_cancelled<T>(
    cancel: Option<&Cancel>,
    fut: impl std::future::Future<Output = T>,
    req: &ApiRequest,
) -> Result<T> {
    match cancel {
        None => Ok(fut.await),
        Some(c) => tokio::select! {
            biased;
            _ = c.cancelled() => Err(not_sent(req)),
            v = fut => Ok(v),
        },
    }
}

fn not_sent(req: &ApiRequest) -> Error {
    Error::Cancelled {
        what: format!("{} {} was not sent", req.method, req.display_path()),
    }
}

fn outcome_unknown(req: &ApiRequest, detail: String) -> Error {
    Error::OutcomeUnknown {
        method: req.method.as_str().to_string(),
        path: req.display_path(),
        detail,
        check: req
            .check_hint
            .clone()
            .unwrap_or_else(|| "list the resource and look for the object".into()),
    }
}

/// A network error's causes, without the URL (the caller names the endpoint).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    let mut text = parts.join(": ");
    if e.is_connect() {
        text.push_str(" (is the base URL right and the API reachable?)");
    } else if e.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}
