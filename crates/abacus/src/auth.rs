//! API keys: compared in constant time, and known afterwards only by a short hash, so no raw
//! key ever reaches the store (idempotency records and rate limits are scoped by the hash).

use std::sync::Arc;

use floodgate_core::config::Secret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hex digits of the digest used as a caller's id in store keys (96 bits).
const ID_BYTES: usize = 12;

/// The configured keys, as digests. Comparing fixed-size digests also hides the keys'
/// lengths from timing.
pub struct Keys {
    entries: Vec<([u8; 32], Arc<str>)>,
}

impl Keys {
    pub fn new(keys: &[Secret]) -> Self {
        let entries = keys
            .iter()
            .map(|k| {
                let digest = digest(k.expose().as_bytes());
                let id = hex(&digest[..ID_BYTES]);
                (digest, Arc::from(id))
            })
            .collect();
        Keys { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The id of the configured key equal to `presented`. Every configured key is compared,
    /// whichever matches.
    pub fn find(&self, presented: &[u8]) -> Option<Arc<str>> {
        let d = digest(presented);
        let mut found = None;
        for (known, id) in &self.entries {
            if bool::from(known.ct_eq(&d)) {
                found = Some(id);
            }
        }
        found.cloned()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_exact_keys_and_ids_hide_them() {
        let keys = Keys::new(&[Secret::new("alpha"), Secret::new("beta")]);
        let a = keys.find(b"alpha").expect("alpha is configured");
        let b = keys.find(b"beta").expect("beta is configured");
        assert_ne!(a, b);
        assert_eq!(a.len(), ID_BYTES * 2);
        assert!(!a.contains("alpha"));
        assert_eq!(keys.find(b"alph"), None);
        assert_eq!(keys.find(b"alphaa"), None);
        assert_eq!(keys.find(b""), None);
        assert!(Keys::new(&[]).find(b"alpha").is_none());
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab]), "000fab");
    }
}
