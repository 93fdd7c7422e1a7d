//! The abacus panel of the dashboard: requests, replays and rate-limited calls from the
//! counters `/metrics` shows, and the current sum (one store read a second).

use std::sync::Arc;

use floodgate_core::panel::{Agg, BoxFuture, Figure, Layout, PanelSource, Window};
use floodgate_core::AppContext;
use floodgate_store::SharedStore;

use crate::SUM_KEY;

struct Panel {
    store: SharedStore,
}

pub fn panel(ctx: &AppContext) -> Arc<dyn PanelSource> {
    Arc::new(Panel {
        store: ctx.backends.store.clone(),
    })
}

impl PanelSource for Panel {
    fn layout(&self) -> Layout {
        Layout {
            id: "abacus",
            title: "Abacus",
            figures: vec![
                Figure::new("requests", "requests", "/s", Agg::Sum),
                Figure::new("replays", "replays", "/s", Agg::Sum),
                Figure::new("limited", "rate-limited", "/s", Agg::Sum),
                Figure::new("sum", "current sum", "", Agg::Same),
            ],
            chart: vec!["requests", "replays", "limited"],
        }
    }

    fn values<'a>(&'a self, w: &'a Window<'a>) -> BoxFuture<'a, Vec<f64>> {
        Box::pin(async move {
            // An unreachable store shows 0 here; /ready names it.
            let sum = self.store.get_i64(SUM_KEY).await.unwrap_or(0);
            vec![
                w.rate("abacus_request_total", &[]),
                w.rate("abacus_idempotent_replays_total", &[]),
                w.rate("abacus_rate_limit_hits_total", &[]),
                sum as f64,
            ]
        })
    }
}
