"""Resumable streams on two instances sharing one PostgreSQL behind the shipped nginx config: a
client that drops mid-answer reconnects with Last-Event-ID (to the same instance, to the other
one, or through nginx) and receives exactly the rest of the answer; finished answers replay;
other keys and other answers' ids get 404, malformed ids 400; and when the generating instance is
killed, the resumed stream ends with an `interrupted` error within seconds and the stored answer
says so."""

import json
import os
import signal
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from conftest import KEYS, start_relay
from deploy_support import PostgresCluster, nginx_binary
from stacks import instances, shared_database, start_nginx

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed (scripts/install-deps.sh --test)")

AUTH = {"Authorization": f"Bearer {KEYS[0]}"}


class Stack:
    def __init__(self, url, a, b):
        self.url = url
        self.a_proc, self.a = a
        self.b_proc, self.b = b


@pytest.fixture(scope="module")
def stack(workdir, mock_port, request):
    root, pg = shared_database(workdir, "resume-stack-", request)
    a, b = instances(workdir, mock_port, ["resume-a", "resume-b"], {"DATABASE_URL": pg.conninfo, "CHAT_WORKERS": "2"}, request)
    return Stack(start_nginx(root, [a[1], b[1]], request), a, b)


def events(lines, stop_after_tokens=None):
    """(id, event, data) per SSE event of `lines` (a response's iter_lines()); stops after N token events."""
    out, ev, tokens = [], {}, 0
    for line in lines:
        if line == "":
            if ev:
                out.append((ev.get("id"), ev.get("event"), json.loads(ev["data"]) if "data" in ev else None))
                if ev.get("event") == "token":
                    tokens += 1
                    if stop_after_tokens is not None and tokens >= stop_after_tokens:
                        return out
                ev = {}
            continue
        if line.startswith(":"):
            continue
        k, _, v = line.partition(": ")
        ev[k] = v
    return out


def start_and_drop(base, tokens_before_drop, directives="[mock tokens=30 delay=60]", key=KEYS[0]):
    body = {"model": "gpt-4o-mini", "message": directives}
    with httpx.stream("POST", f"{base}/api/v1/chat", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30) as r:
        assert r.status_code == 200
        got = events(r.iter_lines(), stop_after_tokens=tokens_before_drop)
    start = next(d for _, e, d in got if e == "start")
    return start["message_id"], start["conversation_id"], got


def resume(base, message_id, last_event_id=None, key=KEYS[0], params=None):
    headers = {"Authorization": f"Bearer {key}"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    with httpx.stream("GET", f"{base}/api/v1/messages/{message_id}/stream", headers=headers, params=params, timeout=30) as r:
        return r.status_code, (events(r.iter_lines()) if r.status_code == 200 else r.read())


def stored(base, conversation_id, message_id):
    conv = httpx.get(f"{base}/api/v1/conversations/{conversation_id}", headers=AUTH).json()
    return next(m for m in conv["messages"] if m["id"] == message_id)


def text_of(evs):
    return "".join(d["text"] for _, e, d in evs if e == "token")


@pytest.mark.parametrize("where", ["same", "other", "nginx"])
def test_drop_then_resume_gets_exactly_the_rest(stack, where):
    message_id, conv, first = start_and_drop(stack.a, 5)
    last = [i for i, e, _ in first if e == "token"][-1]
    assert last.startswith(message_id + ":")
    base = {"same": stack.a, "other": stack.b, "nginx": stack.url}[where]
    status, rest = resume(base, message_id, last)
    assert status == 200
    assert rest[-1][1] == "done" and rest[-1][2]["finish_reason"] == "stop"
    answer = stored(stack.a, conv, message_id)
    assert answer["status"] == "complete"
    # Together: exactly the answer, nothing repeated, nothing missing.
    assert text_of(first) + text_of(rest) == answer["content"]
    # Every id names the answer and where the client is in it.
    positions = [int(i.rsplit(":", 1)[1]) for i, _, _ in rest]
    assert positions == sorted(positions) and positions[-1] == len(answer["content"])


def test_a_finished_answer_replays_the_rest_and_ends(stack):
    message_id, conv, first = start_and_drop(stack.a, 2, "[mock tokens=8]")
    deadline = time.monotonic() + 10
    while stored(stack.b, conv, message_id)["status"] != "complete" and time.monotonic() < deadline:
        time.sleep(0.1)
    content = stored(stack.b, conv, message_id)["content"]
    status, rest = resume(stack.b, message_id, f"{message_id}:3")
    assert status == 200 and [e for _, e, _ in rest] == ["token", "done"]
    assert text_of(rest) == content[3:] and rest[-1][2]["resumed"] is True
    # ?after= and no position at all.
    assert text_of(resume(stack.b, message_id, params={"after": "0"})[1]) == content
    assert text_of(resume(stack.a, message_id)[1]) == content


def test_other_keys_other_answers_and_bad_ids(stack):
    message_id, _, _ = start_and_drop(stack.a, 1, "[mock tokens=3]")
    other_id, _, _ = start_and_drop(stack.a, 1, "[mock tokens=3]")
    assert resume(stack.a, message_id, key=KEYS[1])[0] == 404
    assert resume(stack.b, message_id, key=KEYS[1])[0] == 404
    assert resume(stack.a, message_id, f"{other_id}:2")[0] == 404
    assert resume(stack.a, "00000000-0000-4000-8000-000000000000")[0] == 404
    for bad in ["12", "abc", f"{message_id}:-1", f"{message_id}:x", f"{message_id}"]:
        status, body = resume(stack.a, message_id, bad)
        assert status == 400, bad
        assert json.loads(body)["error"]["param"] == "Last-Event-ID"
    assert resume(stack.a, message_id, params={"after": "-3"})[0] == 400
    # The browser form of the key (EventSource cannot send headers).
    r = httpx.get(f"{stack.a}/api/v1/messages/{message_id}/stream", params={"access_token": KEYS[0]}, timeout=10)
    assert r.status_code == 200 and "event: done" in r.text
    assert httpx.get(f"{stack.a}/api/v1/messages/{message_id}/stream", params={"access_token": "nope"}).status_code == 401


def test_killing_the_generating_instance_ends_resumed_streams_as_interrupted(workdir, mock_port):
    """Its own pair of instances, since one of them is killed."""
    root = Path(tempfile.mkdtemp(prefix="resume-kill-", dir=workdir))
    os.chmod(root, 0o755)
    pg = PostgresCluster(root / "pg")
    pg.start()
    try:
        env = {"DATABASE_URL": pg.conninfo}
        gen_proc, gen = start_relay(workdir, mock_port, "resume-gen", env)
        fol_proc, fol = start_relay(workdir, mock_port, "resume-fol", env)
        try:
            message_id, conv, first = start_and_drop(gen, 3, "[mock tokens=200 delay=50]")
            last = [i for i, e, _ in first if e == "token"][-1]
            with httpx.stream("GET", f"{fol}/api/v1/messages/{message_id}/stream", headers={**AUTH, "Last-Event-ID": last},
                              timeout=30) as r:
                assert r.status_code == 200
                lines = r.iter_lines()
                # Follow until some progress arrives, then kill the generating instance.
                for line in lines:
                    if line.startswith("event: token"):
                        break
                gen_proc.p.send_signal(signal.SIGKILL)
                killed = time.monotonic()
                rest = events(lines)
            took = time.monotonic() - killed
            assert rest and rest[-1][1] == "error", rest[-3:]
            assert rest[-1][2]["error"]["type"] == "interrupted"
            assert took < 5, took
            assert stored(fol, conv, message_id)["status"] == "interrupted"
        finally:
            gen_proc.stop()
            fol_proc.stop()
    finally:
        pg.stop()
