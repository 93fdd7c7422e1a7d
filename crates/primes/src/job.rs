//! The message on `prime-jobs`: `{"request_id":"<uuid>","n":10}`, keyed by the request id.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

pub fn encode(id: &Uuid, n: u64) -> String {
    format!(r#"{{"request_id":"{}","n":{n}}}"#, id.hyphenated())
}

#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// A job to run; `n` is checked against the worker's limit when it runs.
    Job { id: Uuid, n: Result<u64, String> },
    /// Not a job at all: committed and counted, never retried.
    Poison(String),
}

#[derive(Deserialize)]
struct Raw {
    request_id: Uuid,
    #[serde(default)]
    n: Value,
}

pub fn decode(payload: &[u8]) -> Decoded {
    match serde_json::from_slice::<Raw>(payload) {
        Ok(raw) => Decoded::Job {
            id: raw.request_id,
            // With a valid id the client can be told why, so a bad n is a failed job.
            n: raw
                .n
                .as_u64()
                .ok_or_else(|| format!("n must be a positive integer, got {}", raw.n)),
        },
        Err(e) => Decoded::Poison(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = Uuid::new_v4();
        assert_eq!(
            decode(encode(&id, 42).as_bytes()),
            Decoded::Job { id, n: Ok(42) }
        );
    }

    #[test]
    fn bad_messages() {
        assert!(matches!(decode(b"not json"), Decoded::Poison(_)));
        assert!(matches!(decode(br#"{"n":3}"#), Decoded::Poison(_)));
        assert!(matches!(
            decode(br#"{"request_id":"nope","n":3}"#),
            Decoded::Poison(_)
        ));
        let id = Uuid::new_v4();
        let msg = format!(r#"{{"request_id":"{id}","n":"3"}}"#);
        assert!(matches!(
            decode(msg.as_bytes()),
            Decoded::Job { n: Err(_), .. }
        ));
    }
}
