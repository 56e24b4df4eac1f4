//! Decoding of Cloudflare's response envelope into results or typed errors.

use serde_json::Value;

use crate::error::{ApiMessage, Error};

/// Paging facts of a list response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Where the next page starts, for cursor-paged lists (absent or empty on the last).
    pub cursor: Option<String>,
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
    let decode_err = |detail: String| Error::Decode {
        method: method.into(),
        path: path.into(),
        status,
        detail,
    };
    let api_err = |errors| Error::Api {
        status,
        method: method.into(),
        path: path.into(),
        errors,
    };
    let v = match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => v,
        // An error status without an envelope still says what happened.
        _ if status >= 400 => return Err(api_err(Vec::new())),
        Ok(_) => {
            return Err(decode_err(
                "the body is JSON but not a Cloudflare envelope object".into(),
            ));
        }
        Err(e) => return Err(decode_err(format!("invalid JSON ({e})"))),
    };
    let success = v.get("success").and_then(Value::as_bool);
    if status >= 400 || success == Some(false) {
        return Err(api_err(messages(v.get("errors"))));
    }
    if success.is_none() {
        return Err(decode_err("the envelope has no 'success' member".into()));
    }
    Ok(ApiResponse {
        status,
        result: v.get("result").cloned().unwrap_or(Value::Null),
        result_info: v
            .get("result_info")
            .filter(|i| i.is_object())
            .map(result_info),
        messages: v
            .get("messages")
            .cloned()
            .unwrap_or_else(|| Value::Array(Vec::new())),
        cached: false,
        body: body.clone(),
    })
}

fn result_info(i: &Value) -> ResultInfo {
    let n = |k: &str| i.get(k).and_then(Value::as_f64).map(|f| f as u64);
    ResultInfo {
        page: n("page"),
        per_page: n("per_page"),
        count: n("count"),
        total_count: n("total_count"),
        total_pages: n("total_pages"),
        cursor: i
            .get("cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string),
    }
}

/// The Cloudflare code of a 429 body, if readable.
pub fn first_code(body: &[u8]) -> Option<i64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    messages(v.get("errors")).first().map(|m| m.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str) -> bytes::Bytes {
        bytes::Bytes::from(s.to_string())
    }

    #[test]
    fn an_envelope_gives_its_result_and_paging() {
        let r = decode("GET", "/user/tokens", 200, &body(r#"{"success":true,"errors":[],"messages":[],"result":[1],"result_info":{"page":2,"total_pages":3}}"#)).unwrap();
        assert_eq!(r.result, serde_json::json!([1]));
        let info = r.result_info.unwrap();
        assert_eq!(
            (info.page, info.total_pages, info.count),
            (Some(2), Some(3), None)
        );
    }

    #[test]
    fn errors_carry_status_codes_and_messages() {
        let e = decode("PUT", "/user/tokens/x", 403, &body(r#"{"success":false,"errors":[{"code":9109,"message":"Unauthorized"}],"result":null}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Cloudflare API error: HTTP 403 on PUT /user/tokens/x: code 9109: Unauthorized"
        );
        let e = decode("GET", "/t", 502, &body("<html>bad gateway</html>")).unwrap_err();
        assert!(matches!(e, Error::Api { status: 502, .. }), "{e}");
        let e = decode("GET", "/t", 200, &body(r#"{"result":[]}"#)).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("the envelope has no 'success' member"),
            "{e}"
        );
        let e = decode("GET", "/t", 200, &body("{")).unwrap_err();
        assert!(e.to_string().contains("invalid JSON"), "{e}");
    }
}
