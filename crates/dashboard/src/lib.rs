//! `GET /dashboard`: one self-contained page (no CDN; its HTML, CSS and JS are compiled into
//! the binary) fed by `GET /dashboard/events`, a server-sent event stream.
//!
//! One task per process samples this node once a second (the core's lock-free counters and
//! the services' panels, read from the `/metrics` text), announces the sample through the
//! store, reads every live member's latest sample back, and keeps the resulting frame in a
//! 15-minute ring. A page gets the panels' layout, the ring, then one frame a second. The
//! request path pays nothing for any of it.

mod cluster;
mod history;
mod sample;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use floodgate_core::panel::PanelSource;
use floodgate_store::SharedStore;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use cluster::EXPIRY;
pub use history::KEEP;
pub use sample::Identity;

use history::Ring;
use sample::{unix_ms, Sampler};

const PAGE: &str = include_str!("../assets/index.html");

struct Shared {
    /// The panels' layouts and this node's name, sent first to every page.
    intro: String,
    history: Mutex<Ring>,
    frames: broadcast::Sender<Arc<str>>,
}

/// The dashboard's routes and its sampling task (which runs until `stop`, then leaves the
/// cluster view at once).
pub fn start(
    me: Identity,
    store: SharedStore,
    panels: Vec<Arc<dyn PanelSource>>,
    stop: CancellationToken,
) -> (Router, JoinHandle<()>) {
    let sampler = Sampler::new(me, panels);
    let intro =
        json!({"node": sampler.node(), "panels": sampler.layouts(), "keep": KEEP}).to_string();
    let shared = Arc::new(Shared {
        intro,
        history: Mutex::new(Ring::new(KEEP)),
        frames: broadcast::channel(8).0,
    });
    let task = tokio::spawn(run(sampler, store, shared.clone(), stop));
    let events = shared.clone();
    let router = Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/events", get(move || stream(events.clone())));
    (router, task)
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

/// Once a second: sample, announce, read the cluster, keep and send the frame.
async fn run(
    mut sampler: Sampler,
    store: SharedStore,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let own = sampler.sample().await.to_string();
        let frame: Arc<str> = Arc::from(frame(&store, sampler.node(), own).await);
        if let Ok(mut ring) = shared.history.lock() {
            ring.push(frame.clone());
        }
        // No page open is fine: nobody to send to.
        let _ = shared.frames.send(frame);
    }
    cluster::withdraw(&store, sampler.node()).await;
}

/// `{"ts", "self", "store", "nodes": [sample...]}`. With the store unreachable the frame
/// holds this node alone, marked so the page can say why.
async fn frame(store: &SharedStore, node: &str, own: String) -> String {
    let members = match cluster::announce(store, node, &own).await {
        Ok(()) => cluster::samples(store).await,
        Err(e) => Err(e),
    };
    let (nodes, state) = match members {
        Ok(found) => {
            let mut nodes: Vec<Value> = found
                .iter()
                .filter_map(|b| serde_json::from_slice(b).ok())
                .collect();
            if !nodes.iter().any(|n| n["node"] == node) {
                nodes.extend(serde_json::from_str::<Value>(&own).ok());
            }
            (nodes, "ok")
        }
        Err(_) => (
            serde_json::from_str::<Value>(&own).into_iter().collect(),
            "unavailable",
        ),
    };
    json!({"ts": unix_ms(), "self": node, "store": state, "nodes": nodes}).to_string()
}

/// The event stream of one page: `intro`, `history` (the ring), then a `frame` a second.
async fn stream(shared: Arc<Shared>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribed before the ring is copied, so no frame falls between the two.
    let live = shared.frames.subscribe();
    let history = shared
        .history
        .lock()
        .map(|ring| ring.to_json())
        .unwrap_or_else(|_| "[]".to_string());
    let first = futures::stream::iter([
        Ok(Event::default().event("intro").data(shared.intro.clone())),
        Ok(Event::default().event("history").data(history)),
    ]);
    let frames = futures::stream::unfold(live, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(f) => return Some((Ok(Event::default().event("frame").data(&*f)), rx)),
                // A slow page skips frames rather than holding them.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(first.chain(frames)).keep_alive(KeepAlive::default())
}
