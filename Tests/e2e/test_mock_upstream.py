"""The mock upstream's timing directives, which the latency benches rely on: `delay` spaces the
tokens evenly, `jitter` moves each gap by up to ± its value so streams stop ticking together."""

import json

import httpx


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
