"""What the deploy tests share: the settings ChatRelay knows, the model catalogs the deploy files
ship, the shipped nginx config rendered into a throw-away nginx (prefix, pid and logs in a temp
folder), and a throw-away PostgreSQL."""

import glob
import os
import pwd
import re
import socket
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NGINX_CONF = DEPLOY / "nginx" / "chatrelay.conf"
CONFIG_SWIFT = REPO / "Sources" / "ChatAPI" / "Config" / "Config.swift"
CONFIG_LOADER = REPO / "Sources" / "ChatAPI" / "Config" / "ConfigLoader.swift"

def chatrelay_settings() -> set[str]:
    """Every environment variable ConfigLoader reads (str/int/seconds/url/list lookups)."""
    text = CONFIG_LOADER.read_text()
    names = set(re.findall(r'\b(?:str|int|seconds|url|list)\("([A-Z][A-Z0-9_]+)"', text))
    assert {"DATABASE_URL", "CHAT_API_KEYS", "CHAT_DRAIN_S", "PORT"} <= names, "ConfigLoader changed shape"
    return names


# --- model catalogs (docs/catalog.md) ---

MODELS_EXAMPLE = DEPLOY / "models.example.yaml"
K8S_MODELS_CONFIGMAP = DEPLOY / "kubernetes" / "models-configmap.yaml"
COMPOSE_MODELS = DEPLOY / "docker" / "models.yaml"
SYSTEMD_MODELS = DEPLOY / "systemd" / "models.yaml"


def k8s_models_configmap() -> dict:
    return yaml.safe_load(K8S_MODELS_CONFIGMAP.read_text())


def k8s_catalog_text() -> str:
    """The models.yaml embedded in the Kubernetes ConfigMap."""
    data = k8s_models_configmap()["data"]
    assert list(data) == ["models.yaml"], f"{K8S_MODELS_CONFIGMAP.name}: expected one key, models.yaml"
    return data["models.yaml"]


def catalog_deployments(text: str) -> list[dict]:
    """Every deployment of a catalog, in file order."""
    doc = yaml.safe_load(text)
    return [d for m in doc["models"] for d in m["deployments"]]


def catalog_key_variables(text: str) -> dict[str, bool]:
    """Each key variable a catalog names -> whether every deployment naming it is optional."""
    out: dict[str, bool] = {}
    for d in catalog_deployments(text):
        if "api_key_env" in d:
            out[d["api_key_env"]] = out.get(d["api_key_env"], True) and d.get("optional") is True
    return out


def config_default(name: str) -> float:
    """A numeric default from Config.swift (`public var name = 65_536`)."""
    m = re.search(rf"public var {name} = ([0-9_.]+)\b", CONFIG_SWIFT.read_text())
    assert m, f"no numeric default for {name} in Config.swift"
    return float(m.group(1).replace("_", ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- nginx ---

def nginx_binary() -> str | None:
    for p in ("/usr/sbin/nginx", "/usr/bin/nginx"):
        if os.access(p, os.X_OK):
            return p
    return None


def render_nginx(folder: Path, listen_port: int, upstream_ports: list[int]) -> Path:
    """The shipped chatrelay.conf with only its upstream `server` lines and `listen` port swapped,
    included from a minimal nginx.conf whose pid, logs and temp files live in `folder`."""
    text = NGINX_CONF.read_text()
    block = re.search(r"^upstream chatrelay \{\n(.*?)^\}", text, re.S | re.M)
    assert block, "deploy/nginx/chatrelay.conf has no `upstream chatrelay { ... }` block"
    lines = block.group(1).splitlines(keepends=True)
    servers = [i for i, l in enumerate(lines) if re.match(r"\s*server\s+\S+", l)]
    assert servers, "the upstream block has no server lines"
    indent, params = re.match(r"(\s*)server\s+\S+?((?:\s+[^;]+)?);", lines[servers[0]]).groups()
    ours = [f"{indent}server 127.0.0.1:{p}{params};\n" for p in upstream_ports]
    kept = [l for i, l in enumerate(lines) if i not in servers]
    kept[servers[0]:servers[0]] = ours
    text = text[:block.start(1)] + "".join(kept) + text[block.end(1):]
    assert text.count("listen 80;") == 1, "expected exactly one `listen 80;` in chatrelay.conf"
    text = text.replace("listen 80;", f"listen 127.0.0.1:{listen_port};")
    (folder / "chatrelay.conf").write_text(text)

    # As root the master would hand workers to `nobody`, who cannot use this folder.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    temps = "\n".join(f"    {k}_temp_path {folder}/{k}_temp;" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(f"""{user}worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {folder}/access.log;
{temps}
    include {folder}/chatrelay.conf;
}}
""")
    return conf


def nginx_args(conf: Path) -> list[str]:
    binary = nginx_binary()
    assert binary, "nginx is not installed (scripts/install-deps.sh --test installs it)"
    return [binary, "-p", str(conf.parent), "-e", str(conf.parent / "error.log"), "-c", str(conf)]


# --- PostgreSQL ---

class PostgresCluster:
    """initdb + pg_ctl in `root`, on a Unix socket only. As root the server runs as the
    `postgres` user (PostgreSQL refuses root), as ChatRelay's embedded cluster does."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.sockets = root / "run"
        self.log = root / "postgres.log"
        self.port = 5432  # the socket folder is ours alone, so the usual port cannot clash
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(re.sub(r"\D", "", p) or 0))
        bins = [b for b in candidates if os.access(f"{b}/initdb", os.X_OK)]
        assert bins, "PostgreSQL server binaries missing (apt-get install postgresql)"
        self.bin = bins[-1]
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def conninfo(self) -> str:
        return f"host={self.sockets} port={self.port} user=postgres dbname=postgres"

    def _run(self, tool: str, *args: str):
        r = subprocess.run(self.run_as + [f"{self.bin}/{tool}", *args], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({r.returncode}): {r.stdout}{r.stderr}\n{log}")

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self.run_as:
            pw = pwd.getpwnam("postgres")
            for p in (self.root, self.sockets):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
                  "--no-instructions")
        self.start_server()

    def start_server(self):
        """Starts the initialised cluster (again, after `stop`: a database outage that ends)."""
        opts = (f"-c listen_addresses='' -c unix_socket_directories='{self.sockets}' -p {self.port} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", opts, "start")

    def stop(self):
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
        except RuntimeError:
            pass
