"""The mock upstream itself. Its timing directives, which the latency benches rely on: `delay`
spaces the tokens evenly, `jitter` moves each gap by up to ± its value so streams stop ticking
together. Its OpenAI-format routes (OpenAI, Azure OpenAI, OpenAI-compatible) with their auth and
field rules, the `quirk=` directives' exact event sequences, the `/requests` log, and the runtime
faults per `X-Mock-Tag` (`/faults`) that gateway tests use to fail one deployment of several."""

import json
import re
import socket
import time

import httpx
import pytest


def token_gaps_ms(mock_port: int, directives: str) -> list[float]:
    """Streams one OpenAI-format answer straight from the mock and returns the gaps between its
    tokens' send stamps (`@<CLOCK_MONOTONIC ns> `), in ms."""
    body = {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": f"hi {directives}"}]}
    stamps = []
    headers = {"Authorization": "Bearer sk-mock"}
    url = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                text = (choice.get("delta") or {}).get("content") or ""
                if text.startswith("@"):
                    stamps.append(int(text[1:].split(" ", 1)[0]))
    return [(b - a) / 1e6 for a, b in zip(stamps, stamps[1:])]


def test_delay_spaces_tokens_evenly(mock_port):
    gaps = token_gaps_ms(mock_port, "[mock tokens=15 delay=20 stamp]")
    assert len(gaps) == 14
    # The mock's timers never fire early; a busy machine may make them late.
    assert min(gaps) >= 19.5, gaps


def test_jitter_spreads_the_gaps_around_the_delay(mock_port):
    gaps = token_gaps_ms(mock_port, "[mock tokens=60 delay=20 jitter=10 stamp]")
    assert len(gaps) == 59
    # Uniform in [10, 30] ms: some gaps fall well below 20 ms and some well above, none under 10.
    assert min(gaps) >= 9.5, gaps
    assert min(gaps) < 15 and max(gaps) > 25, gaps
    assert 15 < sum(gaps) / len(gaps) < 30, gaps


# --- OpenAI-format routes: Azure OpenAI, OpenAI-compatible, quirk directives, request log ---

AZURE_401 = {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}
AZURE_404 = {"error": {"code": "404", "message": "Resource not found"}}
PROMPT_FILTER = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                 "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}
AZURE_PATH = "/openai/deployments/my-deployment/chat/completions"
ROUTES = {
    "openai": ("/v1/chat/completions", "", {"Authorization": "Bearer sk-mock"}),
    "azure": (AZURE_PATH, "api-version=2024-10-21", {"api-key": "az-key"}),
    "compat": ("/compat/v1/chat/completions", "", {}),
}


def chat(port: int, route: str, directives: str = "", headers=None, query=None, **fields) -> httpx.Response:
    path, default_query, default_headers = ROUTES[route]
    q = default_query if query is None else query
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": f"hi {directives}"}], **fields}
    body = {k: v for k, v in body.items() if v is not None}
    url = f"http://127.0.0.1:{port}{path}" + (f"?{q}" if q else "")
    return httpx.post(url, json=body, headers=default_headers if headers is None else headers, timeout=30)


def events(r: httpx.Response) -> list[str]:
    """The data payloads of an SSE body, checking the framing is exactly `data: <payload>\\n\\n`."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert r.text.endswith("\n\n"), repr(r.text[-80:])
    out = []
    for block in r.text[:-2].split("\n\n"):
        assert block.startswith("data: ") and "\n" not in block, repr(block)
        out.append(block[6:])
    return out


def shape(payload: str) -> str:
    """One event as a short label: what kind of chunk it is and what its `usage` member holds."""
    if payload == "[DONE]":
        return "DONE"
    c = json.loads(payload)
    if "prompt_filter_results" in c:
        assert c == PROMPT_FILTER
        return "filter"
    if "usage" not in c:
        u = "-"
    elif c["usage"] is None:
        u = "null"
    else:
        usage = c["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        u = f"usage:{usage['completion_tokens']}"
    if not c["choices"]:
        return f"empty {u}"
    choice = c["choices"][0]
    delta = choice["delta"]
    if choice["finish_reason"] is not None:
        assert delta == {}
        return f"finish:{choice['finish_reason']} {u}"
    if "role" in delta:
        return f"role {u}"
    if "reasoning_content" in delta:
        assert "content" not in delta, delta
        return f"reasoning:{delta['reasoning_content']} {u}"
    return f"content:{delta['content']} {u}"


def shapes(r: httpx.Response) -> list[str]:
    return [shape(e) for e in events(r)]


def models(r: httpx.Response) -> set[str]:
    return {json.loads(e)["model"] for e in events(r) if e != "[DONE]"}


def test_azure_streams_prompt_filter_first_and_takes_the_model_from_the_deployment(mock_port):
    r = chat(mock_port, "azure", "[mock tokens=2]", model=None, stream=True, stream_options={"include_usage": True})
    assert shapes(r) == ["filter", "role null", "content:Hello null", "content: from null",
                         "finish:stop null", "empty usage:2", "DONE"]
    assert models(r) == {"", "my-deployment"}
    # Without include_usage: no usage member anywhere, and still the filter chunk first.
    r = chat(mock_port, "azure", "[mock tokens=1]", model=None, stream=True)
    assert shapes(r) == ["filter", "role -", "content:Hello -", "finish:stop -", "DONE"]


def test_azure_uses_the_body_model_when_given(mock_port):
    r = chat(mock_port, "azure", "[mock tokens=1]", model="gpt-4o", stream=True)
    assert models(r) == {"", "gpt-4o"}
    r = chat(mock_port, "azure", "[mock tokens=1]", model=None)
    assert r.status_code == 200 and r.json()["model"] == "my-deployment"


def test_azure_requires_the_api_key_header(mock_port):
    for headers in ({"Authorization": "Bearer az-key"}, {"api-key": ""}, {}):
        r = chat(mock_port, "azure", stream=True, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"] == "application/json"
        assert r.json() == AZURE_401
    r = chat(mock_port, "azure", "[mock tokens=1]", stream=True, headers={"api-key": "az-key", "Authorization": "Bearer x"})
    assert shapes(r)[0] == "filter"


def test_azure_requires_api_version(mock_port):
    for query in ("", "api-version=", "apiversion=2024-10-21"):
        r = chat(mock_port, "azure", stream=True, query=query)
        assert r.status_code == 404, query
        assert r.headers["content-type"] == "application/json"
        assert r.json() == AZURE_404
    assert chat(mock_port, "azure", stream=True, query="foo=1&api-version=2025-04-01-preview").status_code == 200


def test_compat_is_keyless_and_accepts_any_bearer(mock_port):
    expected = ["role -", "content:Hello -", "content: from -", "finish:stop -", "DONE"]
    assert shapes(chat(mock_port, "compat", "[mock tokens=2]", stream=True)) == expected
    assert shapes(chat(mock_port, "compat", "[mock tokens=2]", stream=True, headers={"Authorization": "Bearer anything"})) == expected
    # max_tokens is fine whatever the model name: no reasoning-model rules on a compatible server.
    assert shapes(chat(mock_port, "compat", "[mock tokens=2]", stream=True, model="gpt-5-mini", max_tokens=5, temperature=0.2)) == expected


def test_compat_refuses_a_malformed_authorization_header(mock_port):
    for value in ("Basic abc", "Bearer", "sk-raw"):
        r = chat(mock_port, "compat", stream=True, headers={"Authorization": value})
        assert r.status_code == 401, value
        assert r.json()["error"]["code"] == "invalid_api_key"


def test_compat_refuses_the_developer_role(mock_port):
    body = {"model": "llama", "stream": True, "messages": [{"role": "system", "content": "a"}, {"role": "developer", "content": "b"}, {"role": "user", "content": "c"}]}
    r = httpx.post(f"http://127.0.0.1:{mock_port}/compat/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 400
    err = r.json()["error"]
    assert (err["type"], err["param"]) == ("invalid_request_error", "messages[1].role")
    # The same body is fine on OpenAI's own route.
    r = httpx.post(f"http://127.0.0.1:{mock_port}/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}, timeout=30)
    assert r.status_code == 200


def test_compat_refuses_max_completion_tokens(mock_port):
    r = chat(mock_port, "compat", stream=True, max_completion_tokens=16)
    assert r.status_code == 400
    err = r.json()["error"]
    assert (err["message"], err["param"], err["type"]) == (
        "Extra inputs are not permitted: max_completion_tokens", "max_completion_tokens", "invalid_request_error")


QUIRK_CASES = {
    # quirks, include_usage, expected sequence after the (Azure-only) filter chunk
    "none+usage": ("", True, ["role null", "content:Hello null", "content: from null", "finish:stop null", "empty usage:2", "DONE"]),
    "no-usage": ("no-usage", True, ["role -", "content:Hello -", "content: from -", "finish:stop -", "DONE"]),
    "usage-in-last": ("usage-in-last", False, ["role -", "content:Hello -", "content: from -", "finish:stop usage:2", "DONE"]),
    "usage-in-last+usage": ("usage-in-last", True, ["role null", "content:Hello null", "content: from null", "finish:stop usage:2", "DONE"]),
    "empty-choices": ("empty-choices", False, ["role -", "empty -", "content:Hello -", "content: from -", "finish:stop -", "DONE"]),
    "empty-choices+usage": ("empty-choices", True, ["role null", "empty null", "content:Hello null", "content: from null", "finish:stop null", "empty usage:2", "DONE"]),
    "reasoning": ("reasoning", True, ["role null", "reasoning:Let me think.  null", "reasoning:Done thinking.  null",
                                      "content:Hello null", "content: from null", "finish:stop null", "empty usage:2", "DONE"]),
    "no-done": ("no-done", True, ["role null", "content:Hello null", "content: from null", "finish:stop null", "empty usage:2"]),
    "usage-in-last,no-done": ("usage-in-last,no-done", False, ["role -", "content:Hello -", "content: from -", "finish:stop usage:2"]),
    "no-usage,usage-in-last": ("no-usage,usage-in-last", True, ["role -", "content:Hello -", "content: from -", "finish:stop -", "DONE"]),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", QUIRK_CASES)
def test_quirk_event_sequences(mock_port, route, case):
    quirks, include_usage, expected = QUIRK_CASES[case]
    directive = f"[mock tokens=2 quirk={quirks}]" if quirks else "[mock tokens=2]"
    r = chat(mock_port, route, directive, stream=True, stream_options={"include_usage": True} if include_usage else None)
    assert shapes(r) == (["filter"] if route == "azure" else []) + expected


def test_quirk_key_may_repeat_and_unknown_names_are_ignored(mock_port):
    r = chat(mock_port, "openai", "[mock tokens=1 quirk=no-done,bogus quirk=empty-choices]", stream=True)
    assert shapes(r) == ["role -", "empty -", "content:Hello -", "finish:stop -"]


def test_requests_logs_model_requests_with_lowercased_headers_and_parsed_bodies(mock_port):
    base = f"http://127.0.0.1:{mock_port}"
    assert httpx.delete(f"{base}/requests").status_code == 204
    chat(mock_port, "azure", "[mock tokens=1]", model=None, stream=True, headers={"api-key": "az-key", "X-Trace-ID": "T-1"})
    httpx.get(f"{base}/health")
    httpx.post(f"{base}/compat/v1/chat/completions", content=b"not json {", headers={"Content-Type": "text/plain"})
    r = httpx.get(f"{base}/requests")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    log = r.json()
    assert [(e["method"], e["path"], e["query"]) for e in log] == [
        ("POST", AZURE_PATH, "api-version=2024-10-21"),
        ("POST", "/compat/v1/chat/completions", ""),
    ]
    first, second = log
    assert first["headers"]["api-key"] == "az-key"
    assert first["headers"]["x-trace-id"] == "T-1"
    assert first["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for e in log for name in e["headers"])
    assert first["body"] == {"messages": [{"role": "user", "content": "hi [mock tokens=1]"}], "stream": True}
    assert second["body"] == "not json {"
    assert second["headers"]["content-type"] == "text/plain"
    # GET /last-request still answers the raw last body.
    last = httpx.get(f"{base}/last-request")
    assert last.content == b"not json {" and last.headers["x-mock-path"] == "/compat/v1/chat/completions"


def test_requests_is_a_bounded_ring_and_delete_clears_it(mock_port):
    base = f"http://127.0.0.1:{mock_port}"
    assert httpx.delete(f"{base}/requests").status_code == 204
    with httpx.Client(base_url=base, timeout=30) as c:
        for i in range(205):
            # No model: a quick 400, logged all the same.
            assert c.post("/compat/v1/chat/completions", json={"n": i}).status_code == 400
        log = c.get("/requests").json()
        assert [e["body"] for e in log] == [{"n": i} for i in range(5, 205)]
        r = c.delete("/requests")
        assert r.status_code == 204 and r.content == b""
        assert c.get("/requests").json() == []


# --- Runtime faults per X-Mock-Tag, and the log's tag, arrival time, fault and outcome ---

PROVIDERS = {
    # name: (path, query, headers, body for a prompt)
    "openai": ("/v1/chat/completions", "", {"Authorization": "Bearer sk-mock"},
               lambda text: {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": text}]}),
    "azure": (AZURE_PATH, "api-version=2024-10-21", {"api-key": "az-key"},
              lambda text: {"stream": True, "messages": [{"role": "user", "content": text}]}),
    "compat": ("/compat/v1/chat/completions", "", {},
               lambda text: {"model": "llama", "stream": True, "messages": [{"role": "user", "content": text}]}),
    "anthropic": ("/v1/messages", "", {"x-api-key": "sk-ant", "anthropic-version": "2023-06-01"},
                  lambda text: {"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": True,
                                "messages": [{"role": "user", "content": text}]}),
    "gemini": ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "alt=sse", {"x-goog-api-key": "g-key"},
               lambda text: {"contents": [{"role": "user", "parts": [{"text": text}]}]}),
}


def model_request(port: int, provider: str, text: str = "hi [mock tokens=2]", tag: str | None = None, stream: bool = True):
    """Method, URL, headers and body of one model request to `provider`, tagged as a deployment."""
    path, query, headers, body = PROVIDERS[provider]
    headers = dict(headers)
    if tag is not None:
        headers["X-Mock-Tag"] = tag
    b = body(text)
    if not stream:
        b.pop("stream", None)
    url = f"http://127.0.0.1:{port}{path}" + (f"?{query}" if query else "")
    return url, headers, b


def ask(port: int, provider: str, text: str = "hi [mock tokens=2]", tag: str | None = None, stream: bool = True, timeout: float = 30) -> httpx.Response:
    url, headers, body = model_request(port, provider, text, tag, stream)
    return httpx.post(url, json=body, headers=headers, timeout=timeout)


def answered_in_full(provider: str, r: httpx.Response) -> bool:
    """Whether a streamed answer ended with its format's terminator."""
    if r.status_code != 200:
        return False
    if provider == "anthropic":
        return r.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    if provider == "gemini":
        return '"finishReason": "STOP"' in r.text and r.text.endswith("\r\n\r\n")
    return r.text.endswith("data: [DONE]\n\n")


def error_status_in_body(provider: str, r: httpx.Response) -> object:
    """Where each provider's error body says what went wrong."""
    body = r.json()
    if provider == "anthropic":
        assert body["type"] == "error", body
        return body["error"]["type"]
    if provider == "gemini":
        return body["error"]["code"]
    return body["error"]["type"]


@pytest.fixture
def mock(mock_port):
    """The mock's base URL, with no faults and an empty log before and after the test."""
    base = f"http://127.0.0.1:{mock_port}"

    def clear():
        assert httpx.delete(f"{base}/faults").status_code == 204
        assert httpx.delete(f"{base}/requests").status_code == 204

    clear()
    yield base
    clear()


def put_fault(base: str, tag: str, rule) -> httpx.Response:
    return httpx.put(f"{base}/faults/{tag}", content=rule if isinstance(rule, (bytes, str)) else json.dumps(rule))


def log(base: str, tag: str | None = None) -> list[dict]:
    r = httpx.get(f"{base}/requests", params={"tag": tag} if tag is not None else None)
    assert r.status_code == 200
    return r.json()


def wait_for_outcome(base: str, tag: str, outcome: str, timeout: float = 3.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        entries = log(base, tag)
        if entries and all(e["outcome"] == outcome for e in entries):
            return entries
        if time.monotonic() > deadline:
            raise AssertionError(f"outcome {outcome!r} expected: {entries}")
        time.sleep(0.02)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_status_fault_with_retry_headers_hits_only_its_tag(mock, mock_port, provider):
    assert put_fault(mock, "A", {"status": 503, "retry_after": "7", "retry_after_ms": "7250"}).status_code == 204
    r = ask(mock_port, provider, tag="A")
    assert r.status_code == 503, r.text
    assert r.headers.get_list("retry-after") == ["7"]
    assert r.headers.get_list("retry-after-ms") == ["7250"]
    assert r.headers["content-type"].startswith("application/json")
    # The route's own error shape (Azure answers in OpenAI's, as its model errors do).
    expected = {"anthropic": "api_error", "gemini": 503}.get(provider, "service_unavailable_error")
    assert error_status_in_body(provider, r) == expected
    # Deployment B and untagged requests reach the same route and are answered in full.
    assert answered_in_full(provider, ask(mock_port, provider, tag="B"))
    assert answered_in_full(provider, ask(mock_port, provider))
    entries = log(mock)
    assert [(e["tag"], e["fault"], e["outcome"]) for e in entries] == [
        ("A", "503", "complete"), ("B", None, "complete"), (None, None, "complete")]
    assert entries[0]["headers"]["x-mock-tag"] == "A"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_status_fault_retry_after_replaces_the_providers_own_hint(mock, mock_port, provider):
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    assert put_fault(mock, "A", {"status": 429, "retry_after": date}).status_code == 204
    r = ask(mock_port, provider, tag="A")
    assert r.status_code == 429
    assert r.headers.get_list("retry-after") == [date]
    assert "retry-after-ms" not in r.headers
    # null removes the hint a real provider would send, for tests of the gateway's own backoff.
    assert put_fault(mock, "A", {"status": 429, "retry_after": None}).status_code == 204
    r = ask(mock_port, provider, tag="A")
    assert r.status_code == 429 and "retry-after" not in r.headers
    # Without the field, the provider's usual hint stays (Gemini's is in the body, not a header).
    assert put_fault(mock, "A", {"status": 429}).status_code == 204
    r = ask(mock_port, provider, tag="A")
    if provider == "gemini":
        assert "retry-after" not in r.headers and r.json()["error"]["details"][0]["retryDelay"] == "3s"
    else:
        assert r.headers.get_list("retry-after") == [{"openai": "1", "anthropic": "2"}[provider]]


def test_runtime_fault_overrides_the_prompts_fault(mock, mock_port):
    assert put_fault(mock, "A", {"status": 502}).status_code == 204
    assert ask(mock_port, "openai", "hi [mock fault=429]", tag="A").status_code == 502
    assert ask(mock_port, "openai", "hi [mock fault=429]", tag="B").status_code == 429
    assert [(e["tag"], e["fault"]) for e in log(mock)] == [("A", "502"), ("B", "429")]


def test_times_counts_down_then_answers_normally(mock, mock_port):
    assert put_fault(mock, "A", {"status": 429, "retry_after": "1", "times": 2}).status_code == 204
    faults = httpx.get(f"{mock}/faults").json()
    assert faults == {"A": {"kind": "status", "status": 429, "retry_after": "1", "remaining": 2, "applied": 0}}
    statuses = []
    for _ in range(4):
        statuses.append(ask(mock_port, "openai", tag="A").status_code)
        # Other tags do not use up A's count.
        assert ask(mock_port, "openai", tag="B").status_code == 200
    assert statuses == [429, 429, 200, 200]
    assert httpx.get(f"{mock}/faults").json()["A"] == {"kind": "status", "status": 429, "retry_after": "1", "remaining": 0, "applied": 2}
    assert [e["fault"] for e in log(mock, "A")] == ["429", "429", None, None]
    # Putting the rule again starts the count afresh.
    assert put_fault(mock, "A", {"status": 500, "times": 1}).status_code == 204
    assert [ask(mock_port, "openai", tag="A").status_code for _ in range(2)] == [500, 200]


def first_event_after(port: int, provider: str, tag: str) -> tuple[float, float]:
    """Seconds from sending to the response head, and to the first body bytes, of a stream."""
    url, headers, body = model_request(port, provider, "hi [mock tokens=2]", tag)
    t0 = time.monotonic()
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as r:
        head = time.monotonic() - t0
        assert r.status_code == 200
        next(r.iter_raw())
        return head, time.monotonic() - t0


@pytest.mark.parametrize("provider", ["azure", "anthropic"])
def test_slow_first_holds_every_event_but_not_the_head(mock, mock_port, provider):
    assert put_fault(mock, "A", {"kind": "slow_first", "first_delay_ms": 600}).status_code == 204
    head, first = first_event_after(mock_port, provider, "A")
    assert head < 0.4, head
    # The preamble (Azure's filter chunk, Anthropic's message_start) waits too.
    assert first >= 0.6, first
    _, first_b = first_event_after(mock_port, provider, "B")
    assert first_b < 0.4, first_b
    # After the wait the answer is a normal one.
    assert answered_in_full(provider, ask(mock_port, provider, tag="A"))
    assert [(e["fault"], e["outcome"]) for e in log(mock, "A")] == [("slow_first", "complete")] * 2


def test_slow_first_delays_a_non_streamed_answer(mock, mock_port):
    assert put_fault(mock, "A", {"kind": "slow_first", "first_delay_ms": 500}).status_code == 204
    t0 = time.monotonic()
    r = ask(mock_port, "openai", tag="A", stream=False)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello from"
    assert time.monotonic() - t0 >= 0.5


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_slow_first_wait_ends_when_the_client_leaves(mock, mock_port, stream):
    assert put_fault(mock, "A", {"kind": "slow_first", "first_delay_ms": 30000}).status_code == 204
    with pytest.raises(httpx.ReadTimeout):
        url, headers, body = model_request(mock_port, "openai", "hi [mock tokens=2]", "A", stream)
        with httpx.stream("POST", url, json=body, headers=headers, timeout=httpx.Timeout(30, read=0.3)) as r:
            next(r.iter_raw())
    wait_for_outcome(mock, "A", "disconnected")
    assert httpx.get(f"{mock}/health").json()["active_streams"] == 0


@pytest.mark.parametrize("provider,error", [
    ("openai", '"type":"server_error"'), ("anthropic", "event: error\n"), ("gemini", '"status": "INTERNAL"')])
def test_midstream_fault_streams_tokens_then_the_providers_error(mock, mock_port, provider, error):
    assert put_fault(mock, "A", {"kind": "midstream", "after": 3}).status_code == 204
    r = ask(mock_port, provider, "hi [mock tokens=10]", tag="A")
    assert r.status_code == 200
    assert r.text.count("Hello") == 1 and r.text.count(" from") == 1 and r.text.count(" the") == 1
    assert " mock" not in r.text
    # The error is the last event.
    assert error in re.split(r"\r?\n\r?\n", r.text.strip())[-1], r.text
    assert not answered_in_full(provider, r)
    assert answered_in_full(provider, ask(mock_port, provider, "hi [mock tokens=10]", tag="B"))
    assert [(e["fault"], e["outcome"]) for e in log(mock, "A")] == [("midstream", "complete")]


def test_midstream_fault_on_a_non_streamed_request_is_an_error_status(mock, mock_port):
    assert put_fault(mock, "A", {"kind": "midstream"}).status_code == 204
    r = ask(mock_port, "anthropic", tag="A", stream=False)
    assert r.status_code == 500 and r.json()["type"] == "error"


def raw_exchange(port: int, request: bytes) -> bytes:
    """Sends raw bytes and returns all that came back before the connection ended."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
        return got


def raw_request(port: int, provider: str, tag: str) -> bytes:
    url, headers, body = model_request(port, provider, "hi [mock tokens=2]", tag)
    target = url.split(f":{port}", 1)[1]
    data = json.dumps(body).encode()
    # Connection: close, so an answered request also ends with the connection.
    lines = [f"POST {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close", "Content-Type: application/json",
             f"Content-Length: {len(data)}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


@pytest.mark.parametrize("provider", ["compat", "gemini"])
def test_reset_fault_drops_the_connection_without_a_response(mock, mock_port, provider):
    assert put_fault(mock, "A", {"kind": "reset"}).status_code == 204
    assert raw_exchange(mock_port, raw_request(mock_port, provider, "A")) == b""
    with pytest.raises(httpx.TransportError):
        ask(mock_port, provider, tag="A")
    assert raw_exchange(mock_port, raw_request(mock_port, provider, "B")).startswith(b"HTTP/1.1 200 OK\r\n")
    assert [(e["fault"], e["outcome"]) for e in log(mock, "A")] == [("reset", "reset")] * 2
    assert [(e["fault"], e["outcome"]) for e in log(mock, "B")] == [(None, "complete")]


def test_prompt_reset_fault_is_logged_as_reset(mock, mock_port):
    with pytest.raises(httpx.TransportError):
        ask(mock_port, "openai", "hi [mock tokens=3 fault=reset after=1]", tag="R")
    assert [(e["fault"], e["outcome"]) for e in wait_for_outcome(mock, "R", "reset")] == [("reset", "reset")]


def test_a_client_leaving_mid_stream_shows_as_disconnected(mock, mock_port):
    url, headers, body = model_request(mock_port, "openai", "hi [mock tokens=500 delay=10]", "C")
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as r:
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")
        [entry] = log(mock, "C")
        assert entry["outcome"] == "streaming" and entry["fault"] is None
    # Closed after the first event: the mock sees it leave long before its 5 s stream would end.
    wait_for_outcome(mock, "C", "disconnected", timeout=2)
    assert httpx.get(f"{mock}/health").json()["active_streams"] == 0
    # The same stream read to the end is complete.
    assert answered_in_full("openai", ask(mock_port, "openai", "hi [mock tokens=5 delay=10]", tag="D"))
    assert [e["outcome"] for e in log(mock, "D")] == ["complete"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_hang_fault_never_answers_and_the_leaving_client_is_seen(mock, mock_port, stream):
    assert put_fault(mock, "A", {"kind": "hang"}).status_code == 204
    url, headers, body = model_request(mock_port, "anthropic", "hi [mock tokens=2]", "A", stream)
    got_head = False
    with pytest.raises(httpx.ReadTimeout):
        with httpx.stream("POST", url, json=body, headers=headers, timeout=httpx.Timeout(30, read=0.5)) as r:
            got_head = r.status_code == 200
            next(r.iter_raw())
    # A stream gets its head, as with fault=hang; a non-streamed request gets nothing at all.
    assert got_head == stream
    assert [e["fault"] for e in wait_for_outcome(mock, "A", "disconnected")] == ["hang"]


def test_requests_filter_by_tag_and_carry_the_arrival_time(mock, mock_port):
    t0 = time.monotonic() * 1000
    for tag in ["A", None, "B", "A", "A B"]:
        assert ask(mock_port, "compat", tag=tag).status_code == 200
    t1 = time.monotonic() * 1000
    everything = log(mock)
    assert [e["tag"] for e in everything] == ["A", None, "B", "A", "A B"]
    assert [e["tag"] for e in log(mock, "A")] == ["A", "A"]
    assert [e["tag"] for e in log(mock, "B")] == ["B"]
    assert [e["tag"] for e in log(mock, "A B")] == ["A B"]
    assert log(mock, "Z") == []
    # at_ms is CLOCK_MONOTONIC in whole ms, the clock of time.monotonic(), in order of arrival.
    stamps = [e["at_ms"] for e in everything]
    assert all(isinstance(t, int) for t in stamps) and stamps == sorted(stamps)
    assert t0 - 1 <= stamps[0] and stamps[-1] <= t1 + 1, (t0, stamps, t1)
    assert all(e["outcome"] == "complete" and e["fault"] is None for e in everything)


def test_fault_listing_and_delete(mock, mock_port):
    assert put_fault(mock, "A", {"status": 500}).status_code == 204
    assert put_fault(mock, "B", {"kind": "midstream", "after": 1, "retry_after_ms": "20"}).status_code == 204
    assert put_fault(mock, "C", {"kind": "slow_first", "first_delay_ms": 5}).status_code == 204
    assert httpx.get(f"{mock}/faults").json() == {
        "A": {"kind": "status", "status": 500, "applied": 0},
        "B": {"kind": "midstream", "after": 1, "retry_after_ms": "20", "applied": 0},
        "C": {"kind": "slow_first", "first_delay_ms": 5, "applied": 0},
    }
    r = httpx.delete(f"{mock}/faults/A")
    assert r.status_code == 204 and r.content == b""
    assert sorted(httpx.get(f"{mock}/faults").json()) == ["B", "C"]
    assert ask(mock_port, "openai", tag="A").status_code == 200
    assert not answered_in_full("openai", ask(mock_port, "openai", tag="B"))
    # Removing a tag that has no fault is not an error: teardown code need not track what it set.
    assert httpx.delete(f"{mock}/faults/nobody").status_code == 204
    assert httpx.delete(f"{mock}/faults").status_code == 204
    assert httpx.get(f"{mock}/faults").json() == {}
    assert answered_in_full("openai", ask(mock_port, "openai", tag="B"))


@pytest.mark.parametrize("body,message", [
    (b"{not json", "the body must be a JSON object"),
    (b"", "the body must be a JSON object"),
    (b"[503]", "the body must be a JSON object"),
    ({"kind": "explode"}, "unknown kind explode"),
    ({"kind": "status"}, "kind status needs a status"),
    ({}, "give a status or a kind"),
    ({"status": 200}, "status must be an integer from 400 to 599"),
    ({"status": "503"}, "status must be an integer from 400 to 599"),
    ({"status": 503, "retry-after": "1"}, "unknown field retry-after"),
    ({"status": 503, "retry_after": "1\r\nX-Evil: 1"}, "retry_after must be a non-empty single-line value"),
    ({"status": 503, "times": 0}, "times must be a positive integer"),
])
def test_bad_fault_bodies_are_refused_in_plain_text(mock, body, message):
    r = put_fault(mock, "A", body)
    assert r.status_code == 400
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text.startswith(message), r.text
    assert httpx.get(f"{mock}/faults").json() == {}
