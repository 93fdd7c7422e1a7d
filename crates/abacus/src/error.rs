//! Every way an abacus request can fail, and the one place that turns each into the seed's
//! status code and JSON body.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use floodgate_store::StoreError;

use crate::docs::{Detail, FieldError, ValidationBody};

/// One rejected field, worded like pydantic so clients of the seed see the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: &'static str,
    pub kind: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum AbacusError {
    #[error("missing API key")]
    MissingApiKey,
    #[error("invalid API key")]
    InvalidApiKey,
    #[error("invalid request: {0:?}")]
    Validation(Invalid),
    /// The sum would leave the signed 64-bit range; nothing was changed.
    #[error("sum would overflow")]
    Overflow,
    #[error("Idempotency-Key header missing")]
    IdempotencyKeyRequired,
    #[error("Idempotency-Key header malformed")]
    IdempotencyKeyInvalid,
    #[error("Idempotency-Key reused with a different body")]
    IdempotencyMismatch,
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store holds something the abacus did not write (e.g. text at the sum's key).
    #[error("store holds unexpected data at {0}")]
    Corrupt(String),
}

impl From<StoreError> for AbacusError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => AbacusError::Unavailable(m),
            StoreError::Overflow => AbacusError::Overflow,
            StoreError::WrongType(key) => AbacusError::Corrupt(key),
        }
    }
}

const OVERFLOW: Invalid = Invalid {
    field: "number",
    message: "The sum would leave the signed 64-bit integer range",
    kind: "overflow",
};

fn detail(status: StatusCode, detail: &'static str) -> Response {
    (status, Json(Detail { detail })).into_response()
}

fn validation(invalid: Invalid) -> Response {
    let body = ValidationBody {
        message: "Validation error",
        errors: vec![FieldError {
            field: invalid.field,
            message: invalid.message,
            kind: invalid.kind,
        }],
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn retry_after(mut resp: Response, secs: u64) -> Response {
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    resp
}

impl IntoResponse for AbacusError {
    fn into_response(self) -> Response {
        match self {
            AbacusError::MissingApiKey => detail(StatusCode::UNAUTHORIZED, "Missing API key."),
            AbacusError::InvalidApiKey => detail(StatusCode::FORBIDDEN, "Invalid API key."),
            AbacusError::Validation(invalid) => validation(invalid),
            AbacusError::Overflow => validation(OVERFLOW),
            AbacusError::IdempotencyKeyRequired => detail(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key header is required.",
            ),
            AbacusError::IdempotencyKeyInvalid => detail(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
            ),
            AbacusError::IdempotencyMismatch => detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency-Key reused with a different request body.",
            ),
            AbacusError::RateLimited { retry_after_secs } => retry_after(
                detail(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded."),
                retry_after_secs,
            ),
            AbacusError::Unavailable(reason) => {
                // The core logs every 5xx; the reason is only worth a debug line.
                tracing::debug!(%reason, "abacus store unavailable");
                retry_after(
                    detail(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service temporarily unavailable.",
                    ),
                    1,
                )
            }
            AbacusError::Corrupt(key) => {
                tracing::error!(%key, "abacus key holds data of the wrong type");
                detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
            }
        }
    }
}
