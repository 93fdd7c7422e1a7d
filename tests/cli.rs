//! The binary itself: subcommands, configuration errors and precedence, SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{binary as floodgate, failed_with_one_line, free_port, run_in, succeeded, TempDir};

#[test]
fn help_lists_every_subcommand() {
    let out = floodgate().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "worker", "bench", "seed", "token", "migrate"] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
}

#[test]
fn a_bad_setting_stops_startup_with_one_line_and_exit_2() {
    let dir = TempDir::new();
    let mut cmd = floodgate();
    cmd.env("RATE_LIMIT_CAPACITY", "lots");
    let out = run_in(cmd, &dir, &["serve", "--listen", "127.0.0.1:0"]);
    let err = failed_with_one_line(&out, 2);
    assert!(err.contains("RATE_LIMIT_CAPACITY"), "{err}");
    assert!(err.contains("lots"), "{err}");
}

#[test]
fn print_config_shows_precedence_and_hides_secrets() {
    let dir = TempDir::new();
    std::fs::write(
        dir.path().join("floodgate.toml"),
        "rate_limit_capacity = 10\nlisten = \"127.0.0.1:1111\"\ncache_ttl_sec = 7\n",
    )
    .unwrap();
    // The seed's .env names keep working.
    std::fs::write(
        dir.path().join(".env"),
        "RATE_LIMIT_CAPACITY=20\nJWT_SECRET=super-secret-value\nDATABASE_URL=postgres://app:appsecret@db:5432/million_rps\nUNRELATED=1\n",
    )
    .unwrap();
    let out = floodgate()
        .current_dir(dir.path())
        .args([
            "serve",
            "--print-config",
            "--set",
            "KAFKA_GIFT_CODE_TIMEOUT=3",
        ])
        .env("FLOODGATE_LISTEN", "127.0.0.1:2222")
        .env("KAFKA_GIFT_CODE_TIMEOUT", "9")
        .output()
        .unwrap();
    let text = succeeded(&out);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} =")))
            .unwrap_or("")
            .to_string()
    };
    // Each setting's value and where it came from.
    for (name, value, source) in [
        ("CACHE_TTL_SEC", "\"7\"", "floodgate.toml"),
        ("RATE_LIMIT_CAPACITY", "\"20\"", ".env"),
        ("FLOODGATE_LISTEN", "127.0.0.1:2222", "environment"),
        ("KAFKA_GIFT_CODE_TIMEOUT", "\"3\"", "flag"),
    ] {
        assert!(
            line(name).contains(value) && line(name).contains(source),
            "{text}"
        );
    }
    assert!(
        !text.contains("super-secret-value"),
        "secret printed: {text}"
    );
    assert!(
        !text.contains("appsecret"),
        "database password printed: {text}"
    );
    assert!(line("JWT_SECRET").contains("***"), "{text}");
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let dir = TempDir::new();
    let port = free_port();
    let mut child = floodgate()
        .current_dir(dir.path())
        // No workers, so a /queue request stays in flight until its 1.5 s timeout.
        .args([
            "serve",
            "--no-workers",
            "--set",
            "KAFKA_GIFT_CODE_TIMEOUT=1.5",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    // Wait for the JSON start-up line.
    let started = lines
        .by_ref()
        .take(20)
        .map_while(Result::ok)
        .any(|l| l.contains("floodgate started"));
    assert!(started, "no start-up log line");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"POST /queue HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "did not exit within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
    assert!(t0.elapsed() < Duration::from_secs(30));
    // The request in flight at SIGTERM got its whole answer before the process left.
    assert!(
        t0.elapsed() >= Duration::from_millis(1000),
        "exited before the in-flight request finished"
    );
    let mut answer = String::new();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = std::io::Read::read_to_string(&mut conn, &mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 504"),
        "in-flight request was cut off: {answer:?}"
    );
    assert!(
        answer.contains("Timed out waiting for a gift code."),
        "{answer}"
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("shutdown complete")),
        "{rest:?}"
    );
    // Every log line is one JSON object.
    for l in &rest {
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_ok(),
            "not JSON: {l}"
        );
    }
}

#[test]
fn token_mints_a_jwt() {
    let dir = TempDir::new();
    let mut cmd = floodgate();
    cmd.env("JWT_SECRET", "s3cret");
    let out = run_in(cmd, &dir, &["token", "--sub", "alice", "--ttl", "1h"]);
    let token = succeeded(&out).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    // Without a secret: tests/first_run.rs (zero-setup, or one line naming JWT_SECRET).
}

#[test]
fn seed_todos_is_idempotent() {
    let dir = TempDir::new();
    let db = format!("sqlite://{}/seed.db", dir.path().display());
    let run = || {
        let out = run_in(
            floodgate(),
            &dir,
            &["seed", "todos", "--count", "50", "--database-url", &db],
        );
        succeeded(&out)
    };
    assert!(run().contains("50 inserted"));
    assert!(run().contains("0 inserted, 50 already present"));
}

/// GET `path` from a node on `port`, waiting up to 20 s for it to listen; the raw answer.
fn get_raw(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut out);
            return out;
        }
        assert!(Instant::now() < deadline, "node never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `cmd args` in `dir` with its output discarded.
fn spawn_quiet(mut cmd: Command, dir: &TempDir, args: &[&str]) -> std::process::Child {
    cmd.current_dir(dir.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn metrics_off_serves_the_apis_without_metrics() {
    let dir = TempDir::new();
    let port = free_port();
    let mut cmd = floodgate();
    cmd.env("FLOODGATE_METRICS", "off");
    let child = spawn_quiet(
        cmd,
        &dir,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
    );
    assert!(get_raw(port, "/health").starts_with("HTTP/1.1 200"));
    // The port is bound before migrations run: wait for /ready, not just the listener.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !get_raw(port, "/ready").starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "node never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get_raw(port, "/todos?limit=1").starts_with("HTTP/1.1 200"));
    let metrics = get_raw(port, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 404"), "{metrics}");
    assert!(metrics.contains("FLOODGATE_METRICS=off"), "{metrics}");
    stop(child);
}

#[test]
fn worker_serves_probes_and_metrics_but_not_the_apis() {
    let dir = TempDir::new();
    let port = free_port();
    let child = spawn_quiet(
        floodgate(),
        &dir,
        &["worker", "--listen", &format!("127.0.0.1:{port}")],
    );
    let get = |path: &str| get_raw(port, path);
    assert!(get("/health").starts_with("HTTP/1.1 200"));
    assert!(get("/metrics").starts_with("HTTP/1.1 200"));
    assert!(
        get("/todos").starts_with("HTTP/1.1 404"),
        "a worker must not serve the APIs"
    );
    stop(child);
}
