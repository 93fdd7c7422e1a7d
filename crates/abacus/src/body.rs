//! Parses `{"number": <int>}` straight from the body bytes, so every way it can be wrong
//! gets its own pydantic-style error and nothing but a JSON integer in i64 range passes
//! (no `5.0`, `"5"`, `true` or `null`, as the SPEC asks). Extra fields are ignored, like
//! pydantic's default. No intermediate `serde_json::Value` is built.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{AbacusError, Invalid};

/// What the `number` field held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Num {
    Int(i64),
    /// An integer above i64::MAX (or a float that is one).
    Above,
    /// An integer below i64::MIN (or a float that is one).
    Below,
    /// Anything else: fractions, integral floats like 5.0, strings, bools, null, containers.
    NotInt,
    Missing,
}

const INT_TYPE: Invalid = invalid("number", "Input should be a valid integer", "int_type");
const MISSING: Invalid = invalid("number", "Field required", "missing");
const ABOVE: Invalid = invalid(
    "number",
    "Input should be less than or equal to 9223372036854775807",
    "less_than_equal",
);
const BELOW: Invalid = invalid(
    "number",
    "Input should be greater than or equal to -9223372036854775808",
    "greater_than_equal",
);
const BODY_MISSING: Invalid = invalid("body", "Field required", "missing");
const JSON_INVALID: Invalid = invalid("body", "JSON decode error", "json_invalid");
const NOT_OBJECT: Invalid = invalid(
    "body",
    "Input should be a valid dictionary or object to extract fields from",
    "model_attributes_type",
);

const fn invalid(field: &'static str, message: &'static str, kind: &'static str) -> Invalid {
    Invalid {
        field,
        message,
        kind,
    }
}

/// The number in a request body, or why there is none.
pub fn parse_number(body: &[u8]) -> Result<i64, AbacusError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AbacusError::Validation(BODY_MISSING));
    }
    let parsed = serde_json::from_slice::<Body>(body).map_err(|e| {
        AbacusError::Validation(match e.classify() {
            // The visitors below only fail on a body that is not an object.
            serde_json::error::Category::Data => NOT_OBJECT,
            _ => JSON_INVALID,
        })
    })?;
    let problem = match parsed.0 {
        Num::Int(n) => return Ok(n),
        Num::Above => ABOVE,
        Num::Below => BELOW,
        Num::NotInt => INT_TYPE,
        Num::Missing => MISSING,
    };
    Err(AbacusError::Validation(problem))
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
            text => serde_json::from_str(text).unwrap_or(Num::NotInt),
        }
    }
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
        Ok(i64::try_from(v).map_or(Num::Above, Num::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
        // serde_json reads integers beyond 64 bits as floats: an integral float out of
        // range is reported as out of range, any other float as not an integer. i64::MIN
        // itself arrives through `visit_i64`, so a float equal to it was rounded there.
        const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
        Ok(if v.fract() == 0.0 && v >= TWO_POW_63 {
            Num::Above
        } else if v.fract() == 0.0 && v <= -TWO_POW_63 {
            Num::Below
        } else {
            Num::NotInt
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Num, E> {
        Ok(Num::NotInt)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Num, E> {
        Ok(Num::NotInt)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Num, E> {
        Ok(Num::NotInt)
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

    fn kind(body: &str) -> Result<i64, &'static str> {
        parse_number(body.as_bytes()).map_err(|e| match e {
            AbacusError::Validation(i) => i.kind,
            other => panic!("unexpected {other:?}"),
        })
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
    fn everything_else_is_rejected_with_its_reason() {
        for (body, want) in [
            (r#"{"number":5.0}"#, "int_type"),
            (r#"{"number":-0.0}"#, "int_type"),
            (r#"{"number":-0e0}"#, "int_type"),
            (r#"{"number":5.5}"#, "int_type"),
            (r#"{"number":"5"}"#, "int_type"),
            (r#"{"number":true}"#, "int_type"),
            (r#"{"number":null}"#, "int_type"),
            (r#"{"number":[5]}"#, "int_type"),
            (r#"{"number":{"n":5}}"#, "int_type"),
            (r#"{"Number":5}"#, "missing"),
            ("{}", "missing"),
            ("", "missing"),
            ("  \n", "missing"),
            (r#"{"number":9223372036854775808}"#, "less_than_equal"),
            (r#"{"number":99999999999999999999999}"#, "less_than_equal"),
            (r#"{"number":1e30}"#, "less_than_equal"),
            (r#"{"number":-9223372036854775809}"#, "greater_than_equal"),
            ("[5]", "model_attributes_type"),
            ("5", "model_attributes_type"),
            ("null", "model_attributes_type"),
            ("not json", "json_invalid"),
            (r#"{"number":5"#, "json_invalid"),
            (r#"{"number":5} x"#, "json_invalid"),
            (r#"{"number":05}"#, "json_invalid"),
            (r#"{"number":NaN}"#, "json_invalid"),
        ] {
            assert_eq!(kind(body), Err(want), "{body}");
        }
    }
}
