//! Load runs against scripted local servers: counts, statuses, latency, framing, failures.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{load, serve, Framing, Reply};
use floodgate_bench::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_count_matches_n_exactly() {
    let server = serve(|_| Reply::ok("hello")).await;
    let summary = load(&["-n", "1000", "-c", "7", "-t", "2", "-p", "3", &server.url]).await;
    assert_eq!(summary.total_requests(), 1000);
    assert_eq!(summary.stats.status(200), 1000);
    assert_eq!(summary.stats.total_errors(), 0);
    assert_eq!(server.count(), 1000);
    assert_eq!(summary.stats.latency.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_codes_are_counted() {
    let server = serve(|r| {
        if r.index % 3 == 2 {
            Reply::status(500, "boom")
        } else {
            Reply::ok("fine")
        }
    })
    .await;
    let summary = load(&["-n", "300", "-c", "3", &server.url]).await;
    assert_eq!(summary.stats.status(500), 100);
    assert_eq!(summary.stats.status(200), 200);
    assert!((summary.success_rate() - 200.0 / 3.0).abs() < 0.01);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_reflect_a_fixed_delay() {
    let server = serve(|_| Reply::ok("slow").delay(Duration::from_millis(20))).await;
    let summary = load(&["-n", "100", "-c", "4", &server.url]).await;
    let latency = summary.latency().unwrap();
    assert!(
        (20.0..60.0).contains(&latency.p50),
        "p50 {} ms should be near the 20 ms delay",
        latency.p50
    );
    assert!(
        latency.min >= 19.9,
        "min {} ms is below the delay",
        latency.min
    );
    assert!(
        summary.uncorrected().is_none(),
        "closed model has no uncorrected figures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_control_sends_the_asked_rate() {
    let server = serve(|_| Reply::ok("x")).await;
    let summary = load(&["-R", "200", "-d", "2", "-c", "4", &server.url]).await;
    let total = summary.total_requests();
    assert!(
        (360..=440).contains(&total),
        "sent {total}, expected about 400"
    );
    assert_eq!(server.count(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_corrects_coordinated_omission() {
    // One request stalls for a second; in the open model the requests scheduled behind it
    // on that connection are late too, and only the corrected figures show it.
    let server = serve(|r| {
        let delay = if r.index == 100 { 1000 } else { 0 };
        Reply::ok("x").delay(Duration::from_millis(delay))
    })
    .await;
    let summary = load(&["-R", "200", "-d", "3", "-c", "4", &server.url]).await;
    let corrected = summary.latency().unwrap();
    let uncorrected = summary.uncorrected().unwrap();
    assert!(
        corrected.p99 > 300.0,
        "corrected p99 {} ms hides the stall",
        corrected.p99
    );
    assert!(
        corrected.p99 > uncorrected.p99 * 5.0,
        "corrected p99 {} ms vs uncorrected {} ms",
        corrected.p99,
        uncorrected.p99
    );
    assert!(
        uncorrected.max >= 999.0,
        "the stalled request itself took 1 s"
    );
}

/// A server on a free port that hands its first connection to `handle`, with an empty read
/// buffer and the encoded 200 answer with `body`; its URL.
async fn one_connection<F, Fut>(body: &'static str, handle: F) -> String
where
    F: FnOnce(tokio::net::TcpStream, Vec<u8>, Vec<u8>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        handle(stream, Vec::new(), common::encode(&Reply::ok(body))).await;
    });
    url
}

/// Answers the `pending` requests already read, then every request as it arrives.
async fn answer_from_now_on(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    reply: &[u8],
    mut pending: usize,
) {
    use tokio::io::AsyncWriteExt;
    loop {
        for _ in 0..pending {
            if stream.write_all(reply).await.is_err() {
                return;
            }
        }
        pending = match common::read_request(stream, buf).await {
            Some(_) => 1,
            None => return,
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_arrive_before_any_response() {
    let seen_before_reply = Arc::new(Mutex::new(None));
    let seen = seen_before_reply.clone();
    let url = one_connection("p", |mut stream, mut buf, reply| async move {
        // Count what arrives (up to 2 s) before the first answer goes out.
        let mut first = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while first < 8 {
            let read = common::read_request(&mut stream, &mut buf);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Some(_)) => first += 1,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        *seen.lock().unwrap() = Some(first);
        answer_from_now_on(&mut stream, &mut buf, &reply, first).await;
    })
    .await;
    let summary = load(&["-n", "32", "-c", "1", "-p", "8", &url]).await;
    assert_eq!(summary.stats.status(200), 32);
    assert_eq!(*seen_before_reply.lock().unwrap(), Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_window_refills_as_answers_arrive() {
    use tokio::io::AsyncWriteExt;
    let refilled = Arc::new(Mutex::new(None));
    let flag = refilled.clone();
    let url = one_connection("w", |mut stream, mut buf, reply| async move {
        for _ in 0..4 {
            common::read_request(&mut stream, &mut buf).await.unwrap();
        }
        // Answer half of the four; a refilling client sends a fifth while two are pending.
        stream.write_all(&reply).await.unwrap();
        stream.write_all(&reply).await.unwrap();
        let fifth = tokio::time::timeout(
            Duration::from_secs(2),
            common::read_request(&mut stream, &mut buf),
        )
        .await;
        *flag.lock().unwrap() = Some(matches!(fifth, Ok(Some(_))));
        let pending = 2 + usize::from(matches!(fifth, Ok(Some(_))));
        answer_from_now_on(&mut stream, &mut buf, &reply, pending).await;
    })
    .await;
    let summary = load(&["-n", "8", "-c", "1", "-p", "4", &url]).await;
    assert_eq!(summary.stats.status(200), 8);
    assert_eq!(
        *refilled.lock().unwrap(),
        Some(true),
        "no request sent until the whole batch was answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framing_is_parsed_with_pipelining() {
    let server = serve(|r| {
        let body = format!("response number {}", r.index);
        match r.index % 3 {
            0 => Reply::ok(body).framing(Framing::Chunked),
            1 => Reply::ok(body),
            _ => Reply::ok(body).framing(Framing::Close),
        }
    })
    .await;
    let summary = load(&["-n", "60", "-c", "2", "-p", "5", &server.url]).await;
    assert_eq!(summary.stats.status(200) + summary.stats.total_errors(), 60);
    assert_eq!(summary.stats.errors(ErrorKind::Parse), 0);
    // Close-delimited responses end the connection, so the rest of that batch is lost.
    assert!(summary.stats.status(200) >= 20);

    let chunked =
        serve(|_| Reply::ok("a chunked body of some length").framing(Framing::Chunked)).await;
    let summary = load(&["-n", "50", "-c", "2", "-p", "5", &chunked.url]).await;
    assert_eq!(summary.stats.status(200), 50);
    assert_eq!(summary.stats.total_errors(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_reconnects_without_errors() {
    let server = serve(|_| Reply::ok("bye").close()).await;
    let summary = load(&["-n", "50", "-c", "2", &server.url]).await;
    assert_eq!(summary.stats.status(200), 50);
    assert_eq!(summary.stats.total_errors(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_counts_timeouts() {
    let server = serve(|r| {
        if r.index == 4 {
            Reply::ok("").silent()
        } else {
            Reply::ok("ok")
        }
    })
    .await;
    let summary = load(&["-n", "10", "-c", "1", "--timeout", "300ms", &server.url]).await;
    assert_eq!(summary.stats.errors(ErrorKind::Timeout), 1);
    assert_eq!(summary.stats.status(200), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_counts_connect_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let summary = load(&["-n", "5", "-c", "1", &url]).await;
    assert_eq!(summary.stats.errors(ErrorKind::Connect), 5);
    assert_eq!(summary.stats.responses(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_alternate_and_hosts_spread() {
    let paths = Arc::new(Mutex::new(HashMap::<String, u64>::new()));
    let seen = paths.clone();
    let one = serve(move |r| {
        *seen.lock().unwrap().entry(r.path.clone()).or_default() += 1;
        Reply::ok("one")
    })
    .await;
    let two = serve(|_| Reply::ok("two")).await;
    let (a, b) = (format!("{}/a", one.url), format!("{}/b?x=1", one.url));
    let summary = load(&["-n", "100", "-c", "1", "-p", "4", &a, &b]).await;
    assert_eq!(summary.stats.status(200), 100);
    let counts = paths.lock().unwrap().clone();
    assert_eq!(counts.get("/a"), Some(&50));
    assert_eq!(counts.get("/b?x=1"), Some(&50));

    let summary = load(&["-n", "100", "-c", "2", "-t", "2", &a, &two.url]).await;
    assert_eq!(summary.stats.status(200), 100);
    assert_eq!(one.count() - 100, 50);
    assert_eq!(two.count(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_headers_and_body_are_sent() {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let seen = keys.clone();
    let server = serve(move |r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("X-Test"), Some("yes"));
        assert_eq!(r.body, b"{\"number\":5}");
        seen.lock()
            .unwrap()
            .push(r.header("Idempotency-Key").unwrap_or("").to_string());
        Reply::ok("{}")
    })
    .await;
    let summary = load(&[
        "-n",
        "50",
        "-c",
        "2",
        "-p",
        "2",
        "-m",
        "POST",
        "-H",
        "X-Test: yes",
        "-b",
        "{\"number\":5}",
        "--idempotency",
        &server.url,
    ])
    .await;
    assert_eq!(summary.stats.status(200), 50);
    let keys = keys.lock().unwrap();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), 50);
    assert!(keys.iter().all(|k| uuid::Uuid::parse_str(k).is_ok()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_is_not_recorded() {
    let server = serve(|_| Reply::ok("x")).await;
    let summary = load(&[
        "-R",
        "100",
        "-d",
        "1",
        "--warmup",
        "1",
        "-c",
        "2",
        &server.url,
    ])
    .await;
    let recorded = summary.total_requests();
    assert!((80..=120).contains(&recorded), "recorded {recorded}");
    assert!(
        server.count() >= recorded + 80,
        "warm-up requests were sent too"
    );
}
