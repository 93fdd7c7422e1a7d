//! Per-service dashboard panels. Each service describes its own figures, computed from the
//! text `/metrics` renders (so the dashboard and Prometheus see the same counters) once a
//! second by the dashboard's sampler, never on the request path. Core knows the shapes
//! only, no service.

use std::collections::HashMap;

pub use futures::future::BoxFuture;
use serde::Serialize;

/// How the cluster view combines one figure over nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    /// Added up (rates, counts held by each node).
    Sum,
    /// The largest node's (percentiles, ratios where the worst node matters).
    Max,
    /// A cluster-wide value every node reads alike (a capacity, a shared sum).
    Same,
}

/// One figure of a panel: `id` is its key in the per-second samples.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub id: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub agg: Agg,
}

impl Figure {
    pub const fn new(id: &'static str, label: &'static str, unit: &'static str, agg: Agg) -> Self {
        Figure {
            id,
            label,
            unit,
            agg,
        }
    }
}

/// A panel's fixed layout: sent to the page once, the values come every second.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub id: &'static str,
    pub title: &'static str,
    pub figures: Vec<Figure>,
    /// Figure ids drawn together as lines on the panel's chart.
    pub chart: Vec<&'static str>,
}

/// What a service contributes to the dashboard.
pub trait PanelSource: Send + Sync {
    fn layout(&self) -> Layout;
    /// This second's values, in the order of `layout().figures`. May read the store (one
    /// call a second at most); must not fail: an unknown value is 0.
    fn values<'a>(&'a self, w: &'a Window<'a>) -> BoxFuture<'a, Vec<f64>>;
}

/// One sample's labels, in the order rendered.
type Labels = Vec<(String, String)>;

/// Parsed Prometheus exposition text: every sample by metric name.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    by_name: HashMap<String, Vec<(Labels, f64)>>,
}

impl Samples {
    pub fn parse(text: &str) -> Samples {
        let mut by_name: HashMap<String, Vec<(Labels, f64)>> = HashMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            by_name
                .entry(name.to_string())
                .or_default()
                .push((labels, value));
        }
        Samples { by_name }
    }

    /// Sum of the samples of `name` whose labels include every pair in `want`.
    pub fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.matching(name, want).map(|(_, v)| v).sum()
    }

    fn matching<'a>(
        &'a self,
        name: &str,
        want: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a [(String, String)], f64)> + 'a {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter(move |(labels, _)| {
                want.iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(labels, v)| (labels.as_slice(), *v))
    }

    /// Cumulative counts of histogram `name` by upper edge (+Inf last), summed over series.
    fn buckets(&self, name: &str, want: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let bucket_name = format!("{name}_bucket");
        let mut by_edge: Vec<(f64, f64)> = Vec::new();
        for (labels, v) in self.matching(&bucket_name, want) {
            let Some(le) = labels.iter().find(|(k, _)| k == "le") else {
                continue;
            };
            let edge = if le.1 == "+Inf" {
                f64::INFINITY
            } else {
                le.1.parse().unwrap_or(f64::INFINITY)
            };
            match by_edge.iter_mut().find(|(e, _)| *e == edge) {
                Some(slot) => slot.1 += v,
                None => by_edge.push((edge, v)),
            }
        }
        by_edge.sort_by(|a, b| a.0.total_cmp(&b.0));
        by_edge
    }
}

/// `a="x",b="y"` (values may contain escaped quotes and commas).
fn parse_labels(text: &str) -> Labels {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').trim().to_string(), value));
        rest = &after[end..];
    }
    out
}

/// The metrics now and some seconds ago, for rates and recent percentiles.
pub struct Window<'a> {
    pub now: &'a Samples,
    /// One sampling period ago.
    pub before: &'a Samples,
    pub secs: f64,
    /// Up to ten periods ago: percentiles of rare events need more than a second.
    pub longer: &'a Samples,
}

impl Window<'_> {
    /// Per-second increase of a counter over the last period.
    pub fn rate(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        let d = self.now.sum(name, want) - self.before.sum(name, want);
        if self.secs > 0.0 {
            d.max(0.0) / self.secs
        } else {
            0.0
        }
    }

    /// A gauge's current value (summed over matching series).
    pub fn gauge(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.now.sum(name, want)
    }

    /// Quantile `q` of histogram `name` over the longer window, as the upper edge of the
    /// bucket it falls in (the largest finite edge for +Inf); 0 when nothing was recorded.
    pub fn quantile(&self, name: &str, want: &[(&str, &str)], q: f64) -> f64 {
        let now = self.now.buckets(name, want);
        let then = self.longer.buckets(name, want);
        let delta: Vec<(f64, f64)> = now
            .iter()
            .map(|&(edge, n)| {
                let old = then.iter().find(|(e, _)| *e == edge).map_or(0.0, |x| x.1);
                (edge, (n - old).max(0.0))
            })
            .collect();
        let total = delta.last().map_or(0.0, |x| x.1);
        if total <= 0.0 {
            return 0.0;
        }
        let rank = (total * q).max(1.0);
        let largest_finite = delta
            .iter()
            .rev()
            .find(|(e, _)| e.is_finite())
            .map_or(0.0, |x| x.0);
        delta
            .iter()
            .find(|(_, cum)| *cum >= rank)
            .map_or(largest_finite, |&(edge, _)| {
                if edge.is_finite() {
                    edge
                } else {
                    largest_finite
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# TYPE c counter\nc{a=\"x\",b=\"1\"} 10\nc{a=\"y\",b=\"1\"} 5\n\
        h_bucket{le=\"10\"} 0\nh_bucket{le=\"100\"} 0\nh_bucket{le=\"+Inf\"} 0\n";
    const NOW: &str = "c{a=\"x\",b=\"1\"} 30\nc{a=\"y\",b=\"1\"} 5\ng{pool=\"p,\\\"q\\\"\"} 7\n\
        h_bucket{le=\"10\"} 90\nh_bucket{le=\"100\"} 99\nh_bucket{le=\"+Inf\"} 100\n";

    #[test]
    fn rates_gauges_and_quantiles_come_from_the_text() {
        let (now, before) = (Samples::parse(NOW), Samples::parse(BEFORE));
        let w = Window {
            now: &now,
            before: &before,
            secs: 2.0,
            longer: &before,
        };
        assert_eq!(w.rate("c", &[]), 10.0);
        assert_eq!(w.rate("c", &[("a", "x")]), 10.0);
        assert_eq!(w.rate("c", &[("a", "y")]), 0.0);
        assert_eq!(w.gauge("g", &[("pool", "p,\"q\"")]), 7.0);
        assert_eq!(w.gauge("missing", &[]), 0.0);
        assert_eq!(w.quantile("h", &[], 0.5), 10.0);
        assert_eq!(w.quantile("h", &[], 0.95), 100.0);
        // The last one lies in +Inf: reported as the largest finite edge.
        assert_eq!(w.quantile("h", &[], 1.0), 100.0);
        assert_eq!(w.quantile("none", &[], 0.5), 0.0);
    }
}
