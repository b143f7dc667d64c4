"""The production shape on loopback, shared by the multi-instance tests: one PostgreSQL, several
chatrelay instances on it, and the shipped nginx config in front of them."""

import os
import signal
import subprocess
import tempfile
from pathlib import Path

from conftest import Proc, _failed, start_relay, wait_healthy
from deploy_support import PostgresCluster, free_port, nginx_args, render_nginx


def stop_nginx(nginx: Proc, folder: Path):
    if nginx.p.poll() is None:
        nginx.p.send_signal(signal.SIGQUIT)  # graceful: finish open requests
        try:
            nginx.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nginx.p.kill()
    nginx.stop()
    if _failed["any"]:
        print((folder / "error.log").read_text(errors="replace")[-4000:])


def start_nginx(root: Path, urls: list[str], request) -> str:
    """nginx with deploy/nginx/chatrelay.conf in front of `urls`; stopped at the fixture's end."""
    folder = root / "nginx"
    folder.mkdir()
    port = free_port()
    conf = render_nginx(folder, port, [int(u.rsplit(":", 1)[1]) for u in urls])
    nginx = Proc("nginx", nginx_args(conf) + ["-g", "daemon off;"], dict(os.environ), folder / "nginx.out")
    request.addfinalizer(lambda: stop_nginx(nginx, folder))
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url, 20, alive=lambda: nginx.p.poll() is None):
        raise RuntimeError(f"nginx did not come up:\n{(folder / 'error.log').read_text(errors='replace')}")
    return url


def shared_database(workdir: Path, prefix: str, request) -> tuple[Path, PostgresCluster]:
    """A folder for the stack and one PostgreSQL in it, stopped at the fixture's end."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=workdir))
    os.chmod(root, 0o755)
    pg = PostgresCluster(root / "pg")
    pg.start()
    request.addfinalizer(pg.stop)
    return root, pg


def instances(workdir: Path, mock_port: int, names: list[str], env: dict, request) -> list[tuple[Proc, str]]:
    """chatrelay instances (process, URL) with `env`, stopped at the fixture's end."""
    out = []
    for name in names:
        proc, url = start_relay(workdir, mock_port, name, env)
        request.addfinalizer(proc.stop)
        out.append((proc, url))
    return out
