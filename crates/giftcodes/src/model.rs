//! The messages on the bus, wire-compatible with the seed's Python worker: a request
//! `{"action":"get_gift_code","correlation_id":…}` on `tasks`, a reply
//! `{"correlation_id":…,"result":"GIFT-…"}`. `reply_to` is our extra field naming the topic
//! the asking node listens on (the seed's worker ignores unknown fields). And the answer to
//! `POST /queue`.

use serde::{Deserialize, Serialize};

pub const ACTION: &str = "get_gift_code";

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub action: String,
    pub correlation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub correlation_id: String,
    pub result: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueResponse {
    #[schema(example = "GIFT-9F86D081884C7D659A2FEAA0C55AD015")]
    pub(crate) gift_code: String,
    #[schema(example = "5f1d7c4e-8a35-4ac7-9f0e-2f8c7b7f4a10")]
    pub(crate) request_id: String,
}
