//! Cloudflare response envelopes: success, list with `result_info`, and error.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

/// A JSON response with this status.
pub fn json_response(status: u16, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"success": true, "result": ...}` with this status.
pub fn ok_status(status: u16, result: Value) -> Response {
    json_response(
        status,
        &json!({"success": true, "errors": [], "messages": [], "result": result}),
    )
}

/// `{"success": true, "result": ...}` with status 200.
pub fn ok(result: Value) -> Response {
    ok_status(200, result)
}

/// A page of a list, with `result_info`. `total_count: None` leaves out `total_count`
/// and `total_pages`, as some endpoints do (clients must then page until a short page).
pub fn ok_list(
    result: Vec<Value>,
    page: usize,
    per_page: usize,
    total_count: Option<usize>,
) -> Response {
    let count = result.len();
    let mut info = json!({"page": page, "per_page": per_page, "count": count});
    if let Some(total) = total_count {
        info["total_count"] = json!(total);
        info["total_pages"] = json!(total.div_ceil(per_page.max(1)));
    }
    json_response(
        200,
        &json!({"success": true, "errors": [], "messages": [], "result": result, "result_info": info}),
    )
}

/// `{"success": false, "errors": [{"code", "message"}], "result": null}`.
pub fn error(status: u16, code: u32, message: impl Into<String>) -> Response {
    json_response(
        status,
        &json!({"success": false, "errors": [{"code": code, "message": message.into()}], "messages": [], "result": null}),
    )
}

/// Cloudflare error codes used by the simulator.
pub mod codes {
    /// Unknown object id.
    pub const NOT_FOUND: u32 = 1003;
    /// Invalid or missing field, bad query parameter.
    pub const INVALID: u32 = 1004;
    /// A quota is reached (the simulator's choice of code; Cloudflare documents none).
    pub const QUOTA: u32 = 1005;
    /// The body is not JSON.
    pub const MALFORMED_JSON: u32 = 6007;
    /// No route for the URI.
    pub const NO_ROUTE: u32 = 7003;
    /// The credential lacks scope for the resource.
    pub const UNAUTHORIZED_SCOPE: u32 = 9109;
    /// Missing credential headers.
    pub const MISSING_AUTH: u32 = 9106;
    /// Rate limited (Cloudflare has used 971 and 10100; the schema requires codes >= 1000).
    pub const RATE_LIMITED: u32 = 10100;
    /// Injected server error.
    pub const INTERNAL: u32 = 10001;
    /// `/accounts` with an account-owned token.
    pub const ACCOUNT_OWNED_TOKEN: u32 = 1001;
}
