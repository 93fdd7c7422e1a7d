//! Parses `{"number": <int>}` straight from the body bytes, and words every way it can be
//! wrong as the seed does (FastAPI, a pydantic model with its own `before` validator,
//! errors reshaped by its handler): nothing but a JSON integer in i64 range passes (no
//! `5.0`, `"5"`, `true` or `null`). Extra fields are ignored, like pydantic's default. No
//! intermediate `serde_json::Value` is built.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Invalid};

/// What the `number` field held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Int(i64),
    /// An integer literal beyond i64 (Python reads it as an int, then the range check fails).
    OutOfRange,
    Bool,
    Null,
    /// Anything else: fractions, floats like 5.0 or 1e30, strings, containers.
    NotInt,
    Missing,
}

// The seed's validator raises ValueError: pydantic reports `value_error`, and the seed's
// handler strips the "Value error, " prefix from the message.
const REQUIRED: Invalid = invalid("number", "Number is required.", "value_error");
const BOOLEAN: Invalid = invalid(
    "number",
    "Value must be an integer, not boolean.",
    "value_error",
);
const NOT_INT: Invalid = invalid("number", "Value must be a 64-bit integer.", "value_error");
const RANGE: Invalid = invalid(
    "number",
    "Value must be within signed 64-bit integer range.",
    "value_error",
);
const MISSING: Invalid = invalid("number", "Field required", "missing");
const BODY_MISSING: Invalid = invalid("body", "Field required", "missing");
const NOT_OBJECT: Invalid = invalid(
    "body",
    "Input should be a valid dictionary or object to extract fields from",
    "model_attributes_type",
);

const fn invalid(field: &'static str, message: &'static str, kind: &'static str) -> Invalid {
    Invalid {
        field: Cow::Borrowed(field),
        message,
        kind,
        wrong_content_type: false,
    }
}

/// True when FastAPI would parse a body sent with this Content-Type as JSON: none at all,
/// `application/json` or `application/*+json`, parameters aside.
fn json_content_type(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let essence = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let Some(slash) = essence.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (main, sub) = (&essence[..slash], &essence[slash + 1..]);
    main.eq_ignore_ascii_case(b"application")
        && (sub.eq_ignore_ascii_case(b"json")
            || (sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case(b"+json")))
}

/// The seed's summary of a body it refused names the Content-Type whenever one was sent
/// and does not contain `application/json`.
fn names_content_type(content_type: Option<&[u8]>) -> bool {
    content_type.is_some_and(|ct| {
        !ct.is_empty()
            && !ct
                .windows(16)
                .any(|w| w.eq_ignore_ascii_case(b"application/json"))
    })
}

/// The number in a request body sent with `content_type`, or why there is none.
pub fn parse_number(content_type: Option<&[u8]>, body: &[u8]) -> Result<i64, Error> {
    parse(content_type, body).map_err(|mut invalid| {
        invalid.wrong_content_type = names_content_type(content_type);
        Error::Validation(invalid)
    })
}

fn parse(content_type: Option<&[u8]>, body: &[u8]) -> Result<i64, Invalid> {
    // FastAPI reads an empty body as no body, and any other Content-Type as raw bytes,
    // which are not an object.
    if body.is_empty() {
        return Err(BODY_MISSING);
    }
    if !json_content_type(content_type) {
        return Err(NOT_OBJECT);
    }
    let parsed = serde_json::from_slice::<Option<Body>>(body).map_err(|e| match e.classify() {
        // The visitors below only fail on a body that is not an object.
        serde_json::error::Category::Data => NOT_OBJECT,
        _ => json_invalid(body, &e),
    })?;
    let problem = match parsed {
        // JSON `null` is no body to FastAPI.
        None => BODY_MISSING,
        Some(Body(Num::Int(n))) => return Ok(n),
        Some(Body(Num::OutOfRange)) => RANGE,
        Some(Body(Num::Bool)) => BOOLEAN,
        Some(Body(Num::Null)) => REQUIRED,
        Some(Body(Num::NotInt)) => NOT_INT,
        Some(Body(Num::Missing)) => MISSING,
    };
    Err(problem)
}

/// FastAPI names where the JSON broke (`loc: ["body", pos]`, so the seed's `field` is the
/// character offset). Ours is where serde_json noticed, which can be a character or two
/// from where Python's decoder does.
fn json_invalid(body: &[u8], e: &serde_json::Error) -> Invalid {
    let line_start: usize = body
        .split(|&b| b == b'\n')
        .take(e.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    // At the end of input Python points past the last character.
    let at = match e.is_eof() {
        true => body.len(),
        false => (line_start + e.column().saturating_sub(1)).min(body.len()),
    };
    let chars = String::from_utf8_lossy(&body[..at]).chars().count();
    Invalid {
        field: Cow::Owned(chars.to_string()),
        message: "JSON decode error",
        kind: "json_invalid",
        wrong_content_type: false,
    }
}

/// The whole body: an object whose `number` member is read; the last one wins when it is
/// repeated, as in Python's json module.
struct Body(Num);

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut number = Num::Missing;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Number => number = Num::from_raw(map.next_value::<&RawValue>()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Body(number))
    }
}

/// A member name, compared without allocating (escaped names arrive as owned strings).
enum Key {
    Number,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(if v == "number" {
            Key::Number
        } else {
            Key::Other
        })
    }
}

impl Num {
    /// serde_json reads `-0` as the float -0.0, which would make it "not an integer"; as
    /// JSON text it is the integer 0 (Python's json module reads it so), so the text
    /// decides.
    fn from_raw(raw: &RawValue) -> Num {
        match raw.get() {
            "-0" => Num::Int(0),
            text => match serde_json::from_str(text).unwrap_or(Num::NotInt) {
                // serde_json reads integers beyond 64 bits as floats; Python keeps them
                // integers (out of range), while `1e30` or `5.0` stay floats.
                Num::NotInt if is_integer_literal(text) => Num::OutOfRange,
                n => n,
            },
        }
    }
}

fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumVisitor)
    }
}

struct NumVisitor;

impl<'de> Visitor<'de> for NumVisitor {
    type Value = Num;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
        Ok(Num::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
        Ok(i64::try_from(v).map_or(Num::OutOfRange, Num::Int))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Num, E> {
        Ok(Num::NotInt)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Num, E> {
        Ok(Num::Bool)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Num, E> {
        Ok(Num::NotInt)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
        Ok(Num::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Num, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Num::NotInt)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Num, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Num::NotInt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&[u8]> = Some(b"application/json");

    fn kind(body: &str) -> Result<i64, (String, &'static str)> {
        parse(JSON, body.as_bytes()).map_err(|i| (i.message.to_string(), i.kind))
    }

    #[test]
    fn integers_in_range_pass() {
        assert_eq!(kind(r#"{"number":5}"#), Ok(5));
        assert_eq!(
            kind(r#" {"number" : -5 , "x": [1, {"number": 9}]} "#),
            Ok(-5)
        );
        assert_eq!(kind(r#"{"number":9223372036854775807}"#), Ok(i64::MAX));
        assert_eq!(kind(r#"{"number":-9223372036854775808}"#), Ok(i64::MIN));
        assert_eq!(kind(r#"{"numb\u0065r":7}"#), Ok(7));
        assert_eq!(kind(r#"{"number":1,"number":2}"#), Ok(2));
        assert_eq!(kind(r#"{"number":-0}"#), Ok(0));
        assert_eq!(kind(r#"{"number": -0 }"#), Ok(0));
        assert_eq!(kind(r#"{"number":0}"#), Ok(0));
    }

    #[test]
    fn everything_else_is_rejected_with_the_seeds_words() {
        let not_int = "Value must be a 64-bit integer.";
        let range = "Value must be within signed 64-bit integer range.";
        for (body, message, want) in [
            (r#"{"number":5.0}"#, not_int, "value_error"),
            (r#"{"number":-0.0}"#, not_int, "value_error"),
            (r#"{"number":5.5}"#, not_int, "value_error"),
            (r#"{"number":1e30}"#, not_int, "value_error"),
            (r#"{"number":"5"}"#, not_int, "value_error"),
            (r#"{"number":[5]}"#, not_int, "value_error"),
            (r#"{"number":{"n":5}}"#, not_int, "value_error"),
            (
                r#"{"number":true}"#,
                "Value must be an integer, not boolean.",
                "value_error",
            ),
            (r#"{"number":null}"#, "Number is required.", "value_error"),
            (r#"{"number":9223372036854775808}"#, range, "value_error"),
            (
                r#"{"number":99999999999999999999999}"#,
                range,
                "value_error",
            ),
            (r#"{"number":-9223372036854775809}"#, range, "value_error"),
            (r#"{"Number":5}"#, "Field required", "missing"),
            ("{}", "Field required", "missing"),
            ("", "Field required", "missing"),
            ("null", "Field required", "missing"),
            ("[5]", NOT_OBJECT.message, "model_attributes_type"),
            ("5", NOT_OBJECT.message, "model_attributes_type"),
            ("not json", "JSON decode error", "json_invalid"),
            ("  \n", "JSON decode error", "json_invalid"),
            (r#"{"number":5"#, "JSON decode error", "json_invalid"),
            (r#"{"number":5} x"#, "JSON decode error", "json_invalid"),
            (r#"{"number":05}"#, "JSON decode error", "json_invalid"),
            (r#"{"number":NaN}"#, "JSON decode error", "json_invalid"),
        ] {
            assert_eq!(kind(body), Err((message.to_string(), want)), "{body}");
        }
    }

    #[test]
    fn only_json_content_types_are_parsed() {
        for ct in [
            None,
            Some(&b"application/json"[..]),
            Some(b"Application/JSON; charset=utf-8"),
            Some(b"application/merge-patch+json"),
        ] {
            assert_eq!(parse(ct, br#"{"number":3}"#), Ok(3), "{ct:?}");
        }
        for ct in [
            &b"text/plain"[..],
            b"json",
            b"application/x-www-form-urlencoded",
        ] {
            let e = parse_number(Some(ct), br#"{"number":3}"#).unwrap_err();
            let Error::Validation(i) = e else {
                panic!("{e:?}")
            };
            assert_eq!(
                (i.kind, i.wrong_content_type),
                ("model_attributes_type", true)
            );
        }
        // A JSON type without "application/json" in it is parsed, but named when wrong.
        let e = parse_number(Some(b"application/x+json"), b"{}").unwrap_err();
        assert!(matches!(e, Error::Validation(i) if i.wrong_content_type));
    }

    #[test]
    fn json_errors_name_the_character_offset() {
        let at = |body: &str| parse(JSON, body.as_bytes()).unwrap_err().field;
        assert_eq!(at(r#"{"number":5"#), "11");
        assert_eq!(at("{\n \"number\": x}"), "13");
    }
}
