//! Every way `/queue` can fail, mapped to the seed's `{"detail": …}` bodies in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use floodgate_core::http::reply;
use floodgate_store::{BoxError, StoreError};

use crate::admission::AdmissionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("too many requests in flight")]
    Busy,
    #[error("no reply within the timeout")]
    Timeout,
    /// The bus refused or could not take the task (or is known to be down): the cause is
    /// the bus's error, or why nothing was sent.
    #[error("bus unavailable: {0}")]
    BusDown(#[source] BoxError),
    #[error("store unavailable: {0}")]
    StoreDown(#[source] StoreError),
}

impl From<AdmissionError> for Error {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::Full => Error::Busy,
            AdmissionError::Store(s) => Error::StoreDown(s),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, detail, retry) = match &self {
            Error::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                "Server busy, too many in-flight requests. Please try again later.",
                Some(1),
            ),
            Error::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "Timed out waiting for a gift code.",
                None,
            ),
            Error::BusDown(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Message bus unavailable. Please try again later.",
                Some(2),
            ),
            Error::StoreDown(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable.",
                Some(1),
            ),
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "gift code request failed");
        }
        let resp = reply::detail(status, detail);
        match retry {
            Some(secs) => reply::retry_after(resp, secs),
            None => resp,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use axum::http::header::RETRY_AFTER;
    use floodgate_bus::BusError;

    use super::*;

    #[test]
    fn store_and_bus_errors_stay_the_cause() {
        let store = StoreError::Unavailable("redis call timed out".into());
        let e = Error::from(AdmissionError::Store(store));
        assert_eq!(
            e.to_string(),
            "store unavailable: store unavailable: redis call timed out"
        );
        assert!(e.source().is_some_and(|c| c.is::<StoreError>()));
        assert_eq!(e.into_response().status(), StatusCode::SERVICE_UNAVAILABLE);

        let e = Error::BusDown(BusError::Unavailable("no ack".into()).into());
        assert_eq!(e.to_string(), "bus unavailable: bus unavailable: no ack");
        assert!(e.source().is_some_and(|c| c.is::<BusError>()));
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[RETRY_AFTER], "2");
    }
}
