//! Taking over seed 004's running sum. The seed keeps it at `abacus:running_sum`, written by
//! Lua as a double, so it may read `42`, `-7` or `1e+14`; floodgate keeps an exact integer at
//! `abacus:sum`. Before its first request each node runs the adoption: one atomic store step
//! copies the seed's value into our key when ours is absent and no node adopted before
//! (the marker `abacus:sum:adopted` remembers the text adopted). The seed's key is left as
//! it was, for a rollback.

use floodgate_store::{Adopt, Adoption, SharedStore, StoreError};

use crate::error::Error;
use crate::SUM_KEY;

pub(crate) const SEED_SUM_KEY: &str = "abacus:running_sum";
pub(crate) const ADOPTED_KEY: &str = "abacus:sum:adopted";

/// The seed's text as the exact integer its Lua `tonumber` reads: decimal integers exactly,
/// float forms (`1e+14`, `9.2233720368547748e+18`) when they hold a whole number in range.
pub(crate) fn seed_value(raw: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    // Only digits, sign, point and exponent: Rust would also take `inf` and `NaN`.
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    let f: f64 = text.parse().ok()?;
    // -2^63 is an i64; 2^63 (what i64::MAX rounds to as a double) is not.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() != 0.0 || !(-TWO_63..TWO_63).contains(&f) {
        return None;
    }
    Some(f as i64)
}

/// Runs until the seed's sum is adopted or there is nothing to adopt.
pub(crate) async fn run(store: &SharedStore) -> Result<(), Error> {
    // A seed node still writing changes the text between our read and the step: re-read.
    for _ in 0..10 {
        let Some(raw) = store.get(SEED_SUM_KEY).await? else {
            return Ok(());
        };
        let Some(value) = seed_value(&raw) else {
            tracing::error!(
                key = SEED_SUM_KEY,
                raw = %String::from_utf8_lossy(&raw),
                "the seed's sum is not a whole number in the 64-bit range; /abacus refuses requests until the key is fixed or deleted"
            );
            return Err(Error::Corrupt(SEED_SUM_KEY.to_string()));
        };
        match store
            .adopt_counter(Adopt {
                from: SEED_SUM_KEY,
                seen: &raw,
                to: SUM_KEY,
                value,
                marker: ADOPTED_KEY,
            })
            .await?
        {
            Adoption::Moved => {
                tracing::info!(
                    from = SEED_SUM_KEY,
                    to = SUM_KEY,
                    value,
                    "adopted the seed's running sum"
                );
                return Ok(());
            }
            Adoption::Done | Adoption::Absent => return Ok(()),
            Adoption::TargetExists => {
                tracing::warn!(
                    seed_key = SEED_SUM_KEY,
                    seed_value = value,
                    key = SUM_KEY,
                    "both the seed's sum and floodgate's exist; floodgate's is kept (see docs/compatibility.md, Switching over)"
                );
                return Ok(());
            }
            Adoption::Changed => continue,
        }
    }
    Err(Error::Unavailable(StoreError::Unavailable(
        "the seed's sum keeps changing: stop the seed's nodes first".into(),
    )))
}

#[cfg(test)]
mod tests {
    use super::seed_value;

    #[test]
    fn seed_texts_read_as_lua_reads_them() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("-7", Some(-7)),
            ("1e+14", Some(100_000_000_000_000)),
            ("1E14", Some(100_000_000_000_000)),
            ("-2.5e+3", Some(-2500)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9.2233720368547748e+18", Some(9_223_372_036_854_774_784)),
            ("-9.2233720368547758e+18", Some(i64::MIN)),
            // 2^63: what a Lua double past i64::MAX reads as.
            ("9.2233720368547758e+18", None),
            ("9223372036854775808", None),
            ("1.5", None),
            ("inf", None),
            ("NaN", None),
            ("", None),
            ("{\"sum\": 1}", None),
        ];
        for (text, want) in cases {
            assert_eq!(seed_value(text.as_bytes()), *want, "{text}");
        }
    }
}
