"""The official Anthropic Python SDK against ChatRelay's Anthropic-compatible surface
(/v1/messages), with each provider's model behind it served by mock-upstream, and the built-in
mock models."""

import json

import anthropic
import httpx
import pytest

from conftest import KEYS

MODELS = ["gpt-5.4-mini", "claude-sonnet-4-6", "gemini-2.5-flash"]
MOCK_WORDS = ["Hello", " from", " the", " mock", " upstream", ",", " token", " stream", " é", " ✓"]
EVENTS_WITHOUT_PING = ["message_start", "content_block_start"]


def expected_text(tokens: int) -> str:
    return "".join(MOCK_WORDS[i % len(MOCK_WORDS)] for i in range(tokens))


@pytest.fixture()
def client(relay_url):
    # No SDK retries: the gateway's own retry of a retryable fault is what is under test.
    with anthropic.Anthropic(api_key=KEYS[0], base_url=relay_url, max_retries=0, timeout=30) as c:
        yield c


def user(text: str):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("model", MODELS)
def test_non_streaming(client, model):
    m = client.messages.create(model=model, max_tokens=256, messages=user("Say hello [mock tokens=4]"))
    assert m.type == "message" and m.role == "assistant"
    assert m.id.startswith("msg_")
    assert m.model == model
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == expected_text(4)
    assert m.stop_reason == "end_turn"
    assert m.stop_sequence is None
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    assert m._request_id


@pytest.mark.parametrize("model", MODELS)
def test_streaming_raw_events(client, model):
    stream = client.messages.create(model=model, max_tokens=256, messages=user("Count [mock tokens=6]"), stream=True)
    events = list(stream)
    types = [e.type for e in events]
    # The SDK drops `ping` itself; everything else arrives in Anthropic's order.
    assert types == EVENTS_WITHOUT_PING + ["content_block_delta"] * 6 + ["content_block_stop", "message_delta", "message_stop"]
    start = events[0].message
    assert start.id.startswith("msg_") and start.model == model and start.content == []
    deltas = [e.delta.text for e in events if e.type == "content_block_delta"]
    assert "".join(deltas) == expected_text(6)
    assert all(e.index == 0 for e in events if e.type in ("content_block_start", "content_block_delta", "content_block_stop"))
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn" and delta.delta.stop_sequence is None
    assert delta.usage.output_tokens > 0 and delta.usage.input_tokens > 0


@pytest.mark.parametrize("model", MODELS + ["mock-echo"])
def test_streaming_helper_final_message(client, model):
    prompt = "Stream it [mock tokens=5]"
    with client.messages.stream(model=model, max_tokens=256, system="Be brief.", messages=user(prompt)) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    want = prompt if model == "mock-echo" else expected_text(5)
    assert text == want
    assert final.content[0].text == want
    assert final.stop_reason == "end_turn"
    # message_start says 0 input tokens; message_delta's count wins in the SDK's snapshot.
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


def test_mock_echo_non_streaming(client):
    m = client.messages.create(model="mock-echo", max_tokens=64,
                               messages=[{"role": "user", "content": [{"type": "text", "text": "echo "},
                                                                      {"type": "text", "text": "me back"}]}])
    assert m.content[0].text == "echo me back"
    assert (m.usage.input_tokens, m.usage.output_tokens) == (3, 3)


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_truncation(client, stream):
    # The built-in mock honours max_tokens (mock-upstream answers its [mock tokens=N] in full).
    kwargs = dict(model="mock-tokens-20", max_tokens=3, messages=user("go [mock tokens=20]"))
    if stream:
        with client.messages.stream(**kwargs) as s:
            m = s.get_final_message()
    else:
        m = client.messages.create(**kwargs)
    assert m.stop_reason == "max_tokens"
    assert m.content[0].text == "tok1 tok2 tok3 "
    assert m.usage.output_tokens == 3


def test_count_tokens(client):
    messages = user("one two three four")
    counted = client.messages.count_tokens(model="mock-echo", system="be brief", messages=messages)
    m = client.messages.create(model="mock-echo", max_tokens=64, system="be brief", messages=messages)
    assert counted.input_tokens == m.usage.input_tokens == 6
    estimate = client.messages.count_tokens(model="claude-sonnet-4-6", messages=messages)
    assert estimate.input_tokens == 3 + (len("one two three four") + 3) // 4


def test_bad_requests_are_bad_request_errors(client):
    cases = [
        (dict(model="gpt-5.4-mini", messages=user("hi"),
              tools=[{"name": "get_weather", "input_schema": {"type": "object"}}]), "tools: "),
        (dict(model="gpt-5.4-mini", messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]), "messages.0.content.0.type: "),
        (dict(model="gpt-5.4-mini", messages=[{"role": "assistant", "content": "hi"}]), "messages.0.role: "),
        (dict(model="no-such-model", messages=user("hi")), "model: "),
        (dict(model="gpt-5.4-mini", messages=user("hi"), extra_body={"max_tokens": None}), "max_tokens: "),
    ]
    for kwargs, prefix in cases:
        with pytest.raises(anthropic.BadRequestError) as e:
            client.messages.create(max_tokens=16, **kwargs)
        assert e.value.status_code == 400
        assert e.value.body["type"] == "error"
        assert e.value.body["error"]["type"] == "invalid_request_error"
        assert e.value.body["error"]["message"].startswith(prefix), e.value.body


def test_wrong_key_is_authentication_error(relay_url):
    with anthropic.Anthropic(api_key="not-a-key", base_url=relay_url, max_retries=0) as c:
        with pytest.raises(anthropic.AuthenticationError) as e:
            c.messages.create(model="mock-echo", max_tokens=16, messages=user("hi"))
    assert e.value.status_code == 401
    assert e.value.body["error"]["type"] == "authentication_error"


def test_x_api_key_header(relay_url):
    body = {"model": "mock-echo", "max_tokens": 16, "messages": user("plain key")}
    ok = httpx.post(f"{relay_url}/v1/messages", json=body, headers={"x-api-key": KEYS[1], "anthropic-version": "2023-06-01"})
    assert ok.status_code == 200 and ok.json()["content"][0]["text"] == "plain key"
    bad = httpx.post(f"{relay_url}/v1/messages", json=body, headers={"x-api-key": "nope"})
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
    version = httpx.post(f"{relay_url}/v1/messages", json=body, headers={"x-api-key": KEYS[1], "anthropic-version": "1999-01-01"})
    assert version.status_code == 400 and version.json()["error"]["message"].startswith("anthropic-version: ")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_429_is_rate_limit_error(client, model, stream):
    # The gateway retries a 429 once before giving up; the client then gets the 429 itself.
    with pytest.raises(anthropic.RateLimitError) as e:
        r = client.messages.create(model=model, max_tokens=16, messages=user("hi [mock fault=429]"), stream=stream)
        if stream:
            list(r)
    assert e.value.status_code == 429
    assert e.value.body["error"]["type"] == "rate_limit_error"
    assert e.value.response.headers.get("retry-after")


def test_provider_overload_is_overloaded_error(client):
    with pytest.raises(anthropic.OverloadedError) as e:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=user("hi [mock fault=529]"))
    assert e.value.status_code == 529
    assert e.value.body["error"]["type"] == "overloaded_error"
    assert e.value.response.headers.get("retry-after")


@pytest.mark.parametrize("model", MODELS)
def test_upstream_500(client, model):
    with pytest.raises(anthropic.APIStatusError) as e:
        client.messages.create(model=model, max_tokens=16, messages=user("hi [mock fault=500]"))
    assert isinstance(e.value, anthropic.InternalServerError)
    assert e.value.status_code == 502
    assert e.value.body["error"]["type"] == "api_error"


@pytest.mark.parametrize("model", MODELS)
def test_midstream_error_raises_after_two_deltas(client, model):
    stream = client.messages.create(model=model, max_tokens=64, stream=True,
                                    messages=user("story [mock tokens=5 fault=midstream after=2]"))
    deltas = []
    with pytest.raises(anthropic.APIStatusError) as e:
        for event in stream:
            if event.type == "content_block_delta":
                deltas.append(event.delta.text)
    assert deltas == [MOCK_WORDS[0], MOCK_WORDS[1]]
    assert e.value.body["type"] == "error"


def test_midstream_error_event_ends_the_stream(relay_url):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": True,
            "messages": user("x [mock tokens=5 fault=midstream after=2]")}
    with httpx.stream("POST", f"{relay_url}/v1/messages", json=body, headers={"x-api-key": KEYS[0]}, timeout=30) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line and not line.startswith(":")]
    names = [line[len("event: "):] for line in lines if line.startswith("event: ")]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "error"]
    error = json.loads(lines[-1][len("data: "):])
    assert error == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


@pytest.mark.parametrize("stream", [False, True])
def test_conversation_id_new_is_stored(client, http, relay_url, stream):
    raw = client.messages.with_raw_response.create(
        model="gemini-2.5-flash", max_tokens=64, system="Be brief.", messages=user("Remember me [mock tokens=3]"),
        stream=stream, extra_headers={"X-Conversation-Id": "new"})
    conversation_id = raw.headers["x-conversation-id"]
    parsed = raw.parse()
    if stream:
        text = "".join(e.delta.text for e in parsed if e.type == "content_block_delta")
    else:
        text = parsed.content[0].text
    assert text == expected_text(3)

    conv = http.get(f"/api/v1/conversations/{conversation_id}").json()
    assert conv["system"] == "Be brief."
    assert [(m["role"], m["content"], m["status"]) for m in conv["messages"]] == [
        ("user", "Remember me [mock tokens=3]", "complete"), ("assistant", expected_text(3), "complete")]
    assert conv["messages"][-1]["provider"] == "gemini"

    # A second turn on the same conversation appends to it.
    client.messages.create(model="gemini-2.5-flash", max_tokens=64, messages=user("Again [mock tokens=2]"),
                           extra_headers={"X-Conversation-Id": conversation_id})
    conv = http.get(f"/api/v1/conversations/{conversation_id}").json()
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant", "user", "assistant"]

    other = httpx.get(f"{relay_url}/api/v1/conversations/{conversation_id}", headers={"Authorization": f"Bearer {KEYS[1]}"})
    assert other.status_code == 404


def test_stateless_without_conversation_header_and_bad_ids(client, http):
    before = http.get("/api/v1/conversations?limit=100").json()["conversations"]
    raw = client.messages.with_raw_response.create(model="mock-echo", max_tokens=16, messages=user("not stored"))
    assert "x-conversation-id" not in raw.headers
    assert http.get("/api/v1/conversations?limit=100").json()["conversations"] == before
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model="mock-echo", max_tokens=16, messages=user("hi"), extra_headers={"X-Conversation-Id": "nope"})
    assert e.value.body["error"]["message"].startswith("X-Conversation-Id: ")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="mock-echo", max_tokens=16, messages=user("hi"),
                               extra_headers={"X-Conversation-Id": "00000000-0000-4000-8000-000000000000"})
