//! Counters as text: both backends read integers exactly the way Redis writes them.

/// Parses canonical decimal only ("007", "+1", " 1" are not integers to Redis either).
pub(crate) fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::parse_i64;

    #[test]
    fn parse_is_as_strict_as_redis() {
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"007"[..],
            b"+1",
            b" 1",
            b"1 ",
            b"1.0",
            b"",
            b"-0",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }
}
