"""Nothing lost: answers that finish while PostgreSQL is away are kept in the answer journal
before their clients get `done`, so a crash of ChatRelay during the outage loses none of them.

100 answers start while the database is up, the database stops while they stream, they finish
(every client gets `done`), ChatRelay is killed with SIGKILL, the database comes back and a new
ChatRelay on the same journal folder starts: every answer is then stored `complete` with the text
its client received. Without the journal the answers would exist only in the killed process's
memory, and the new instance would find their rows still `streaming` (swept to `interrupted`)."""

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from conftest import KEYS, start_relay
from stacks import shared_database

AUTH = {"Authorization": f"Bearer {KEYS[0]}"}
ANSWERS = 100
TOKENS = 20


class Answer:
    def __init__(self):
        self.message_id = None
        self.conversation_id = None
        self.text = ""
        self.tokens = 0
        self.first_token = threading.Event()
        self.done = None
        self.error = None


def stream_answer(base: str, n: int, a: Answer):
    """One streamed turn: slow enough (TOKENS × ~400 ms) that the database can go away mid-answer."""
    body = {"model": "gpt-4o-mini", "message": f"answer {n} [mock tokens={TOKENS} delay=400 jitter=20]"}
    try:
        with httpx.stream("POST", f"{base}/api/v1/chat", json=body, headers=AUTH, timeout=60) as r:
            if r.status_code != 200:
                a.error = f"HTTP {r.status_code}: {r.read()!r}"
                return
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: "):])
                    if event == "start":
                        a.message_id, a.conversation_id = data["message_id"], data["conversation_id"]
                    elif event == "token":
                        a.text += data["text"]
                        a.tokens += 1
                        a.first_token.set()
                    elif event == "done":
                        a.done = data
                    elif event == "error":
                        a.error = data
    except httpx.HTTPError as e:
        a.error = repr(e)
    finally:
        a.first_token.set()


def stored_answer(base: str, a: Answer):
    r = httpx.get(f"{base}/api/v1/conversations/{a.conversation_id}", headers=AUTH, timeout=10)
    if r.status_code != 200:
        return None
    return next((m for m in r.json()["messages"] if m["id"] == a.message_id), None)


def journal_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.journal"))


def test_answers_finished_during_an_outage_survive_a_crash(workdir, mock_port, request):
    root, pg = shared_database(workdir, "journal-", request)
    journal = root / "journal"
    env = {"DATABASE_URL": pg.conninfo, "CHAT_WORKERS": "2", "CHAT_JOURNAL_DIR": str(journal)}
    first_proc, first = start_relay(workdir, mock_port, "journal-first", env)
    request.addfinalizer(first_proc.stop)

    answers = [Answer() for _ in range(ANSWERS)]
    with ThreadPoolExecutor(max_workers=ANSWERS) as pool:
        for n, a in enumerate(answers):
            pool.submit(stream_answer, first, n, a)
        # Every answer has begun (its turn is stored); then the database goes away mid-stream.
        for a in answers:
            assert a.first_token.wait(30)
        assert all(a.error is None and a.message_id for a in answers), [a.error for a in answers if a.error][:3]
        assert all(a.tokens < TOKENS for a in answers), "answers finished before the outage"
        pg.stop()
    # The pool waited for every stream: each ended with `done` although nothing could be stored.
    assert [a.error for a in answers if a.error] == []
    assert all(a.done is not None for a in answers)
    assert all(a.tokens == TOKENS for a in answers)
    assert httpx.get(f"{first}/api/v1/health", timeout=5).json()["database"] == "unavailable"
    assert journal_bytes(journal) > 0

    first_proc.p.send_signal(signal.SIGKILL)
    first_proc.p.wait(timeout=10)

    pg.start_server()
    second_proc, second = start_relay(workdir, mock_port, "journal-second", env)
    request.addfinalizer(second_proc.stop)

    deadline = time.monotonic() + 60
    missing = answers
    while missing and time.monotonic() < deadline:
        missing = [a for a in missing if (m := stored_answer(second, a)) is None or m["status"] != "complete"]
        if missing:
            time.sleep(0.5)
    assert missing == [], [stored_answer(second, a) for a in missing[:3]]
    for a in answers:
        m = stored_answer(second, a)
        assert m["content"] == a.text
        assert m["finish_reason"] == a.done["finish_reason"]
    # Written, so the journal is emptied (and the killed instance's files are gone).
    deadline = time.monotonic() + 10
    while journal_bytes(journal) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert journal_bytes(journal) == 0
    assert len(list(journal.glob("*.journal"))) == 2  # the running instance's two workers
    metrics = httpx.get(f"{second}/metrics", timeout=10).text
    assert "\nchatrelay_journal_answers 0\n" in metrics
