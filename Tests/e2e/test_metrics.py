"""GET /metrics on the running server: valid Prometheus exposition text by promtool's own
checks (format and lint), counters that move between scrapes, and Server-Timing on answers."""

import re
import shutil
import subprocess

import httpx
import pytest

PROMTOOL = shutil.which("promtool")
SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(relay_url: str) -> str:
    # No Authorization: CHAT_METRICS_TOKEN is unset on the e2e server, and a client API key is never needed.
    r = httpx.get(f"{relay_url}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert re.search(r"gw;dur=\d+\.\d{3}", r.headers["server-timing"])
    return r.text


def value(text: str, name: str, **labels: str) -> float:
    """The sum over the series of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = SERIES.match(line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_accepts_the_metrics(relay_url, http):
    # Some traffic first, so every family has samples to check.
    http.get("/api/v1/health")
    http.get("/no/such/route")
    with http.stream("POST", "/api/v1/chat", json={"message": "[mock tokens=3]", "model": "gpt-4.1"}) as r:
        assert r.status_code == 200
        r.read()
    text = scrape(relay_url)
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # promtool prints lint problems (and exits 0 for some of them): there must be none.
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked.stdout + checked.stderr


def test_counters_increase_between_scrapes(relay_url, http):
    before = scrape(relay_url)
    assert http.get("/api/v1/models").status_code == 200
    assert http.get("/no/such/route").status_code == 404
    with http.stream("POST", "/api/v1/chat", json={"message": "[mock tokens=4]", "model": "gpt-4.1"}) as r:
        assert r.status_code == 200
        assert "server-timing" in r.headers
        r.read()
    after = scrape(relay_url)

    def grew(name, by=None, **labels):
        delta = value(after, name, **labels) - value(before, name, **labels)
        assert (delta == by) if by is not None else (delta > 0), f"{name}{labels}: {delta}"

    grew("chatrelay_http_requests_total", 1, route="/api/v1/models", method="GET", status="200")
    grew("chatrelay_http_requests_total", 1, route="unmatched", status="404")
    grew("chatrelay_http_requests_total", 1, route="/api/v1/chat", method="POST", status="200")
    grew("chatrelay_http_request_duration_seconds_count", 1, route="/api/v1/chat")
    grew("chatrelay_upstream_requests_total", 1, provider="openai", outcome="complete")
    grew("chatrelay_tokens_relayed_total", 4, provider="openai")
    grew("chatrelay_time_to_first_token_seconds_count", 1, provider="openai")
    grew("chatrelay_db_pool_wait_seconds_count")
    assert value(after, "chatrelay_build_info") == 1
    assert value(after, "process_resident_memory_bytes") > 0


def test_server_timing_on_errors(relay_url):
    r = httpx.get(f"{relay_url}/no/such/route", timeout=10)
    assert r.status_code == 404
    assert re.fullmatch(r"gw;dur=\d+\.\d{3}", r.headers["server-timing"])
    r = httpx.get(f"{relay_url}/api/v1/conversations", timeout=10)
    assert r.status_code == 401
    assert r.headers["server-timing"].startswith("gw;dur=")
