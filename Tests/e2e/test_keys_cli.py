"""`chatrelay keys ...` as an operator runs it: against a running server's embedded PostgreSQL
(which it must leave running), and against a data folder no server uses (whose PostgreSQL it
starts and stops itself). Secrets are printed once, alone on the last line; lists never show a
secret or its hash; bad input exits 2 with one clear line and writes nothing."""

import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import KEYS, _binary, start_relay, wait_healthy

ADMIN_KEY = "e2e-admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def keys_relay(workdir, mock_port, request):
    """A server with the admin API on; the CLI works on its data folder while it runs."""
    proc, url = start_relay(workdir, mock_port, "keys-relay", {"CHAT_ADMIN_KEYS": ADMIN_KEY})
    request.addfinalizer(proc.stop)
    return url, workdir / "keys-relay-data"


def cli_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CHAT_MODELS_FILE", "CHAT_ADMIN_KEYS")}
    env["CHAT_DATA_DIR"] = str(data_dir)
    return env


def keys(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    # Run from the data folder's parent: no .env or models.yaml of the repository applies.
    return subprocess.run([_binary("chatrelay"), "keys", *args], env=cli_env(data_dir), cwd=data_dir.parent,
                          capture_output=True, text=True, timeout=120)


def listed(data_dir: Path) -> list[dict]:
    r = keys(data_dir, "list", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["data"]


def test_create_pipes_the_secret_and_list_never_shows_it(keys_relay):
    url, data = keys_relay
    cmd = f"{shlex.quote(_binary('chatrelay'))} keys create --name e2e-ci --rpm 60 --budget-usd 12.50 --budget-period day " \
          f"--models mock-echo,gpt-4.1 | tail -1"
    piped = subprocess.run(cmd, shell=True, env=cli_env(data), cwd=data.parent, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    secret = piped.stdout.strip()
    assert secret.startswith("cr_") and len(secret) == 51 and "\n" not in secret, piped.stdout

    table = keys(data, "list")
    assert table.returncode == 0, table.stderr
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert "e2e-ci" in table.stdout and secret[:10] in table.stdout
    assert "rpm=60" in table.stdout and "budget=$12.50/day" in table.stdout
    assert secret not in table.stdout and digest not in table.stdout

    rows = [k for k in listed(data) if k["name"] == "e2e-ci"]
    assert len(rows) == 1
    key = rows[0]
    assert key["prefix"] == secret[:10] and key["rpm"] == 60 and key["budget_usd"] == "12.50"
    assert key["budget_period"] == "day" and key["models"] == ["mock-echo", "gpt-4.1"]
    assert "key_hash" not in key and digest not in json.dumps(key)

    # The running server sees the same key through the admin API, and is still serving.
    admin = httpx.get(f"{url}/admin/v1/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert admin.status_code == 200
    assert any(k["id"] == key["id"] and k["prefix"] == secret[:10] for k in admin.json()["data"])
    assert secret not in admin.text and digest not in admin.text


def test_rotate_prints_a_new_secret_and_revoke_marks_the_key(keys_relay):
    url, data = keys_relay
    created = keys(data, "create", "--name", "e2e-rotate")
    assert created.returncode == 0, created.stderr
    first = created.stdout.splitlines()[-1]
    key_id = next(k["id"] for k in listed(data) if k["name"] == "e2e-rotate")

    rotated = keys(data, "rotate", "e2e-rotate")
    assert rotated.returncode == 0, rotated.stderr
    second = rotated.stdout.splitlines()[-1]
    assert second.startswith("cr_") and len(second) == 51 and second != first
    after = next(k for k in listed(data) if k["id"] == key_id)
    assert after["prefix"] == second[:10] and after["rotated_at"] is not None and after["revoked_at"] is None

    revoked = keys(data, "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stdout
    gone = next(k for k in listed(data) if k["id"] == key_id)
    assert gone["revoked_at"] is not None
    table = keys(data, "list").stdout
    row = next(line for line in table.splitlines() if key_id in line)
    assert gone["revoked_at"] in row

    again = keys(data, "revoke", key_id)
    assert again.returncode == 0 and "already revoked" in again.stdout
    # A revoked key is not rotated back to life, and by name it is no longer found.
    assert keys(data, "rotate", key_id).returncode == 2
    assert keys(data, "revoke", "e2e-rotate").returncode == 2
    assert next(k for k in listed(data) if k["id"] == key_id)["prefix"] == second[:10]
    assert wait_healthy(url, 5)


@pytest.mark.parametrize("args, says", [
    (["--name", "bad", "--rpm", "-5"], "--rpm must be an integer from 1 to 10000000"),
    (["--name", "bad", "--rpm", "ten"], "--rpm must be an integer"),
    (["--name", "bad", "--tpm", "0"], "--tpm must be an integer from 1 to 10000000000"),
    (["--name", "bad", "--max-streams", "1.5"], "--max-streams must be an integer"),
    (["--name", "bad", "--models", "mock-echo,no-such-model"], "unknown model 'no-such-model' in --models"),
    (["--name", "bad", "--budget-usd", "5"], "--budget-period (day or month) is required with --budget-usd"),
    (["--name", "bad", "--budget-period", "month"], "--budget-period needs --budget-usd"),
    (["--name", "bad", "--budget-usd", "-1", "--budget-period", "day"], "--budget-usd must be greater than 0"),
    (["--name", "bad", "--budget-usd", "1e3", "--budget-period", "day"], "--budget-usd must be a plain decimal"),
    (["--name", "bad", "--budget-usd", "5", "--budget-period", "week"], "--budget-period must be day or month"),
    (["--rpm", "5"], "--name is required"),
    (["--name", "bad", "--colour", "red"], "unknown option --colour"),
])
def test_bad_input_exits_2_and_writes_nothing(keys_relay, args, says):
    _, data = keys_relay
    before = listed(data)
    r = keys(data, "create", *args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatrelay keys: ") and says in lines[0], r.stderr
    assert r.stdout == ""
    assert listed(data) == before


def test_unknown_keys_and_usage(keys_relay):
    _, data = keys_relay
    missing = keys(data, "revoke", "no-such-key")
    assert missing.returncode == 2 and "no key 'no-such-key'" in missing.stderr
    assert keys(data, "rotate", "00000000-0000-4000-8000-000000000000").returncode == 2
    helped = keys(data, "--help")
    assert helped.returncode == 0 and "chatrelay keys create --name NAME" in helped.stdout
    bare = keys(data)
    assert bare.returncode == 2 and "usage:" in bare.stderr


def test_the_server_keeps_its_database_through_cli_runs(keys_relay):
    url, data = keys_relay
    for _ in range(3):
        assert keys(data, "list").returncode == 0
    assert wait_healthy(url, 5)
    r = httpx.get(f"{url}/api/v1/conversations", headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=10)
    assert r.status_code == 200, r.text


def test_without_a_server_the_cli_starts_and_stops_its_own_database(workdir):
    data = workdir / "keys-cli-only-data"
    data.mkdir()
    os.chmod(data, 0o777)
    created = keys(data, "create", "--name", "offline")
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines()[-1].startswith("cr_")
    # The cluster it started (and migrated) is stopped again...
    assert not (data / "pg" / "data" / "postmaster.pid").exists()
    # ...and holds the key the next time.
    assert [k["name"] for k in listed(data)] == ["offline"]
    assert not (data / "pg" / "data" / "postmaster.pid").exists()
