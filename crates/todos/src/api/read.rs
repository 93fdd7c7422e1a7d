//! `GET /todos` (the hot path: pre-encoded bytes, no per-request allocation of our own)
//! and `GET /todos/{id}`.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;

use crate::error::Error;
use crate::model::Todo;
use crate::repo;
use crate::state::AppState;

/// The `limit` query parameter: None when absent.
pub struct Limit(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for Limit {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse_limit(parts.uri.query())
            .map(Limit)
            .map_err(Error::Invalid)
    }
}

/// Finds `limit` in a query string without allocating in the usual case. A positive run
/// of digits is accepted (values beyond u64 count as "very large" and are clamped later).
pub fn parse_limit(query: Option<&str>) -> Result<Option<u64>, String> {
    let Some(query) = query else { return Ok(None) };
    let Some(raw) = query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == "limit").then_some(v)
    }) else {
        return Ok(None);
    };
    let decoded;
    let value = if raw.contains('%') {
        decoded = percent_decode(raw).ok_or_else(|| bad(raw))?;
        decoded.as_str()
    } else {
        raw
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(value));
    }
    let n = value.parse::<u64>().unwrap_or(u64::MAX);
    if n == 0 {
        return Err(bad(value));
    }
    Ok(Some(n))
}

fn bad(value: &str) -> String {
    let shown: String = value.chars().take(32).collect();
    format!("limit must be a positive integer, got {shown:?}")
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A JSON body from shared bytes; hyper adds Content-Length from the exact size.
fn json_bytes(body: Bytes) -> Response {
    crate::json::bytes(StatusCode::OK, body)
}

/// List todos, newest first.
#[utoipa::path(
    get,
    path = "/todos",
    tag = "todos",
    params(("limit" = Option<u64>, Query, description = "How many todos (positive integer; default and maximum TODOS_MAX_LIMIT)")),
    responses(
        (status = 200, description = "Todos, newest first (`[]` when none)", body = [Todo]),
        (status = 400, description = "limit is not a positive integer"),
        (status = 503, description = "Database unavailable on a cache miss"),
    )
)]
pub async fn list(State(s): State<AppState>, Limit(limit): Limit) -> Result<Response, Error> {
    let effective = limit.map_or(s.max_limit, |l| l.min(s.max_limit));
    Ok(json_bytes(s.cache.get(effective).await?))
}

/// One todo.
#[utoipa::path(
    get,
    path = "/todos/{id}",
    tag = "todos",
    params(("id" = String, Path, description = "Todo id (UUID)")),
    responses(
        (status = 200, description = "The todo", body = Todo),
        (status = 404, description = "No such todo"),
        (status = 503, description = "Database unavailable"),
    )
)]
pub async fn one(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, Error> {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return Err(Error::NotFound);
    };
    match repo::get(&s.db, &id.to_string()).await? {
        Some(todo) => Ok(crate::json::encode(StatusCode::OK, &todo)),
        None => Err(Error::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_limit;

    #[test]
    fn limit_parsing() {
        assert_eq!(parse_limit(None), Ok(None));
        assert_eq!(parse_limit(Some("")), Ok(None));
        assert_eq!(parse_limit(Some("other=1")), Ok(None));
        assert_eq!(parse_limit(Some("limit=10")), Ok(Some(10)));
        assert_eq!(parse_limit(Some("a=b&limit=007&limit=3")), Ok(Some(7)));
        assert_eq!(parse_limit(Some("limit=%31%30")), Ok(Some(10)));
        assert_eq!(
            parse_limit(Some("limit=99999999999999999999999")),
            Ok(Some(u64::MAX))
        );
        for bad in [
            "limit=",
            "limit",
            "limit=0",
            "limit=-1",
            "limit=1.5",
            "limit=abc",
            "limit=+5",
            "limit=%zz",
            "limit= 5",
        ] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }
}
