//! The HTTP side of the simulator: routes, the gate every request passes (log, faults,
//! auth, rate limit) and the connection loop that can drop connections on purpose.

use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use super::envelope::{codes, error, json_response};
use super::faults::Decision;
use super::handlers::{self as h, Shared};
use super::state::{AuthKind, Caller, RecordedRequest, fingerprint};

/// Marks a response whose connection must be closed without sending it.
#[derive(Clone, Copy)]
struct DropConnection;

/// Marks a response sent without the request being processed (a dropped connection).
#[derive(Clone, Copy)]
struct NotProcessed;

/// The error hyper sees when a connection is dropped on purpose.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

/// Path prefix of the Cloudflare API.
pub const API_PREFIX: &str = "/client/v4";

fn api_routes() -> Router<Shared> {
    let tokens = |r: Router<Shared>, base: &str| {
        r.route(
            &format!("{base}/tokens"),
            get(h::list_tokens).post(h::create_token),
        )
        .route(&format!("{base}/tokens/verify"), get(h::verify_token))
        .route(
            &format!("{base}/tokens/permission_groups"),
            get(h::permission_groups),
        )
        .route(
            &format!("{base}/tokens/{{token_id}}"),
            get(h::get_token)
                .put(h::update_token)
                .delete(h::delete_token),
        )
        .route(
            &format!("{base}/tokens/{{token_id}}/value"),
            put(h::roll_token),
        )
    };
    let services = |r: Router<Shared>, base: &str| {
        r.route(
            &format!("{base}/access/service_tokens"),
            get(h::list_service_tokens).post(h::create_service_token),
        )
        .route(
            &format!("{base}/access/service_tokens/{{service_token_id}}"),
            get(h::get_service_token)
                .put(h::update_service_token)
                .delete(h::delete_service_token),
        )
    };
    let mut r = Router::new()
        .route("/accounts", get(h::list_accounts))
        .route("/zones", get(h::list_zones))
        .route("/zones/{zone_id}", get(h::get_zone))
        .route("/accounts/{account_id}/logs/audit", get(h::list_audit_logs));
    r = tokens(r, "/user");
    r = tokens(r, "/accounts/{account_id}");
    r = services(r, "/accounts/{account_id}");
    r = services(r, "/zones/{zone_id}");
    r = super::generic::routes(r);
    r.route(
        "/accounts/{account_id}/access/service_tokens/{service_token_id}/refresh",
        post(h::refresh_service_token),
    )
    .route(
        "/accounts/{account_id}/access/service_tokens/{service_token_id}/rotate",
        post(h::rotate_service_token),
    )
}

/// The whole router: the API under `/client/v4` behind the gate, plus `/__sim/*`.
pub fn router(state: Shared) -> Router {
    let api = api_routes().route_layer(middleware::from_fn_with_state(state.clone(), gate));
    Router::new()
        .nest(API_PREFIX, api)
        .route("/__sim/requests", get(requests_report))
        .route("/__sim/access/check", get(h::access_check))
        .fallback(unmatched)
        .with_state(state)
}

fn auth_kind(req: &Request) -> AuthKind {
    let h = req.headers();
    if h.contains_key("authorization") {
        AuthKind::Bearer
    } else if h.contains_key("x-auth-key") || h.contains_key("x-auth-email") {
        AuthKind::EmailKey
    } else {
        AuthKind::None
    }
}

/// Runs before every API handler: counts the request, authenticates it, logs it (an
/// unauthenticated request is counted but not logged, so it cannot fill memory), applies
/// faults and the rate limit, calls the handler, and logs the answer's status; from the
/// log entry on, in a task of its own that outlives a client that goes away.
async fn gate(
    State(state): State<Shared>,
    matched: MatchedPath,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let route = matched
        .as_str()
        .strip_prefix(API_PREFIX)
        .unwrap_or(matched.as_str())
        .to_string();
    let path = req
        .uri()
        .path()
        .strip_prefix(API_PREFIX)
        .unwrap_or(req.uri().path())
        .to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let auth = auth_kind(&req);
    let (parts, body) = req.into_parts();
    lock(&state).log.count(&method, &route);
    let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
        return error(413, codes::INVALID, "request body too large");
    };
    let (caller, fingerprint) = match authenticate(&state, &parts.headers) {
        Ok(c) => c,
        Err((status, code, message)) => return error(status, code, message),
    };
    let mut entry = RecordedRequest::new(&method, &path, &route, &query, &bytes, auth);
    entry.caller = caller.label();
    let seq = lock(&state).log.push(entry);
    let (audit_caller, audit_path) = (caller.clone(), path.clone());
    // A request received is carried out and logged even if its client goes away while it
    // waits out its latency (as the real API does: the call acts, the answer is lost), so
    // a test can see what a client that stopped waiting loses.
    let work = async move {
        let resp = answer(
            &state,
            &method,
            &route,
            parts,
            bytes,
            (caller, fingerprint),
            next,
        )
        .await;
        let processed = resp.extensions().get::<NotProcessed>().is_none();
        let status = processed.then(|| resp.status().as_u16());
        if let Some(code) = status.filter(|c| *c != 429) {
            lock(&state).record_call(&audit_caller, &method, &audit_path, &route, code);
        }
        lock(&state).log.answer(
            seq,
            status,
            resp.extensions().get::<DropConnection>().is_some(),
        );
        resp
    };
    match tokio::spawn(work).await {
        Ok(resp) => resp,
        Err(_) => error(500, codes::INTERNAL, "the simulator's handler failed"),
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, super::state::SimState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The caller a request's credential headers name, and its rate-limit fingerprint.
fn authenticate(
    state: &Shared,
    h: &axum::http::HeaderMap,
) -> Result<(Caller, u64), (u16, u32, &'static str)> {
    let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut st = lock(state);
    let (result, fp) = if let Some(a) = text("authorization") {
        match a.strip_prefix("Bearer ") {
            Some(tok) => (
                st.authenticate_bearer(tok.trim()),
                fingerprint(&["bearer", tok.trim()]),
            ),
            None => (
                Err((400, 6111, "Invalid format for Authorization header")),
                0,
            ),
        }
    } else if let (Some(e), Some(k)) = (text("x-auth-email"), text("x-auth-key")) {
        (st.authenticate_key(&e, &k), fingerprint(&["key", &e, &k]))
    } else {
        (
            Err((
                401,
                codes::MISSING_AUTH,
                "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
            )),
            0,
        )
    };
    result.map(|c| (c, fp))
}

/// Faults, the rate limit, then the handler.
async fn answer(
    state: &Shared,
    method: &str,
    route: &str,
    parts: axum::http::request::Parts,
    bytes: Bytes,
    (caller, fp): (Caller, u64),
    next: Next,
) -> Response {
    let (decision, base_latency, retry_after) = {
        let mut st = lock(state);
        let d = st.faults.decide(method, route);
        (d, st.latency_ms, st.faults.retry_after())
    };
    let latency = base_latency + decision.latency_ms;
    if latency > 0 {
        tokio::time::sleep(StdDuration::from_millis(latency)).await;
    }
    if let Some(r) = injected_before(&decision, retry_after) {
        return r;
    }
    let verdict = lock(state).rate.check(fp);
    if !verdict.allowed {
        let mut r = error(
            429,
            codes::RATE_LIMITED,
            "Rate limited: more than the allowed requests per window",
        );
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(verdict.reset_secs));
        rate_headers(state, &mut r, verdict);
        return r;
    }
    let mut parts = parts;
    if lock(state).paging_ignored {
        ignore_page(&mut parts);
    }
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(caller);
    let resp = injected_after(&decision, envelope_rejection(next.run(req).await).await).await;
    let mut resp = resp;
    rate_headers(state, &mut resp, verdict);
    resp
}

/// A fault that answers instead of the handler: a dropped connection or an error status.
fn injected_before(decision: &Decision, retry_after: u64) -> Option<Response> {
    if decision.drop_before {
        let mut r = Response::new(Body::empty());
        r.extensions_mut().insert(DropConnection);
        r.extensions_mut().insert(NotProcessed);
        return Some(r);
    }
    let status = decision.status?;
    Some(match status {
        429 => {
            let msg = "Please wait and consider throttling your request speed";
            let mut r = error(429, codes::RATE_LIMITED, msg);
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after));
            r
        }
        s => error(s, codes::INTERNAL, "Internal server error (injected)"),
    })
}

/// A fault applied to the handler's answer: a cut body, mistyped fields, a dropped
/// connection after the handler acted.
async fn injected_after(decision: &Decision, mut resp: Response) -> Response {
    if decision.malformed {
        resp = Response::new(Body::from(
            "{\"success\": true, \"result\": [{\"id\": \"trunc",
        ));
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
    }
    if decision.mistyped {
        resp = mistype(resp).await;
    }
    if decision.drop_after {
        resp.extensions_mut().insert(DropConnection);
    }
    resp
}

/// Cloudflare's budget headers (the IETF RateLimit fields draft): what is left of the
/// window, when it frees up, and the policy.
fn rate_headers(state: &Shared, resp: &mut Response, v: super::state::RateVerdict) {
    let (limit, window) = {
        let st = lock(state);
        (st.rate.limit, st.rate.window.as_secs())
    };
    let h = resp.headers_mut();
    if let Ok(v) =
        HeaderValue::from_str(&format!("\"default\";r={};t={}", v.remaining, v.reset_secs))
    {
        h.insert("ratelimit", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"burst\";q={limit};w={window}")) {
        h.insert("ratelimit-policy", v);
    }
}

/// Drops `page=` from the query, so the handler answers page 1 whatever was asked.
fn ignore_page(parts: &mut axum::http::request::Parts) {
    let Some(q) = parts.uri.query() else { return };
    let kept: Vec<&str> = q.split('&').filter(|kv| !kv.starts_with("page=")).collect();
    let pq = format!("{}?{}", parts.uri.path(), kept.join("&"));
    if let Ok(uri) = pq.parse() {
        parts.uri = uri;
    }
}

/// A request the router's extractors refused (a path that is not valid UTF-8 once
/// decoded, such as `%FF`) gets a Cloudflare envelope, like every other answer.
async fn envelope_rejection(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !resp.status().is_client_error() {
        return resp;
    }
    let status = resp.status().as_u16();
    let text = axum::body::to_bytes(resp.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    error(
        status,
        codes::INVALID,
        format!("Invalid request: {}", String::from_utf8_lossy(&text).trim()),
    )
}

/// The same answer with the result's times as bare dates and booleans as words: what a
/// client must survive without reporting a call that took effect as failed.
async fn mistype(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(result) = v
        .get_mut("result")
        .and_then(serde_json::Value::as_object_mut)
    {
        for (k, field) in result.iter_mut() {
            if field.is_boolean() {
                *field = json!("yes");
            } else if field.is_string() && (k.ends_with("_at") || k.ends_with("_on")) {
                *field = json!("2024-01-01");
            }
        }
    }
    let mut parts = parts;
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(v.to_string()))
}

async fn unmatched(State(state): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with(API_PREFIX) {
        lock(&state).log.count(req.method().as_str(), "unmatched");
    }
    // A path that is not valid UTF-8 once decoded (`%FF`) lands here too: the answer is
    // always a Cloudflare envelope.
    if req.method() == Method::GET
        || req.method() == Method::POST
        || req.method() == Method::PUT
        || req.method() == Method::DELETE
    {
        error(404, codes::NO_ROUTE, "No route for the URI")
    } else {
        error(405, codes::NO_ROUTE, "Method not allowed")
    }
}

async fn requests_report(State(state): State<Shared>) -> Response {
    let st = lock(&state);
    let mut counts: Vec<_> = st
        .log
        .counts
        .iter()
        .map(|((m, r), n)| json!({"method": m, "route": r, "count": n}))
        .collect();
    counts.sort_by_key(|v| v.to_string());
    let body = json!({"total": st.log.total, "kept": st.log.requests.len(), "counts": counts, "requests": st.log.requests});
    json_response(200, &body)
}

/// Serves `router` on `listener` until `stop` turns true. Connections whose
/// response carries [`DropConnection`] are closed without an answer.
pub async fn serve(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let router = router.clone();
                    async move {
                        let resp = match router.oneshot(req.map(Body::new)).await {
                            Ok(r) => r,
                            Err(e) => match e {},
                        };
                        if resp.extensions().get::<DropConnection>().is_some() {
                            return Err(Dropped);
                        }
                        Ok::<_, Dropped>(resp)
                    }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}
