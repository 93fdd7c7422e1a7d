//! Bearer JWTs for writes: HS256 only, `sub` required, `exp`/`nbf` checked when present.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::HeaderValue;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;
/// Longest `sub` accepted; it is stored as the owner of every todo the user writes.
const MAX_SUB: usize = 256;

static WARNED_NO_SECRET: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("JWT_SECRET is empty")]
    NoSecret,
    #[error("sub must be 1 to {MAX_SUB} characters, none of them NUL")]
    BadSub,
    #[error("cannot sign token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

#[derive(Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// The sub is stored as the owner of the user's todos: both databases must keep it.
fn valid_sub(sub: &str) -> bool {
    !sub.is_empty() && sub.chars().count() <= MAX_SUB && crate::model::storable(sub)
}

/// Mints an HS256 token for `sub`, valid for `ttl` (for `floodgate token`).
pub fn mint_token(secret: &str, sub: &str, ttl: Duration) -> Result<String, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    if !valid_sub(sub) {
        return Err(TokenError::BadSub);
    }
    let iat = jsonwebtoken::get_current_timestamp();
    let claims = MintClaims {
        sub,
        iat,
        exp: iat.saturating_add(ttl.as_secs()),
    };
    let key = EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &key,
    )?)
}

/// Verifies tokens; built once per router.
pub struct Verifier {
    key: Option<DecodingKey>,
    validation: Validation,
}

impl Verifier {
    pub fn new(secret: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Only HS256: a token claiming RS256, `none` or anything else is refused outright.
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let key = secret
            .filter(|s| !s.is_empty())
            .map(|s| DecodingKey::from_secret(s.as_bytes()));
        Verifier { key, validation }
    }

    /// The user (`sub`) of a valid `Authorization: Bearer …` header.
    pub fn user(&self, header: Option<&HeaderValue>) -> Result<String, Error> {
        let Some(key) = &self.key else {
            if !WARNED_NO_SECRET.swap(true, Ordering::Relaxed) {
                tracing::warn!("JWT_SECRET is not set: every todo write is answered 401");
            }
            return Err(Error::Unauthorized("no JWT_SECRET configured"));
        };
        let header = header.ok_or(Error::Unauthorized("no Authorization header"))?;
        let value = header
            .to_str()
            .map_err(|_| Error::Unauthorized("header not ASCII"))?;
        let token = bearer(value).ok_or(Error::Unauthorized("not a Bearer token"))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|_| Error::Unauthorized("token rejected"))?;
        let sub = data.claims.sub;
        if !valid_sub(&sub) {
            return Err(Error::Unauthorized("bad sub"));
        }
        Ok(sub)
    }
}

/// The token after a case-insensitive `Bearer ` prefix.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn minted_token_round_trips() {
        let v = Verifier::new(Some("s3cret"));
        let t = mint_token("s3cret", "alice", Duration::from_secs(60)).unwrap();
        assert_eq!(v.user(Some(&hv(&format!("Bearer {t}")))).unwrap(), "alice");
        assert_eq!(v.user(Some(&hv(&format!("bearer  {t}")))).unwrap(), "alice");
        assert!(v.user(Some(&hv(&t))).is_err(), "no scheme");
        assert!(Verifier::new(Some("other"))
            .user(Some(&hv(&format!("Bearer {t}"))))
            .is_err());
        assert!(Verifier::new(None)
            .user(Some(&hv(&format!("Bearer {t}"))))
            .is_err());
    }

    #[test]
    fn seed_example_token_is_expired_but_well_formed() {
        // The seed's example (sub test-user, secret change-me) expired in 2026.
        let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0ZXN0LXVzZXIiLCJleHAiOjE3NzE0MjQ0MjksImlhdCI6MTc3MTMzODAyOX0.df8c1PZ1uc8ae39x4zu4_JVirGn4-0x6dK_UL5Pj9hY";
        let mut v = Verifier::new(Some("change-me"));
        let now = jsonwebtoken::get_current_timestamp();
        if now > 1_771_424_429 + LEEWAY_SECS {
            assert!(v.user(Some(&hv(&format!("Bearer {t}")))).is_err());
        }
        v.validation.validate_exp = false;
        assert_eq!(
            v.user(Some(&hv(&format!("Bearer {t}")))).unwrap(),
            "test-user"
        );
    }
}
