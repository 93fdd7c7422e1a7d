#!/usr/bin/env python3
"""Opens idle keep-alive connections to a running floodgate node and reports what they cost
it in resident memory (VmRSS in /proc/PID/status). Driven by scripts/idle-memory, which starts
the node; see there for the steps and the settings.

    idle-conns.py PID PORT CONNS SETTLE_SECONDS PATH [RATE]

RATE: requests per second while sending the one GET per connection (0: as fast as the
client goes).
"""

import resource
import socket
import sys
import time


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"idle-conns: no {field} for pid {pid}")


def read_answer(s):
    """Reads one response with a Content-Length; returns its status line."""
    got = b""
    while True:
        end = got.find(b"\r\n\r\n")
        if end >= 0:
            length = 0
            for line in got[:end].split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if len(got) >= end + 4 + length:
                return got.split(b"\r\n", 1)[0].decode()
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit(f"idle-conns: closed before a whole answer: {got[:200]!r}")
        got += chunk


def main():
    pid, port, conns, settle, path = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        int(sys.argv[3]),
        float(sys.argv[4]),
        sys.argv[5],
    )
    rate = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, conns + 1024) if hard != resource.RLIM_INFINITY else conns + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < conns + 64:
        raise SystemExit(f"idle-conns: open-file limit {hard} is too low for {conns} connections")
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()

    # Warm-up on a few connections: routes, caches and the allocator's arenas in place.
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port)) as s:
            for _ in range(50):
                s.sendall(request)
                read_answer(s)
    time.sleep(settle)
    base = rss_kb(pid)
    print(f"before: RSS {base} kB")

    def report(what, n):
        now = rss_kb(pid)
        per = (now - base) * 1024 / n
        print(f"{what}: RSS {now} kB, +{now - base} kB, {per:,.0f} B per connection")

    held = []
    for _ in range(conns):
        held.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(settle)
    report(f"{conns} connections open, nothing sent, after {settle:g} s", conns)

    started = time.monotonic()
    for i, s in enumerate(held):
        if rate > 0:
            ahead = started + i / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        s.sendall(request)
        status = read_answer(s)
        if not status.startswith("HTTP/1.1 200"):
            raise SystemExit(f"idle-conns: {status}")
    took = time.monotonic() - started
    report(f"one GET {path} answered on each (in {took:.1f} s, {conns / took:,.0f}/s)", conns)
    time.sleep(settle)
    report(f"idle {settle:g} s after the answers", conns)
    print(f"peak: VmHWM {rss_kb(pid, 'VmHWM')} kB")

    # Each connection is still served (every 100th asked again).
    for s in held[:: max(1, conns // 100)]:
        s.sendall(request)
        status = read_answer(s)
        if not status.startswith("HTTP/1.1 200"):
            raise SystemExit(f"idle-conns: asked again: {status}")
    print("asked again on every 100th connection: all answered 200")
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
