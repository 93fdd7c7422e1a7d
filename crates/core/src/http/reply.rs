//! The response shapes every service answers with, written once: JSON bytes with their
//! content type, FastAPI's `{"detail": …}` error body, and `Retry-After` on a 503/429.

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

/// What FastAPI (and axum's `Json`) send.
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Already-encoded JSON with `content_type` (a seed's own, e.g. Gin's `; charset=utf-8`):
/// no copy of the body, no allocation of our own.
pub fn json_as(status: StatusCode, content_type: HeaderValue, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    resp
}

/// Already-encoded JSON as `application/json`.
pub fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    json_as(status, JSON, body)
}

/// `{"detail": text}`, the error body of the FastAPI seeds.
pub fn detail(status: StatusCode, text: &str) -> Response {
    json(status, serde_json::json!({ "detail": text }).to_string())
}

/// Adds `Retry-After: secs`.
pub fn retry_after(mut resp: Response, secs: u64) -> Response {
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn detail_is_escaped_json_with_its_type_and_retry_after() {
        let resp = retry_after(detail(StatusCode::SERVICE_UNAVAILABLE, "a \"b\""), 5);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(resp.headers()[RETRY_AFTER], "5");
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"detail":"a \"b\""}"#);
    }
}
