//! Every failure a todo route can answer with, mapped to the seed's JSON bodies in one place.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `{"error":"Invalid request","details":…}`.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// 401 `{"error":"Unauthorized"}`; the reason is only logged at debug level.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 422: an Idempotency-Key reused for a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// 404 `{"error":"Not found"}`.
    #[error("not found")]
    NotFound,
    /// 503 with Retry-After: a backend (bus, database, store) did not answer.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

impl From<floodgate_db::DbError> for ApiError {
    fn from(e: floodgate_db::DbError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<floodgate_bus::BusError> for ApiError {
    fn from(e: floodgate_bus::BusError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from(floodgate_db::DbError::from(e))
    }
}

fn json(status: StatusCode, body: String) -> Response {
    crate::json::bytes(status, body)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Invalid(details) => {
                let body = serde_json::json!({"error": "Invalid request", "details": details});
                json(StatusCode::BAD_REQUEST, body.to_string())
            }
            ApiError::Unauthorized(why) => {
                tracing::debug!(reason = why, "todo write rejected");
                json(
                    StatusCode::UNAUTHORIZED,
                    r#"{"error":"Unauthorized"}"#.into(),
                )
            }
            ApiError::NotFound => json(StatusCode::NOT_FOUND, r#"{"error":"Not found"}"#.into()),
            ApiError::IdempotencyMismatch => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"error":"Idempotency-Key reused with a different request"}"#.into(),
            ),
            ApiError::Unavailable(why) => {
                tracing::warn!(error = %why, "todos backend unavailable");
                let mut resp = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"error":"Service unavailable"}"#.into(),
                );
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                resp
            }
        }
    }
}
