"""The mock upstream itself. Its timing directives, which the latency benches rely on: `delay`
spaces the tokens evenly, `jitter` moves each gap by up to ± its value so streams stop ticking
together. Its OpenAI-format routes (OpenAI, Azure OpenAI, OpenAI-compatible) with their auth and
field rules, the `quirk=` directives' exact event sequences, and the `/requests` log."""

import json

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
