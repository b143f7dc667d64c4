"""The console's Compare view in a real headless Chromium: two models answer one message side by
side (POST /api/v1/chat with `models`), both columns grow while the answers stream, each shows its
timings and cost, and choosing a run (POST /api/v1/conversations/{id}/runs/{run}/select) makes it
the one the conversation continues from. It needs the multi-model chat API (docs/API.md)."""

from console_support import (NEEDS_BROWSER, SLOW_MODEL, api, browser, console_errors, console_relay,  # noqa: F401
                             js, open_console, screenshots, shot, stored_messages, wait_for)

OTHER_MODEL = "claude-haiku-4-5"


def by_id(driver, element_id):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, element_id)


def columns(driver):
    return js(driver, """return [...document.querySelectorAll('#cmp-runs article.run')].map(a => ({
        run: a.dataset.run, model: a.dataset.model, state: a.dataset.state, selected: a.dataset.selected,
        cost: a.dataset.costUsd, text: a.querySelector('.text').textContent, stats: a.querySelector('.stats').textContent}))""")


def tick(driver, model):
    box = driver.find_element("css selector", f'#cmp-models input[value="{model}"]')
    if not box.is_selected():
        box.click()


@NEEDS_BROWSER
def test_compare_two_models_side_by_side_and_continue_from_one(browser, console_relay, api, screenshots):
    from selenium.webdriver.common.by import By
    d = browser
    open_console(d, console_relay, "compare")
    wait_for(d, lambda _: len(d.find_elements(By.CSS_SELECTOR, "#cmp-models input")) > 4, message="no models to pick")

    # At most four: past four picks the other boxes are disabled.
    available = js(d, "return [...document.querySelectorAll('#cmp-models input')].filter(b => !b.disabled).map(b => b.value)")
    for model in available[:4]:
        tick(d, model)
    assert js(d, "return [...document.querySelectorAll('#cmp-models input:not(:checked)')].every(b => b.disabled)")
    for box in d.find_elements(By.CSS_SELECTOR, "#cmp-models input:checked"):
        box.click()
    assert js(d, "return document.querySelectorAll('#cmp-models input:checked').length") == 0

    by_id(d, "cmp-new").click()
    tick(d, SLOW_MODEL)
    tick(d, OTHER_MODEL)
    by_id(d, "cmp-message").send_keys("Race me [mock tokens=25 delay=70]")
    by_id(d, "cmp-send").click()

    wait_for(d, lambda _: len(columns(d)) == 2, message=f"no run columns; error: {by_id(d, 'cmp-error').text}")
    assert [c["model"] for c in columns(d)] == [SLOW_MODEL, OTHER_MODEL]
    # Sample both columns while they stream: each grows, and both at the same time.
    samples = []
    ended = lambda: js(d, "return document.getElementById('cmp-runs').dataset.ended === '1'")  # noqa: E731
    wait_for(d, lambda _: (samples.append([c["text"] for c in columns(d)]) or ended()), timeout=30,
             message="the compare turn did not end")
    final = columns(d)
    texts = [c["text"] for c in final]
    for i, c in enumerate(final):
        partial = {s[i] for s in samples if s[i] and s[i] != texts[i]}
        assert len(partial) >= 4, f"{c['model']} did not stream: {sorted(partial, key=len)}"
        assert all(texts[i].startswith(p) for p in partial)
    both = [s for s in samples if all(s[i] and s[i] != texts[i] for i in range(2))]
    assert both, "the two answers never streamed at the same time"

    for c in final:
        assert c["state"] == "complete", c
        assert "TTFT" in c["stats"] and "$" in c["stats"], c
        assert c["cost"] != "", c
    conversation = by_id(d, "cmp-conversation").get_attribute("data-conversation-id")
    stored = [m for m in stored_messages(api, conversation) if m["role"] == "assistant"]
    assert {m["run"]["id"] for m in stored} == {c["run"] for c in final}
    assert {m["run"]["model"] for m in stored} == {SLOW_MODEL, OTHER_MODEL}
    for m in stored:
        column = next(c for c in final if c["run"] == m["run"]["id"])
        assert m["content"] == column["text"] and m["run"]["cost_usd"] == column["cost"]

    # Continue from the second model's answer.
    chosen = final[1]["run"]
    d.find_element(By.CSS_SELECTOR, f'#cmp-runs article[data-run="{chosen}"] button.choose').click()
    wait_for(d, lambda _: next(c for c in columns(d) if c["run"] == chosen)["selected"] == "1")
    runs = {m["run"]["id"]: m["run"]["selected"] for m in stored_messages(api, conversation) if m.get("run")}
    assert runs[chosen] is True and [r for r, s in runs.items() if s] == [chosen], runs
    shot(d, screenshots, "compare")

    # The next turn goes on from that conversation.
    by_id(d, "cmp-message").send_keys("And then? [mock tokens=3]")
    by_id(d, "cmp-send").click()
    wait_for(d, lambda _: ended() and len(columns(d)) == 2 and chosen not in [c["run"] for c in columns(d)], timeout=30)
    assert by_id(d, "cmp-conversation").get_attribute("data-conversation-id") == conversation
    users = [m["content"] for m in stored_messages(api, conversation) if m["role"] == "user"]
    assert users == ["Race me [mock tokens=25 delay=70]", "And then? [mock tokens=3]"]
    assert console_errors(d) == []

