"""The model catalogs the repository ships and documents really load, through the server's own
loader (`chatrelay --check-models`): deploy/models.example.yaml, the catalogs of the Kubernetes,
compose and systemd set-ups (with the keys those set-ups ship), and every YAML example in
docs/catalog.md and README.md. The outputs the docs quote (the summary line, the error line) are
compared with what the binary prints, and the README's smallest catalog is loaded by a running
server, which is then reloaded with SIGHUP as docs/catalog.md describes."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import BUILD_DIR, KEYS, start_relay
from deploy_support import (COMPOSE_MODELS, DEPLOY, MODELS_EXAMPLE, REPO, SYSTEMD_MODELS, catalog_deployments,
                            catalog_key_variables, k8s_catalog_text)

CATALOG_DOC = REPO / "docs" / "catalog.md"
README = REPO / "README.md"
KINDS = {"openai", "anthropic", "gemini", "azure-openai", "openai-compatible", "mock"}


def binary() -> Path:
    path = BUILD_DIR / "chatrelay"
    assert path.exists(), f"{path} is missing: build it or set CHATRELAY_BUILD_DIR"
    return path


def check_models(text: str, folder: Path, keys: dict[str, str]) -> subprocess.CompletedProcess:
    """`chatrelay --check-models models.yaml` in an empty folder (no stray .env or models.yaml),
    with only PATH and `keys` in the environment (no key or CHAT_* setting leaks in from ours)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models.yaml").write_text(text)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **keys}
    return subprocess.run([str(binary()), "--check-models", "models.yaml"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)


def placeholder_keys(text: str) -> dict[str, str]:
    return {var: f"placeholder-{var.lower()}" for var in catalog_key_variables(text)}


def summary(text: str) -> str:
    """What --check-models prints for a catalog whose every key is set."""
    doc = yaml.safe_load(text)
    return f"models.yaml: ok, {len(doc['models'])} models, {len(catalog_deployments(text))} deployments"


def assert_loads(text: str, folder: Path, keys: dict[str, str] | None = None) -> str:
    r = check_models(text, folder, placeholder_keys(text) if keys is None else keys)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
    assert r.stderr == ""
    return r.stdout.strip()


def fenced_blocks(path: Path) -> list[tuple[str, str, int]]:
    """(info string, body, line) of each top-level ``` block."""
    text = path.read_text()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in re.finditer(r"^```(\w*)\n(.*?)^```[ \t]*$", text, re.S | re.M)]


def yaml_examples() -> list[tuple[str, str, str | None]]:
    """(where, YAML, expected error line or None) for every YAML block of the catalog page and the
    README. A YAML block followed directly by a text block starting `chatrelay: ` documents the
    error line that file produces; any other YAML block must load."""
    out = []
    for path in (CATALOG_DOC, README):
        blocks = fenced_blocks(path)
        for i, (info, body, line) in enumerate(blocks):
            if info != "yaml":
                continue
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            error = None
            if after and after[0] == "text" and after[1].startswith("chatrelay: "):
                error = after[1].splitlines()[0]
            out.append((f"{path.relative_to(REPO)}:{line}", body, error))
    return out


EXAMPLES = yaml_examples()


# --- the full example ---

def test_models_example_loads_and_covers_every_kind(tmp_path):
    text = MODELS_EXAMPLE.read_text()
    assert assert_loads(text, tmp_path) == summary(text)
    deployments = catalog_deployments(text)
    assert {d["provider"] for d in deployments} == KINDS
    compatible = [d for d in deployments if d["provider"] == "openai-compatible"]
    assert any("api_key_env" in d for d in compatible) and any("api_key_env" not in d for d in compatible), \
        "the example should show an OpenAI-compatible server with a key and a keyless one"
    assert "openai/*" in [m["name"] for m in yaml.safe_load(text)["models"]]


def test_catalog_page_includes_the_example_verbatim():
    bodies = [body for info, body, _ in fenced_blocks(CATALOG_DOC) if info == "yaml"]
    assert MODELS_EXAMPLE.read_text() in bodies, "docs/catalog.md's full example differs from deploy/models.example.yaml"


def test_documented_summary_line(tmp_path):
    """The `--check-models` output quoted in docs/catalog.md: the full example with only the keys
    its non-optional deployments need."""
    quoted = [body for info, body, _ in fenced_blocks(CATALOG_DOC)
              if info == "text" and body.startswith("$ chatrelay --check-models models.yaml\n")]
    assert len(quoted) == 1, "docs/catalog.md should quote one --check-models run"
    expected = quoted[0].splitlines()[1]
    text = MODELS_EXAMPLE.read_text()
    required = {v: "placeholder" for v, optional in catalog_key_variables(text).items() if not optional}
    assert assert_loads(text, tmp_path, required) == expected


# --- the examples in the docs ---

def test_docs_have_catalog_examples():
    where = [w for w, _, _ in EXAMPLES]
    assert sum(w.startswith("docs/catalog.md") for w in where) >= 3, where
    assert sum(w.startswith("README.md") for w in where) == 1, "README.md should show one catalog"


@pytest.mark.parametrize("where,text,error", EXAMPLES, ids=[w for w, _, _ in EXAMPLES])
def test_doc_example(where, text, error, tmp_path):
    assert isinstance(yaml.safe_load(text), dict) and "models" in yaml.safe_load(text), \
        f"{where}: every YAML example is a whole catalog"
    if error is None:
        assert assert_loads(text, tmp_path) == summary(text), where
    else:
        r = check_models(text, tmp_path, placeholder_keys(text))
        assert r.returncode == 2 and r.stdout == "", f"{where}: expected exit 2, got {r.returncode}: {r.stdout}"
        assert r.stderr.strip() == error, f"{where}: the documented error line is not what chatrelay prints"


# --- the catalogs the deploy set-ups ship, with the keys those set-ups ship ---

def k8s_secret_keys() -> dict[str, str]:
    secret = yaml.safe_load((DEPLOY / "kubernetes" / "secret.yaml").read_text())["stringData"]
    # Empty strings reach the pod as set-but-empty variables, which count as unset.
    return {k: v for k, v in secret.items() if k.endswith("_API_KEY")}


def compose_keys() -> dict[str, str]:
    """The relays' key variables as compose resolves them with nothing exported (${VAR:-default})."""
    c = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())
    env = c["x-chatrelay"]["environment"]
    resolved = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
    return {k: v for k, v in resolved.items() if k.endswith("_API_KEY")}


def systemd_keys() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "systemd" / "chatrelay.env").read_text().splitlines():
        k, _, v = line.strip().partition("=")
        if k.endswith("_API_KEY") and not k.startswith("#"):
            out[k] = v
    return out


SHIPPED = [
    ("kubernetes", k8s_catalog_text, k8s_secret_keys),
    ("compose", COMPOSE_MODELS.read_text, compose_keys),
    ("systemd", SYSTEMD_MODELS.read_text, systemd_keys),
]


@pytest.mark.parametrize("setup,text,keys", SHIPPED, ids=[s for s, _, _ in SHIPPED])
def test_shipped_catalog_loads_as_shipped(setup, text, keys, tmp_path):
    """Loads with the keys its set-up defines (a fresh deploy starts), and with every key set."""
    catalog = text()
    out = assert_loads(catalog, tmp_path / "shipped", keys())
    assert out.startswith(summary(catalog)), f"{setup}: {out}"
    assert assert_loads(catalog, tmp_path / "all-keys") == summary(catalog)


# --- the README's smallest catalog in a running server ---

def readme_catalog() -> str:
    blocks = [body for where, body, _ in EXAMPLES if where.startswith("README.md")]
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture(scope="module")
def catalog_relay(workdir, mock_port, request):
    """A server whose CHAT_MODELS_FILE is the README's catalog, with the local vLLM's URL pointed
    at the mock's OpenAI-compatible route (the only change)."""
    text = readme_catalog()
    assert text.count("http://localhost:8000/v1") == 1
    # Not workdir itself: the other servers run there and would take a ./models.yaml as theirs.
    folder = workdir / "catalog-readme"
    folder.mkdir()
    path = folder / "models.yaml"
    good = text.replace("http://localhost:8000/v1", f"http://127.0.0.1:{mock_port}/compat/v1")
    path.write_text(good)
    proc, url = start_relay(workdir, mock_port, "chatrelay-catalog", {"CHAT_MODELS_FILE": str(path)})
    request.addfinalizer(proc.stop)
    return proc, url, path, good


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[0]}"}


def sse_events(body: str) -> dict[str, dict]:
    events = {}
    for block in body.split("\n\n"):
        name = re.search(r"^event: (\w+)$", block, re.M)
        data = re.search(r"^data: (.*)$", block, re.M)
        if name and data:
            events[name.group(1)] = json.loads(data.group(1))
    return events


def test_readme_catalog_is_served(catalog_relay, mock_port):
    _, url, _, _ = catalog_relay
    models = httpx.get(f"{url}/api/v1/models", headers=auth(), timeout=10).json()
    assert models["catalog"] == {"version": 1, "source": "file"}
    assert models["default_model"] == "chat", "no default_model: the first available model"
    assert [(m["id"], m["provider"], m["available"]) for m in models["models"]] == \
        [("chat", "openai", True), ("llama-local", "openai-compatible", True)]
    assert models["providers"] == {"openai": True, "openai-compatible": True}

    # The keyless local server gets the upstream model id, `max_tokens` and no key.
    r = httpx.post(f"{url}/api/v1/chat", headers=auth(), timeout=30,
                   json={"model": "llama-local", "message": "[mock tokens=3] hi"})
    assert r.status_code == 200, r.text
    events = sse_events(r.text)
    assert events["start"]["provider"] == "openai-compatible" and events["start"]["deployment"] == "vllm-gpu1"
    assert "done" in events, r.text
    last = httpx.get(f"http://127.0.0.1:{mock_port}/last-request", timeout=10)
    assert last.headers["x-mock-path"] == "/compat/v1/chat/completions"
    sent = last.json()
    assert sent["model"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert "max_tokens" in sent and "max_completion_tokens" not in sent

    conversation = httpx.get(f"{url}/api/v1/conversations/{events['start']['conversation_id']}", headers=auth(),
                             timeout=10).json()
    answer = conversation["messages"][-1]
    assert (answer["model"], answer["provider"], answer["deployment"], answer["upstream_model"]) == \
        ("llama-local", "openai-compatible", "vllm-gpu1", "meta-llama/Llama-3.3-70B-Instruct")


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    m = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, re.M)
    assert m, f"{name} missing from /metrics"
    return float(m.group(1))


def reload(proc, url: str, outcome: str) -> None:
    """SIGHUP, then wait until /metrics counts the reload."""
    name = f'chatrelay_catalog_reloads_total{{outcome="{outcome}"}}'
    before = metric(url, name)
    proc.p.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while metric(url, name) == before:
        assert time.monotonic() < deadline, f"no {outcome} reload counted after SIGHUP"
        time.sleep(0.05)


def test_sighup_refuses_a_bad_catalog_and_loads_a_good_one(catalog_relay):
    proc, url, path, good = catalog_relay
    # A bad file: refused, logged, and the catalog in force stays.
    path.write_text(good.replace("provider: openai\n", "provider: openia\n", 1))
    reload(proc, url, "failure")
    assert metric(url, "chatrelay_catalog_last_reload_success") == 0
    assert metric(url, "chatrelay_catalog_version") == 1
    models = httpx.get(f"{url}/api/v1/models", headers=auth(), timeout=10).json()
    assert models["catalog"]["version"] == 1 and [m["id"] for m in models["models"]] == ["chat", "llama-local"]
    log = proc.log.read_text(errors="replace")
    assert "catalog reload refused; the previous catalog stays in force" in log
    assert "provider: 'openia' is not one of" in log

    # A good one, with a model more: in force for the next request.
    path.write_text(good + "  - name: mock-echo\n    deployments:\n      - id: mock\n        provider: mock\n")
    reload(proc, url, "success")
    assert metric(url, "chatrelay_catalog_last_reload_success") == 1
    assert metric(url, "chatrelay_catalog_version") == 2
    assert metric(url, "chatrelay_catalog_models") == 3
    models = httpx.get(f"{url}/api/v1/models", headers=auth(), timeout=10).json()
    assert models["catalog"]["version"] == 2 and models["models"][-1]["id"] == "mock-echo"
