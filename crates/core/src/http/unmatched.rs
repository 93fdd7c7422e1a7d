//! Requests no route takes: 404 for an unknown path, 405 (with `Allow`) for a known path
//! and the wrong method, both with FastAPI's bodies. They are added last, on the whole
//! router, so no service's auth, limits or metrics ever see them; request metrics count them
//! under the one `unmatched` label.

use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;

const NOT_FOUND: &str = r#"{"detail":"Not Found"}"#;
const METHOD_NOT_ALLOWED: &str = r#"{"detail":"Method Not Allowed"}"#;

/// Call once every route is in: the 405 answer is set on the routes present now.
pub fn answer_unmatched(router: Router) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> Response {
    json(StatusCode::NOT_FOUND, NOT_FOUND)
}

// axum adds the `Allow` header to whatever this answers.
async fn method_not_allowed() -> Response {
    json(StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED)
}

fn json(status: StatusCode, body: &'static str) -> Response {
    super::reply::json(status, body)
}
