//! Every failure a prime route can answer with, mapped to the seed's JSON bodies in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use floodgate_bus::BusError;
use floodgate_core::http::reply::{detail, json, retry_after};
use floodgate_store::{BoxError, StoreError};
use serde::Serialize;
use serde_json::Value;

/// One entry of FastAPI's `{"detail":[…]}` validation body, its members in FastAPI's
/// order: `type`, `loc`, `msg`, `input`, then `ctx` when there is one. (An object `input`
/// has its members sorted; Python keeps the client's order.)
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub loc: Vec<&'static str>,
    pub msg: String,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl FieldError {
    pub(crate) fn new(loc: &[&'static str], kind: &'static str, msg: &str, input: Value) -> Self {
        FieldError {
            loc: loc.to_vec(),
            kind,
            msg: msg.to_string(),
            input,
            ctx: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 422 in FastAPI's shape `{"detail":[{"type","loc","msg","input"}]}`.
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    /// 400 `{"detail":"n must be a positive integer"}` (the seed's own check).
    #[error("n must be a positive integer")]
    NotPositive,
    /// 404 `{"detail":"Unknown request_id"}`: never issued, expired, or not a UUID.
    #[error("unknown request_id")]
    UnknownRequest,
    /// 503: the backlog of queued jobs is at its bound; retry shortly.
    #[error("too many queued jobs")]
    QueueFull,
    /// 503: the store or the bus did not answer; carries their error.
    #[error("backend unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Unavailable(Box::new(e))
    }
}

impl From<BusError> for Error {
    fn from(e: BusError) -> Self {
        Error::Unavailable(Box::new(e))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Validation(errors) => {
                #[derive(serde::Serialize)]
                struct Body<'a> {
                    detail: &'a [FieldError],
                }
                let body = serde_json::to_string(&Body { detail: &errors }).unwrap_or_default();
                json(StatusCode::UNPROCESSABLE_ENTITY, body)
            }
            Error::NotPositive => detail(StatusCode::BAD_REQUEST, "n must be a positive integer"),
            Error::UnknownRequest => detail(StatusCode::NOT_FOUND, "Unknown request_id"),
            Error::QueueFull => {
                metrics::counter!("prime_jobs_rejected_total", "reason" => "queue_full")
                    .increment(1);
                retry_after(
                    detail(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Too many prime jobs queued. Please try again later.",
                    ),
                    1,
                )
            }
            Error::Unavailable(why) => {
                tracing::warn!(error = %why, "prime jobs backend unavailable");
                metrics::counter!("prime_jobs_rejected_total", "reason" => "unavailable")
                    .increment(1);
                retry_after(
                    detail(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Prime job service temporarily unavailable. Please try again later.",
                    ),
                    5,
                )
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
    fn backend_errors_stay_the_cause() {
        let e = Error::from(StoreError::Unavailable("redis call timed out".into()));
        assert_eq!(
            e.to_string(),
            "backend unavailable: store unavailable: redis call timed out"
        );
        assert!(e.source().is_some_and(|c| c.is::<StoreError>()));

        let e = Error::from(BusError::Closed);
        assert_eq!(e.to_string(), "backend unavailable: consumer closed");
        assert!(e.source().is_some_and(|c| c.is::<BusError>()));
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[RETRY_AFTER], "5");
    }
}
