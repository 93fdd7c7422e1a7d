//! Idempotency-Key handling. The increment and the record of its result are one atomic
//! store step (`Store::idempotent_apply`: a Lua script on Redis, one lock pair in memory),
//! so there is no window in which a request is "in flight" under its key: a concurrent
//! duplicate either finds the finished record (a replay) or is the one that applies. That
//! is why the SPEC's 409 for a duplicate in flight is never sent, and why a failed request
//! (validation error, overflow, store down) leaves no lock behind: nothing is written.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderValue;
pub use floodgate_core::idempotency::REPLAYED;
use floodgate_core::idempotency::{valid, HEADER};
use floodgate_store::CounterOp;

use crate::error::AbacusError;

/// The request's Idempotency-Key, validated: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<HeaderValue>);

impl IdempotencyKey {
    pub fn as_str(&self) -> Option<&str> {
        // Validated as visible ASCII, so always UTF-8.
        self.0.as_ref().and_then(|v| v.to_str().ok())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = AbacusError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AbacusError> {
        match parts.headers.get(&HEADER) {
            None => Ok(IdempotencyKey(None)),
            Some(v) if valid(v) => Ok(IdempotencyKey(Some(v.clone()))),
            Some(_) => Err(AbacusError::IdempotencyKeyInvalid),
        }
    }
}

/// Where the record lives: per route and per caller, so two API keys (or the two write
/// routes) never see each other's keys.
pub fn record_key(route: &str, scope: &str, key: &str) -> String {
    format!("abacus:idem:{route}:{scope}:{key}")
}

/// The request's meaning, compared on replay. The canonical body is already tiny and exact
/// (the operation and a decimal integer), so it is stored as is: hashing it would only
/// shorten 20 characters and allow collisions. Whitespace, member order and extra members
/// of the JSON do not change it.
pub fn fingerprint(op: CounterOp) -> String {
    match op {
        CounterOp::Add(n) => format!("add:{n}"),
        CounterOp::Set(n) => format!("set:{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_operations_and_values_apart() {
        assert_eq!(fingerprint(CounterOp::Add(-5)), "add:-5");
        assert_ne!(
            fingerprint(CounterOp::Add(5)),
            fingerprint(CounterOp::Set(5))
        );
    }
}
