//! Open model (`-R`): requests are scheduled at a constant rate, whatever the server does.
//! Latency counts from the intended send time, so time a request spends waiting behind a
//! slow one is measured instead of hidden (coordinated omission).

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::conn::{Conn, ErrorKind};
use crate::ctx::{micros_between, WorkerCtx};
use crate::deadline::Deadline;
use crate::request::Rng;
use crate::stats::Row;

const TIMER_TICK: Duration = Duration::from_millis(1);

pub async fn run(ctx: Rc<WorkerCtx>, id: usize) {
    let plan = ctx.plan.clone();
    let Some(rate) = plan.rate else { return };
    let host = plan.host_of(id);
    let urls = &host.urls;
    let conn_id = u32::try_from(id).unwrap_or(u32::MAX);
    // Each connection carries rate/c; starts are staggered by 1/rate so that together the
    // connections send evenly spaced requests.
    let interval = Duration::from_secs_f64(plan.connections as f64 / rate);
    let mut intended = ctx.clock.start + Duration::from_secs_f64(id as f64 / rate);
    let mut next_url = (id / plan.hosts.len()) % urls.len();
    let mut rng = Rng::seeded();
    let mut bytes = Vec::new();
    let mut conn: Option<Conn> = None;
    let mut deadline = Deadline::new(plan.timeout);

    loop {
        if ctx.past_end(intended) {
            return;
        }
        // The timer fires on a 1 ms tick, rounded up, so aiming at the intended time would
        // make every request late by up to 2 ms of the generator's own making. Aim a tick
        // early instead; latency then counts from the earlier of intended and actual send.
        let wake = intended.checked_sub(TIMER_TICK).unwrap_or(intended);
        if wake > Instant::now() {
            tokio::time::sleep_until(wake.into()).await;
        }
        let recording = ctx.recording(intended);
        if recording && ctx.take(1) == 0 {
            return;
        }
        let url = urls[next_url];
        next_url = (next_url + 1) % urls.len();
        let url_index = [url as u16];
        let row = recording.then_some((conn_id, url_index.as_slice(), intended));
        let scheduled = intended;
        intended += interval;

        if conn.is_none() {
            match Conn::connect(&host.addrs, plan.no_body).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    if recording {
                        ctx.fail(ErrorKind::Connect, 1, row);
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        bytes.clear();
        plan.templates[url].append_to(&mut bytes, &mut rng);
        let sent = Instant::now();
        let from = scheduled.min(sent);
        if c.write(&bytes).await.is_err() {
            if recording {
                ctx.fail(ErrorKind::Write, 1, row);
            }
            conn = None;
            continue;
        }
        let read_before = c.bytes_read;
        let mut close = false;
        let read = c.read_responses(
            1,
            |response, at| {
                ctx.idle.response();
                close = response.close;
                if !recording {
                    return;
                }
                let mut stats = ctx.stats.borrow_mut();
                stats.record_response(response.status, at.saturating_duration_since(from), at);
                stats.record_uncorrected(at.saturating_duration_since(sent));
                if let Some(rows) = &mut stats.rows {
                    rows.push(Row {
                        at_us: micros_between(ctx.clock.start, from),
                        conn: conn_id,
                        url: url as u16,
                        status: response.status,
                        elapsed_us: micros_between(from, at),
                        error: None,
                    });
                }
            },
            |_| {},
        );
        let result = deadline.run(sent + plan.timeout, read).await;
        let got = matches!(result, Ok(Ok(1)));
        if recording {
            let mut stats = ctx.stats.borrow_mut();
            stats.bytes_written += bytes.len() as u64;
            stats.bytes_read += c.bytes_read - read_before;
            drop(stats);
            ctx.live.add(u64::from(got), 0);
        }
        let failure = match result {
            Ok(Ok(1)) => None,
            Ok(Ok(_)) => Some(ErrorKind::Read),
            Ok(Err(e)) => Some(ErrorKind::from(&e)),
            Err(_) => Some(ErrorKind::Timeout),
        };
        if let Some(kind) = failure {
            if recording {
                ctx.fail(kind, 1, row);
            }
            conn = None;
        } else if close {
            conn = None;
        }
    }
}
