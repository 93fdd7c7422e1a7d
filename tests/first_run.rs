//! The first five minutes, with the real binary and nothing configured: zero-setup secrets,
//! the requests the banner prints, `floodgate token` without flags, seeded todos showing up
//! within CACHE_STALENESS_MS, and the start-up errors a newcomer may meet.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    binary_unconfigured as floodgate, failed_with_one_line, free_port, run_in, succeeded, TempDir,
};

/// A node started in `dir`, stopped (SIGTERM) when dropped.
struct Node {
    child: Child,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `floodgate serve` in `dir` with nothing configured; returns the node and every stderr
/// line up to the start-up log line plus the banner when there is one.
fn serve(dir: &TempDir, env: &[(&str, &str)]) -> (Node, Vec<String>) {
    let port = free_port();
    let mut cmd = floodgate();
    cmd.current_dir(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("FLOODGATE_LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn floodgate");
    let stderr = child.stderr.take().expect("stderr");
    let node = Node { child, port };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // The banner, when printed, follows the start-up line and ends with a blank line.
    let mut started = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(l) => {
                let blank = l.trim().is_empty();
                started |= l.contains("floodgate started");
                lines.push(l);
                if started && blank && lines.iter().any(|l| l.contains("curl ")) {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if started => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    assert!(started, "no start-up line: {lines:#?}");
    // Ready once migrations are applied.
    while http(node.port, "GET", "/ready", &[], "").0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    (node, lines)
}

/// One HTTP/1.1 request; (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {out:?}"));
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn token(dir: &TempDir, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = floodgate();
    cmd.current_dir(dir.path()).args(["token", "--sub", "me"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run floodgate token")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn zero_setup_generates_secrets_once_and_every_printed_request_works() {
    let dir = TempDir::new();
    let (node, lines) = serve(&dir, &[]);
    let file = dir.path().join("data/dev-secrets.env");
    let secrets = std::fs::read_to_string(&file).expect("data/dev-secrets.env written");
    assert!(secrets.contains("JWT_SECRET=") && secrets.contains("ABACUS_API_KEYS="));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secrets readable by others");
    }
    let curls: Vec<&str> = lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("curl "))
        .collect();
    for route in [
        "/queue",
        "/generate",
        "/todos",
        "/abacus/number",
        "/abacus/sum",
    ] {
        assert!(
            curls.iter().any(|c| c.contains(route)),
            "no {route}: {lines:#?}"
        );
    }
    if Command::new("curl").arg("--version").output().is_err() {
        return common::skip("curl");
    }
    for line in &curls {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{line} -o /dev/null -w '%{{http_code}}'"))
            .output()
            .expect("sh");
        let code = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(code.starts_with('2'), "{line}\n answered {code}");
    }

    // `floodgate token` needs no flag: the same secret, so the node accepts its token.
    let out = token(&dir, &[]);
    succeeded(&out);
    let bearer = format!("Bearer {}", stdout(&out));
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (code, body) = http(node.port, "POST", "/todos", &headers, r#"{"title":"hi"}"#);
    assert_eq!(code, 202, "{body}");
    drop(node);

    // A restart reuses the file and prints no secrets.
    let (node, lines) = serve(&dir, &[]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secrets);
    let printed = lines.join("\n");
    assert!(
        !printed.contains("curl "),
        "banner printed again: {printed}"
    );
    let (code, body) = http(
        node.port,
        "POST",
        "/todos",
        &headers,
        r#"{"title":"again"}"#,
    );
    assert_eq!(code, 202, "{body}");
}

#[test]
fn a_shared_backend_without_secrets_stops_startup_with_one_line() {
    let dir = TempDir::new();
    for (flag, value) in [
        ("--redis-url", "redis://127.0.0.1:1/0"),
        ("--kafka-brokers", "127.0.0.1:1"),
        ("--database-url", "postgres://u:p@127.0.0.1:1/db"),
    ] {
        let out = run_in(
            floodgate(),
            &dir,
            &["serve", "--listen", "127.0.0.1:0", flag, value],
        );
        let err = failed_with_one_line(&out, 2);
        assert!(
            err.contains("JWT_SECRET") && err.contains("must be set"),
            "{err}"
        );
        // `token` needs the secret too, and says so.
        let out = run_in(floodgate(), &dir, &["token", "--sub", "me", flag, value]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));
    }
    assert!(!dir.path().join("data").exists(), "embedded files made");
}

#[test]
fn a_busy_port_fails_at_once_with_one_line_and_no_migrations() {
    let dir = TempDir::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run_in(floodgate(), &dir, &["serve", "--listen", &addr]);
    let err = failed_with_one_line(&out, 1);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert_eq!(err.matches("in use").count(), 1, "cause repeated: {err}");
    assert!(
        !dir.path().join("data/floodgate.db").exists(),
        "the database was opened before the port was checked"
    );
}

#[test]
fn print_config_shows_the_sqlite_url_in_use() {
    let dir = TempDir::new();
    let out = run_in(floodgate(), &dir, &["serve", "--print-config"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("FLOODGATE_DATABASE_URL ="))
        .unwrap_or("");
    assert!(line.contains("\"sqlite://data/floodgate.db\""), "{text}");
}

#[test]
fn token_help_explains_sub() {
    let out = floodgate().args(["token", "--help"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let sub = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--sub"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(sub.contains("user_id") && sub.contains("sub"), "{text}");
}

#[test]
fn todos_seeded_from_another_process_show_within_the_staleness_bound() {
    const STALENESS_MS: u64 = 400;
    let dir = TempDir::new();
    let staleness = STALENESS_MS.to_string();
    let (node, _) = serve(&dir, &[("CACHE_STALENESS_MS", &staleness)]);
    let list = || {
        let (code, body) = http(node.port, "GET", "/todos?limit=10", &[], "");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Vec<serde_json::Value>>(&body)
            .expect("a JSON list")
            .len()
    };
    // Empty, and cached as such once the poller has confirmed the version.
    assert_eq!(list(), 0);
    std::thread::sleep(Duration::from_millis(STALENESS_MS));
    assert_eq!(list(), 0);
    let out = run_in(floodgate(), &dir, &["seed", "todos", "--count", "25"]);
    let seeded = Instant::now();
    succeeded(&out);
    assert!(stdout(&out).contains("25 inserted"), "{}", stdout(&out));
    let seen = loop {
        if list() == 10 {
            break seeded.elapsed();
        }
        assert!(
            seeded.elapsed() < Duration::from_secs(10),
            "seeded todos never showed up"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    println!("seeded todos visible after {seen:?} (bound {STALENESS_MS} ms)");
    assert!(
        seen <= Duration::from_millis(STALENESS_MS),
        "seeded todos showed after {seen:?}, beyond CACHE_STALENESS_MS={STALENESS_MS}"
    );
}
