//! Closed model: each connection writes `-p` requests back-to-back, reads the `-p`
//! responses, and starts again at once.

use std::rc::Rc;
use std::time::Instant;

use crate::conn::Conn;
use crate::request::Rng;
use crate::stats::{ErrorKind, Row};
use crate::worker::{connect_backoff, micros_between, WorkerCtx};

/// Drives one connection (global id `id`) until the run ends or the budget is spent.
pub async fn run(ctx: Rc<WorkerCtx>, id: usize) {
    let plan = ctx.plan.clone();
    let host = plan.host_of(id);
    let urls = &host.urls;
    let p = plan.pipelining;
    let conn_id = u32::try_from(id).unwrap_or(u32::MAX);
    // Connections start at different URLs so several URLs interleave from the first batch.
    let mut next_url = (id / plan.hosts.len()) % urls.len();
    // One URL without per-request keys: the whole batch is encoded once.
    let first = &plan.templates[urls[0]];
    let fixed = (urls.len() == 1 && !first.needs_key()).then(|| first.bytes.repeat(p));
    let mut rng = Rng::seeded();
    let mut batch = Vec::new();
    let mut batch_urls: Vec<u16> = Vec::with_capacity(p);
    let mut conn: Option<Conn> = None;
    let mut connect_failures = 0u32;

    loop {
        if ctx.past_end(Instant::now()) {
            return;
        }
        let Some(c) = conn.as_mut() else {
            match Conn::connect(&host.addrs, plan.no_body).await {
                Ok(c) => {
                    conn = Some(c);
                    connect_failures = 0;
                }
                Err(_) => {
                    // A failed connect costs one request so `-n` ends against a dead server.
                    let now = Instant::now();
                    if ctx.recording(now) {
                        if ctx.take(1) == 0 {
                            return;
                        }
                        let url = [urls[0] as u16];
                        ctx.fail(ErrorKind::Connect, 1, Some((conn_id, &url, now)));
                    }
                    connect_failures += 1;
                    tokio::time::sleep(connect_backoff(connect_failures)).await;
                }
            }
            continue;
        };

        let sent = Instant::now();
        let recording = ctx.recording(sent);
        let k = if recording { ctx.take(p) } else { p };
        if k == 0 {
            return;
        }
        batch_urls.clear();
        let bytes: &[u8] = match &fixed {
            Some(all) => {
                batch_urls.resize(k, urls[0] as u16);
                &all[..k * first.bytes.len()]
            }
            None => {
                batch.clear();
                for _ in 0..k {
                    let url = urls[next_url];
                    next_url = (next_url + 1) % urls.len();
                    plan.templates[url].append_to(&mut batch, &mut rng);
                    batch_urls.push(url as u16);
                }
                &batch
            }
        };
        let row = recording.then_some((conn_id, batch_urls.as_slice(), sent));
        if c.write(bytes).await.is_err() {
            if recording {
                ctx.fail(ErrorKind::Write, k, row);
            }
            conn = None;
            continue;
        }

        let read_before = c.bytes_read;
        let mut got = 0usize;
        let mut close = false;
        let read = c.read_responses(
            k,
            |response, at| {
                if recording {
                    let mut stats = ctx.stats.borrow_mut();
                    stats.record_response(response.status, at.saturating_duration_since(sent));
                    if let Some(rows) = &mut stats.rows {
                        rows.push(Row {
                            at_us: micros_between(ctx.clock.start, sent),
                            conn: conn_id,
                            url: batch_urls.get(got).copied().unwrap_or(0),
                            status: response.status,
                            elapsed_us: micros_between(sent, at),
                            error: None,
                        });
                    }
                }
                got += 1;
                close |= response.close;
            },
            |_| {},
        );
        let result = tokio::time::timeout(plan.timeout, read).await;
        if recording {
            let mut stats = ctx.stats.borrow_mut();
            stats.bytes_written += bytes.len() as u64;
            stats.bytes_read += c.bytes_read - read_before;
            drop(stats);
            ctx.live.add(got as u64, 0);
        }
        let failure = match result {
            Ok(Ok(_)) if got == k => None,
            // The server closed after answering only part of the batch.
            Ok(Ok(_)) => Some(ErrorKind::Read),
            Ok(Err(e)) => Some(ErrorKind::from(&e)),
            Err(_) => Some(ErrorKind::Timeout),
        };
        if let Some(kind) = failure {
            if recording {
                ctx.fail(kind, k - got, row);
            }
            conn = None;
        } else if close {
            conn = None;
        }
    }
}
