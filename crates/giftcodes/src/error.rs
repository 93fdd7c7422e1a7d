//! Every way `/queue` can fail, mapped to the seed's `{"detail": …}` bodies in one place.

use axum::http::header::RETRY_AFTER;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::admission::AdmissionError;

#[derive(Debug, thiserror::Error)]
pub enum GiftError {
    #[error("too many requests in flight")]
    Busy,
    #[error("no reply within the timeout")]
    Timeout,
    #[error("bus unavailable: {0}")]
    BusDown(String),
    #[error("store unavailable: {0}")]
    StoreDown(String),
}

impl From<AdmissionError> for GiftError {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::Full => GiftError::Busy,
            AdmissionError::Store(s) => GiftError::StoreDown(s.to_string()),
        }
    }
}

impl IntoResponse for GiftError {
    fn into_response(self) -> Response {
        let (status, detail, retry) = match &self {
            GiftError::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                "Server busy, too many in-flight requests. Please try again later.",
                Some("1"),
            ),
            GiftError::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "Timed out waiting for a gift code.",
                None,
            ),
            GiftError::BusDown(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Message bus unavailable. Please try again later.",
                Some("2"),
            ),
            GiftError::StoreDown(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable.",
                Some("1"),
            ),
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "gift code request failed");
        }
        let mut resp = (status, Json(json!({ "detail": detail }))).into_response();
        if let Some(r) = retry {
            resp.headers_mut()
                .insert(RETRY_AFTER, axum::http::HeaderValue::from_static(r));
        }
        resp
    }
}
