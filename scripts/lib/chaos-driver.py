#!/usr/bin/env python3
"""Load and ground truth for one scripts/chaos fault window (stdlib only).

Drives all four services on every API node while scripts/chaos injects a fault, records
each request's outcome, and at the end checks the invariants against what was
acknowledged:

  abacus     POST /abacus/number {"number":1} with a fresh Idempotency-Key, repeated with
             the same key until answered 200; afterwards the sum on every node must equal
             the sum before plus the number of acknowledged keys, exactly.
  giftcodes  POST /queue; every gift code of the whole run is unique (--codes file).
  primes     POST /generate?n=N then GET /status/{id}; every accepted job must complete
             with the first N primes.
  todos      POST /todos with a unique title; every 202'd id must be in PostgreSQL exactly
             once (psql); plus GET /todos?limit=10 reads.

A request is "ok" when it was answered 2xx and, for primes and todos, its job or row was
done within --ok-latency seconds of sending. Recovery of a service after time T is the
time from T until the first request after which every request sent is ok.

The events file (written by scripts/chaos) holds "NAME EPOCH" lines: "inject" (the
fault), "restart" (a killed process started again: failover is measured from inject to
restart, recovery from restart), "back" (a backend answers again: recovery is measured from
it), "end" (stop the load; the driver then drains and checks). Without events (the
baseline) recovery is measured from the start of the load.
Writes a JSON summary to --out and a readable account to stdout.
"""

import argparse
import http.client
import json
import random
import subprocess
import sys
import threading
import time
import uuid

SERVICES = ("abacus", "giftcodes", "primes", "todos", "todos-read")
# Request timeout: above the server's 10 s gift-code reply timeout, so its 504 is seen.
TIMEOUT = 12.0
# Status polls time out sooner, so one stuck poll does not make later jobs look slow.
POLL_TIMEOUT = 2.0


class Request:
    """One HTTP request, or one async job from submission to completion."""

    __slots__ = ("service", "sent", "answered", "status", "done", "failed")

    def __init__(self, service):
        self.service = service
        self.sent = time.time()
        self.answered = None  # when the HTTP answer came
        self.status = None  # HTTP status, None when no answer
        self.done = None  # when the effect was seen (async services), else answered
        self.failed = None  # why the effect is wrong, when it is


class Driver:
    def __init__(self, args):
        self.args = args
        self.nodes = [tuple(n.rsplit(":", 1)) for n in args.nodes.split(",")]
        self.lock = threading.Lock()
        self.requests = []
        self.stop = threading.Event()  # stop sending new work
        self.drained = threading.Event()  # stop everything
        self.abacus_acked = 0
        self.abacus_unresolved = 0
        self.codes = []
        self.primes = {}  # request_id -> (n, Request)
        self.todos = {}  # id -> (title, Request)
        self.rr = 0
        self.started = time.time()

    # ------------------------------------------------------------------ http ---
    def call(self, method, path, body=None, headers=None, node=None, timeout=TIMEOUT):
        """(status, parsed JSON or None); status None when there was no answer.

        A refused connection means the request was never sent, so it moves on to the next
        node (client-side failover, as a load balancer would); any later error is an
        unknown outcome and is not retried here."""
        with self.lock:
            start = self.rr if node is None else node
            self.rr += 1
        data = json.dumps(body).encode() if body is not None else b""
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        for i in range(len(self.nodes)):
            host, port = self.nodes[(start + i) % len(self.nodes)]
            conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
            try:
                conn.connect()
            except OSError:
                conn.close()
                if node is not None:
                    return None, None
                continue
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                raw = resp.read()
                try:
                    return resp.status, json.loads(raw) if raw else None
                except ValueError:
                    return resp.status, None
            except (OSError, http.client.HTTPException):
                return None, None
            finally:
                conn.close()
        return None, None

    def send(self, service, method, path, body=None, headers=None, done=True):
        """One request as a Request (done when answered, unless the effect comes later)."""
        req = Request(service)
        req.status, reply = self.call(method, path, body, headers)
        req.answered = time.time()
        if done:
            req.done = req.answered
        return req, reply

    def record(self, req):
        with self.lock:
            self.requests.append(req)

    def pace(self):
        time.sleep(self.args.pause)

    # -------------------------------------------------------------- services ---
    def abacus(self):
        headers = {"X-API-Key": self.args.api_key}
        while not self.drained.is_set():
            if self.stop.is_set():
                return
            key = str(uuid.uuid4())
            # the same key until a definitive answer: that is what makes retries safe
            while not self.drained.is_set():
                req, _ = self.send(
                    "abacus", "POST", "/abacus/number", {"number": 1}, {**headers, "Idempotency-Key": key}
                )
                status = req.status
                if status != 200:
                    req.failed = f"status {status}"
                self.record(req)
                if status == 200:
                    with self.lock:
                        self.abacus_acked += 1
                    break
                if status is not None and 400 <= status < 500 and status not in (409, 429):
                    break  # refused: nothing was added
                time.sleep(0.2)
            else:
                with self.lock:
                    self.abacus_unresolved += 1
            self.pace()

    def giftcodes(self):
        while not self.stop.is_set():
            req, body = self.send("giftcodes", "POST", "/queue")
            status = req.status
            code = body.get("gift_code") if isinstance(body, dict) else None
            if status != 200 or not isinstance(code, str) or not code:
                req.failed = f"status {status}" if status != 200 else "200 without a gift_code"
            else:
                with self.lock:
                    self.codes.append(code)
            self.record(req)
            self.pace()

    def submit(self, service, make, accepted, field, jobs):
        """Submits async jobs until the load stops: make() gives (method, path, body,
        headers, what to remember); an answer `accepted` with a string `field` is a job."""
        while not self.stop.is_set():
            (method, path, body, headers), what = make()
            req, reply = self.send(service, method, path, body, headers, done=False)
            status = req.status
            job = reply.get(field) if isinstance(reply, dict) else None
            if status == accepted and isinstance(job, str):
                with self.lock:
                    jobs[job] = (what, req)
            else:
                req.failed = f"status {status}"
            self.record(req)
            self.pace()

    def primes_submit(self):
        def make():
            n = random.randint(10, 200)
            return ("POST", f"/generate?n={n}", None, None), n

        self.submit("primes", make, 200, "request_id", self.primes)

    def primes_poll(self):
        while not self.drained.is_set():
            with self.lock:
                pending = [(rid, n, r) for rid, (n, r) in self.primes.items() if r.done is None and r.failed is None]
            for rid, n, req in pending:
                if self.drained.is_set():
                    return
                status, body = self.call("GET", f"/status/{rid}", timeout=POLL_TIMEOUT)
                if status == 404:
                    req.failed = "job unknown (404) after it was accepted"
                elif status == 200 and isinstance(body, dict):
                    state = body.get("status")
                    if state == "complete":
                        req.done = time.time()
                        req.failed = check_primes(body.get("result"), n)
                    elif state == "failed":
                        req.failed = f"job failed: {body.get('error')}"
            time.sleep(0.2)

    def todos_write(self):
        headers = {"Authorization": f"Bearer {self.args.token}"}

        def make():
            title = f"{self.args.label}-{uuid.uuid4()}"
            return ("POST", "/todos", {"title": title, "description": "chaos"}, headers), title

        self.submit("todos", make, 202, "id", self.todos)

    def todos_poll(self):
        """Marks 202'd todos done when their row is in PostgreSQL (the ground truth)."""
        while not self.drained.is_set():
            with self.lock:
                pending = [(tid, r) for tid, (_, r) in self.todos.items() if r.done is None]
            if pending:
                ids = ",".join(f"'{tid}'" for tid, _ in pending)
                rows = self.psql(f"SELECT id FROM todos WHERE id IN ({ids})")
                now = time.time()
                found = set(rows or [])
                for tid, req in pending:
                    if tid in found:
                        req.done = now
            time.sleep(0.3)

    def todos_read(self):
        while not self.stop.is_set():
            req, body = self.send("todos-read", "GET", "/todos?limit=10")
            if req.status != 200 or not isinstance(body, list):
                req.failed = f"status {req.status}"
            self.record(req)
            self.pace()

    def psql(self, sql):
        """Rows of a one-column query, or None when PostgreSQL does not answer."""
        try:
            out = subprocess.run(
                ["psql", self.args.database_url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                capture_output=True, text=True, timeout=10,
            )
        except subprocess.TimeoutExpired:
            return None
        if out.returncode != 0:
            return None
        return [line for line in out.stdout.splitlines() if line]

    # ------------------------------------------------------------------- run ---
    def sums(self):
        """current_sum read on every node (None where it does not answer)."""
        out = []
        for i in range(len(self.nodes)):
            status, body = self.call("GET", "/abacus/sum", headers={"X-API-Key": self.args.api_key}, node=i)
            ok = status == 200 and isinstance(body, dict) and isinstance(body.get("current_sum"), int)
            out.append(body["current_sum"] if ok else None)
        return out

    def run(self):
        initial = self.sums()
        if None in initial or len(set(initial)) != 1:
            sys.exit(f"chaos-driver: the nodes do not agree on the sum before the load: {initial}")
        workers = [self.abacus] * 2 + [self.giftcodes] * 3 + [self.primes_submit] * 2
        workers += [self.todos_write] * 2 + [self.todos_read]
        pollers = [self.primes_poll, self.todos_poll]
        threads = [threading.Thread(target=f, daemon=True) for f in workers + pollers]
        for t in threads:
            t.start()
        self.started = time.time()
        while "end" not in read_events(self.args.events):
            if time.time() - self.started > self.args.max_seconds:
                print(f"chaos-driver: no 'end' event within {self.args.max_seconds}s", file=sys.stderr)
                break
            time.sleep(0.1)
        self.stop.set()
        # drain: abacus retries, job and row completions, within --drain seconds
        deadline = time.time() + self.args.drain
        while time.time() < deadline and (self.unfinished() or any(t.is_alive() for t in threads[: len(workers)])):
            time.sleep(0.2)
        self.drained.set()
        for t in threads:
            t.join(TIMEOUT + 1)
        return initial

    def unfinished(self):
        with self.lock:
            jobs = [r for _, r in self.primes.values()] + [r for _, r in self.todos.values()]
        return any(r.done is None and r.failed is None for r in jobs)


def check_primes(result, n):
    """Why result is not the first n primes, or None.

    >>> check_primes([2, 3, 5], 3) is None
    True
    >>> check_primes([2, 3], 3)
    'result has 2 numbers, wanted 3'
    >>> check_primes([2, 5, 3], 3)
    'result is not the ascending primes from 2'
    """
    if not isinstance(result, list) or len(result) != n:
        return f"result has {len(result) if isinstance(result, list) else 'no'} numbers, wanted {n}"
    if result[0] != 2 or any(b <= a for a, b in zip(result, result[1:])):
        return "result is not the ascending primes from 2"
    return None


def read_events(path):
    events = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    events[parts[0]] = float(parts[1])
    except FileNotFoundError:
        pass
    return events


def is_ok(req, ok_latency):
    if req.failed is not None or req.done is None:
        return False
    return req.done - req.sent <= ok_latency


def recovery(reqs, start, end, ok_latency):
    """Seconds from start until the first request after which every request sent before
    end is ok; None when the last request sent before end is not ok.

    >>> def req(sent, ok=True, took=0.1):
    ...     r = Request("x")
    ...     r.sent, r.done, r.failed = sent, sent + took, None if ok else "status 503"
    ...     return r
    >>> reqs = [req(0), req(1, False), req(2, False), req(3), req(4)]
    >>> recovery(reqs, 0, 10, 5.0)
    3.0
    >>> recovery(reqs, 3, 10, 5.0)
    0.0
    >>> recovery(reqs + [req(5, False)], 0, 10, 5.0) is None
    True
    >>> recovery(reqs + [req(4.5, took=15.0), req(6)], 0, 10, 5.0)  # answered, but too late
    6.0
    """
    window = sorted((r for r in reqs if start <= r.sent < end), key=lambda r: r.sent)
    last_bad = max((i for i, r in enumerate(window) if not is_ok(r, ok_latency)), default=-1)
    if last_bad == -1:
        return 0.0
    if last_bad == len(window) - 1:
        return None
    return max(0.0, float(window[last_bad + 1].sent - start))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", required=True, help="host:port,host:port,... of the API nodes")
    p.add_argument("--events", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--label", required=True, help="unique per window: todo titles start with it")
    p.add_argument("--codes", required=True, help="file of every gift code seen so far (appended)")
    p.add_argument("--token", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--ok-latency", type=float, default=5.0)
    p.add_argument("--drain", type=float, default=30.0)
    p.add_argument("--pause", type=float, default=0.02, help="seconds between a worker's requests")
    p.add_argument("--max-seconds", type=float, default=300.0)
    args = p.parse_args()

    d = Driver(args)
    initial = d.run()
    events = read_events(args.events)
    loaded_until = events.get("end", time.time())
    ok_latency = args.ok_latency
    by = {s: [r for r in d.requests if r.service == s] for s in SERVICES}
    for _, r in list(d.primes.values()) + list(d.todos.values()):
        if r.failed is None and r.done is None:
            r.failed = f"not done {args.drain:.0f}s after the load stopped"

    lines, problems = [], []
    # abacus: exact on every node
    final = d.sums()
    expected = initial[0] + d.abacus_acked
    off = [None if s is None else s - expected for s in final]
    abacus_lost = max((-o for o in off if o is not None and o < 0), default=0)
    abacus_doubled = max((o for o in off if o is not None and o > 0), default=0)
    lines.append(f"abacus     {d.abacus_acked} acknowledged, sum {initial[0]} -> {final} (expected {expected})")
    if None in final:
        problems.append(f"abacus: a node does not answer GET /abacus/sum: {final}")
    if any(o for o in off if o is not None):
        problems.append(f"abacus: sum off by {off} on the nodes")
    if d.abacus_unresolved:
        problems.append(f"abacus: {d.abacus_unresolved} increments never answered 200 with their key")

    # gift codes: unique across the run
    with open(args.codes, "a+") as f:
        f.seek(0)
        before = set(f.read().split())
        f.write("".join(c + "\n" for c in d.codes))
    codes_doubled = len(d.codes) - len(set(d.codes)) + len(before & set(d.codes))
    lines.append(f"giftcodes  {len(d.codes)} codes, {codes_doubled} duplicates")
    if codes_doubled:
        problems.append(f"giftcodes: {codes_doubled} duplicate codes")

    # Work the broker acknowledged before it lost its state is the broker's loss, counted
    # apart; everything acknowledged after it came back must be done. The broker dies
    # somewhere between "wipe" (the stop begins) and "inject" (it is gone), and nothing is
    # acknowledged while it is down: "inject" bounds what it acknowledged before its death.
    wiped = events.get("inject") if "wipe" in events else None

    def with_broker(r):
        return wiped is not None and r.answered is not None and r.answered < wiped

    # primes: every accepted job complete and right
    primes_broker = sum(1 for _, r in d.primes.values() if r.done is None and with_broker(r))
    primes_lost = sum(1 for _, r in d.primes.values() if r.done is None) - primes_broker
    primes_wrong = [r.failed for _, r in d.primes.values() if r.done is not None and r.failed]
    lines.append(f"primes     {len(d.primes)} accepted, {primes_lost} never complete, {len(primes_wrong)} wrong")
    if primes_broker:
        lines.append(f"           {primes_broker} acknowledged before the broker lost its state (the broker's loss)")
    if primes_lost:
        why = {r.failed for _, r in d.primes.values() if r.done is None and not with_broker(r)}
        ids = [rid for rid, (_, r) in d.primes.items() if r.done is None and not with_broker(r)]
        problems.append(f"primes: {primes_lost} accepted jobs never completed ({'; '.join(sorted(why))[:200]}; ids {', '.join(ids[:3])})")
    if primes_wrong:
        problems.append(f"primes: {len(primes_wrong)} wrong results ({primes_wrong[0]})")

    # todos: every 202'd id in PostgreSQL exactly once
    rows = d.psql(f"SELECT id || ' ' || title FROM todos WHERE title LIKE '{args.label}-%'")
    todos_lost = todos_doubled = 0
    if rows is None:
        problems.append("todos: PostgreSQL does not answer the final check")
    else:
        by_title = {}
        ids = set()
        for row in rows:
            tid, title = row.split(" ", 1)
            ids.add(tid)
            by_title[title] = by_title.get(title, 0) + 1
        todos_broker = sum(1 for tid, (_, r) in d.todos.items() if tid not in ids and with_broker(r))
        todos_lost = sum(1 for tid in d.todos if tid not in ids) - todos_broker
        todos_doubled = sum(c - 1 for c in by_title.values() if c > 1)
        lines.append(f"todos      {len(d.todos)} acknowledged, {len(rows)} rows, {todos_lost} missing, {todos_doubled} doubled")
        if todos_broker:
            lines.append(f"           {todos_broker} acknowledged before the broker lost its state (the broker's loss)")
        if todos_lost:
            lost_ids = [tid for tid, (_, r) in d.todos.items() if tid not in ids and not with_broker(r)]
            problems.append(f"todos: {todos_lost} acknowledged todos not in PostgreSQL (ids {', '.join(lost_ids[:3])})")
        if todos_doubled:
            problems.append(f"todos: {todos_doubled} todos stored more than once")

    # recovery per service
    def window(start, end):
        per = {s: recovery(by[s], start, end, ok_latency) for s in SERVICES}
        worst = None if None in per.values() else max(per.values())
        return worst, per

    failover = None
    start = d.started
    if "restart" in events:  # a killed process: the cluster carries on without it, then gets it back
        failover, per = window(events["inject"], events["restart"])
        lines.append("failover   " + fmt_per(per))
        start = events["restart"]
    elif "back" in events:  # a backend outage: measured from the backend being back
        start = events["back"]
    recovered, per = window(start, loaded_until)
    lines.append("recovery   " + fmt_per(per))

    total = len(d.requests)
    fivexx = sum(1 for r in d.requests if r.status is not None and r.status >= 500)
    unanswered = sum(1 for r in d.requests if r.status is None)
    slow = sum(1 for r in d.requests if r.failed is None and r.done is not None and r.done - r.sent > ok_latency)
    lines.append(f"requests   {total}, {fivexx} 5xx, {unanswered} unanswered, {slow} done later than {ok_latency:g}s")
    for s in SERVICES:
        counts = {}
        for r in by[s]:
            counts[r.status or "none"] = counts.get(r.status or "none", 0) + 1
        lines.append(f"  {s:<10} " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str)))
    summary = {
        "requests": total,
        "5xx": fivexx,
        "unanswered": unanswered,
        "lost": abacus_lost + primes_lost + todos_lost,
        "doubled": abacus_doubled + codes_doubled + todos_doubled,
        "failover": failover,
        "recovery": recovered,
        "problems": problems,
    }
    with open(args.out, "w") as f:
        json.dump(summary, f)
    print("\n".join(lines))
    for prob in problems:
        print(f"PROBLEM    {prob}")


def fmt_per(per):
    return ", ".join(f"{s} {'never' if v is None else f'{v:.1f}s'}" for s, v in per.items())


if __name__ == "__main__":
    main()
