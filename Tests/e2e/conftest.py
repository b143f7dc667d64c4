"""Session fixtures: one mock upstream and one chatrelay (embedded PostgreSQL in a temp folder),
started on free ports before the first test and always stopped after the last. Their logs are
printed in the terminal summary when anything failed."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("CHATRELAY_BUILD_DIR", REPO / ".build" / "debug"))
KEYS = ("k1", "k2")
CORS_ORIGIN = "https://app.example"

_logs: list[Path] = []


class Proc:
    def __init__(self, name: str, args: list[str], env: dict, log: Path):
        self.name = name
        self.log = log
        self._file = open(log, "wb")
        self.p = subprocess.Popen(args, env=env, stdout=self._file, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=log.parent)
        _logs.append(log)

    def wait_for_line(self, predicate, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log.read_text(errors="replace").splitlines():
                found = predicate(line)
                if found is not None:
                    return found
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start (exit={self.p.poll()}):\n{self.log.read_text(errors='replace')}")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)  # chatrelay drains and stops its PostgreSQL
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
        self._file.close()


def _binary(name: str) -> str:
    path = BUILD_DIR / name
    if not path.exists():
        pytest.exit(f"{path} is missing: build it or set CHATRELAY_BUILD_DIR", returncode=1)
    return str(path)


@pytest.fixture(scope="session")
def workdir():
    # Under /tmp: as root chatrelay runs PostgreSQL as the postgres user, who must reach it.
    d = Path(tempfile.mkdtemp(prefix="chatrelay-e2e-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    if not _failed["any"]:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def mock_port(workdir, request):
    proc = Proc("mock-upstream", [_binary("mock-upstream"), "--port", "0"], dict(os.environ), workdir / "mock-upstream.log")
    request.addfinalizer(proc.stop)

    def port(line: str):
        if "listening on" in line:
            return int(line.rsplit(":", 1)[1])
        return None

    return proc.wait_for_line(port, timeout=15)


def wait_healthy(url: str, timeout: float, alive=lambda: True) -> bool:
    """Polls GET /api/v1/health until it answers 200 (True), the time is up or `alive()` is false."""
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def start_relay(workdir: Path, mock_port: int, name: str, extra_env: dict | None = None) -> tuple[Proc, str]:
    data = workdir / f"{name}-data"
    data.mkdir()
    os.chmod(data, 0o777)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CHAT_DEFAULT_MODEL", "CORS_ORIGINS")}
    base = f"http://127.0.0.1:{mock_port}"
    env.update({
        "OPENAI_API_KEY": "x", "OPENAI_BASE_URL": f"{base}/v1",
        "ANTHROPIC_API_KEY": "x", "ANTHROPIC_BASE_URL": base,
        "GOOGLE_API_KEY": "x", "GEMINI_BASE_URL": f"{base}/v1beta",
        "CHAT_API_KEYS": ",".join(KEYS), "CHAT_DATA_DIR": str(data),
        "HOST": "127.0.0.1", "PORT": "0", "CHAT_WORKERS": "1", "LOG_FORMAT": "json",
    })
    env.update(extra_env or {})
    proc = Proc(name, [_binary("chatrelay")], env, workdir / f"{name}.log")

    def port(line: str):
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        return obj.get("port") if obj.get("msg") == "listening" else None

    try:
        url = f"http://127.0.0.1:{proc.wait_for_line(port, timeout=60)}"
        if not wait_healthy(url, 30):
            raise RuntimeError(f"{name} never became healthy")
    except BaseException:
        proc.stop()
        raise
    return proc, url


@pytest.fixture(scope="session")
def relay_url(workdir, mock_port, request):
    """The shared server, with CORS_ORIGINS set (CORS only adds headers to requests with an Origin)."""
    proc, url = start_relay(workdir, mock_port, "chatrelay", {"CORS_ORIGINS": f"{CORS_ORIGIN},https://other.example"})
    request.addfinalizer(proc.stop)
    return url


@pytest.fixture(scope="session")
def base_url(relay_url):
    return relay_url


@pytest.fixture()
def http(relay_url):
    with httpx.Client(base_url=relay_url, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=30) as c:
        yield c


_failed = {"any": False}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        _failed["any"] = True
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if exitstatus == 0 or not _logs:
        return
    for log in _logs:
        terminalreporter.section(f"{log.name} (last 80 lines)")
        try:
            lines = log.read_text(errors="replace").splitlines()[-80:]
        except OSError as e:
            lines = [f"<unreadable: {e}>"]
        for line in lines:
            terminalreporter.write_line(line)
