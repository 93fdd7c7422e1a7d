//! A node's gift-code state: the admission limiter, the table of requests awaiting replies,
//! and the short retention of the request and reply topics.

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use floodgate_core::AppContext;

use crate::replies::{self, Replies};
use crate::{admission, api, Settings};

/// Per-node state: the admission limiter and the table of requests awaiting replies.
#[derive(Clone)]
pub struct GiftCodes {
    pub(crate) ctx: AppContext,
    /// Read once here: a request uses its topic and timeout without looking them up.
    pub(crate) settings: Arc<Settings>,
    pub(crate) admission: Arc<admission::Admission>,
    pub(crate) replies: Replies,
    /// After a failed publish the bus counts as down until this instant (ms since start), so
    /// an outage costs one slow request, not one per client.
    pub(crate) bus_down_until: Arc<std::sync::atomic::AtomicU64>,
    pub(crate) epoch: std::time::Instant,
}

impl GiftCodes {
    /// Starts the node's reply listener (it runs until `stop`).
    pub fn start(ctx: &AppContext, stop: tokio_util::sync::CancellationToken) -> GiftCodes {
        let settings = ctx.config.settings::<Settings>();
        let timeout = settings.timeout;
        // A lease outlives the longest legitimate request, then frees a crashed node's slot.
        let lease = timeout + (timeout / 2).max(std::time::Duration::from_secs(1));
        let admission = Arc::new(admission::Admission::new(
            ctx.backends.store.clone(),
            &format!("giftcodes:inflight:{}", settings.tasks_topic),
            settings.rate_limit_capacity,
            lease,
            settings.admission_wait,
        ));
        short_retention(ctx);
        let replies = Replies::start(ctx, stop);
        GiftCodes {
            ctx: ctx.clone(),
            settings: Arc::new(settings.clone()),
            admission,
            replies,
            bus_down_until: Default::default(),
            epoch: std::time::Instant::now(),
        }
    }

    /// What shutdown waits on (once): the reply listener giving its slot back (see
    /// `Replies::take_listener`), then the admission leases of requests cut by the drain.
    pub fn take_listener(&self) -> Option<tokio::task::JoinHandle<()>> {
        let listener = self.replies.take_listener()?;
        let admission = self.admission.clone();
        Some(tokio::spawn(async move {
            let _ = listener.await;
            admission.settle(std::time::Duration::from_secs(2)).await;
        }))
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(api::root))
            .route("/queue", post(api::queue))
            .with_state(self.clone())
    }
}

/// Asks the bus to create the request and reply topics (`tasks`, `results` and every
/// `results.N`) with `FLOODGATE_KAFKA_REPLY_RETENTION_MS`: their messages are worthless
/// once the request has timed out, and a broker keeping them all slows down. The prime-job
/// and todo topics keep the broker's default: their messages are work still to be done.
/// Called by the node and by the worker before either touches a topic.
pub(crate) fn short_retention(ctx: &AppContext) {
    let settings = ctx.config.settings::<Settings>();
    let Some(retention) = settings.reply_retention else {
        return;
    };
    let bus = &ctx.backends.bus;
    let results = &settings.results_topic;
    bus.set_retention(&settings.tasks_topic, retention);
    bus.set_retention(results, retention);
    for slot in 0..replies::SLOTS {
        bus.set_retention(&replies::slot_topic(results, slot), retention);
    }
}
