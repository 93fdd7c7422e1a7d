//! Every way an abacus request can fail, and the one place that turns each into the seed's
//! status code and JSON body.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use floodgate_core::http::reply::{detail, retry_after};
use floodgate_store::StoreError;

use crate::model::{FieldError, ValidationBody};

/// One rejected field, worded as the seed words it so its clients see the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: Cow<'static, str>,
    pub message: &'static str,
    pub kind: &'static str,
    /// A Content-Type was sent and is not JSON: the seed's summary then says so.
    pub wrong_content_type: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing API key")]
    MissingApiKey,
    #[error("invalid API key")]
    InvalidApiKey,
    #[error("invalid request: {0:?}")]
    Validation(Invalid),
    /// The sum would leave the signed 64-bit range; nothing was changed. `below`: it would
    /// go under i64::MIN (see `Error::adding`).
    #[error("sum would overflow")]
    Overflow { below: bool },
    #[error("Idempotency-Key longer than 200 characters")]
    IdempotencyKeyTooLong,
    #[error("Idempotency-Key header missing")]
    IdempotencyKeyRequired,
    #[error("Idempotency-Key header malformed")]
    IdempotencyKeyInvalid,
    #[error("Idempotency-Key reused with a different body")]
    IdempotencyMismatch,
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    /// The store did not answer (always a `StoreError::Unavailable`, whose text it shows).
    #[error("{0}")]
    Unavailable(#[source] StoreError),
    /// The store holds something the abacus did not write (e.g. text at the sum's key).
    #[error("store holds unexpected data at {0}")]
    Corrupt(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            e @ StoreError::Unavailable(_) => Error::Unavailable(e),
            StoreError::Overflow => Error::Overflow { below: false },
            StoreError::WrongType(key) => Error::Corrupt(key),
        }
    }
}

impl Error {
    /// The error of adding `n`: an overflow is an underflow when `n` is negative.
    pub fn adding(self, n: i64) -> Self {
        match self {
            Error::Overflow { .. } => Error::Overflow { below: n < 0 },
            other => other,
        }
    }
}

const OVERFLOW: &str = "Integer overflow: The resulting sum would exceed the 64-bit integer limit.";
const UNDERFLOW: &str =
    "Integer underflow: The resulting sum would be less than the 64-bit integer limit.";

/// The seed's 400 for a refused body: a summary, then the field errors.
fn validation(invalid: Invalid) -> Response {
    let message = if invalid.wrong_content_type {
        "Content-Type must be application/json."
    } else if invalid.field == "body" && invalid.kind == "missing" {
        "Request body is required."
    } else if invalid.kind == "json_invalid" {
        "Invalid JSON payload."
    } else if invalid.field == "number" {
        invalid.message
    } else {
        "Invalid request payload."
    };
    let body = ValidationBody {
        message,
        errors: vec![FieldError {
            field: invalid.field,
            message: invalid.message,
            kind: invalid.kind,
        }],
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::MissingApiKey => detail(StatusCode::UNAUTHORIZED, "Missing API key."),
            Error::InvalidApiKey => detail(StatusCode::FORBIDDEN, "Invalid API key."),
            Error::Validation(invalid) => validation(invalid),
            Error::Overflow { below: false } => detail(StatusCode::BAD_REQUEST, OVERFLOW),
            Error::Overflow { below: true } => detail(StatusCode::BAD_REQUEST, UNDERFLOW),
            Error::IdempotencyKeyTooLong => {
                detail(StatusCode::BAD_REQUEST, "Idempotency key is too long.")
            }
            Error::IdempotencyKeyRequired => detail(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key header is required.",
            ),
            Error::IdempotencyKeyInvalid => detail(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key must be printable ASCII.",
            ),
            Error::IdempotencyMismatch => detail(
                StatusCode::CONFLICT,
                "Idempotency key conflict: request payload differs from original request.",
            ),
            Error::RateLimited { retry_after_secs } => retry_after(
                detail(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded."),
                retry_after_secs,
            ),
            Error::Unavailable(e) => {
                // The core logs every 5xx; the reason (the store's cause) is only worth a
                // debug line.
                let reason = std::error::Error::source(&e)
                    .map_or_else(|| e.to_string(), ToString::to_string);
                tracing::debug!(%reason, "abacus store unavailable");
                retry_after(
                    detail(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service temporarily unavailable.",
                    ),
                    1,
                )
            }
            Error::Corrupt(key) => {
                tracing::error!(%key, "abacus key holds data of the wrong type");
                detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use axum::http::header::RETRY_AFTER;

    use super::*;

    #[test]
    fn unavailable_keeps_the_store_error_and_its_answer() {
        let e = Error::from(StoreError::Unavailable("redis call timed out".into()));
        assert_eq!(e.to_string(), "store unavailable: redis call timed out");
        let store = e.source().expect("the store error is kept");
        assert!(store.is::<StoreError>());
        let cause = store.source().map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("redis call timed out"));
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[RETRY_AFTER], "1");
    }
}
