//! /ready: 200 when every configured backend answers, 503 naming the failing ones, and 503
//! from the moment shutdown begins so load balancers stop sending traffic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::backends::Backends;

#[derive(Clone)]
pub struct Readiness {
    backends: Backends,
    shutting_down: Arc<AtomicBool>,
}

impl Readiness {
    pub fn new(backends: Backends) -> Self {
        Readiness {
            backends,
            shutting_down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Called as soon as SIGTERM arrives.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Each backend's name, kind and error (None when healthy).
    pub async fn check(&self) -> Vec<(&'static str, &'static str, Option<String>)> {
        let b = &self.backends;
        let (store, bus, db) = tokio::join!(b.store.ping(), b.bus.ping(), b.db.ping());
        let db_err = match db {
            Err(e) => Some(e.to_string()),
            Ok(()) if !b.is_migrated() => Some("migrations not applied yet".into()),
            Ok(()) => None,
        };
        vec![
            ("store", b.store.kind(), store.err().map(|e| e.to_string())),
            ("bus", b.bus.kind(), bus.err().map(|e| e.to_string())),
            ("database", b.db.kind_name(), db_err),
        ]
    }
}

/// Readiness: every configured backend answers and shutdown has not begun.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Every backend answers", body = Object),
    (status = 503, description = "A backend is failing (named in `failing`) or shutdown began", body = Object)))]
pub(super) async fn ready(State(r): State<Readiness>) -> (StatusCode, Json<Value>) {
    if r.shutting_down.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down", "failing": []})),
        );
    }
    let results = r.check().await;
    let mut checks = serde_json::Map::new();
    let mut failing = Vec::new();
    for (name, kind, err) in results {
        let ok = err.is_none();
        if !ok {
            failing.push(name);
        }
        checks.insert(
            name.into(),
            json!({"backend": kind, "ok": ok, "error": err}),
        );
    }
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if failing.is_empty() {
        "ready"
    } else {
        "unavailable"
    };
    (
        status,
        Json(json!({"status": word, "failing": failing, "checks": checks})),
    )
}
