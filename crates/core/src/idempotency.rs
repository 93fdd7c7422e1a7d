//! The `Idempotency-Key` request header, shared by every route that accepts one (abacus
//! writes, todo writes): its name, its syntax, and the header marking a replayed answer.
//! The record behind a key is `floodgate_store::Store::idempotent_apply`.

use http::{HeaderName, HeaderValue};

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Marks a response served from the record instead of applying the request again.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_LEN: usize = 255;

/// A well-formed key: 1 to 255 visible ASCII characters.
pub fn valid(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= MAX_LEN && b.iter().all(|c| c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        let ok = |s: &str| valid(&HeaderValue::from_str(s).expect("header value"));
        assert!(ok("a"));
        assert!(ok("550e8400-e29b-41d4-a716-446655440000"));
        assert!(ok(&"k".repeat(255)));
        assert!(!ok(&"k".repeat(256)));
        assert!(!ok(""));
        assert!(!ok("has space"));
        assert!(!ok("tab\there"));
        assert!(!valid(
            &HeaderValue::from_bytes(b"caf\xc3\xa9").expect("header value")
        ));
    }
}
