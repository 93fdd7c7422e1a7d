//! The todos panel of the dashboard: cache hit ratio by tier, writes accepted and applied,
//! and the apply lag (commands waiting for a worker), from the counters `/metrics` shows.

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

impl PanelSource for Panel {
    fn layout(&self) -> Layout {
        Layout {
            id: "todos",
            title: "Todos",
            figures: vec![
                Figure::new("reads", "reads", "/s", Agg::Sum),
                Figure::new("near", "near-cache hits", "%", Agg::Max),
                Figure::new("store", "store hits", "%", Agg::Max),
                Figure::new("miss", "misses", "%", Agg::Max),
                Figure::new("accepted", "writes accepted", "/s", Agg::Sum),
                Figure::new("applied", "writes applied", "/s", Agg::Sum),
                Figure::new("lag", "apply lag", "msgs", Agg::Sum),
            ],
            chart: vec!["accepted", "applied", "lag"],
        }
    }

    fn values<'a>(&'a self, w: &'a Window<'a>) -> BoxFuture<'a, Vec<f64>> {
        Box::pin(async move {
            let near = w.rate("todos_cache_hits_total", &[("tier", "near")]);
            let store = w.rate("todos_cache_hits_total", &[("tier", "store")]);
            let miss = w.rate("todos_cache_misses_total", &[]);
            let reads = near + store + miss;
            let share = |n: f64| if reads > 0.0 { n * 100.0 / reads } else { 0.0 };
            let accepted: f64 = ["/todos", "/todos/{id}"]
                .iter()
                .map(|h| w.rate("http_requests_total", &[("handler", h), ("status", "202")]))
                .sum();
            vec![
                reads,
                share(near),
                share(store),
                share(miss),
                accepted,
                w.rate("todos_commands_applied_total", &[]),
                w.gauge("bus_consumer_lag", &[("topic", &self.topic)]),
            ]
        })
    }
}
