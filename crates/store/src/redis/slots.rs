//! Redis Cluster runs a script only when all its keys share a hash slot. Counters keep the
//! names they have on one server; a key that only ever travels with a counter (an
//! idempotency record, an adoption marker) is given the counter's slot with a hash tag.

use std::borrow::Cow;

/// Redis Cluster's slot count.
const SLOTS: u16 = 16384;

/// The part of `key` Redis hashes: the first non-empty `{tag}`, else the whole key.
fn hashed(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// `key` moved into `anchor`'s slot by a leading hash tag; None when no tag can name that
/// slot (an anchor whose hashed part is empty or holds a `}`).
pub fn beside(anchor: &str, key: &str) -> Option<String> {
    let h = hashed(anchor);
    (!h.is_empty() && !h.contains('}')).then(|| format!("{{{h}}}{key}"))
}

/// `key` as stored: unchanged on one server, beside `anchor` on a cluster.
pub fn place<'a>(cluster: bool, anchor: &str, key: &'a str) -> Option<Cow<'a, str>> {
    if !cluster {
        return Some(Cow::Borrowed(key));
    }
    beside(anchor, key).map(Cow::Owned)
}

/// The cluster slot of `key`: CRC16-XMODEM of its hashed part, as Redis computes it.
pub fn slot(key: &str) -> u16 {
    let mut crc: u16 = 0;
    for &byte in hashed(key).as_bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on redis-server 7.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("bar"), 5061);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_ne!(slot("foo{}{bar}"), slot("bar"));
        assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
        assert_eq!(slot("foo{{bar}}zap"), 4015);
        assert_eq!(slot("foo{}{bar}"), 8363); // an empty tag: the whole key
        assert_eq!(slot("{user1000}.following"), 3443);
        assert_eq!(slot("hello"), 866);
        assert_eq!(slot("123456789"), 0x31C3); // the CRC16-XMODEM check value
        assert_eq!(slot(""), 0);
        assert_eq!(slot("foo{bar"), slot("foo{bar")); // no '}': the whole key
    }

    /// Whatever a client puts in an idempotency key, the record lands in the counter's slot.
    #[test]
    fn a_placed_key_shares_its_anchors_slot() {
        let anchors = ["abacus:sum", "todos:idem-counter", "{t}x", "a{b"];
        let keys = [
            "k",
            "{other}",
            "}{",
            "{",
            "}",
            "{}",
            "a{b}c",
            "\u{e9}{\u{1f600}}",
            "",
        ];
        for anchor in anchors {
            for key in keys {
                let placed = beside(anchor, key).expect(anchor);
                assert_eq!(
                    slot(&placed),
                    slot(anchor),
                    "{anchor:?} {key:?} -> {placed:?}"
                );
                assert!(placed.ends_with(key));
            }
        }
    }

    #[test]
    fn no_tag_can_follow_an_anchor_hashed_on_a_brace() {
        assert_eq!(beside("a}b", "k"), None);
        assert_eq!(beside("", "k"), None);
        assert_eq!(beside("x{}y", "k"), None);
        assert_eq!(place(false, "a}b", "k").as_deref(), Some("k"));
    }
}
