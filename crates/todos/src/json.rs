//! JSON responses as the seed's Gin server sends them: every one with
//! `Content-Type: application/json; charset=utf-8` (axum's `Json` would say
//! `application/json`).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

pub const GIN_JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// Already-encoded JSON (the cached list bytes: no copy, no allocation of our own).
pub fn bytes(status: StatusCode, body: impl Into<Body>) -> Response {
    floodgate_core::http::reply::json_as(status, GIN_JSON, body)
}

/// `value` encoded as JSON.
pub fn encode<T: Serialize>(status: StatusCode, value: &T) -> Response {
    // Plain strings, bools and maps of them cannot fail to encode.
    bytes(status, serde_json::to_vec(value).unwrap_or_default())
}
