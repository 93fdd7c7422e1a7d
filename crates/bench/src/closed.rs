//! Closed model: each connection keeps up to `-p` requests in flight. It writes `-p` back
//! to back, and once half of them are answered writes as many new ones in a single write,
//! so the server always has the next requests waiting (wrk's pipelining script works in
//! lock-step batches instead, leaving the connection idle while a batch's last answers
//! travel). Refilling by halves rather than per answer keeps writes few and large.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use crate::conn::{Conn, ErrorKind};
use crate::ctx::{connect_backoff, micros_between, WorkerCtx};
use crate::deadline::Deadline;
use crate::request::Rng;
use crate::stats::Row;

/// A request written and not yet answered.
struct InFlight {
    url: u16,
    sent: Instant,
    /// Sent after warm-up: counts in the results.
    recorded: bool,
}

/// Drives one connection (global id `id`) until the run ends or the budget is spent.
pub async fn run(ctx: Rc<WorkerCtx>, id: usize) {
    let plan = ctx.plan.clone();
    let host = plan.host_of(id);
    let urls = &host.urls;
    let p = plan.pipelining;
    let refill_after = (p / 2).max(1);
    let conn_id = u32::try_from(id).unwrap_or(u32::MAX);
    // Connections start at different URLs so several URLs interleave from the first batch.
    let mut next_url = (id / plan.hosts.len()) % urls.len();
    // One URL without per-request keys: a window's worth is encoded once.
    let first = &plan.templates[urls[0]];
    let fixed = (urls.len() == 1 && !first.needs_key()).then(|| first.bytes.repeat(p));
    let mut rng = Rng::seeded();
    let mut batch = Vec::new();
    let mut window: VecDeque<InFlight> = VecDeque::with_capacity(p);
    let mut conn: Option<Conn> = None;
    let mut deadline = Deadline::new(plan.timeout);
    let mut connect_failures = 0u32;

    loop {
        let now = Instant::now();
        let ending = ctx.past_end(now);
        if ending && window.is_empty() {
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

        // Refill the window.
        let room = p - window.len();
        if room > 0 && !ending {
            let recorded = ctx.recording(now);
            let k = if recorded { ctx.take(room) } else { room };
            let bytes: &[u8] = match &fixed {
                Some(all) => {
                    window.extend((0..k).map(|_| InFlight {
                        url: urls[0] as u16,
                        sent: now,
                        recorded,
                    }));
                    &all[..k * first.bytes.len()]
                }
                None => {
                    batch.clear();
                    for _ in 0..k {
                        let url = urls[next_url];
                        next_url = (next_url + 1) % urls.len();
                        plan.templates[url].append_to(&mut batch, &mut rng);
                        window.push_back(InFlight {
                            url: url as u16,
                            sent: now,
                            recorded,
                        });
                    }
                    &batch
                }
            };
            if k > 0 {
                if c.write(bytes).await.is_err() {
                    abandon(&ctx, conn_id, &mut window, ErrorKind::Write);
                    conn = None;
                    continue;
                }
                if recorded {
                    ctx.stats.borrow_mut().bytes_written += bytes.len() as u64;
                }
            }
        }
        if window.is_empty() {
            // The budget is spent and every answer is in.
            return;
        }

        let read_before = c.bytes_read;
        let mut answered = 0u64;
        let mut close = false;
        let read = c.read_between(
            refill_after.min(window.len()),
            window.len(),
            |response, at| {
                let Some(req) = window.pop_front() else {
                    return;
                };
                ctx.idle.response();
                close |= response.close;
                if !req.recorded {
                    return;
                }
                answered += 1;
                let mut stats = ctx.stats.borrow_mut();
                stats.record_response(response.status, at.saturating_duration_since(req.sent), at);
                if let Some(rows) = &mut stats.rows {
                    rows.push(Row {
                        at_us: micros_between(ctx.clock.start, req.sent),
                        conn: conn_id,
                        url: req.url,
                        status: response.status,
                        elapsed_us: micros_between(req.sent, at),
                        error: None,
                    });
                }
            },
            |_| {},
        );
        let result = deadline.run(now + plan.timeout, read).await;
        if ctx.recording(now) || answered > 0 {
            ctx.stats.borrow_mut().bytes_read += c.bytes_read - read_before;
            ctx.live.add(answered, 0);
        }
        let failure = match result {
            // The server closed with requests still unanswered.
            Ok(Ok(_)) if close && !window.is_empty() => Some(ErrorKind::Read),
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(ErrorKind::from(&e)),
            Err(_) => Some(ErrorKind::Timeout),
        };
        if let Some(kind) = failure {
            abandon(&ctx, conn_id, &mut window, kind);
            conn = None;
        } else if close {
            conn = None;
        }
    }
}

/// Counts every unanswered recorded request in `window` as failed with `kind`.
fn abandon(ctx: &WorkerCtx, conn_id: u32, window: &mut VecDeque<InFlight>, kind: ErrorKind) {
    let recorded: Vec<&InFlight> = window.iter().filter(|r| r.recorded).collect();
    if let Some(oldest) = recorded.first() {
        let urls: Vec<u16> = recorded.iter().map(|r| r.url).collect();
        ctx.fail(kind, urls.len(), Some((conn_id, &urls, oldest.sent)));
    }
    window.clear();
}
