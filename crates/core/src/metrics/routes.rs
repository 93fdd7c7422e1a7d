//! `http_requests_total` and `http_request_duration_seconds`, kept in plain atomics rather
//! than the `metrics` registry.
//!
//! Why: these two are recorded on every request, and a cached read is only ~17.5k
//! instructions. Through the registry they cost ~1,000 of those (a handle lookup by route
//! string and a histogram that stores every raw sample until upkeep). Here each
//! (route template, method) owns one fixed block of counters, found through a per-thread
//! table keyed by the address of axum's `MatchedPath`; recording is three relaxed adds.
//! `/metrics` renders the blocks in Prometheus text after the registry's own output.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Method;

use super::LATENCY_SECONDS;

const EDGES: usize = LATENCY_SECONDS.len();

/// Bucket upper edges in nanoseconds, so recording compares integers.
const EDGES_NS: [u64; EDGES] = {
    let mut out = [0; EDGES];
    let mut i = 0;
    while i < EDGES {
        // Rounded, not truncated: a product just under a whole nanosecond must not move
        // the edge down by one.
        out[i] = (LATENCY_SECONDS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    out
};

/// One counter per status code `http::StatusCode` can hold (100..=999).
const STATUSES: usize = 900;

/// Counters for one (route template, method).
pub struct RouteMetrics {
    pub handler: Box<str>,
    pub method: &'static str,
    statuses: [AtomicU64; STATUSES],
    /// Per-bucket (not cumulative) counts; the last one is +Inf.
    buckets: [AtomicU64; EDGES + 1],
    sum_ns: AtomicU64,
}

impl RouteMetrics {
    fn new(handler: &str, method: &'static str) -> Self {
        RouteMetrics {
            handler: handler.into(),
            method,
            statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn record(&self, status: u16, elapsed: Duration) {
        let s = (status.clamp(100, 999) - 100) as usize;
        self.statuses[s].fetch_add(1, Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // First edge >= ns ("less than or equal" buckets). A linear scan: most requests
        // land in the first bucket or two.
        let b = EDGES_NS
            .iter()
            .position(|&edge| ns <= edge)
            .unwrap_or(EDGES);
        self.buckets[b].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    fn render(&self, requests: &mut String, durations: &mut String) {
        let labels = format!("method=\"{}\",handler=\"{}\"", self.method, self.handler);
        for (i, n) in self.statuses.iter().enumerate() {
            let n = n.load(Relaxed);
            if n > 0 {
                let status = i + 100;
                let _ = writeln!(
                    requests,
                    "http_requests_total{{{labels},status=\"{status}\"}} {n}"
                );
            }
        }
        let mut cumulative = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            cumulative += n.load(Relaxed);
            let le = match LATENCY_SECONDS.get(i) {
                Some(edge) => edge.to_string(),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(
                durations,
                "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(
            durations,
            "http_request_duration_seconds_sum{{{labels}}} {sum}"
        );
        let _ = writeln!(
            durations,
            "http_request_duration_seconds_count{{{labels}}} {cumulative}"
        );
    }
}

/// Every block ever created, for rendering. Blocks are leaked on purpose: there is one per
/// (route template, method) seen, a bounded set, and `&'static` saves a reference count per
/// request.
static ALL: Mutex<Vec<&'static RouteMetrics>> = Mutex::new(Vec::new());

fn find_or_create(handler: &str, method: &'static str) -> &'static RouteMetrics {
    let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = all
        .iter()
        .find(|m| m.method == method && &*m.handler == handler)
    {
        return m;
    }
    let m: &'static RouteMetrics = Box::leak(Box::new(RouteMetrics::new(handler, method)));
    all.push(m);
    m
}

const UNMATCHED: &str = "unmatched";

type Fast = foldhash::fast::FixedState;

/// Direct-mapped slots in front of the map: a hit is an index, one compare and a load.
const SLOTS: usize = 64;

struct Cache {
    slots: [Option<(usize, &'static RouteMetrics)>; SLOTS],
    /// Key (route string address and method index) → its block.
    blocks: HashMap<usize, &'static RouteMetrics, Fast>,
    /// Keeps each cached route string alive, so its address is never reused for another
    /// route while it is a key.
    pins: Vec<MatchedPath>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        slots: [None; SLOTS],
        blocks: HashMap::default(),
        pins: Vec::new(),
    });
}

/// The block for this request's route and method.
pub fn lookup(path: Option<&MatchedPath>, method: &Method) -> &'static RouteMetrics {
    let (index, label) = method_label(method);
    // User-space addresses fit in 48 bits, so shifting leaves room for the method index;
    // "unmatched" takes address 1.
    let addr = path.map_or(1, |p| p.as_str().as_ptr() as usize);
    let key = (addr << 3) | index as usize;
    let slot = (key ^ (key >> 9)) % SLOTS;
    CACHE.with(|cell| {
        let mut cache = cell.borrow_mut();
        if let Some((k, m)) = cache.slots[slot] {
            if k == key {
                return m;
            }
        }
        let m = match cache.blocks.get(&key) {
            Some(m) => *m,
            None => {
                let m = find_or_create(path.map_or(UNMATCHED, |p| p.as_str()), label);
                cache.blocks.insert(key, m);
                cache.pins.extend(path.cloned());
                m
            }
        };
        cache.slots[slot] = Some((key, m));
        m
    })
}

/// The block for requests no route took (405s find their path first, so they come here
/// after the fact; they are rare enough for the registry lock).
pub fn unmatched(method: &'static str) -> &'static RouteMetrics {
    find_or_create(UNMATCHED, method)
}

/// The method's label and an index below 8.
fn method_label(m: &Method) -> (u8, &'static str) {
    match *m {
        Method::GET => (0, "GET"),
        Method::POST => (1, "POST"),
        Method::PUT => (2, "PUT"),
        Method::DELETE => (3, "DELETE"),
        Method::HEAD => (4, "HEAD"),
        Method::OPTIONS => (5, "OPTIONS"),
        Method::PATCH => (6, "PATCH"),
        _ => (7, "OTHER"),
    }
}

/// Prometheus text for both metrics, ready to append to the registry's output.
pub fn render() -> String {
    let all: Vec<&'static RouteMetrics> = ALL.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut requests = String::from("# TYPE http_requests_total counter\n");
    let mut durations = String::from("# TYPE http_request_duration_seconds histogram\n");
    for m in all {
        m.render(&mut requests, &mut durations);
    }
    requests.push('\n');
    requests.push_str(&durations);
    requests
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_statuses_and_cumulative_buckets() {
        let m = RouteMetrics::new("/things/{id}", "GET");
        m.record(200, Duration::from_micros(400)); // <= 0.0005
        m.record(200, Duration::from_micros(500)); // exactly on the edge: still 0.0005
        m.record(404, Duration::from_millis(1)); // exactly 0.001
        m.record(404, Duration::from_millis(3)); // <= 0.005
        m.record(503, Duration::from_secs(60)); // +Inf
        let (mut req, mut dur) = (String::new(), String::new());
        m.render(&mut req, &mut dur);
        let labels = "method=\"GET\",handler=\"/things/{id}\"";
        assert_eq!(
            req,
            format!(
                "http_requests_total{{{labels},status=\"200\"}} 2\n\
                 http_requests_total{{{labels},status=\"404\"}} 2\n\
                 http_requests_total{{{labels},status=\"503\"}} 1\n"
            )
        );
        let bucket = |le: &str| {
            let prefix = format!("http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} ");
            dur.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no bucket {le} in\n{dur}"))
                .to_string()
        };
        assert_eq!(bucket("0.0005"), "2");
        assert_eq!(bucket("0.001"), "3");
        assert_eq!(bucket("0.0025"), "3");
        assert_eq!(bucket("0.005"), "4");
        assert_eq!(bucket("10"), "4");
        assert_eq!(bucket("+Inf"), "5");
        assert!(dur.contains(&format!(
            "http_request_duration_seconds_count{{{labels}}} 5\n"
        )));
        assert!(dur.contains(&format!(
            "http_request_duration_seconds_sum{{{labels}}} 60.0049\n"
        )));
    }

    #[tokio::test]
    async fn one_block_per_route_and_method_across_routers() {
        use axum::routing::get;
        use tower::ServiceExt;
        // Two routers hold two copies of the same template: their requests share one series.
        for _ in 0..2 {
            let router = crate::http::apply_middleware(
                axum::Router::new().route("/route-metrics-test", get(|| async { "ok" })),
                1024,
                true,
            );
            let req = axum::http::Request::get("/route-metrics-test")
                .body(axum::body::Body::empty())
                .unwrap();
            assert_eq!(router.oneshot(req).await.unwrap().status(), 200);
        }
        let text = render();
        let series =
            "http_requests_total{method=\"GET\",handler=\"/route-metrics-test\",status=\"200\"}";
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(series)).collect();
        assert_eq!(lines, [format!("{series} 2")], "{text}");
    }
}
