//! `floodgate bench --html` and `floodgate bench compare` as a person sees them: the real
//! binary loads a node, writes its reports, and headless Chromium (tests/browser/report.mjs)
//! opens the page from disk and reads back what each chart drew.
//! `FLOODGATE_UPDATE_SCREENSHOT=1` refreshes docs/bench-report.png (a longer run).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn bench(args: &[&str]) -> String {
    let out = binary()
        .arg("bench")
        .args(args)
        .output()
        .expect("run floodgate bench");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench {args:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

async fn open_report(file: PathBuf, shot: Option<PathBuf>) -> Value {
    let mut args = vec![file.into_os_string()];
    args.extend(shot.map(PathBuf::into_os_string));
    browser("report.mjs", args).await
}

/// The lines of one chart: (series name, points, drawn length).
fn lines(result: &Value, chart: &str) -> Vec<(String, u64, u64)> {
    result["charts"][chart]
        .as_array()
        .unwrap_or_else(|| panic!("no chart {chart}: {result}"))
        .iter()
        .map(|l| {
            (
                l["series"].as_str().unwrap_or_default().to_string(),
                l["points"].as_u64().unwrap_or(0),
                l["length"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_report_and_comparison_render_their_charts() {
    if !browser_ready() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new();
    let node = start(embedded_config(&dir)).await;
    // Reads answer 503 until the database is migrated.
    let http = reqwest::Client::new();
    let ready = until_status(&http, &url(&node, "/ready"), 200, Duration::from_secs(30)).await;
    assert!(ready, "node never ready");
    let update = std::env::var("FLOODGATE_UPDATE_SCREENSHOT").as_deref() == Ok("1");
    let secs = if update { "15" } else { "3" };
    let (a_json, a_html) = (dir.path().join("a.json"), dir.path().join("a.html"));
    let (b_json, cmp_html) = (dir.path().join("b.json"), dir.path().join("cmp.html"));
    let todos = url(&node, "/todos?limit=10");
    let health = url(&node, "/health");
    let p = |p: &PathBuf| p.display().to_string();
    let (a_json_s, a_html_s, b_json_s) = (p(&a_json), p(&a_html), p(&b_json));
    let args = [
        "-c", "4", "-d", secs, "--json", &a_json_s, "--html", &a_html_s, &todos,
    ];
    let (a_args, b_args) = (
        args.map(String::from),
        ["-c", "8", "-d", "2", "--json", &b_json_s, &health].map(String::from),
    );
    let (a_run, b_run) = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = a_args.iter().map(String::as_str).collect();
        let b: Vec<&str> = b_args.iter().map(String::as_str).collect();
        (bench(&a), bench(&b))
    })
    .await
    .unwrap();
    assert!(a_run.contains("Requests"), "{a_run}");
    assert!(b_run.contains("Requests"), "{b_run}");

    let shot = update.then(|| root.join("docs/bench-report.png"));
    let report = open_report(a_html.clone(), shot).await;
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["requests"],
        serde_json::json!([]),
        "not self-contained: {report}"
    );
    let measured: Value = serde_json::from_str(&std::fs::read_to_string(&a_json).unwrap()).unwrap();
    let seconds = measured["timeline"]["t"].as_array().unwrap().len() as u64;
    assert!(seconds >= 3, "{measured}");
    let throughput = lines(&report, "throughput");
    assert_eq!(throughput.len(), 1, "{report}");
    assert_eq!(throughput[0].1, seconds, "one point a second: {report}");
    assert!(throughput[0].2 > 0, "{report}");
    let latency: Vec<String> = lines(&report, "latency").into_iter().map(|l| l.0).collect();
    assert_eq!(latency, ["p50", "p90", "p99", "max"], "{report}");
    let hdr = lines(&report, "hdr");
    assert_eq!(hdr.len(), 1, "{report}");
    assert_eq!(hdr[0].1, 62, "61 percentiles and the maximum: {report}");
    assert!(hdr[0].2 > 0, "{report}");
    // One line per status class that was answered.
    let status: Vec<String> = lines(&report, "status").into_iter().map(|l| l.0).collect();
    let mut classes: Vec<String> = measured["status_codes"]
        .as_object()
        .unwrap()
        .keys()
        .map(|code| format!("{}xx", &code[..1]))
        .collect();
    classes.dedup();
    assert_eq!(status, classes, "{report}");
    assert_eq!(status[0], "2xx", "{report}");
    let rps = report["cards"]["requests/s"][0]
        .as_str()
        .unwrap()
        .replace(',', "");
    assert!(rps.parse::<f64>().unwrap() > 0.0, "{report}");

    // Two runs side by side: a table on stdout and both on every chart.
    let cmp = bench(&["compare", &a_json_s, &b_json_s, "--html", &p(&cmp_html)]);
    let row = cmp
        .lines()
        .find(|l| l.starts_with("requests/s"))
        .unwrap_or_default();
    assert!(row.ends_with('%') || row.contains("% "), "{cmp}");
    let header: Vec<&str> = cmp.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["a", "b", "change"], "{cmp}");
    let both = open_report(cmp_html, None).await;
    assert_eq!(both["errors"], serde_json::json!([]), "{both}");
    let names: Vec<String> = lines(&both, "throughput")
        .into_iter()
        .map(|l| l.0)
        .collect();
    assert_eq!(names, ["a", "b"], "{both}");
    assert_eq!(lines(&both, "hdr").len(), 2, "{both}");
    assert_eq!(both["title"], "floodgate bench: a vs b", "{both}");
    node.shutdown.cancel();
}
