//! Every failure a todo route can answer with, mapped to the seed's JSON bodies in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use floodgate_bus::BusError;
use floodgate_core::http::reply::retry_after;
use floodgate_db::DbError;
use floodgate_store::{BoxError, StoreError};

use crate::publish::SendError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// 503 with Retry-After: a backend (bus, database, store) did not answer; carries its
    /// error.
    #[error("service unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// A backend's error, or a lower layer's, is a 503 that keeps it as its cause.
macro_rules! unavailable_from {
    ($($lower:ty),+) => {$(
        impl From<$lower> for Error {
            fn from(e: $lower) -> Self {
                Error::Unavailable(Box::new(e))
            }
        }
    )+};
}

unavailable_from!(DbError, BusError, StoreError, SendError);

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::from(DbError::from(e))
    }
}

fn json(status: StatusCode, body: String) -> Response {
    crate::json::bytes(status, body)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Invalid(details) => {
                let body = serde_json::json!({"error": "Invalid request", "details": details});
                json(StatusCode::BAD_REQUEST, body.to_string())
            }
            Error::Unauthorized(why) => {
                tracing::debug!(reason = why, "todo write rejected");
                json(
                    StatusCode::UNAUTHORIZED,
                    r#"{"error":"Unauthorized"}"#.into(),
                )
            }
            Error::NotFound => json(StatusCode::NOT_FOUND, r#"{"error":"Not found"}"#.into()),
            Error::IdempotencyMismatch => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"error":"Idempotency-Key reused with a different request"}"#.into(),
            ),
            Error::Unavailable(why) => {
                tracing::warn!(error = %why, "todos backend unavailable");
                let resp = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"error":"Service unavailable"}"#.into(),
                );
                retry_after(resp, 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Arc;

    use axum::http::header::RETRY_AFTER;

    use super::*;
    use crate::outbox::OutboxError;

    #[test]
    fn unavailable_keeps_the_chain_and_the_answer() {
        let db = DbError::from(sqlx::Error::PoolTimedOut);
        let e = Error::from(SendError::from(OutboxError::Commit(Arc::new(db))));
        let pool = sqlx::Error::PoolTimedOut.to_string();
        assert_eq!(
            e.to_string(),
            format!("service unavailable: database unavailable: {pool}")
        );
        // Error -> SendError -> OutboxError -> the shared DbError -> sqlx's error.
        let chain: Vec<_> = std::iter::successors(e.source(), |c| (*c).source()).collect();
        assert_eq!(chain.len(), 4, "{chain:?}");
        assert!(chain[0].is::<SendError>());
        assert!(chain[1].is::<OutboxError>());
        assert!(chain[2].is::<Arc<DbError>>());
        assert!(chain[3].is::<sqlx::Error>());

        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[RETRY_AFTER], "1");
    }

    #[test]
    fn a_refused_publish_reads_as_before() {
        let e = Error::from(SendError::Refused {
            reason: "topic gone".into(),
            source: BusError::Other("topic gone".into()),
        });
        assert_eq!(
            e.to_string(),
            "service unavailable: publish failed: topic gone"
        );
        let send = e.source().expect("the send error is kept");
        assert!(send.source().is_some_and(|c| c.is::<BusError>()));
    }
}
