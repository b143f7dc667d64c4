"""A real browser resumes a dropped answer stream: headless Chromium (driven by Selenium through
Debian's chromedriver, nothing downloaded) opens an `EventSource` on
`GET /api/v1/messages/{id}/stream?access_token=…` through a small proxy that cuts the connection
after three `token` events. The browser reconnects by itself with `Last-Event-ID`, the relay
continues from there, and the page ends with exactly the stored answer."""

import json
import re
import socket
import threading

import httpx
import pytest

from browser import NEEDS_BROWSER, chromium
from conftest import KEYS, start_relay

pytestmark = NEEDS_BROWSER

STREAM_PREFIX = "/api/v1/messages/"
# Long enough that the browser's reconnection (Chromium waits ~3 s by default) comes while the
# answer is still being generated, so the resumed stream follows it live.
PROMPT = "Tell me a story [mock tokens=120 delay=100]"
CUT_AFTER_TOKENS = 3

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>resume</title><link rel="icon" href="data:,"></head>
<body>
<pre id="answer" style="white-space: pre-wrap"></pre>
<script>
"use strict";
const q = new URLSearchParams(location.search);
const stats = window.stats = {open: 0, error: 0, tokens: 0, lastEventId: null, serverError: null, done: null};
const answer = document.getElementById("answer");
const es = new EventSource("/api/v1/messages/" + encodeURIComponent(q.get("id")) +
                           "/stream?access_token=" + encodeURIComponent(q.get("key")));
es.addEventListener("open", () => { stats.open++; });
es.addEventListener("token", (e) => {
  answer.textContent += JSON.parse(e.data).text;
  stats.tokens++;
  stats.lastEventId = e.lastEventId;
});
es.addEventListener("error", (e) => {
  if (typeof e.data === "string") {  // the server's own `event: error`: the answer failed
    stats.serverError = e.data;
    es.close();
    document.body.dataset.failed = "server sent an error event";
    return;
  }
  stats.error++;  // the connection failed; EventSource reconnects unless it gave up (CLOSED)
  if (es.readyState === EventSource.CLOSED) document.body.dataset.failed = "EventSource gave up reconnecting";
});
es.addEventListener("done", (e) => {
  stats.lastEventId = e.lastEventId;
  stats.done = JSON.parse(e.data);
  es.close();
  document.body.dataset.done = "1";
});
</script>
</body></html>
""".encode()


class CuttingProxy:
    """Serves PAGE at /resume.html and forwards every other request to the relay, one request per
    connection (`Connection: close` towards the relay). The first stream request's response is cut
    (both sockets) right after its third `event: token` frame has been forwarded."""

    def __init__(self, upstream: str):
        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        self.upstream = (host, int(port))
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._cut_claimed = False
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _track(self, s: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(s)
        return s

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(self._track(client),), daemon=True).start()

    @staticmethod
    def _kill(*socks: socket.socket):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _handle(self, client: socket.socket):
        upstream = None
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = client.recv(65536)
                if not data:
                    return
                buf += data
                if len(buf) > 65536:
                    return
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
            lower = {k.lower(): v for k, v in headers}
            cut = False
            if target.startswith(STREAM_PREFIX):
                with self._lock:
                    cut, self._cut_claimed = not self._cut_claimed, True
            record = {"method": method, "path": target, "last_event_id": lower.get("last-event-id"),
                      "cut": cut, "status": None, "token_frames": 0, "ids": []}
            with self._lock:
                self.requests.append(record)

            if method == "GET" and target.split("?")[0] == "/resume.html":
                record["status"] = 200
                client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
                               b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(PAGE) + PAGE)
                return

            upstream = self._track(socket.create_connection(self.upstream, timeout=30))
            upstream.settimeout(None)
            kept = [f"{k}: {v}" for k, v in headers if k.lower() not in ("connection", "keep-alive")]
            upstream.sendall("\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1") + rest)
            threading.Thread(target=self._pump_requests, args=(client, upstream), daemon=True).start()
            self._pump_response(upstream, client, record)
        except OSError:
            pass
        finally:
            self._kill(client, *([upstream] if upstream else []))

    def _pump_requests(self, client: socket.socket, upstream: socket.socket):
        try:
            while data := client.recv(65536):
                upstream.sendall(data)
        except OSError:
            pass
        self._kill(upstream)  # the browser hung up (EventSource.close()): so does the proxy

    def _pump_response(self, upstream: socket.socket, client: socket.socket, record: dict):
        seen = bytearray()
        sent = 0
        try:
            while data := upstream.recv(65536):
                seen += data
                if record["status"] is None and b"\r\n" in seen:
                    record["status"] = int(seen.split(b"\r\n", 1)[0].split()[1])
                end, cut_now = len(seen), False
                if record["cut"]:
                    at = -1
                    for _ in range(CUT_AFTER_TOKENS):
                        at = seen.find(b"event: token\n", at + 1)
                        if at < 0:
                            break
                    frame_end = seen.find(b"\n\n", at) if at >= 0 else -1
                    if frame_end >= 0:
                        end, cut_now = frame_end + 2, True
                        if seen[end:end + 2] == b"\r\n":  # the end of the HTTP chunk carrying the frame
                            end += 2
                client.sendall(bytes(seen[sent:end]))
                sent = end
                if cut_now:
                    return  # the network "drops": both sockets are cut (by _handle's finally)
        finally:
            text = seen[:sent].decode("utf-8", errors="replace")
            record["token_frames"] = text.count("event: token\n")
            record["ids"] = re.findall(r"^id: (\S+)$", text, flags=re.MULTILINE)

    def stream_requests(self) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"].startswith(STREAM_PREFIX)]

    def close(self):
        self._listener.close()
        with self._lock:
            socks, self._sockets = self._sockets, []
        self._kill(*socks)


@pytest.fixture(scope="module")
def relay(workdir, mock_port):
    proc, url = start_relay(workdir, mock_port, "browser-relay", {"CHAT_ON_DISCONNECT": "continue"})
    yield url
    proc.stop()


@pytest.fixture()
def proxy(relay):
    p = CuttingProxy(relay)
    yield p
    p.close()


@pytest.fixture()
def driver(workdir):
    with chromium(workdir / "chromedriver.log", "1000,800") as d:
        yield d


def start_turn(relay: str) -> dict:
    """Starts an answer with POST /api/v1/chat, reads only its `start` event and hangs up (the
    answer goes on: CHAT_ON_DISCONNECT=continue)."""
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    with httpx.Client(base_url=relay, headers=headers, timeout=30) as c:
        with c.stream("POST", "/api/v1/chat", json={"model": "gpt-4o-mini", "message": PROMPT}) as r:
            assert r.status_code == 200, r.read()
            event = {}
            for line in r.iter_lines():
                if line == "":
                    break
                name, _, value = line.partition(": ")
                event[name] = value
    assert event.get("event") == "start", event
    return json.loads(event["data"])


def test_browser_event_source_resumes_after_a_dropped_connection(relay, proxy, driver, workdir):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    start = start_turn(relay)
    mid, conv = start["message_id"], start["conversation_id"]
    stream_path = f"{STREAM_PREFIX}{mid}/stream"

    state = stats = None
    try:
        driver.get(f"{proxy.url}/resume.html?id={mid}&key={KEYS[0]}")
        try:
            state = WebDriverWait(driver, 30, poll_frequency=0.1).until(
                lambda d: d.execute_script("return document.body.dataset.done ? 'done' : (document.body.dataset.failed || null)"))
        except TimeoutException:
            state = "no done event within 30 s"
        stats = driver.execute_script("return window.stats")
        page_text = driver.execute_script("return document.getElementById('answer').textContent")
    finally:
        driver.save_screenshot(str(workdir / "browser-resume.png"))
        console = driver.get_log("browser")
    (workdir / "browser-console.json").write_text(json.dumps(console, indent=1))
    streams = proxy.stream_requests()
    shown = [{**r, "ids": r["ids"][:4] + (["…"] if len(r["ids"]) > 5 else []) + r["ids"][-1:] if len(r["ids"]) > 4 else r["ids"]}
             for r in proxy.requests]
    context = f"\nstate={state}\nstats={stats}\nrequests={json.dumps(shown, indent=1)}\nconsole={console}"
    print(context)  # shown with -rA / -s, and for a failure
    assert state == "done", context

    # The page holds exactly the stored, complete answer: nothing lost or repeated across the drop.
    with httpx.Client(base_url=relay, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=30) as c:
        r = c.get(f"/api/v1/conversations/{conv}")
    assert r.status_code == 200, r.text
    stored = next(m for m in r.json()["messages"] if m["id"] == mid)
    assert stored["role"] == "assistant" and stored["status"] == "complete", stored
    assert stored["content"], stored
    assert page_text == stored["content"], context
    assert stats["done"]["message_id"] == mid and stats["done"]["conversation_id"] == conv, context
    assert stats["lastEventId"] == f"{mid}:{len(stored['content'])}", context

    # The first stream was cut after three token events; the browser came back by itself with the
    # id of the last event it had, and the relay went on from there, live until `done`.
    assert len(streams) >= 2, context
    first, resumed = streams[0], streams[1]
    assert first["cut"] and first["status"] == 200 and first["token_frames"] == CUT_AFTER_TOKENS, context
    assert first["last_event_id"] is None, context
    m = re.fullmatch(re.escape(mid) + r":(\d+)", resumed["last_event_id"] or "")
    assert m and int(m.group(1)) > 0, context
    assert resumed["last_event_id"] == first["ids"][-1], context
    assert resumed["path"].split("?")[0] == stream_path and "access_token=" in resumed["path"], context
    assert resumed["status"] == 200, context
    assert resumed["token_frames"] >= 2, f"the resumed stream did not follow the answer live{context}"
    assert stats["open"] >= 2 and stats["error"] >= 1, context

    # No console errors but the cut connection's own.
    def expected(entry):
        return stream_path in entry["message"] and "net::ERR_" in entry["message"]
    severe = [e for e in console if e["level"] == "SEVERE" and not expected(e)]
    assert not severe, context
    assert (workdir / "browser-resume.png").stat().st_size > 0
