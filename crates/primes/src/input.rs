//! Reading `n` from `?n=` or a JSON body `{"n":…}`, with FastAPI's (pydantic v2) error
//! shapes, so clients of the seed see the same 422 bodies.

use serde_json::{json, Value};

use crate::error::{Error, FieldError};

const QUERY: &[&str] = &["query", "n"];
const BODY: &[&str] = &["body", "n"];

/// The requested count, checked against `max`: the query parameter wins over the body.
pub fn requested_n(query: Option<&str>, body: &[u8], max: u64) -> Result<u64, Error> {
    let (n, loc, input) = match query_n(query) {
        Some(raw) => (parse_query(&raw)?, QUERY, Value::String(raw)),
        None if body.iter().all(u8::is_ascii_whitespace) => {
            return Err(invalid(FieldError::new(
                QUERY,
                "missing",
                "Field required",
                Value::Null,
            )))
        }
        None => {
            let input = body_n(body)?;
            (parse_json(&input)?, BODY, input)
        }
    };
    if n > i128::from(max) {
        let mut e = FieldError::new(
            loc,
            "less_than_equal",
            &format!("Input should be less than or equal to {max}"),
            input,
        );
        e.ctx = Some(json!({ "le": max }));
        return Err(invalid(e));
    }
    if n <= 0 {
        return Err(Error::NotPositive);
    }
    // 0 < n <= max, so it fits.
    u64::try_from(n).map_err(|_| Error::NotPositive)
}

fn invalid(e: FieldError) -> Error {
    Error::Validation(vec![e])
}

/// The last `n` of the query string: Starlette keeps the last of a repeated parameter.
fn query_n(query: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs
        .into_iter()
        .rev()
        .find(|(k, _)| k == "n")
        .map(|(_, v)| v)
}

/// An integer in decimal; out-of-range values saturate (they fail the bounds anyway).
fn parse_query(raw: &str) -> Result<i128, Error> {
    let s = raw.trim();
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(FieldError::new(
            QUERY,
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
            Value::String(raw.to_string()),
        )));
    }
    Ok(s.parse::<i128>().unwrap_or(if s.starts_with('-') {
        i128::MIN
    } else {
        i128::MAX
    }))
}

/// The `n` member of a JSON object body.
fn body_n(body: &[u8]) -> Result<Value, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(FieldError::new(
            &["body"],
            "json_invalid",
            "JSON decode error",
            json!({ "error": e.to_string() }),
        ))
    })?;
    match value {
        Value::Object(mut map) => map.remove("n").ok_or_else(|| {
            invalid(FieldError::new(
                BODY,
                "missing",
                "Field required",
                Value::Object(map),
            ))
        }),
        other => Err(invalid(FieldError::new(
            &["body"],
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
            other,
        ))),
    }
}

/// A JSON integer; strings, booleans and floats are refused (no silent coercion).
fn parse_json(v: &Value) -> Result<i128, Error> {
    if let Some(i) = v.as_i64() {
        return Ok(i128::from(i));
    }
    if let Some(u) = v.as_u64() {
        return Ok(i128::from(u));
    }
    // serde_json reads the integer `-0` as the float -0.0; it is 0 (so "not positive").
    if v.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) {
        return Ok(0);
    }
    let fractional = v.as_f64().is_some_and(|f| f.fract() != 0.0);
    let (kind, msg) = if fractional {
        (
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
        )
    } else {
        ("int_type", "Input should be a valid integer")
    };
    Err(invalid(FieldError::new(BODY, kind, msg, v.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(r: Result<u64, Error>) -> String {
        match r {
            Ok(n) => format!("ok {n}"),
            Err(Error::Validation(e)) => format!("422 {} {}", e[0].loc.join("."), e[0].kind),
            Err(Error::NotPositive) => "400".into(),
            Err(other) => format!("{other:?}"),
        }
    }

    #[test]
    fn query_values() {
        for (query, want) in [
            ("n=10", "ok 10"),
            ("n=+7", "ok 7"),
            ("x=1&n=100", "ok 100"),
            // Repeated: the last one counts, as in FastAPI.
            ("n=abc&n=10", "ok 10"),
            ("n=10&n=abc", "422 query.n int_parsing"),
            ("n=0", "400"),
            ("n=-3", "400"),
            ("n=-99999999999999999999999999", "400"),
            ("n=101", "422 query.n less_than_equal"),
            (
                "n=99999999999999999999999999",
                "422 query.n less_than_equal",
            ),
            ("n=abc", "422 query.n int_parsing"),
            ("n=1.5", "422 query.n int_parsing"),
            ("n=", "422 query.n int_parsing"),
            ("m=3", "422 query.n missing"),
        ] {
            assert_eq!(kind(requested_n(Some(query), b"", 100)), want, "{query}");
        }
        assert_eq!(kind(requested_n(None, b"  ", 100)), "422 query.n missing");
    }

    #[test]
    fn body_values() {
        for (body, want) in [
            (r#"{"n":10}"#, "ok 10"),
            (r#"{"n":0}"#, "400"),
            (r#"{"n":-1}"#, "400"),
            (r#"{"n":-0}"#, "400"),
            (r#"{"n":99999999999999999999999}"#, "422 body.n int_type"),
            (r#"{"n":1e400}"#, "422 body json_invalid"),
            (r#"{"n":1000}"#, "422 body.n less_than_equal"),
            (r#"{"n":"10"}"#, "422 body.n int_type"),
            (r#"{"n":1.5}"#, "422 body.n int_from_float"),
            (r#"{"n":true}"#, "422 body.n int_type"),
            (r#"{"m":1}"#, "422 body.n missing"),
            ("[1]", "422 body model_attributes_type"),
            ("{", "422 body json_invalid"),
        ] {
            assert_eq!(
                kind(requested_n(None, body.as_bytes(), 100)),
                want,
                "{body}"
            );
        }
        // The query wins when both are given.
        let e = requested_n(Some("n=10&n=x"), b"", 100).unwrap_err();
        let Error::Validation(e) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            serde_json::to_string(&e[0]).unwrap(),
            r#"{"type":"int_parsing","loc":["query","n"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"x"}"#
        );
        assert_eq!(kind(requested_n(Some("n=3"), br#"{"n":"x"}"#, 100)), "ok 3");
    }
}
