#!/usr/bin/env python3
"""Time from a resume request to its first replayed byte (docs/API.md, "Resuming a stream").

Against a running ChatRelay (URL, KEY) whose OpenAI-compatible upstream is the mock: starts a
slow answer on /api/v1/chat, reads its first tokens and drops the connection (the answer goes
on), then N times, interleaved: GET /api/v1/messages/{id}/stream with Last-Event-ID of the first
token (the answer in progress: followed in memory when it lands on the generating worker, else
read from PostgreSQL), and the same for a finished answer (always read from PostgreSQL), each time
measuring request sent → first byte of the first event, then closing. Optionally a second
instance's URL (same database) for the answer in progress generated on the first.
Usage: bench/resume-latency.py URL KEY [N] [OTHER_URL]
"""
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlparse


def conn(url):
    u = urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def start_answer(url, key, directives):
    c = conn(url)
    c.request("POST", "/api/v1/chat", body=json.dumps({"model": "gpt-4o-mini", "message": directives}),
              headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    r = c.getresponse()
    first_token_id, message_id = None, None
    while True:
        line = r.readline().decode()
        if line.startswith("id: "):
            last_id = line[4:].strip()
        if line.startswith("event: token"):
            first_token_id = last_id
            break
        if line.startswith("data: {") and '"message_id"' in line and message_id is None:
            message_id = json.loads(line[6:])["message_id"]
    c.close()  # the answer goes on without this client
    return message_id, first_token_id


def first_byte(url, key, message_id, last_id):
    c = conn(url)
    t0 = time.perf_counter()
    c.request("GET", f"/api/v1/messages/{message_id}/stream", headers={"Authorization": f"Bearer {key}", "Last-Event-ID": last_id})
    r = c.getresponse()
    assert r.status == 200, r.status
    b = r.read1(1) if hasattr(r, "read1") else r.read(1)
    t = time.perf_counter() - t0
    assert b
    c.close()
    return t * 1000


def summary(name, xs):
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    print(f"{name}: median {statistics.median(xs):.3f} ms, p90 {xs[int(len(xs) * 0.9)]:.3f} ms, p99 {p99:.3f} ms, max {xs[-1]:.3f} ms (n={len(xs)})")


def main():
    url, key = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    other = sys.argv[4] if len(sys.argv) > 4 else None
    live_id, live_last = start_answer(url, key, "[mock tokens=100000 delay=50]")
    done_id, done_last = start_answer(url, key, "[mock tokens=30]")
    time.sleep(1)  # the second answer ends and is stored
    live, done, remote = [], [], []
    for _ in range(n):
        live.append(first_byte(url, key, live_id, live_last))
        done.append(first_byte(url, key, done_id, done_last))
        if other:
            remote.append(first_byte(other, key, live_id, live_last))
    summary("answer in progress, same instance", live)
    summary("finished answer (read from PostgreSQL)", done)
    if other:
        summary("answer in progress, another instance (PostgreSQL)", remote)


if __name__ == "__main__":
    main()
