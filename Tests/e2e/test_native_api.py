"""ChatRelay's own API over plain HTTP: /api/v1/chat SSE framing, conversations, models, health,
CORS and request ids."""

import json

import httpx
import pytest

from conftest import CORS_ORIGIN, KEYS


def sse_events(lines):
    """Parses SSE lines into (id, event, data) tuples; comments (": ping") are skipped."""
    events, current = [], {}
    for line in lines:
        if line == "":
            if current:
                events.append((current.get("id"), current.get("event"), current.get("data")))
            current = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(": ")
            assert name in ("id", "event", "data"), line
            assert name not in current, f"repeated {name}"
            current[name] = value
    assert not current, "stream ended inside an event"
    return events


def chat(http, body):
    with http.stream("POST", "/api/v1/chat", json=body) as r:
        lines = list(r.iter_lines())
        return r, sse_events(lines)


def test_chat_sse_framing(http):
    r, events = chat(http, {"message": "Hello [mock tokens=4]", "model": "gpt-5.4-mini", "system": "You are terse."})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-accel-buffering"] == "no"
    kinds = [e[1] for e in events]
    assert kinds == ["start", "token", "token", "token", "token", "done"]
    start = json.loads(events[0][2])
    # Every id is <message id>:<characters of the answer so far>, never going back.
    assert all(e[0].startswith(start["message_id"] + ":") for e in events)
    positions = [int(e[0].rsplit(":", 1)[1]) for e in events]
    assert positions == sorted(positions) and positions[0] == 0
    assert positions[-1] == sum(len(json.loads(e[2])["text"]) for e in events if e[1] == "token")
    assert start["model"] == "gpt-5.4-mini" and start["provider"] == "openai"
    assert "".join(json.loads(e[2])["text"] for e in events if e[1] == "token") == "Hello from the mock"
    done = json.loads(events[-1][2])
    assert done["message_id"] == start["message_id"]
    assert done["finish_reason"] == "stop"
    assert set(done["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert isinstance(done["latency_ms"], int) and isinstance(done["ttft_ms"], int)

    conv = http.get(f"/api/v1/conversations/{start['conversation_id']}").json()
    assert conv["system"] == "You are terse."
    assert [(m["role"], m["status"]) for m in conv["messages"]] == [("user", "complete"), ("assistant", "complete")]
    assistant = conv["messages"][1]
    assert assistant["id"] == start["message_id"]
    assert assistant["content"] == "Hello from the mock"
    assert assistant["finish_reason"] == "stop" and assistant["provider"] == "openai"

    # A follow-up turn carries on the same conversation.
    _, events = chat(http, {"message": "More [mock tokens=2]", "model": "claude-sonnet-4-6", "conversation_id": start["conversation_id"]})
    assert [e[1] for e in events] == ["start", "token", "token", "done"]
    assert json.loads(events[0][2])["conversation_id"] == start["conversation_id"]
    conv = http.get(f"/api/v1/conversations/{start['conversation_id']}").json()
    assert len(conv["messages"]) == 4


def test_chat_midstream_error_event(http):
    _, events = chat(http, {"message": "x [mock tokens=5 fault=midstream after=2]", "model": "gemini-2.5-flash"})
    assert [e[1] for e in events] == ["start", "token", "token", "error"]
    err = json.loads(events[-1][2])["error"]
    assert err["type"] and err["message"]
    conv_id = json.loads(events[0][2])["conversation_id"]
    stored = http.get(f"/api/v1/conversations/{conv_id}").json()["messages"][-1]
    assert stored["status"] == "error" and stored["content"] == "Hello from"


def test_chat_upstream_429_before_stream(http):
    r = http.post("/api/v1/chat", json={"message": "x [mock fault=429]", "model": "claude-sonnet-4-6"})
    assert r.status_code == 429
    assert r.headers["retry-after"]
    assert r.json()["error"]["type"] == "rate_limited"


@pytest.mark.parametrize("body,param", [
    ({"model": "gpt-5.4-mini"}, "message"),
    ({"message": "hi", "model": "nope"}, "model"),
    ({"message": "hi", "conversation_id": "not-a-uuid"}, "conversation_id"),
    ({"message": "hi", "temperature": 5}, "temperature"),
])
def test_chat_invalid_request(http, body, param):
    r = http.post("/api/v1/chat", json=body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request" and err["param"] == param


def test_chat_errors(http, relay_url):
    assert http.post("/api/v1/chat", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert http.post("/api/v1/chat", content=b"hi", headers={"Content-Type": "text/plain"}).status_code == 415
    r = httpx.post(f"{relay_url}/api/v1/chat", json={"message": "hi"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    r = http.post("/api/v1/chat", json={"message": "hi", "conversation_id": "00000000-0000-4000-8000-000000000000"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
    r = http.put("/api/v1/chat", json={})
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    assert http.get("/api/v1/nothing-here").status_code == 404


def test_conversations_pagination_and_delete(relay_url):
    # A key of its own view: k2 only sees what k2 created.
    with httpx.Client(base_url=relay_url, headers={"Authorization": f"Bearer {KEYS[1]}"}, timeout=30) as h:
        before = {c["id"] for c in h.get("/api/v1/conversations", params={"limit": 100}).json()["conversations"]}
        created = []
        for i in range(3):
            _, events = chat(h, {"message": f"conversation {i} [mock tokens=1]", "model": "mock-echo"})
            created.append(json.loads(events[0][2])["conversation_id"])
        seen, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = h.get("/api/v1/conversations", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["conversations"]) <= 2
            seen += [c["id"] for c in body["conversations"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen))
        new = [c for c in seen if c not in before]
        assert new == list(reversed(created)), "newest first"
        first = h.get("/api/v1/conversations", params={"limit": 1}).json()["conversations"][0]
        assert set(first) == {"id", "title", "model", "created_at", "updated_at", "message_count"}
        assert first["message_count"] == 2

        assert h.get("/api/v1/conversations", params={"limit": 0}).status_code == 400
        assert h.get("/api/v1/conversations", params={"cursor": "garbage"}).status_code == 400

        # Another key cannot see or delete it.
        other = {"Authorization": f"Bearer {KEYS[0]}"}
        assert httpx.get(f"{relay_url}/api/v1/conversations/{created[0]}", headers=other).status_code == 404
        assert httpx.delete(f"{relay_url}/api/v1/conversations/{created[0]}", headers=other).status_code == 404

        assert h.delete(f"/api/v1/conversations/{created[0]}").status_code == 204
        assert h.get(f"/api/v1/conversations/{created[0]}").status_code == 404
        assert h.delete(f"/api/v1/conversations/{created[0]}").status_code == 404


def test_models_and_health(http, relay_url):
    models = http.get("/api/v1/models").json()
    ids = {m["id"]: m["provider"] for m in models["models"]}
    assert ids["gpt-5.4-mini"] == "openai" and ids["gemini-2.5-flash"] == "gemini" and ids["mock-echo"] == "mock"
    assert models["providers"] == {"openai": True, "anthropic": True, "gemini": True, "mock": True}
    health = httpx.get(f"{relay_url}/api/v1/health")  # no key needed
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["database"] == "ok" and isinstance(body["uptime_s"], int)


def test_request_id(http):
    r = http.get("/api/v1/models", headers={"X-Request-Id": "e2e-req-42"})
    assert r.headers["x-request-id"] == "e2e-req-42"
    r = http.get("/api/v1/models", headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["x-request-id"] and r.headers["x-request-id"] != "bad id with spaces"
    assert http.get("/api/v1/nothing").headers["x-request-id"]
    with http.stream("POST", "/api/v1/chat", json={"message": "hi", "model": "mock-echo"},
                     headers={"X-Request-Id": "stream-id-1"}) as r:
        assert r.headers["x-request-id"] == "stream-id-1"
        r.read()


def test_cors_preflight_and_headers(relay_url):
    r = httpx.options(f"{relay_url}/api/v1/chat", headers={
        "Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    assert r.headers["vary"] == "Origin"

    r = httpx.options(f"{relay_url}/api/v1/chat", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers

    r = httpx.get(f"{relay_url}/api/v1/models", headers={"Origin": CORS_ORIGIN, "Authorization": f"Bearer {KEYS[0]}"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "X-Conversation-Id" in r.headers["access-control-expose-headers"]
    r = httpx.get(f"{relay_url}/api/v1/models", headers={"Authorization": f"Bearer {KEYS[0]}"})
    assert "access-control-allow-origin" not in r.headers


def test_nul_in_text_is_refused_not_truncated(http):
    # PostgreSQL text cannot hold U+0000: the message must be refused, not stored cut at the NUL.
    r = http.post("/api/v1/chat", json={"message": "a\u0000b", "model": "mock-echo"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "message"
    r = http.post("/v1/chat/completions", json={"model": "mock-echo", "messages": [{"role": "user", "content": "x\u0000y"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[0].content"
