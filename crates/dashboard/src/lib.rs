//! `GET /dashboard`: one self-contained page (no CDN; its HTML, CSS and JS are compiled into
//! the binary) fed by `GET /dashboard/events`, a server-sent event stream with one JSON
//! sample per second computed from the core's lock-free live counters.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use floodgate_core::metrics::process_usage;
use floodgate_core::stats::{Snapshot, STATS};
use futures::Stream;
use serde_json::json;

const PAGE: &str = include_str!("../assets/index.html");

pub fn router(node_id: &str) -> Router {
    let node: Arc<str> = Arc::from(node_id);
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/events", get(move || events(node.clone())))
}

async fn page() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

struct Sampler {
    node: Arc<str>,
    last: Snapshot,
    last_cpu: f64,
    last_at: Instant,
    tick: tokio::time::Interval,
}

impl Sampler {
    fn new(node: Arc<str>) -> Self {
        // The first sample comes a full second after connecting, not at once.
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Sampler {
            node,
            last: STATS.snapshot(),
            last_cpu: process_usage().map(|u| u.0).unwrap_or(0.0),
            last_at: Instant::now(),
            tick,
        }
    }

    /// Waits for the next second and describes it.
    async fn next(&mut self) -> serde_json::Value {
        self.tick.tick().await;
        let now = STATS.snapshot();
        let secs = self.last_at.elapsed().as_secs_f64().max(1e-3);
        let d = now.since(&self.last);
        let (cpu, rss) = process_usage().unwrap_or((self.last_cpu, 0));
        let cpu_percent = ((cpu - self.last_cpu) / secs * 100.0).max(0.0);
        self.last = now;
        self.last_cpu = cpu;
        self.last_at = Instant::now();
        let per_sec = |n: u64| n as f64 / secs;
        json!({
            "node": &*self.node,
            "ts": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            "rps": per_sec(d.total()),
            "latency_ms": {"p50": d.quantile(0.50) * 1e3, "p95": d.quantile(0.95) * 1e3, "p99": d.quantile(0.99) * 1e3},
            "status": {"1xx": per_sec(d.by_class[0]), "2xx": per_sec(d.by_class[1]), "3xx": per_sec(d.by_class[2]), "4xx": per_sec(d.by_class[3]), "5xx": per_sec(d.by_class[4])},
            "in_flight": d.in_flight,
            "admission_rejections": per_sec(d.admission_rejections),
            "queue_lag": d.queue_lag,
            "cpu_percent": cpu_percent,
            "rss_bytes": rss,
        })
    }
}

async fn events(node: Arc<str>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(Sampler::new(node), |mut s| async move {
        let sample = s.next().await;
        Some((
            Ok(Event::default().event("sample").data(sample.to_string())),
            s,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
