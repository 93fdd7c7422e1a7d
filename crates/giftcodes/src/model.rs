//! The messages on the bus, wire-compatible with the seed's Python worker: a request
//! `{"action":"get_gift_code","correlation_id":…}` on `tasks`, a reply
//! `{"correlation_id":…,"result":"GIFT-…"}`. `reply_to` is our extra field naming the topic
//! the asking node listens on (the seed's worker ignores unknown fields).

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
