//! `GET /` and `POST /queue`, and their OpenAPI description.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use floodgate_bus::Outgoing;
use floodgate_core::telemetry::trace;

use crate::model::{QueueResponse, Request, ACTION};
use crate::{Error, GiftCodes};

/// How long a slow failed publish marks the bus as down before the next attempt.
const BUS_DOWN_FOR: Duration = Duration::from_secs(1);
/// A publish refused faster than this came from a broker that is there (one such answer,
/// e.g. Tansu's "Unknown broker error" under load): it is tried again once at once, and
/// does not mark the bus as down, which would turn away everyone for BUS_DOWN_FOR.
const FAST_REFUSAL: Duration = Duration::from_millis(500);
const HELLO: &[u8] = br#"{"Hello":"World"}"#;
const LANDING: &str = include_str!("landing.html");

/// `{"Hello":"World"}`, or a landing page for browsers.
#[utoipa::path(get, path = "/", tag = "giftcodes", responses((status = 200, description = "Greeting", body = Object, example = json!({"Hello": "World"}))))]
pub async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(prefers_html)
        .unwrap_or(false);
    if wants_html {
        ([(CONTENT_TYPE, "text/html; charset=utf-8")], LANDING).into_response()
    } else {
        ([(CONTENT_TYPE, "application/json")], HELLO).into_response()
    }
}

/// True when `text/html` is listed before any JSON type (how browsers ask).
fn prefers_html(accept: &str) -> bool {
    let html = accept.find("text/html");
    let json = accept.find("application/json");
    match (html, json) {
        (Some(h), Some(j)) => h < j,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Asks a worker for a gift code and waits for its reply.
#[utoipa::path(post, path = "/queue", tag = "giftcodes", responses(
    (status = 200, description = "A fresh gift code", body = QueueResponse),
    (status = 429, description = "Too many requests in flight across the cluster (Retry-After)"),
    (status = 503, description = "Bus unavailable (Retry-After)"),
    (status = 504, description = "No reply within KAFKA_GIFT_CODE_TIMEOUT")))]
pub async fn queue(State(g): State<GiftCodes>) -> Result<axum::Json<QueueResponse>, Error> {
    let started = Instant::now();
    let now_ms = g.epoch.elapsed().as_millis() as u64;
    if now_ms < g.bus_down_until.load(Ordering::Relaxed) {
        return Err(Error::BusDown("recently unreachable".into()));
    }
    let permit = g.admission.acquire().await?;
    let result = ask(&g, started).await;
    permit.release().await;
    result
}

async fn ask(g: &GiftCodes, started: Instant) -> Result<axum::Json<QueueResponse>, Error> {
    let reply_to = g
        .replies
        .topic()
        .ok_or_else(|| Error::BusDown("reply listener not ready".into()))?;
    let id = uuid::Uuid::new_v4().to_string();
    let mut waiting = g.replies.wait_for(&id);
    let req = Request {
        action: ACTION.to_string(),
        correlation_id: id.clone(),
        reply_to: Some(reply_to.to_string()),
    };
    let payload = serde_json::to_vec(&req).map_err(|e| Error::BusDown(e.into()))?;
    let out = Outgoing {
        topic: &g.settings.tasks_topic,
        key: Some(id.as_bytes()),
        payload: &payload,
        headers: &[],
    };
    let bus = &*g.ctx.backends.bus;
    let sent = Instant::now();
    let mut published = trace::publish(bus, out.clone()).await;
    if published.is_err() && sent.elapsed() < FAST_REFUSAL {
        // A duplicate task (if the first got in after all) only makes a reply nobody waits for.
        published = trace::publish(bus, out).await;
    }
    if let Err(e) = published {
        if sent.elapsed() >= FAST_REFUSAL {
            let until = g.epoch.elapsed() + BUS_DOWN_FOR;
            g.bus_down_until
                .store(until.as_millis() as u64, Ordering::Relaxed);
        }
        return Err(Error::BusDown(e.into()));
    }
    let left = g.settings.timeout.saturating_sub(started.elapsed());
    match tokio::time::timeout(left, &mut waiting.rx).await {
        Ok(Ok(code)) => Ok(axum::Json(QueueResponse {
            gift_code: code,
            request_id: id,
        })),
        _ => {
            metrics::counter!("giftcode_timeouts_total").increment(1);
            Err(Error::Timeout)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefers_html;

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        assert!(prefers_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!prefers_html("application/json"));
        assert!(!prefers_html("*/*"));
        assert!(!prefers_html("application/json, text/html"));
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(root, queue), components(schemas(QueueResponse)), tags((name = "giftcodes", description = "Gift codes over request-reply")))]
struct ApiDoc;

/// The OpenAPI description of the gift-code routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
