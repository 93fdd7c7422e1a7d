//! The wire shapes of the two routes, as the OpenAPI document describes them (the handlers
//! write their bodies as pre-encoded bytes).

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Body accepted instead of the `n` query parameter.
#[derive(Serialize, ToSchema)]
pub struct GenerateBody {
    /// How many primes, from 1 to PRIMES_MAX_N.
    pub n: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Submitted {
    #[schema(value_type = String, example = "0b7c4c3e-8f5e-4d2a-9b1e-3f6a2d1c9e80")]
    pub request_id: Uuid,
}

/// `pending`, `running`, `complete` (with `result`) or `failed` (with `error`).
#[derive(Serialize, ToSchema)]
pub struct JobStatus {
    #[schema(example = "complete")]
    pub status: String,
    /// The first n primes, ascending; null until complete.
    pub result: Option<Vec<u64>>,
    /// Only when failed.
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Detail {
    pub detail: String,
}

/// FastAPI's validation error body.
#[derive(Serialize, ToSchema)]
pub struct ValidationErrors {
    pub detail: Vec<ValidationItem>,
}

#[derive(Serialize, ToSchema)]
pub struct ValidationItem {
    #[serde(rename = "type")]
    pub kind: String,
    pub loc: Vec<String>,
    pub msg: String,
}
