//! The wire shapes, serialized by the handlers and error.rs and documented by `docs`, so
//! the docs cannot drift from what is sent.

use serde::Serialize;
use utoipa::ToSchema;

/// Request body of `POST /abacus/number` and `PUT /abacus/sum`. Only a JSON integer in
/// signed 64-bit range is accepted (not `5.0`, `"5"`, `true` or `null`).
#[derive(ToSchema)]
#[allow(dead_code)] // documentation only: the body is parsed by `body.rs`
pub struct NumberRequest {
    #[schema(example = 5, format = Int64)]
    number: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SumResponse {
    #[schema(format = Int64)]
    pub current_sum: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AddedResponse {
    #[schema(example = "Number added successfully.")]
    pub message: &'static str,
    #[schema(format = Int64)]
    pub current_sum: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ResetResponse {
    #[schema(example = "Sum reset successfully.")]
    pub message: &'static str,
    #[schema(format = Int64)]
    pub new_sum: i64,
}

/// A plain error: `{"detail": "..."}`.
#[derive(Serialize, ToSchema)]
pub struct Detail {
    #[schema(example = "Rate limit exceeded.")]
    pub detail: &'static str,
}

/// 400 for a body that is not `{"number": <int>}` (the seed's shape and words).
#[derive(Serialize, ToSchema)]
pub struct ValidationBody {
    /// `Content-Type must be application/json.`, `Request body is required.`, `Invalid JSON
    /// payload.`, the `number` error's message, or `Invalid request payload.`
    #[schema(example = "Value must be a 64-bit integer.")]
    pub message: &'static str,
    pub errors: Vec<FieldError>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldError {
    /// `number`, `body`, or for `json_invalid` the character offset where the JSON broke.
    #[schema(value_type = String, example = "number")]
    pub field: std::borrow::Cow<'static, str>,
    #[schema(example = "Value must be a 64-bit integer.")]
    pub message: &'static str,
    /// `value_error`, `missing`, `json_invalid` or `model_attributes_type`.
    #[serde(rename = "type")]
    #[schema(rename = "type", example = "value_error")]
    pub kind: &'static str,
}
