//! The gift-code panel of the dashboard: slots in flight against the cluster's capacity,
//! 429s and 504s, from the counters `/metrics` shows.

use std::sync::Arc;

use floodgate_core::panel::{Agg, BoxFuture, Figure, Layout, PanelSource, Window};
use floodgate_core::AppContext;

use crate::Settings;

struct Panel {
    capacity: f64,
}

/// The panel for this node's settings.
pub fn panel(ctx: &AppContext) -> Arc<dyn PanelSource> {
    Arc::new(Panel {
        capacity: f64::from(ctx.config.settings::<Settings>().rate_limit_capacity),
    })
}

impl PanelSource for Panel {
    fn layout(&self) -> Layout {
        Layout {
            id: "giftcodes",
            title: "Gift codes",
            figures: vec![
                Figure::new("in_flight", "in flight", "", Agg::Sum),
                Figure::new("capacity", "capacity", "", Agg::Same),
                Figure::new("ok", "200", "/s", Agg::Sum),
                Figure::new("r429", "429 busy", "/s", Agg::Sum),
                Figure::new("r504", "504 timeout", "/s", Agg::Sum),
            ],
            chart: vec!["in_flight", "capacity", "r429", "r504"],
        }
    }

    fn values<'a>(&'a self, w: &'a Window<'a>) -> BoxFuture<'a, Vec<f64>> {
        let queue = [("handler", "/queue")];
        Box::pin(async move {
            vec![
                w.gauge("admission_in_flight", &[]),
                self.capacity,
                w.rate("http_requests_total", &[queue[0], ("status", "200")]),
                w.rate("admission_rejected_total", &[]),
                w.rate("giftcode_timeouts_total", &[]),
            ]
        })
    }
}
