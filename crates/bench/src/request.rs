//! Requests encoded once into raw bytes; only an idempotency key is patched per request.

use crate::error::BenchError;
use crate::target::Target;

const KEY_HEADER: &[u8] = b"Idempotency-Key: ";
const UUID_LEN: usize = 36;

/// The bytes of one request, with the position of its idempotency key if it has one.
#[derive(Debug, Clone)]
pub struct Template {
    pub bytes: Vec<u8>,
    key_at: Option<usize>,
}

/// What every request carries besides its URL.
#[derive(Debug, Clone, Default)]
pub struct RequestSpec {
    pub method: String,
    /// (name, value) pairs, already validated.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub idempotency: bool,
}

impl RequestSpec {
    pub fn new(
        method: &str,
        raw_headers: &[String],
        body: Vec<u8>,
        idempotency: bool,
    ) -> Result<Self, BenchError> {
        let method = method.trim().to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(BenchError::Method(method));
        }
        let headers = raw_headers
            .iter()
            .map(|raw| parse_header(raw))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            method,
            headers,
            body,
            idempotency,
        })
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// HEAD responses have no body; the parser must know.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    pub fn encode(&self, target: &Target) -> Template {
        let mut out = Vec::with_capacity(128 + self.body.len());
        let push = |out: &mut Vec<u8>, parts: &[&[u8]]| parts.iter().for_each(|p| out.extend(*p));
        push(
            &mut out,
            &[
                self.method.as_bytes(),
                b" ",
                target.path.as_bytes(),
                b" HTTP/1.1\r\n",
            ],
        );
        if !self.has_header("host") {
            push(&mut out, &[b"Host: ", target.authority.as_bytes(), b"\r\n"]);
        }
        for (name, value) in &self.headers {
            push(
                &mut out,
                &[name.as_bytes(), b": ", value.as_bytes(), b"\r\n"],
            );
        }
        let sends_body = !self.body.is_empty() || !matches!(self.method.as_str(), "GET" | "HEAD");
        if sends_body && !self.has_header("content-length") {
            let length = self.body.len().to_string();
            push(&mut out, &[b"Content-Length: ", length.as_bytes(), b"\r\n"]);
        }
        let key_at = self.idempotency.then(|| {
            out.extend_from_slice(KEY_HEADER);
            let at = out.len();
            out.extend_from_slice(&[b'0'; UUID_LEN]);
            out.extend_from_slice(b"\r\n");
            at
        });
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        Template { bytes: out, key_at }
    }
}

impl Template {
    pub fn needs_key(&self) -> bool {
        self.key_at.is_some()
    }

    /// Appends this request to `out`, with a fresh key from `rng` when it has one.
    pub fn append_to(&self, out: &mut Vec<u8>, rng: &mut Rng) {
        let from = out.len();
        out.extend_from_slice(&self.bytes);
        if let Some(at) = self.key_at {
            let uuid = uuid::Builder::from_random_bytes(rng.bytes16()).into_uuid();
            uuid.hyphenated()
                .encode_lower(&mut out[from + at..from + at + UUID_LEN]);
        }
    }
}

/// "Name: value" → (name, value); the name must be a token, the value free of CR/LF.
pub fn parse_header(raw: &str) -> Result<(String, String), BenchError> {
    let bad = || BenchError::Header(raw.to_string());
    let (name, value) = raw.split_once(':').ok_or_else(bad)?;
    let name = name.trim();
    let value = value.trim();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty()
        || !name.bytes().all(token)
        || value.bytes().any(|b| b == b'\r' || b == b'\n')
    {
        return Err(bad());
    }
    Ok((name.to_string(), value.to_string()))
}

/// A small, fast generator (wyrand) for idempotency keys; not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Self {
        Self(uuid::Uuid::new_v4().as_u64_pair().0)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }

    fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }

    /// A number in `low..=high`.
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        let span = high.abs_diff(low).saturating_add(1);
        low.wrapping_add((self.next_u64() % span) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:8080/abacus/number").unwrap()
    }

    #[test]
    fn encodes_post_with_key() {
        let spec = RequestSpec::new(
            "post",
            &["X-API-Key: k".into()],
            b"{\"number\":1}".to_vec(),
            true,
        )
        .unwrap();
        let template = spec.encode(&target());
        let mut rng = Rng(1);
        let mut out = Vec::new();
        template.append_to(&mut out, &mut rng);
        template.append_to(&mut out, &mut rng);
        let text = String::from_utf8(out).unwrap();
        let requests: Vec<&str> = text.split("POST ").filter(|s| !s.is_empty()).collect();
        assert_eq!(requests.len(), 2);
        assert!(requests[0].starts_with("/abacus/number HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(requests[0].contains("X-API-Key: k\r\nContent-Length: 12\r\n"));
        assert!(requests[0].ends_with("\r\n\r\n{\"number\":1}"));
        let key = |r: &str| {
            let at = r.find("Idempotency-Key: ").unwrap() + 17;
            r[at..at + 36].to_string()
        };
        let (a, b) = (key(requests[0]), key(requests[1]));
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(&a).unwrap().get_version_num() == 4);
    }

    #[test]
    fn get_has_no_length() {
        let spec = RequestSpec::new("GET", &[], Vec::new(), false).unwrap();
        let template = spec.encode(&target());
        assert_eq!(
            template.bytes,
            b"GET /abacus/number HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
        assert!(!template.needs_key());
    }

    #[test]
    fn rejects_bad_headers_and_methods() {
        assert!(parse_header("NoColon").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header(": x").is_err());
        assert_eq!(
            parse_header("A:  b c ").unwrap(),
            ("A".to_string(), "b c".to_string())
        );
        assert!(RequestSpec::new("G ET", &[], Vec::new(), false).is_err());
    }

    #[test]
    fn range_stays_inside() {
        let mut rng = Rng(7);
        for _ in 0..1000 {
            let v = rng.range(-5, 5);
            assert!((-5..=5).contains(&v));
        }
    }
}
