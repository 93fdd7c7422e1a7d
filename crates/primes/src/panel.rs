//! The prime-jobs panel of the dashboard: jobs queued, running, completed and failed, and
//! recent duration percentiles, from the counters `/metrics` shows.

use std::sync::Arc;

use floodgate_core::panel::{Agg, BoxFuture, Figure, Layout, PanelSource, Window};
use floodgate_core::AppContext;

struct Panel {
    topic: String,
}

pub fn panel(ctx: &AppContext) -> Arc<dyn PanelSource> {
    Arc::new(Panel {
        topic: ctx.config.settings::<crate::Settings>().topic.clone(),
    })
}

const DURATION: &str = crate::TASK_DURATION;

impl PanelSource for Panel {
    fn layout(&self) -> Layout {
        Layout {
            id: "primes",
            title: "Prime jobs",
            figures: vec![
                Figure::new("submitted", "submitted", "/s", Agg::Sum),
                Figure::new("queued", "queued", "", Agg::Sum),
                Figure::new("running", "running", "", Agg::Sum),
                Figure::new("completed", "completed", "/s", Agg::Sum),
                Figure::new("failed", "failed", "/s", Agg::Sum),
                Figure::new("p50", "p50", "ms", Agg::Max),
                Figure::new("p95", "p95", "ms", Agg::Max),
                Figure::new("p99", "p99", "ms", Agg::Max),
            ],
            chart: vec!["queued", "running", "completed", "failed"],
        }
    }

    fn values<'a>(&'a self, w: &'a Window<'a>) -> BoxFuture<'a, Vec<f64>> {
        Box::pin(async move {
            vec![
                w.rate("prime_jobs_submitted_total", &[]),
                // Published and not yet taken by this process's workers.
                w.gauge("bus_consumer_lag", &[("topic", &self.topic)]),
                w.gauge("prime_jobs_running", &[]),
                w.rate("prime_jobs_completed_total", &[("result", "complete")]),
                w.rate("prime_jobs_completed_total", &[("result", "failed")])
                    + w.rate("prime_jobs_completed_total", &[("result", "poison")]),
                w.quantile(DURATION, &[], 0.50),
                w.quantile(DURATION, &[], 0.95),
                w.quantile(DURATION, &[], 0.99),
            ]
        })
    }
}
