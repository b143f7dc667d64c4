"""The production shape on loopback: the shipped nginx config in front of TWO chatrelay
instances that share ONE PostgreSQL. Streams pass through unbuffered, either instance reads what
the other wrote, and SIGTERM to one instance loses nothing: its streams finish, new requests go
to the other one, and every turn is stored complete."""

import json
import signal
import threading
import time

import httpx
import pytest

from conftest import KEYS
from deploy_support import nginx_binary
from stacks import instances, shared_database, start_nginx

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed (scripts/install-deps.sh --test)")

AUTH = {"Authorization": f"Bearer {KEYS[0]}"}
DRAIN_S = 15
WORDS = ["Hello", " from", " the", " mock", " upstream", ",", " token", " stream", " é", " ✓"]


def mock_text(tokens: int) -> str:
    return "".join(WORDS[i % len(WORDS)] for i in range(tokens))


class Stack:
    """nginx on `url`, instances `a` and `b` (processes and direct URLs), one PostgreSQL."""

    def __init__(self, url, a, b):
        self.url = url
        self.a_proc, self.a_url = a
        self.b_proc, self.b_url = b


@pytest.fixture(scope="module")
def stack(workdir, mock_port, request):
    root, pg = shared_database(workdir, "nginx-stack-", request)
    a, b = instances(workdir, mock_port, ["nginx-a", "nginx-b"], {"DATABASE_URL": pg.conninfo, "CHAT_DRAIN_S": str(DRAIN_S)}, request)
    return Stack(start_nginx(root, [a[1], b[1]], request), a, b)


def stream_chat(base: str, body: dict, request_id: str | None = None, on_first_token=None, timeout=60):
    """POSTs a chat and returns (status, [(event, data, arrival seconds)]) as frames arrive."""
    headers = dict(AUTH)
    if request_id:
        headers["X-Request-Id"] = request_id
    events, buffer, t0 = [], "", time.monotonic()
    with httpx.Client(timeout=timeout) as c, c.stream("POST", f"{base}/api/v1/chat", json=body, headers=headers) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, [("http-error", r.text, time.monotonic() - t0)]
        for chunk in r.iter_raw():
            now = time.monotonic() - t0
            buffer += chunk.decode()
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                fields = dict(line.split(": ", 1) for line in frame.splitlines() if not line.startswith(":") and ": " in line)
                if "event" in fields:
                    events.append((fields["event"], json.loads(fields.get("data", "null")), now))
                    if fields["event"] == "token" and on_first_token and sum(e[0] == "token" for e in events) == 1:
                        on_first_token()
    return 200, events


def final_answer(base: str, conversation_id: str, seconds: float = 15) -> dict:
    """The conversation's last message once it has left `streaming`."""
    deadline = time.monotonic() + seconds
    last = {}
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/api/v1/conversations/{conversation_id}", headers=AUTH, timeout=10)
        if r.status_code == 200 and r.json()["messages"]:
            last = r.json()["messages"][-1]
            if last["status"] != "streaming":
                return last
        time.sleep(0.1)
    return last


def test_tokens_pass_through_nginx_unbuffered(stack):
    status, events = stream_chat(stack.url, {"message": "[mock tokens=5 delay=200]", "model": "gpt-4.1"})
    assert status == 200
    tokens = [t for name, _, t in events if name == "token"]
    done = [t for name, _, t in events if name == "done"]
    assert len(tokens) == 5 and done, events
    gaps = [b - a for a, b in zip(tokens, tokens[1:])]
    # The mock sends a token every 200 ms: buffering anywhere would bunch them together.
    assert min(gaps) >= 0.15, f"token gaps {gaps}: nginx buffered the stream"
    assert done[0] - tokens[0] >= 0.6, "the first token arrived only when the stream ended"


def test_instances_share_the_database(stack):
    # Written through A, read through B directly and through nginx (either instance answers).
    status, events = stream_chat(stack.a_url, {"message": "echo:written on A", "model": "gpt-4.1"})
    assert status == 200
    cid = events[0][1]["conversation_id"]
    for base in (stack.b_url, stack.url, stack.url):
        answer = final_answer(base, cid)
        assert answer["status"] == "complete" and answer["content"] == "written on A", base
    # Continued through nginx, read on both instances directly.
    status, events = stream_chat(stack.url, {"message": "echo:and through nginx", "model": "gpt-4.1", "conversation_id": cid})
    assert status == 200 and events[-1][0] == "done"
    for base in (stack.a_url, stack.b_url):
        r = httpx.get(f"{base}/api/v1/conversations/{cid}", headers=AUTH, timeout=10)
        assert [m["content"] for m in r.json()["messages"]] == ["echo:written on A", "written on A",
                                                                  "echo:and through nginx", "and through nginx"]


def test_sigterm_drains_one_instance_behind_nginx(stack):
    """Runs last in this module: instance A is gone afterwards."""
    n = 6
    results: dict[int, tuple] = {}
    started = threading.Semaphore(0)

    def run(i):
        try:
            results[i] = stream_chat(stack.url, {"message": "[mock tokens=10 delay=200]", "model": "gpt-4.1"},
                                     request_id=f"drain-stream-{i}", on_first_token=started.release)
        except Exception as e:  # reported below with the others
            results[i] = (0, [("exception", repr(e), 0)])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        assert started.acquire(timeout=20), "streams did not start"
    stack.a_proc.p.send_signal(signal.SIGTERM)

    # A says it is draining, directly; nginx keeps serving new work (through B).
    deadline = time.monotonic() + 5
    health = None
    while time.monotonic() < deadline:
        health = httpx.get(f"{stack.a_url}/api/v1/health", timeout=5)
        if health.status_code == 503:
            break
        time.sleep(0.05)
    assert health is not None and health.status_code == 503 and health.json()["status"] == "draining", health
    assert health.headers["connection"].lower() == "close"
    refused = httpx.post(f"{stack.a_url}/api/v1/chat", json={"message": "x", "model": "mock-echo"}, headers=AUTH, timeout=5)
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "overloaded"
    new_turns = []
    for i in range(4):
        status, events = stream_chat(stack.url, {"message": f"echo:during drain {i}", "model": "gpt-4.1"})
        assert status == 200 and events[-1][0] == "done", events
        new_turns.append((events[0][1]["conversation_id"], f"during drain {i}"))
        assert httpx.get(f"{stack.url}/api/v1/health", timeout=5).status_code == 200
    assert stack.a_proc.p.poll() is None, "A stopped while its streams were still open"

    for t in threads:
        t.join(timeout=30)
    text = mock_text(10)
    for i in range(n):
        status, events = results[i]
        assert status == 200 and events[-1][0] == "done", f"stream {i}: {events[-3:]}"
        assert "".join(d["text"] for name, d, _ in events if name == "token") == text
    assert stack.a_proc.p.wait(timeout=DRAIN_S + 10) == 0

    # Every turn is stored complete, read through the survivor.
    for i in range(n):
        answer = final_answer(stack.b_url, results[i][1][0][1]["conversation_id"])
        assert answer["status"] == "complete" and answer["content"] == text, answer
    for cid, content in new_turns:
        answer = final_answer(stack.b_url, cid)
        assert answer["status"] == "complete" and answer["content"] == content
    # The drain was real: A carried some of the streams.
    a_log = stack.a_proc.log.read_text(errors="replace")
    assert any(f"drain-stream-{i}" in a_log for i in range(n)), "no stream went to instance A"
