"""Keys with limits, usage and cost, on THREE chatrelay instances sharing ONE PostgreSQL behind the
shipped nginx config: each limit refuses with its status, headers and body; the usage ledger
bills what was really generated (a cancelled answer's tokens, an estimate when the provider sent
no usage) at the catalog's prices exactly; a revoked key stops on another instance within a
second; and a 60-requests-a-minute key gets 60 of 300 requests spread over the instances."""

import json
import os
import re
import threading
import time
from decimal import Decimal

import httpx
import pytest

from deploy_support import nginx_binary
from stacks import instances, shared_database, start_nginx

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed (scripts/install-deps.sh --test)")

ADMIN = "admin-key-e2e-limits-0123456789"
PRICE_IN, PRICE_OUT = Decimal("0.15"), Decimal("0.6")
COMPAT_IN, COMPAT_OUT = Decimal("1.25"), Decimal("2.5")
MILLION = Decimal(1_000_000)

CATALOG = """
models:
  - name: priced
    deployments:
      - id: priced-openai
        provider: openai
        base_url: http://127.0.0.1:{port}/v1
        api_key_env: OPENAI_API_KEY
        model: gpt-4o-mini
        price: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}
  - name: local
    deployments:
      - id: local-compat
        provider: openai-compatible
        base_url: http://127.0.0.1:{port}/compat/v1
        model: local-model
        price: {{input_per_mtok: 1.25, output_per_mtok: 2.5}}
  - name: capped
    routing: ordered
    deployments:
      - id: capped-small
        provider: openai
        base_url: http://127.0.0.1:{port}/v1
        api_key_env: OPENAI_API_KEY
        model: gpt-4o-mini
        rpm: 2
        headers: {{X-Mock-Tag: capped-small}}
      - id: capped-big
        provider: openai
        base_url: http://127.0.0.1:{port}/v1
        api_key_env: OPENAI_API_KEY
        model: gpt-4o-mini
        headers: {{X-Mock-Tag: capped-big}}
  - name: token-capped
    routing: ordered
    deployments:
      - id: tcapped-small
        provider: openai
        base_url: http://127.0.0.1:{port}/v1
        api_key_env: OPENAI_API_KEY
        model: gpt-4o-mini
        tpm: 10
        headers: {{X-Mock-Tag: tcapped-small}}
      - id: tcapped-big
        provider: openai
        base_url: http://127.0.0.1:{port}/v1
        api_key_env: OPENAI_API_KEY
        model: gpt-4o-mini
        headers: {{X-Mock-Tag: tcapped-big}}
"""


class Stack:
    def __init__(self, url, instances, mock):
        self.url = url
        self.instances = instances  # [url, url, url]
        self.mock = mock


@pytest.fixture(scope="module")
def stack(workdir, mock_port, request):
    root, pg = shared_database(workdir, "limits-stack-", request)
    models = root / "models.yaml"
    models.write_text(CATALOG.format(port=mock_port))
    os.chmod(models, 0o644)
    env = {"DATABASE_URL": pg.conninfo, "CHAT_ADMIN_KEYS": ADMIN, "CHAT_MODELS_FILE": str(models), "CHAT_WORKERS": "2"}
    urls = [url for _, url in instances(workdir, mock_port, ["limits-a", "limits-b", "limits-c"], env, request)]
    return Stack(start_nginx(root, urls, request), urls, f"http://127.0.0.1:{mock_port}")


def create_key(base: str, **limits) -> tuple[str, str]:
    body = {"name": f"t-{time.monotonic_ns()}", **limits}
    r = httpx.post(f"{base}/admin/v1/keys", json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["key"]["id"], r.json()["secret"]


def completion(base: str, secret: str, content: str, model="priced", **extra) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def native(base: str, secret: str, content: str, model="priced") -> httpx.Response:
    body = {"model": model, "message": content}
    return httpx.post(f"{base}/api/v1/chat", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def usage_when(base: str, secret: str, ready, timeout=5.0) -> dict:
    """GET /api/v1/usage until `ready(totals)` (the other workers flush within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{base}/api/v1/usage", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        if ready(body["totals"]) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def assert_limited(r: httpx.Response, kind: str, limit: int, openai: bool):
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert f'"{kind}";q={limit};w=60' in r.headers["ratelimit-policy"]
    assert re.search(rf'"{kind}";r=0;t=\d+', r.headers["ratelimit"]), r.headers["ratelimit"]
    if openai:
        assert r.headers[f"x-ratelimit-limit-{kind}"] == str(limit)
        assert r.headers[f"x-ratelimit-remaining-{kind}"] == "0"
        assert re.fullmatch(r"\d+ms|\d+s|\d+m\d+s", r.headers[f"x-ratelimit-reset-{kind}"])
        err = r.json()["error"]
        assert err["type"] == kind and err["code"] == "rate_limit_exceeded" and str(limit) in err["message"]
    else:
        assert "x-ratelimit-limit-requests" not in r.headers
        assert r.json()["error"]["type"] == "rate_limited"


def test_requests_per_minute_refused_with_headers_on_both_surfaces(stack):
    a = stack.instances[0]
    _, secret = create_key(a, rpm=2)
    for _ in range(2):
        ok = completion(a, secret, "[mock tokens=2]")
        assert ok.status_code == 200 and ok.headers["x-ratelimit-limit-requests"] == "2"
    assert_limited(completion(a, secret, "[mock tokens=2]"), "requests", 2, openai=True)

    _, native_secret = create_key(a, rpm=1)
    assert native(a, native_secret, "[mock tokens=2]").status_code == 200
    refused = native(a, native_secret, "[mock tokens=2]")
    assert_limited(refused, "requests", 1, openai=False)
    # The refused turn stored nothing: one conversation, one answer.
    convs = httpx.get(f"{a}/api/v1/conversations", headers={"Authorization": f"Bearer {native_secret}"}).json()["conversations"]
    assert len(convs) == 1 and convs[0]["message_count"] == 2


def test_tokens_per_minute(stack):
    a = stack.instances[0]
    _, secret = create_key(a, tpm=20)
    first = completion(a, secret, "[mock tokens=30]")
    assert first.status_code == 200 and first.json()["usage"]["completion_tokens"] == 30
    assert_limited(completion(a, secret, "[mock tokens=2]"), "tokens", 20, openai=True)


def test_concurrent_streams_across_instances(stack):
    a, b = stack.instances[0], stack.instances[1]
    _, secret = create_key(a, max_streams=1)
    started = threading.Event()
    done = {}

    def slow_stream():
        body = {"model": "priced", "stream": True, "messages": [{"role": "user", "content": "[mock tokens=15 delay=100]"}]}
        with httpx.stream("POST", f"{a}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as r:
            done["status"] = r.status_code
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    started.set()
            done["ended"] = True

    t = threading.Thread(target=slow_stream)
    t.start()
    assert started.wait(10)
    refused = completion(b, secret, "[mock tokens=2]")
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "streams", refused.text
    assert int(refused.headers["retry-after"]) >= 1
    t.join(30)
    assert done == {"status": 200, "ended": True}
    # The slot goes back to the database within a second of the stream's end; then b may stream.
    deadline = time.monotonic() + 3
    while (r := completion(b, secret, "[mock tokens=2]")).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.status_code == 200, r.text


def test_budget_lets_the_answer_finish_then_refuses_everywhere(stack):
    a, b = stack.instances[0], stack.instances[1]
    # One answer of 30 tokens costs at least 30 × $0.6/M = $0.000018: well over this budget.
    _, secret = create_key(a, budget_usd="0.00001", budget_period="day")
    body = {"model": "priced", "stream": True, "messages": [{"role": "user", "content": "[mock tokens=30]"}]}
    pieces, finish = 0, None
    with httpx.stream("POST", f"{a}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                for c in json.loads(line[6:]).get("choices", []):
                    pieces += 1 if c["delta"].get("content") else 0
                    finish = c.get("finish_reason") or finish
    assert (pieces, finish) == (30, "stop")  # the whole answer arrived, budget or not
    refused = completion(a, secret, "[mock tokens=2]")
    assert refused.status_code == 429, refused.text
    err = refused.json()["error"]
    assert err["type"] == "insufficient_quota" and err["code"] == "insufficient_quota"
    assert int(refused.headers["retry-after"]) >= 1
    # Another instance learns the spend from the database within its sync interval.
    deadline = time.monotonic() + 3
    while (rb := completion(b, secret, "[mock tokens=2]")).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rb.status_code == 429 and rb.json()["error"]["code"] == "insufficient_quota"


def test_a_cancelled_turn_is_billed_for_the_tokens_generated(stack):
    a = stack.instances[0]
    _, secret = create_key(a)
    body = {"model": "priced", "stream": True, "messages": [{"role": "user", "content": "[mock tokens=50 delay=400]"}]}
    got = 0
    with httpx.stream("POST", f"{a}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as r:
        for line in r.iter_lines():
            if line.startswith("data: {") and any(c["delta"].get("content") for c in json.loads(line[6:]).get("choices", [])):
                got += 1
                if got == 5:
                    break  # leaving the block closes the connection: the turn is cancelled
    u = usage_when(a, secret, lambda t: t["requests"] == 1)
    row = u["data"][0]
    assert row["model"] == "priced" and row["requests"] == 1
    assert row["completion_tokens"] == 5, row
    assert row["estimated_requests"] == 1  # the provider never sent its usage
    assert row["prompt_tokens"] > 0
    expected = (row["prompt_tokens"] * PRICE_IN + 5 * PRICE_OUT) / MILLION
    assert Decimal(row["cost_usd"]) == expected


def test_missing_provider_usage_is_estimated_and_flagged_and_priced_exactly(stack):
    a = stack.instances[0]
    _, secret = create_key(a)
    r = completion(a, secret, "[mock tokens=7 quirk=no-usage]", model="local", stream=True)
    assert r.status_code == 200
    u = usage_when(a, secret, lambda t: t["requests"] == 1)
    row = u["data"][0]
    assert row["model"] == "local" and row["completion_tokens"] == 7 and row["estimated_requests"] == 1
    assert Decimal(row["cost_usd"]) == (row["prompt_tokens"] * COMPAT_IN + 7 * COMPAT_OUT) / MILLION


def test_provider_usage_is_billed_at_the_catalog_price(stack):
    a = stack.instances[0]
    key_id, secret = create_key(a)
    answers = [completion(a, secret, f"[mock tokens={n}]") for n in (12, 3)]
    assert all(x.status_code == 200 for x in answers)
    prompt = sum(x.json()["usage"]["prompt_tokens"] for x in answers)
    out = sum(x.json()["usage"]["completion_tokens"] for x in answers)
    u = usage_when(a, secret, lambda t: t["requests"] == 2)
    t = u["totals"]
    assert (t["requests"], t["prompt_tokens"], t["completion_tokens"], t["estimated_requests"]) == (2, prompt, out, 0)
    assert Decimal(t["cost_usd"]) == (prompt * PRICE_IN + out * PRICE_OUT) / MILLION
    # The admin view shows the same under the key's id and name.
    admin = httpx.get(f"{a}/admin/v1/usage", params={"key": key_id}, headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert [(d["key_id"], d["requests"], d["cost_usd"]) for d in admin["data"]] == [(key_id, 2, t["cost_usd"])]
    metrics = httpx.get(f"{a}/metrics").text
    assert re.search(r'^chatrelay_usage_cost_usd_total\{model="priced"\} [0-9.]+$', metrics, re.M)
    assert re.search(r'^chatrelay_usage_tokens_total\{model="priced",type="completion"\} \d+$', metrics, re.M)


def test_revoked_key_is_refused_on_another_instance_within_a_second(stack):
    a, b, c = stack.instances
    key_id, secret = create_key(a)
    # Created on a, usable at once on b (an unknown key is looked up once more before refusal).
    assert completion(b, secret, "[mock tokens=1]").status_code == 200
    revoked = httpx.post(f"{a}/admin/v1/keys/{key_id}/revoke", headers={"Authorization": f"Bearer {ADMIN}"})
    assert revoked.status_code == 200
    t0 = time.monotonic()
    for url in (b, c):
        while (r := completion(url, secret, "[mock tokens=1]")).status_code == 200:
            assert time.monotonic() - t0 < 1.0, f"{url} still accepts a revoked key"
            time.sleep(0.02)
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    assert time.monotonic() - t0 < 1.0


def test_a_deployment_at_its_rpm_is_skipped_for_the_next(stack):
    a = stack.instances[0]
    httpx.delete(f"{stack.mock}/requests")
    _, secret = create_key(a)
    for _ in range(3):
        assert completion(a, secret, "[mock tokens=1]", model="capped").status_code == 200
    small = httpx.get(f"{stack.mock}/requests", params={"tag": "capped-small"}).json()
    big = httpx.get(f"{stack.mock}/requests", params={"tag": "capped-big"}).json()
    assert (len(small), len(big)) == (2, 1)
    # The other instances share the deployment's 2 a minute: they go to the big one.
    for url in stack.instances[1:]:
        assert completion(url, secret, "[mock tokens=1]", model="capped").status_code == 200
    small = httpx.get(f"{stack.mock}/requests", params={"tag": "capped-small"}).json()
    assert len(small) == 2


def test_a_deployment_past_its_tpm_is_skipped_on_every_instance(stack):
    _, secret = create_key(stack.instances[0])
    # The first answer (20 tokens) passes the small deployment's 10 a minute: it finishes there.
    assert completion(stack.instances[0], secret, "[mock tokens=20]", model="token-capped").status_code == 200
    for url in stack.instances:
        assert completion(url, secret, "[mock tokens=1]", model="token-capped").status_code == 200
    small = httpx.get(f"{stack.mock}/requests", params={"tag": "tcapped-small"}).json()
    big = httpx.get(f"{stack.mock}/requests", params={"tag": "tcapped-big"}).json()
    assert (len(small), len(big)) == (1, 3)


def test_sixty_a_minute_holds_across_three_instances(stack):
    """300 requests spread over 50 s through nginx to three instances (two workers each): 60 (±2)
    are accepted, because every instance claims its share from PostgreSQL."""
    _, secret = create_key(stack.instances[0], rpm=60)
    statuses = []
    lock = threading.Lock()

    def one():
        try:
            s = completion(stack.url, secret, "[mock tokens=1]").status_code
        except httpx.HTTPError:
            s = -1
        with lock:
            statuses.append(s)

    threads = []
    start = time.monotonic()
    for i in range(300):
        time.sleep(max(0.0, start + i / 6 - time.monotonic()))
        t = threading.Thread(target=one)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(30)
    accepted = statuses.count(200)
    print(f"\n60 a minute, 300 requests over 50 s via nginx to 3 instances: {accepted} accepted")
    assert statuses.count(200) + statuses.count(429) == 300, sorted(set(statuses))
    assert 58 <= accepted <= 62, accepted


def test_every_run_of_a_multi_model_turn_counts_against_the_key(stack):
    """A turn of several models is one request per model to the key's limits, and each run is
    billed on its own; a turn refused midway gives back what its earlier runs took."""
    a = stack.instances[0]
    _, secret = create_key(a, rpm=3)
    auth = {"Authorization": f"Bearer {secret}"}
    turn = httpx.post(f"{a}/api/v1/chat", json={"message": "[mock tokens=3]", "models": ["priced", "local"]},
                      headers=auth, timeout=30)
    assert turn.status_code == 200 and "event: end" in turn.text, turn.text
    # Admitted once per model, the turn still carries one set of headers: the last admission's.
    limits = turn.headers.get_list("ratelimit")
    assert len(limits) == 1 and re.fullmatch(r'"requests";r=1;t=\d+', limits[0]), turn.headers
    assert native(a, secret, "[mock tokens=2]").status_code == 200  # the third request of the minute
    assert_limited(native(a, secret, "[mock tokens=2]"), "requests", 3, openai=False)
    body = usage_when(a, secret, lambda t: t["requests"] >= 3)
    assert body["totals"]["requests"] == 3
    assert {row["model"] for row in body["data"]} == {"priced", "local"}, body

    # One stream at a time: a two-model turn cannot have its second slot and is refused whole;
    # its first slot goes back, so a single-model turn is admitted (on whichever worker it lands:
    # the other worker sees the slot free once the release reaches the database).
    _, one = create_key(a, max_streams=1)
    refused = httpx.post(f"{a}/api/v1/chat", json={"message": "[mock tokens=2]", "models": ["priced", "local"]},
                         headers={"Authorization": f"Bearer {one}"}, timeout=30)
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limited", refused.text
    deadline = time.monotonic() + 3
    while (status := native(a, one, "[mock tokens=2]").status_code) == 429 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 200
