"""500 concurrent turns while one of a model's two deployments fails about half of its requests:
every turn ends with an answer or a clear error, none hangs, no stored message is left
`streaming`, and the failing deployment's share shows in /metrics."""

import asyncio
import json

import httpx
import pytest

from conftest import KEYS, start_relay

TURNS = 500


@pytest.fixture(scope="module")
def flaky_relay(workdir, mock_port):
    base = f"http://127.0.0.1:{mock_port}"
    models = workdir / "flaky-models.yaml"
    models.write_text(f"""
models:
  - name: flaky
    retry: {{backoff_base_ms: 20, backoff_max_ms: 100}}
    deployments:
      - {{id: fl-a, provider: openai, base_url: "{base}/v1", api_key_env: FLAKY_KEY, model: gpt-4.1, headers: {{X-Mock-Tag: fl-a}},
          breaker: {{consecutive_failures: 1000000, error_rate: 1}}}}
      - {{id: fl-b, provider: openai, base_url: "{base}/v1", api_key_env: FLAKY_KEY, model: gpt-4.1, headers: {{X-Mock-Tag: fl-b}}}}
""")
    proc, url = start_relay(workdir, mock_port, "flaky", {"CHAT_MODELS_FILE": str(models), "FLAKY_KEY": "k",
                                                          "CHAT_DB_POOL": "8"})
    yield url
    proc.stop()


async def one_turn(client: httpx.AsyncClient, url: str, i: int) -> dict:
    body = {"message": f"turn {i} [mock tokens=5 delay=5]", "model": "flaky"}
    async with client.stream("POST", f"{url}/api/v1/chat", json=body,
                             headers={"Authorization": f"Bearer {KEYS[0]}"}) as r:
        if r.status_code != 200:
            await r.aread()
            return {"status": r.status_code, "error": r.json()["error"]["type"]}
        events, event = [], None
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                events.append((event, json.loads(line[6:])))
        return {"status": 200, "events": events}


async def run_all(url: str) -> list:
    limits = httpx.Limits(max_connections=TURNS, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60)) as client:
        return await asyncio.gather(*(one_turn(client, url, i) for i in range(TURNS)), return_exceptions=True)


def test_500_turns_with_a_half_failing_deployment(flaky_relay, mock_port):
    mock = f"http://127.0.0.1:{mock_port}"
    # About half of A's requests fail: A gets roughly half of the first attempts.
    httpx.put(f"{mock}/faults/fl-a", json={"status": 500, "times": TURNS // 4}).raise_for_status()
    try:
        results = asyncio.run(asyncio.wait_for(run_all(flaky_relay), timeout=180))
    finally:
        httpx.delete(f"{mock}/faults/fl-a")
    assert not [r for r in results if isinstance(r, BaseException)], [r for r in results if isinstance(r, BaseException)][:3]
    answered = [r for r in results if r["status"] == 200 and r["events"] and r["events"][-1][0] == "done"]
    errors = [r for r in results if r not in answered]
    # Every turn ends, with an answer or a clear error; with one healthy deployment, all answer.
    for r in errors:
        assert r["status"] != 200 or r["events"][-1][0] == "error", r
    assert len(answered) == TURNS, f"{len(errors)} errors, e.g. {errors[:2]}"
    texts = {"".join(d["text"] for e, d in r["events"] if e == "token") for r in answered}
    assert texts == {"Hello from the mock upstream"}, "an answer was spliced or cut"
    failed_then_ok = [r for r in answered if any(a["outcome"] == "failed" for a in r["events"][-1][1]["attempts"])]
    assert failed_then_ok, "no turn met the failing deployment"

    h = {"Authorization": f"Bearer {KEYS[0]}"}
    ids = [r["events"][0][1]["conversation_id"] for r in answered]
    streaming = 0
    for cid in ids[:: max(1, len(ids) // 50)]:
        msgs = httpx.get(f"{flaky_relay}/api/v1/conversations/{cid}", headers=h).json()["messages"]
        streaming += sum(1 for m in msgs if m["status"] == "streaming")
    assert streaming == 0
    metrics = httpx.get(f"{flaky_relay}/metrics").text
    assert 'chatrelay_upstream_attempts_total{deployment="fl-a",outcome="failed"}' in metrics
