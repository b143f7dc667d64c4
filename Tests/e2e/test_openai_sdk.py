"""The official OpenAI Python SDK against ChatRelay's OpenAI-compatible surface, with each
provider's model behind it served by mock-upstream."""

import httpx
import openai
import pytest

from conftest import KEYS

MODELS = ["gpt-5.4-mini", "claude-sonnet-4-6", "gemini-2.5-flash"]
MOCK_WORDS = ["Hello", " from", " the", " mock", " upstream", ",", " token", " stream", " é", " ✓"]


def expected_text(tokens: int) -> str:
    return "".join(MOCK_WORDS[i % len(MOCK_WORDS)] for i in range(tokens))


@pytest.fixture()
def client(relay_url):
    with openai.OpenAI(api_key=KEYS[0], base_url=f"{relay_url}/v1", max_retries=0, timeout=30) as c:
        yield c


def user(text: str):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("model", MODELS)
def test_non_streaming(client, model):
    r = client.chat.completions.create(model=model, messages=user("Say hello [mock tokens=4]"))
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert r.model == model
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == expected_text(4)
    assert choice.finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("include_usage", [True, False])
def test_streaming(client, model, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(model=model, messages=user("Count [mock tokens=6]"), stream=True, **kwargs)
    chunks = list(stream)
    ids = {c.id for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert len({c.created for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" and c.model == model for c in chunks)

    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == expected_text(6)
    content_chunks = [c for c in with_choices if c.choices[0].delta.content]
    assert len(content_chunks) == 6
    finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert with_choices[-1].choices[0].finish_reason == "stop"

    usage_chunks = [c for c in chunks if not c.choices]
    if include_usage:
        assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0]
        u = usage_chunks[0].usage
        assert u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens
        assert all(c.usage is None for c in with_choices)
    else:
        assert usage_chunks == []
        assert all(c.usage is None for c in chunks)


def test_mock_echo(client):
    r = client.chat.completions.create(model="mock-echo", messages=user("echo me back"))
    assert r.choices[0].message.content == "echo me back"
    stream = client.chat.completions.create(model="mock-echo", messages=user("echo me back"), stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo me back"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_stream_options_without_stream(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-5.4-mini", messages=user("hi"), stream_options={"include_usage": True})
    assert e.value.status_code == 400
    assert "stream_options" in e.value.message
    assert e.value.param == "stream_options"


def test_wrong_key(relay_url):
    with openai.OpenAI(api_key="not-a-key", base_url=f"{relay_url}/v1", max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as e:
            c.chat.completions.create(model="gpt-5.4-mini", messages=user("hi"))
        assert e.value.status_code == 401
        with pytest.raises(openai.AuthenticationError):
            c.models.list()


def test_unknown_model(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="no-such-model", messages=user("hi"))
    assert e.value.param == "model"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_429_is_rate_limit_error(client, model, stream):
    with pytest.raises(openai.RateLimitError) as e:
        r = client.chat.completions.create(model=model, messages=user("hi [mock fault=429]"), stream=stream)
        if stream:
            list(r)
    assert e.value.status_code == 429
    assert e.value.response.headers.get("retry-after")


@pytest.mark.parametrize("model", MODELS)
def test_upstream_500(client, model):
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=model, messages=user("hi [mock fault=500]"))
    assert isinstance(e.value, openai.InternalServerError)
    assert e.value.status_code == 502


@pytest.mark.parametrize("model", MODELS)
def test_midstream_error_raises_after_two_deltas(client, model):
    stream = client.chat.completions.create(model=model, messages=user("story [mock tokens=5 fault=midstream after=2]"),
                                            stream=True, stream_options={"include_usage": True})
    deltas = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                deltas.append(chunk.choices[0].delta.content)
    assert deltas == [MOCK_WORDS[0], MOCK_WORDS[1]]


def test_midstream_error_has_no_done(relay_url):
    body = {"model": "gpt-5.4-mini", "stream": True, "messages": user("x [mock tokens=5 fault=midstream after=2]")}
    with httpx.stream("POST", f"{relay_url}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=30) as r:
        assert r.status_code == 200
        events = [line for line in r.iter_lines() if line]
    assert events[-1].startswith('data: {"error":')
    assert "data: [DONE]" not in events
    assert sum('"content":"' in e and '"content":""' not in e for e in events) == 2


def test_models_list(client):
    ids = {m.id: m for m in client.models.list()}
    for model in MODELS + ["mock-echo"]:
        assert model in ids
        assert ids[model].object == "model"
    assert ids["claude-sonnet-4-6"].owned_by == "anthropic"


@pytest.mark.parametrize("model", ["gpt-5.4-mini", "claude-sonnet-4-6"])
def test_multi_turn_with_system_developer_and_parts(client, model):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [{"type": "text", "text": "How are you? "}, {"type": "text", "text": "[mock tokens=3]"}]},
    ]
    r = client.chat.completions.create(model=model, messages=messages)
    assert r.choices[0].message.content == expected_text(3)
    echo = client.chat.completions.create(model="mock-echo", messages=messages)
    assert echo.choices[0].message.content == "How are you? [mock tokens=3]"


def test_unsupported_content_part(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-5.4-mini", messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}])
    assert e.value.param == "messages[0].content[0]"


@pytest.mark.parametrize("stream", [False, True])
def test_conversation_id_new_is_stored(client, http, relay_url, stream):
    raw = client.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-6", messages=[{"role": "system", "content": "Be brief."}] + user("Remember me [mock tokens=3]"),
        stream=stream, extra_headers={"X-Conversation-Id": "new"})
    conversation_id = raw.headers["x-conversation-id"]
    parsed = raw.parse()
    text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices) if stream else parsed.choices[0].message.content
    assert text == expected_text(3)

    conv = http.get(f"/api/v1/conversations/{conversation_id}").json()
    assert conv["id"] == conversation_id
    assert conv["system"] == "Be brief."
    roles = [(m["role"], m["content"], m["status"]) for m in conv["messages"]]
    assert roles == [("user", "Remember me [mock tokens=3]", "complete"), ("assistant", expected_text(3), "complete")]
    assert conv["messages"][-1]["provider"] == "anthropic"

    # A second turn on the same conversation appends to it.
    client.chat.completions.create(model="claude-sonnet-4-6", messages=user("Again [mock tokens=2]"),
                                   extra_headers={"X-Conversation-Id": conversation_id})
    conv = http.get(f"/api/v1/conversations/{conversation_id}").json()
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant", "user", "assistant"]
    assert conv["messages"][-1]["content"] == expected_text(2)

    # Another key does not see it.
    other = httpx.get(f"{relay_url}/api/v1/conversations/{conversation_id}",
                      headers={"Authorization": f"Bearer {KEYS[1]}"})
    assert other.status_code == 404


def test_conversation_id_invalid(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-5.4-mini", messages=user("hi"), extra_headers={"X-Conversation-Id": "nope"})
    assert e.value.param == "X-Conversation-Id"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-5.4-mini", messages=user("hi"),
                                       extra_headers={"X-Conversation-Id": "00000000-0000-4000-8000-000000000000"})
