#!/usr/bin/env python3
"""Added first-token latency of a turn answered after one failover (docs/resilience.md).

Starts the release mock upstream and ChatRelay (bench/scenarios/lib.sh's core layout: relay on
CPU 0, mock and this client on CPU 1) with a catalog of two models: `direct` (deployment B only)
and `failover` (A then B, `routing: ordered`, A's breaker never opening). A is made to answer
HTTP 500 at once. Then, interleaved, N times each:
  - TTFT of a streamed /v1/chat/completions turn on `direct`  (relay + B)
  - TTFT of the same turn on `failover`                      (relay + A's 500 + failover + B)
  - the round trip of the same request sent straight to the mock as A (A's own time)
The gateway's part of a failover is failover − direct − A's round trip.
Usage: bench/failover-latency.py [N]   (build first: swift build -c release --scratch-path .build-bench)
"""
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".build-bench", "release")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
MOCK_PORT, RELAY_PORT = 19111, 19112
BODY = lambda model: json.dumps({"model": model, "stream": True,
                                 "messages": [{"role": "user", "content": "hi [mock tokens=3]"}]})


def wait_http(port, path, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not answer")


def ttft(conn, path, body, headers):
    """Seconds from sending the request to the first content token (or to the full error body)."""
    t0 = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse()
    if r.status != 200:
        r.read()
        return time.perf_counter() - t0, r.status
    first = None
    while True:
        line = r.readline()
        if not line:
            break
        if first is None and line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line:
            first = time.perf_counter() - t0
    return first, 200


def main():
    tmp = tempfile.mkdtemp(prefix="bench-failover-")
    os.chmod(tmp, 0o711)
    base = f"http://127.0.0.1:{MOCK_PORT}/v1"
    never = "breaker: {consecutive_failures: 1000000, min_requests: 1000000}"
    models = os.path.join(tmp, "models.yaml")
    with open(models, "w") as f:
        f.write(f"""models:
  - name: direct
    deployments: [{{id: b-only, provider: openai, base_url: "{base}", api_key_env: K, model: gpt-4.1, headers: {{X-Mock-Tag: fb}}}}]
  - name: failover
    routing: ordered
    deployments:
      - {{id: a, provider: openai, base_url: "{base}", api_key_env: K, model: gpt-4.1, headers: {{X-Mock-Tag: fa}}, {never}}}
      - {{id: b, provider: openai, base_url: "{base}", api_key_env: K, model: gpt-4.1, headers: {{X-Mock-Tag: fb}}}}
""")
    procs = []
    try:
        procs.append(subprocess.Popen(["taskset", "-c", "1", f"{BIN}/mock-upstream", "--port", str(MOCK_PORT)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        env = dict(os.environ, PORT=str(RELAY_PORT), HOST="127.0.0.1", CHAT_WORKERS="1", CHAT_API_KEYS="bench-key",
                   CHAT_DATA_DIR=os.path.join(tmp, "data"), CHAT_MODELS_FILE=models, K="k", LOG_LEVEL="warn")
        env.pop("DATABASE_URL", None)
        procs.append(subprocess.Popen(["taskset", "-c", "0", f"{BIN}/chatrelay"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(MOCK_PORT, "/health")
        wait_http(RELAY_PORT, "/api/v1/health")
        fault = http.client.HTTPConnection("127.0.0.1", MOCK_PORT)
        fault.request("PUT", "/faults/fa", body=json.dumps({"status": 500}), headers={"Content-Type": "application/json"})
        assert fault.getresponse().status == 204
        os.sched_setaffinity(0, {1})
        relay = http.client.HTTPConnection("127.0.0.1", RELAY_PORT)
        mock = http.client.HTTPConnection("127.0.0.1", MOCK_PORT)
        auth = {"Authorization": "Bearer bench-key", "Content-Type": "application/json"}
        as_a = {"Authorization": "Bearer k", "Content-Type": "application/json", "X-Mock-Tag": "fa"}
        direct, failover, a_rtt = [], [], []
        for i in range(N + 20):
            d, s1 = ttft(relay, "/v1/chat/completions", BODY("direct"), auth)
            f, s2 = ttft(relay, "/v1/chat/completions", BODY("failover"), auth)
            a, s3 = ttft(mock, "/v1/chat/completions", BODY("gpt-4.1"), as_a)
            assert s1 == 200 and s2 == 200 and s3 == 500, (s1, s2, s3)
            if i >= 20:  # warm-up
                direct.append(d * 1e3)
                failover.append(f * 1e3)
                a_rtt.append(a * 1e3)

        def q(xs, p):
            return statistics.quantiles(xs, n=100)[p - 1]
        md, mf, ma = statistics.median(direct), statistics.median(failover), statistics.median(a_rtt)
        print(f"N={N} sequential turns each, /v1/chat/completions, TTFT in ms (median / p90)")
        print(f"  direct (B only)          {md:.3f} / {q(direct, 90):.3f}")
        print(f"  failover (A 500, then B) {mf:.3f} / {q(failover, 90):.3f}")
        print(f"  A's own 500, from here   {ma:.3f} / {q(a_rtt, 90):.3f}")
        print(f"  gateway's part of the failover: {mf - md - ma:.3f} ms (median failover - direct - A)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
