//! Status records. Each is the complete `GET /status` response body, encoded once when it
//! is written, so serving it (even a result of a million primes) is a copy of stored bytes.

use bytes::Bytes;
use uuid::Uuid;

pub const PENDING: &[u8] = br#"{"status":"pending","result":null}"#;
pub const RUNNING: &[u8] = br#"{"status":"running","result":null}"#;

const COMPLETE_HEAD: &[u8] = br#"{"status":"complete","result":["#;
const FAILED_HEAD: &[u8] = br#"{"status":"failed""#;

/// Store key of a job's status.
pub fn key(id: &Uuid) -> String {
    format!("primes:status:{}", id.hyphenated())
}

/// Store key of the lease pool that bounds the backlog of `topic` (see `queue`).
pub fn queue_key(topic: &str) -> String {
    format!("primes:queue:{topic}")
}

/// `{"status":"complete","result":[2,3,5,…]}`.
pub fn complete(primes: &[u64]) -> Bytes {
    let widest = primes.last().map_or(1, |p| p.to_string().len());
    let mut out = Vec::with_capacity(COMPLETE_HEAD.len() + primes.len() * (widest + 1) + 2);
    out.extend_from_slice(COMPLETE_HEAD);
    let mut buf = itoa::Buffer::new();
    for (i, p) in primes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(buf.format(*p).as_bytes());
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

/// `{"status":"failed","result":null,"error":"…"}`.
pub fn failed(error: &str) -> Bytes {
    // Encoding a plain string cannot fail; the fallback only keeps this panic-free.
    let error = serde_json::to_string(error).unwrap_or_else(|_| "\"job failed\"".into());
    Bytes::from(format!(
        r#"{{"status":"failed","result":null,"error":{error}}}"#
    ))
}

/// Complete or failed: a worker must not touch it again.
pub fn is_final(record: &[u8]) -> bool {
    record.starts_with(COMPLETE_HEAD) || record.starts_with(FAILED_HEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_the_documented_json() {
        let v: serde_json::Value = serde_json::from_slice(&complete(&[2, 3, 5])).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "complete", "result": [2, 3, 5]})
        );
        let v: serde_json::Value = serde_json::from_slice(&failed("bad \"n\"")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "failed", "result": null, "error": "bad \"n\""})
        );
        for r in [PENDING, RUNNING] {
            let v: serde_json::Value = serde_json::from_slice(r).unwrap();
            assert!(v["result"].is_null());
        }
    }

    #[test]
    fn only_complete_and_failed_are_final() {
        assert!(is_final(&complete(&[2])));
        assert!(is_final(&complete(&[])));
        assert!(is_final(&failed("x")));
        assert!(!is_final(PENDING));
        assert!(!is_final(RUNNING));
    }
}
