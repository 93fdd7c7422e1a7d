//! Idempotency-Key handling. The increment and the record of its result are one atomic
//! store step (`Store::idempotent_apply`: a Lua script on Redis, one lock pair in memory),
//! so there is no window in which a request is "in flight" under its key: a concurrent
//! duplicate either finds the finished record (a replay) or is the one that applies. That
//! is why the SPEC's 409 for a duplicate in flight is never sent, and why a failed request
//! (validation error, overflow, store down) leaves no lock behind: nothing is written.
//! Key rules and answers follow the seed (trimmed, 200 characters at most, 409 when reused
//! with another body); docs/compatibility.md lists where they differ.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use floodgate_core::idempotency::HEADER;
pub use floodgate_core::idempotency::REPLAYED;
use floodgate_store::CounterOp;

use crate::error::Error;

/// The longest key the seed takes, counted after trimming (Starlette reads header bytes
/// as Latin-1, so characters are bytes).
const MAX_LEN: usize = 200;

/// The request's Idempotency-Key header as sent; `checked` validates it, after the body,
/// in the seed's order.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(Option<HeaderValue>);

impl IdempotencyKey {
    /// The key, trimmed as the seed trims it (an empty one counts as none): at most 200
    /// characters, printable ASCII (spaces inside allowed).
    pub fn checked(&self) -> Result<Option<&str>, Error> {
        let Some(v) = &self.0 else {
            return Ok(None);
        };
        let key = v.as_bytes().trim_ascii();
        if key.is_empty() {
            return Ok(None);
        }
        if key.len() > MAX_LEN {
            return Err(Error::IdempotencyKeyTooLong);
        }
        if !key.iter().all(|&b| b == b' ' || b.is_ascii_graphic()) {
            return Err(Error::IdempotencyKeyInvalid);
        }
        // Printable ASCII is UTF-8.
        std::str::from_utf8(key)
            .map(Some)
            .map_err(|_| Error::IdempotencyKeyInvalid)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(IdempotencyKey(parts.headers.get(&HEADER).cloned()))
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

    fn check(raw: &[u8]) -> Result<Option<String>, &'static str> {
        let v = HeaderValue::from_bytes(raw).expect("header value");
        IdempotencyKey(Some(v))
            .checked()
            .map(|k| k.map(str::to_string))
            .map_err(|e| match e {
                Error::IdempotencyKeyTooLong => "long",
                Error::IdempotencyKeyInvalid => "invalid",
                _ => "other",
            })
    }

    #[test]
    fn keys_are_trimmed_and_at_most_200_printable_characters() {
        assert_eq!(check(b" k 1 "), Ok(Some("k 1".into())));
        assert_eq!(check(b"   "), Ok(None));
        assert_eq!(check(&[b'k'; 200]), Ok(Some("k".repeat(200))));
        assert_eq!(
            check(format!(" {} ", "k".repeat(200)).as_bytes()),
            Ok(Some("k".repeat(200)))
        );
        assert_eq!(check(&[b'k'; 201]), Err("long"));
        assert_eq!(check(b"tab\tinside"), Err("invalid"));
        assert_eq!(check(b"caf\xc3\xa9"), Err("invalid"));
        assert_eq!(IdempotencyKey(None).checked().ok(), Some(None));
    }

    #[test]
    fn fingerprints_tell_operations_and_values_apart() {
        assert_eq!(fingerprint(CounterOp::Add(-5)), "add:-5");
        assert_ne!(
            fingerprint(CounterOp::Add(5)),
            fingerprint(CounterOp::Set(5))
        );
    }
}
