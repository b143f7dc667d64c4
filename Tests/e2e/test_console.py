"""The web console (GET /, console/ in the repository) in a real headless Chromium against a real
chatrelay and the mock upstream: sign-in (a wrong key is told so), an answer streamed token by
token, Stop storing the turn as cancelled, conversations paged, opened, continued and deleted,
the usage chart's numbers against the API's, a phone-sized screen and the keyboard. Every test
ends with no error in the browser's console but the one it provoked. Screenshots of each view go
to CONSOLE_SCREENSHOTS (default: a fresh folder under /tmp, named at the end of the run)."""

import json
import re
import tempfile
from pathlib import Path

import httpx
import pytest

from console_support import (KEY, NEEDS_BROWSER, SLOW_MODEL, api, browser, console_errors, console_relay,  # noqa: F401
                             js, open_console, sample_growth, screenshots, shot, stored_messages, wait_for, wait_until)
from deploy_support import nginx_binary
from stacks import start_nginx

# The mock upstream's answer words, in order (Sources/MockUpstream/MockDirectives.swift).
MOCK_WORDS = ["Hello", " from", " the", " mock", " upstream", ",", " token", " stream", " é", " ✓"]
CSP_MUST = ("default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'")


def by_id(driver, element_id):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, element_id)


def check_static_files(base: str):
    """GET / and every file it loads, with the headers a strict static site needs, and 304s."""
    with httpx.Client(base_url=base, timeout=10) as c:
        index = c.get("/")
        assert index.status_code == 200, index.text
        assert index.headers["content-type"] == "text/html; charset=utf-8"
        csp = index.headers["content-security-policy"]
        assert all(part in csp for part in CSP_MUST), csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert index.headers["x-content-type-options"] == "nosniff"
        assert index.headers["cache-control"] == "no-cache"
        etag = index.headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag
        again = c.get("/", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        # No inline script or style in the page: the CSP would block them.
        assert not re.search(r"<script(?![^>]*\bsrc=)", index.text) and " style=" not in index.text

        # Every file the page and its modules load is served with its type.
        types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
        pending = set(re.findall(r'(?:src|href)="(/console/[^"]+)"', index.text))
        seen = set()
        while pending:
            path = pending.pop()
            seen.add(path)
            r = c.get(path)
            assert r.status_code == 200, f"{path}: {r.status_code}"
            assert r.headers["content-type"] == types[Path(path).suffix], path
            assert r.headers["x-content-type-options"] == "nosniff" and r.headers["etag"], path
            if path.endswith(".js"):
                assert not re.search(r"\beval\(|new Function\(|\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML", r.text), path
                for module in re.findall(r'from "\./([^"]+)"', r.text):
                    if f"/console/{module}" not in seen:
                        pending.add(f"/console/{module}")
        assert {"/console/app.js", "/console/api.js", "/console/sse.js", "/console/chart.js"} <= seen, seen
        assert c.get("/console/missing.js").status_code == 404


def test_static_files_and_headers(console_relay):
    check_static_files(console_relay)


@pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed (scripts/install-deps.sh --test)")
def test_static_files_through_the_shipped_nginx_config(console_relay, workdir, request):
    root = Path(tempfile.mkdtemp(prefix="console-nginx-", dir=workdir))
    check_static_files(start_nginx(root, [console_relay], request))


@NEEDS_BROWSER
def test_sign_in_refuses_a_wrong_key_then_accepts_the_right_one(browser, console_relay, screenshots):
    d = browser
    d.get(f"{console_relay}/")
    js(d, "sessionStorage.clear()")
    d.get(f"{console_relay}/#/usage")
    wait_for(d, lambda _: by_id(d, "api-key").is_displayed())
    assert not by_id(d, "nav").is_displayed()
    # The sign-in form is focused: typing and Enter are enough.
    assert js(d, "return document.activeElement.id") == "api-key"
    by_id(d, "api-key").send_keys("not-a-key\n")
    error = by_id(d, "sign-in-error")
    wait_for(d, lambda _: error.is_displayed(), message="no message for a wrong key")
    assert "not accepted" in error.text and "invalid API key" in error.text, error.text
    assert js(d, "return sessionStorage.length") == 0
    shot(d, screenshots, "sign-in-wrong-key")
    # The 401 itself is the one console entry this test provokes.
    assert console_errors(d, allowed=["/api/v1/models - Failed to load resource: the server responded with a status of 401"]) == []

    by_id(d, "api-key").clear()
    by_id(d, "api-key").send_keys(KEY + "\n")
    wait_for(d, lambda _: by_id(d, "view-usage").is_displayed(), message="the usage view did not open after sign-in")
    assert by_id(d, "nav").is_displayed() and not error.is_displayed()
    assert js(d, "return sessionStorage.getItem('chatrelay.apiKey')") == KEY
    assert js(d, "return localStorage.length") == 0
    assert js(d, "return document.cookie") == ""
    assert console_errors(d) == []


@NEEDS_BROWSER
def test_playground_streams_an_answer_token_by_token(browser, console_relay, api, screenshots):
    from selenium.webdriver.support.ui import Select
    d = browser
    open_console(d, console_relay, "playground")
    wait_for(d, lambda _: len(Select(by_id(d, "pg-model")).options) > 2, message="no models in the picker")
    by_id(d, "pg-new").click()
    Select(by_id(d, "pg-model")).select_by_value(SLOW_MODEL)
    by_id(d, "pg-system").clear()
    by_id(d, "pg-system").send_keys("You are a patient counter.")
    by_id(d, "pg-temperature").send_keys("0.4")
    by_id(d, "pg-max-tokens").send_keys("200")
    by_id(d, "pg-message").send_keys("Count slowly [mock tokens=30 delay=80]")
    by_id(d, "pg-send").click()

    answer = "#pg-transcript li.assistant:last-child"
    read = lambda: js(d, f"return document.querySelector('{answer} .text')?.textContent ?? ''")  # noqa: E731
    state = lambda: js(d, f"return document.querySelector('{answer}')?.dataset.state")  # noqa: E731
    seen, final = sample_growth(read, lambda: state() in ("done", "error", "stopped"))
    assert state() == "done", by_id(d, "pg-error").text
    # Tokens appeared a few at a time while the answer streamed: many growing prefixes of the end.
    growing = [s for s in seen if s]
    assert all(b.startswith(a) and len(b) > len(a) for a, b in zip(growing, growing[1:])), growing
    partial = [s for s in growing if s != final]
    assert len(partial) >= 5, partial
    assert all(final.startswith(s) for s in partial), (partial[-1], final)

    conversation = by_id(d, "pg-conversation").get_attribute("data-conversation-id")
    messages = stored_messages(api, conversation)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["status"] == "complete" and messages[1]["content"] == final
    assert messages[1]["model"] == SLOW_MODEL
    assert api.get(f"/api/v1/conversations/{conversation}").json()["system"] == "You are a patient counter."

    stats = by_id(d, "pg-stats")
    assert "Time to first token" in stats.text and "tok/s" in stats.text, stats.text
    ttft = int(stats.get_attribute("data-ttft-ms"))
    rate = float(stats.get_attribute("data-tokens-per-second"))
    assert 0 < ttft < 10_000 and 0 < rate < 1000, stats.text
    assert str(messages[1]["usage"]["completion_tokens"]) in stats.text
    shot(d, screenshots, "playground")
    assert console_errors(d) == []


@NEEDS_BROWSER
def test_stop_aborts_the_answer_and_it_is_stored_cancelled(browser, console_relay, api, screenshots):
    d = browser
    open_console(d, console_relay, "playground")
    by_id(d, "pg-new").click()
    from selenium.webdriver.support.ui import Select
    wait_for(d, lambda _: len(Select(by_id(d, "pg-model")).options) > 2)
    Select(by_id(d, "pg-model")).select_by_value(SLOW_MODEL)
    by_id(d, "pg-message").send_keys("Go on for a while [mock tokens=300 delay=60]")
    by_id(d, "pg-send").click()
    answer = "#pg-transcript li.assistant:last-child"
    wait_for(d, lambda _: len(js(d, f"return document.querySelector('{answer} .text').textContent")) > 20,
             message="no tokens arrived")
    assert by_id(d, "pg-stop").is_enabled()
    by_id(d, "pg-stop").click()
    wait_for(d, lambda _: js(d, f"return document.querySelector('{answer}').dataset.state") == "stopped")
    shown = js(d, f"return document.querySelector('{answer} .text').textContent")
    assert "cancelled" in js(d, f"return document.querySelector('{answer} .meta').textContent")
    assert by_id(d, "pg-send").is_enabled() and not by_id(d, "pg-stop").is_enabled()

    conversation = by_id(d, "pg-conversation").get_attribute("data-conversation-id")
    last = wait_until(lambda: (m := stored_messages(api, conversation)[-1])["status"] != "streaming" and m)
    assert last["role"] == "assistant" and last["status"] == "cancelled", last
    # What the page showed is what was stored, up to the tokens that were on their way.
    assert last["content"].startswith(shown), (shown, last["content"])
    whole = "".join(MOCK_WORDS[i % len(MOCK_WORDS)] for i in range(300))  # the answer had it run to its end
    assert len(last["content"]) < len(whole) // 2, last["content"]
    shot(d, screenshots, "playground-stopped")
    assert console_errors(d) == []


@NEEDS_BROWSER
def test_errors_are_shown_as_the_api_reports_them(browser, console_relay, api):
    from selenium.webdriver.support.ui import Select
    d = browser
    open_console(d, console_relay, "playground")
    wait_for(d, lambda _: len(Select(by_id(d, "pg-model")).options) > 2)
    by_id(d, "pg-new").click()
    error = by_id(d, "pg-error")
    answer = "#pg-transcript li.assistant:last-child"

    # Refused before the stream (the provider said 400): the response's {"error": {"type", "message"}}.
    Select(by_id(d, "pg-model")).select_by_value(SLOW_MODEL)
    by_id(d, "pg-message").send_keys("Refuse this [mock fault=400]")
    by_id(d, "pg-send").click()
    wait_for(d, lambda _: error.is_displayed(), message="no error shown for a refused turn")
    with api.stream("POST", "/api/v1/chat", json={"model": SLOW_MODEL, "message": "Refuse this [mock fault=400]"}) as r:
        reported = json.loads(r.read())["error"]
    assert r.status_code == 400
    assert error.text == f"{reported['type']}: {reported['message']}", (error.text, reported)
    assert js(d, f"return document.querySelector('{answer}').dataset.state") == "error"

    # Failed mid-stream: the stream's own error event, after the tokens that came.
    by_id(d, "pg-message").send_keys("Break [mock tokens=10 delay=30 fault=midstream after=3]")
    by_id(d, "pg-send").click()
    wait_for(d, lambda _: js(d, f"return document.querySelector('{answer}').dataset.state") == "error",
             message="no error shown for a failed stream")
    assert re.match(r"^[a-z_]+: .+", error.text), error.text
    assert js(d, f"return document.querySelector('{answer} .text').textContent") != ""
    conversation = by_id(d, "pg-conversation").get_attribute("data-conversation-id")
    stored = wait_until(lambda: (m := stored_messages(api, conversation)[-1])["status"] != "streaming" and m)
    assert stored["status"] == "error" and stored["error"], stored
    assert console_errors(d, allowed=["/api/v1/chat - Failed to load resource: the server responded with a status of 400"]) == []


@NEEDS_BROWSER
def test_conversations_page_open_continue_and_delete(browser, console_relay, api, screenshots):
    from selenium.webdriver.common.by import By
    d = browser
    # More than one page (the console asks for 10 at a time), newest last.
    created = []
    for i in range(12):
        with api.stream("POST", "/api/v1/chat", json={"message": f"note number {i}", "model": "mock-echo"}) as r:
            assert r.status_code == 200
            body = r.read().decode()
        created.append(re.search(r'"conversation_id":"([0-9a-f-]{36})"', body).group(1))
    everything = []
    cursor = None
    while True:
        page = api.get("/api/v1/conversations", params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
        everything += [c["id"] for c in page["conversations"]]
        cursor = page["next_cursor"]
        if not cursor:
            break

    open_console(d, console_relay, "conversations")
    items = lambda: js(d, "return [...document.querySelectorAll('#conv-list li[data-id]')].map(e => e.dataset.id)")  # noqa: E731
    wait_for(d, lambda _: len(items()) == 10, message="the first page did not show 10 conversations")
    assert items() == everything[:10]
    assert items()[0] == created[-1]  # newest first
    more = by_id(d, "conv-more")
    assert more.is_displayed()
    more.click()
    wait_for(d, lambda _: len(items()) == min(20, len(everything)), message="the next page did not load")
    assert items() == everything[:len(items())]

    # Open the newest: its messages as stored.
    target = created[-1]
    d.find_element(By.CSS_SELECTOR, f'#conv-list li[data-id="{target}"] button').click()
    wait_for(d, lambda _: by_id(d, "conv-detail").is_displayed() and by_id(d, "conv-detail").get_attribute("data-id") == target)
    texts = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#conv-messages li .text")]
    assert texts == [m["content"] for m in stored_messages(api, target)] == ["note number 11", "note number 11"]
    shot(d, screenshots, "conversations")

    # Continue it in the playground: the history is shown and the next turn goes to it.
    by_id(d, "conv-continue").click()
    wait_for(d, lambda _: by_id(d, "view-playground").is_displayed())
    wait_for(d, lambda _: by_id(d, "pg-conversation").get_attribute("data-conversation-id") == target)
    wait_for(d, lambda _: len(d.find_elements(By.CSS_SELECTOR, "#pg-transcript li")) == 2)
    from selenium.webdriver.support.ui import Select
    Select(by_id(d, "pg-model")).select_by_value("mock-echo")
    by_id(d, "pg-message").send_keys("and one more")
    by_id(d, "pg-send").click()
    wait_for(d, lambda _: js(d, "return document.querySelector('#pg-transcript li.assistant:last-child').dataset.state") == "done")
    assert [m["content"] for m in stored_messages(api, target)] == ["note number 11", "note number 11", "and one more", "and one more"]

    # Delete it: the first press asks, the second deletes.
    open_console(d, console_relay, "conversations")
    wait_for(d, lambda _: target in items())
    d.find_element(By.CSS_SELECTOR, f'#conv-list li[data-id="{target}"] button').click()
    wait_for(d, lambda _: by_id(d, "conv-detail").get_attribute("data-id") == target and by_id(d, "conv-detail").is_displayed())
    delete = by_id(d, "conv-delete")
    delete.click()
    assert delete.text == "Really delete?"
    assert api.get(f"/api/v1/conversations/{target}").status_code == 200
    delete.click()
    wait_for(d, lambda _: target not in items() and not by_id(d, "conv-detail").is_displayed())
    assert api.get(f"/api/v1/conversations/{target}").status_code == 404
    assert console_errors(d) == []


@NEEDS_BROWSER
def test_usage_chart_shows_the_api_numbers(browser, console_relay, api, screenshots):
    from selenium.webdriver.common.by import By
    d = browser
    # Something to chart from two models, whatever ran before.
    for model in ("mock-echo", "mock-tokens-7"):
        with api.stream("POST", "/api/v1/chat", json={"message": "usage please", "model": model}) as r:
            assert r.status_code == 200
            r.read()
    usage = wait_until(lambda: (u := api.get("/api/v1/usage").json()) and {"mock-echo", "mock-tokens-7"} <= {r["model"] for r in u["data"]} and u)
    assert usage, "the usage ledger did not show the turns"

    open_console(d, console_relay, "usage")
    wait_for(d, lambda _: d.find_elements(By.CSS_SELECTOR, "#usage-chart svg[data-series=tokens] rect.bar"), message="no bars")
    usage = api.get("/api/v1/usage").json()  # what the page read, give or take a turn still being billed
    bars = js(d, """return [...document.querySelectorAll('#usage-chart svg[data-series=tokens] rect.bar')].map(r =>
        ({day: r.dataset.day, model: r.dataset.model, value: Number(r.dataset.value), height: Number(r.getAttribute('height')),
          title: r.querySelector('title').textContent}))""")
    expected = {(r["day"], r["model"]): r["prompt_tokens"] + r["completion_tokens"] for r in usage["data"]}
    assert {(b["day"], b["model"]): b["value"] for b in bars} == {k: v for k, v in expected.items() if v > 0}
    for b in bars:
        assert b["height"] > 0 and b["model"] in b["title"] and b["day"] in b["title"], b
    # Heights follow the values within a day's stack.
    if len(bars) > 1:
        big, small = max(bars, key=lambda b: b["value"]), min(bars, key=lambda b: b["value"])
        assert big["height"] >= small["height"]

    costs = js(d, """return [...document.querySelectorAll('#usage-chart svg[data-series=cost] rect.bar')].map(r =>
        ({day: r.dataset.day, model: r.dataset.model, value: Number(r.dataset.value)}))""")
    expected_cost = {(r["day"], r["model"]): float(r["cost_usd"]) for r in usage["data"] if float(r["cost_usd"]) > 0}
    assert {(c["day"], c["model"]): c["value"] for c in costs} == pytest.approx(expected_cost)

    rows = d.find_elements(By.CSS_SELECTOR, "#usage-table tbody tr")
    assert len(rows) == len(usage["data"])
    legend = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#usage-legend li")]
    assert legend == sorted({r["model"] for r in usage["data"]})
    totals = by_id(d, "usage-totals").text
    assert f"{usage['totals']['requests']:,} requests" in totals, totals
    # A CHAT_API_KEYS key has no limits, and the page says so.
    assert usage["limits"] is None and "none" in by_id(d, "usage-limits").text
    shot(d, screenshots, "usage")
    assert console_errors(d) == []


@NEEDS_BROWSER
def test_phone_sized_screen_and_accessibility(browser, console_relay, screenshots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    d = browser
    open_console(d, console_relay, "playground")
    # Every form control has a label, and everything clickable is a button or a link.
    unlabeled = js(d, """return [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.labels.length === 0).map(e => e.id || e.name)""")
    assert unlabeled == []
    assert js(d, "return document.querySelectorAll('[onclick], div[tabindex], span[tabindex]').length") == 0

    # The keyboard reaches the form: from the model picker, Tab goes on to the system prompt.
    by_id(d, "pg-model").send_keys(Keys.TAB)
    assert js(d, "return document.activeElement.id") == "pg-system"

    d.set_window_size(390, 844)
    try:
        for view in ("playground", "compare", "conversations", "usage"):
            open_console(d, console_relay, view)
            wait_for(d, lambda _: js(d, "return document.readyState") == "complete")
            if view == "usage":
                wait_for(d, lambda _: d.find_elements(By.CSS_SELECTOR, "#usage-chart svg"))
            overflow = js(d, "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{view}: {overflow}px wider than the phone's screen"
            shot(d, screenshots, f"phone-{view}")
    finally:
        d.set_window_size(1280, 900)

    # Signing out by keyboard, and in again: Enter in the key field submits.
    sign_out = by_id(d, "sign-out")
    assert sign_out.tag_name == "button"
    sign_out.send_keys(Keys.ENTER)
    wait_for(d, lambda _: by_id(d, "api-key").is_displayed())
    assert js(d, "return sessionStorage.length") == 0
    assert js(d, "return document.activeElement.id") == "api-key"
    by_id(d, "api-key").send_keys(KEY + Keys.ENTER)
    wait_for(d, lambda _: by_id(d, "nav").is_displayed())
    assert console_errors(d) == []
