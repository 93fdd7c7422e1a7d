//! Report files and the command-line entry point.

mod common;

use std::process::ExitCode;

use common::{args, serve, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_csv_and_metrics_files() {
    let server = serve(|r| {
        if r.path == "/metrics" {
            Reply::ok(format!("requests_total {}\n", r.index))
        } else if r.index % 2 == 0 {
            Reply::ok("ok")
        } else {
            Reply::status(503, "busy")
        }
    })
    .await;
    let dir = std::env::temp_dir().join(format!("fg-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, csv) = (dir.join("stats.json"), dir.join("rows.csv"));
    let metrics = format!("{}/metrics", server.url);
    let list = vec![
        "-n".to_string(),
        "20".into(),
        "-c".into(),
        "2".into(),
        "--json".into(),
        json.display().to_string(),
        "--csv".into(),
        csv.display().to_string(),
        "--metrics-url".into(),
        metrics,
        format!("{}/work", server.url),
    ];
    assert_eq!(floodgate_bench::run(list, None).await, ExitCode::SUCCESS);

    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["timestamp", "total_time_seconds", "rps", "latency_ms"] {
        assert!(stats.get(key).is_some(), "missing {key}");
    }
    assert_eq!(stats["total_requests"], 20);
    assert_eq!(stats["concurrency"], 2);
    assert_eq!(stats["success_rate"], 50.0);
    assert_eq!(stats["status_codes"]["200"], 10);
    assert_eq!(stats["status_codes"]["503"], 10);

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ts,worker,url,status,elapsed,error"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.len() == 6 && r[2].ends_with("/work")));
    assert_eq!(rows.iter().filter(|r| r[3] == "503").count(), 10);

    let snapshots = std::fs::read_to_string(dir.join("metrics_snapshots.txt")).unwrap();
    assert!(snapshots.contains("# snapshot before"));
    assert!(snapshots.contains("# snapshot after"));
    assert_eq!(snapshots.matches("requests_total").count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bad_arguments_fail_cleanly() {
    let bad =
        |list: &[&str]| floodgate_bench::run(list.iter().map(|s| s.to_string()).collect(), None);
    assert_eq!(
        bad(&["-c", "x", "http://127.0.0.1:1/"]).await,
        ExitCode::from(2)
    );
    assert_eq!(bad(&["https://127.0.0.1:1/"]).await, ExitCode::FAILURE);
    assert_eq!(
        bad(&["-H", "nocolon", "http://127.0.0.1:1/"]).await,
        ExitCode::FAILURE
    );
    assert_eq!(
        bad(&["-R", "10", "-p", "2", "http://127.0.0.1:1/"]).await,
        ExitCode::FAILURE
    );
    assert_eq!(bad(&["--help"]).await, ExitCode::SUCCESS);
    assert!(
        floodgate_bench::load(&args(&["-d", "0", "http://127.0.0.1:1/"]))
            .await
            .is_err()
    );
}
