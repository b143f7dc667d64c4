"""The response cache is shared by instances: an answer cached through one ChatRelay is a hit on
another sharing its PostgreSQL (with no upstream call: the mock's request log says so), on either
API surface, and each instance's coalescing and memory copy keep to themselves."""

import json
import uuid

import httpx
import pytest

from conftest import KEYS
from stacks import instances, shared_database

AUTH = {"Authorization": f"Bearer {KEYS[0]}"}


@pytest.fixture(scope="module")
def pair(workdir, mock_port, request):
    _, pg = shared_database(workdir, "cache-pair-", request)
    (_, a), (_, b) = instances(workdir, mock_port, ["cache-a", "cache-b"], {"DATABASE_URL": pg.conninfo, "CHAT_WORKERS": "2"}, request)
    return a, b


def mock_calls(mock_port: int, marker: str) -> int:
    log = httpx.get(f"http://127.0.0.1:{mock_port}/requests", timeout=10).json()
    return sum(1 for r in log if marker in json.dumps(r.get("body", {})))


def native(base: str, message: str, **extra) -> list[tuple[str, dict]]:
    body = {"message": message, "model": "gpt-4o-mini", "cache": {"ttl_s": 60}, **extra}
    out, event = [], None
    with httpx.stream("POST", f"{base}/api/v1/chat", json=body, headers=AUTH, timeout=30) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                out.append((event, json.loads(line[6:])))
    return out


def test_an_answer_cached_on_one_instance_is_a_hit_on_the_other(pair, mock_port):
    a, b = pair
    marker = f"cache-{uuid.uuid4()}"
    message = f"[mock tokens=6] {marker}"
    first = native(a, message)
    assert not first[-1][1].get("cached") and mock_calls(mock_port, marker) == 1
    second = native(b, message)
    done = second[-1]
    assert done[0] == "done" and done[1]["cached"] is True, second
    assert "".join(d["text"] for e, d in second if e == "token") == "".join(d["text"] for e, d in first if e == "token")
    assert mock_calls(mock_port, marker) == 1
    # The OpenAI surface on the other instance asks with Cache-Control and is served the same entry.
    r = httpx.post(f"{b}/v1/chat/completions", headers={**AUTH, "Cache-Control": "max-age=60"}, timeout=30,
                   json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": message}]})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "".join(d["text"] for e, d in first if e == "token")
    assert mock_calls(mock_port, marker) == 1
