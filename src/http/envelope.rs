//! Decoding of Cloudflare's response envelope into results or typed errors.

use serde_json::Value;

use crate::error::{ApiMessage, Error};

/// Paging facts of a list response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResultInfo {
    /// Page returned.
    pub page: Option<u64>,
    /// Page size used.
    pub per_page: Option<u64>,
    /// Rows on this page.
    pub count: Option<u64>,
    /// Rows in the whole list.
    pub total_count: Option<u64>,
    /// Pages in the whole list (2026 API).
    pub total_pages: Option<u64>,
}

impl ResultInfo {
    /// Total pages, from `total_pages` or else `total_count` / `per_page`.
    pub fn pages(&self, per_page: u64) -> Option<u64> {
        self.total_pages.or_else(|| {
            let per = self.per_page.filter(|p| *p > 0).unwrap_or(per_page);
            self.total_count.map(|t| t.div_ceil(per.max(1)))
        })
    }
}

/// A successful response: the envelope's `result` and `result_info`. `Debug` leaves
/// out the result, which holds the secret of a create, roll or rotate.
#[derive(Clone)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// The `result` member.
    pub result: Value,
    /// The `result_info` member, if any.
    pub result_info: Option<ResultInfo>,
    /// The `messages` member (usually empty).
    pub messages: Value,
    /// Served from the session's cache (or shared with an identical call in flight).
    pub cached: bool,
    /// The body it was decoded from (shared, not copied): what the cache keeps.
    pub body: bytes::Bytes,
}

impl std::fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("result", &"<redacted>")
            .field("result_info", &self.result_info)
            .finish_non_exhaustive()
    }
}

fn messages(v: Option<&Value>) -> Vec<ApiMessage> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| ApiMessage {
                    code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("(no message)")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Decodes a response body. `Err` for error statuses, `success: false` and unreadable bodies.
pub fn decode(
    method: &str,
    path: &str,
    status: u16,
    body: &bytes::Bytes,
) -> Result<ApiResponse, Error> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    let v = match parsed {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) if status >= 400 => {
            return Err(Error::Api {
                status,
                method: method.into(),
                path: path.into(),
                errors: Vec::new(),
            });
        }
        Ok(_) => {
            return Err(Error::Decode {
                method: method.into(),
                path: path.into(),
                status,
                detail: "the body is JSON but not a Cloudflare envelope object".into(),
            });
        }
        Err(e) => {
            return Err(Error::Decode {
                method: method.into(),
                path: path.into(),
                status,
                detail: format!("invalid JSON ({e})"),
            });
        }
    };
    let success = v.get("success").and_then(Value::as_bool);
    if status >= 400 || success == Some(false) {
        return Err(Error::Api {
            status,
            method: method.into(),
            path: path.into(),
            errors: messages(v.get("errors")),
        });
    }
    if success.is_none() {
        return Err(Error::Decode {
            method: method.into(),
            path: path.into(),
            status,
            detail: "the envelope has no 'success' member".into(),
        });
    }
    let info = v.get("result_info").filter(|i| i.is_object()).map(|i| {
        let n = |k: &str| i.get(k).and_then(Value::as_f64).map(|f| f as u64);
        ResultInfo {
            page: n("page"),
            per_page: n("per_page"),
            count: n("count"),
            total_count: n("total_count"),
            total_pages: n("total_pages"),
        }
    });
    let result = v.get("result").cloned().unwrap_or(Value::Null);
    let messages = v
        .get("messages")
        .cloned()
        .unwrap_or_else(|| Value::Array(Vec::new()));
    Ok(ApiResponse {
        status,
        result,
        result_info: info,
        messages,
        cached: false,
        body: body.clone(),
    })
}

/// The Cloudflare code of a 429 body, if readable.
pub fn first_code(body: &[u8]) -> Option<i64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    messages(v.get("errors")).first().map(|m| m.code)
}
