//! The Cloudflare HTTP client: authentication, envelope decoding, retries with backoff,
//! a session-wide rate limiter and concurrency limit. Credentials never reach logs or errors.

pub mod envelope;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Semaphore;

pub use envelope::{ApiResponse, ResultInfo};

use crate::config::{Config, Credentials};
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
}

impl ApiRequest {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self { method: Method::GET, path: path.into(), query: Vec::new(), body: None, check_hint: None }
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
            let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
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
        return Err(Error::InvalidInput(format!("{param} '{value}' is not a valid identifier")));
    }
    Ok(encode_component(value))
}

/// The client shared by every table of a session.
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    credentials: Option<Credentials>,
    limiter: DefaultDirectRateLimiter,
    permits: Semaphore,
    max_retries: u32,
    retry_budget: Duration,
    base_delay: Duration,
    calls: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base_url", &self.base_url).field("credentials", &self.credentials).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config`: TLS verification always on (rustls), redirects followed
    /// only within the same host (so credential headers never go elsewhere).
    pub fn new(config: &Config) -> Result<Arc<Self>> {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&base_url)
            .map_err(|e| Error::Config(format!("base URL '{base_url}' is not a URL ({e}); set CLOUDFLARE_BASE_URL or --base-url")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Config(format!("base URL '{base_url}' must be http or https")));
        }
        let redirect = reqwest::redirect::Policy::custom(|attempt| {
            let same_host = attempt.previous().first().map(|u| (u.host_str(), u.port_or_known_default()))
                == Some((attempt.url().host_str(), attempt.url().port_or_known_default()));
            if attempt.previous().len() >= 5 || !same_host { attempt.stop() } else { attempt.follow() }
        });
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(redirect)
            .user_agent(concat!("cfql/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let limit = NonZeroU32::new(config.rate_limit.max(1)).expect("max(1) is non-zero");
        let period = config.rate_window / limit.get();
        let quota = Quota::with_period(period.max(Duration::from_nanos(1))).expect("non-zero period").allow_burst(limit);
        Ok(Arc::new(Self {
            http,
            base_url,
            credentials: config.credentials.clone(),
            limiter: RateLimiter::direct(quota),
            permits: Semaphore::new(config.concurrency.max(1)),
            max_retries: config.max_retries,
            retry_budget: config.retry_budget,
            base_delay: config.retry_base_delay,
            calls: AtomicU64::new(0),
        }))
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// HTTP requests sent so far (retries included).
    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(10));
        let jitter = rand::rng().random_range(0.5..1.5);
        exp.mul_f64(jitter)
    }

    /// Makes the call, retrying as its method allows, and decodes the envelope.
    pub async fn call(&self, req: &ApiRequest) -> Result<ApiResponse> {
        let method = req.method.as_str().to_string();
        let path = req.display_path();
        let Some(creds) = &self.credentials else {
            return Err(Error::Config(
                "no Cloudflare credential: set CLOUDFLARE_API_TOKEN (or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY), or use a --profile"
                    .into(),
            ));
        };
        let url = format!("{}{}", self.base_url, req.path);
        let mut attempt: u32 = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            self.limiter.until_ready().await;
            let permit = self.permits.acquire().await.expect("semaphore is never closed");
            let mut rb = self.http.request(req.method.clone(), &url).query(&req.query);
            rb = match creds {
                Credentials::ApiToken(t) => rb.bearer_auth(t),
                Credentials::GlobalKey { email, key } => rb.header("X-Auth-Email", email).header("X-Auth-Key", key),
            };
            if let Some(b) = &req.body {
                rb = rb.json(b);
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(method = %method, path = %path, attempt, "calling Cloudflare");
            let sent = rb.send().await;
            let outcome = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    match resp.bytes().await {
                        Ok(body) => Ok((status, retry_after, body)),
                        Err(e) => Err((false, e)),
                    }
                }
                Err(e) => Err((e.is_connect(), e)),
            };
            drop(permit);
            let can_wait = |d: Duration| attempt <= self.max_retries && waited + d <= self.retry_budget;
            match outcome {
                Ok((status, retry_after, body)) => {
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let wait = retry_after.map(Duration::from_secs).unwrap_or_else(|| self.backoff(attempt));
                        if can_wait(wait) {
                            tracing::warn!(method = %method, path = %path, wait_ms = wait.as_millis() as u64, "rate limited (429); retrying");
                            tokio::time::sleep(wait).await;
                            waited += wait;
                            continue;
                        }
                        return Err(Error::RateLimited { method, path, code: envelope::first_code(&body), attempts: attempt, retry_after });
                    }
                    if status.is_redirection() {
                        return Err(Error::Network {
                            method,
                            url: format!("{}{}", self.base_url, path),
                            detail: format!(
                                "HTTP {} redirect to another host refused (credentials are never sent to another host)",
                                status.as_u16()
                            ),
                        });
                    }
                    if status.is_server_error() && req.idempotent() {
                        let wait = self.backoff(attempt);
                        if can_wait(wait) {
                            tracing::warn!(method = %method, path = %path, status = status.as_u16(), "server error; retrying");
                            tokio::time::sleep(wait).await;
                            waited += wait;
                            continue;
                        }
                    }
                    return envelope::decode(&method, &path, status.as_u16(), &body);
                }
                Err((not_sent, e)) => {
                    let detail = describe(e);
                    if not_sent || req.idempotent() {
                        let wait = self.backoff(attempt);
                        if can_wait(wait) {
                            tracing::warn!(method = %method, path = %path, error = %detail, "network error; retrying");
                            tokio::time::sleep(wait).await;
                            waited += wait;
                            continue;
                        }
                    }
                    if !not_sent && !req.idempotent() {
                        return Err(Error::OutcomeUnknown {
                            method,
                            path,
                            detail,
                            check: req.check_hint.clone().unwrap_or_else(|| "list the resource and look for the object".into()),
                        });
                    }
                    return Err(Error::Network { method, url: format!("{}{}", self.base_url, path), detail });
                }
            }
        }
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
