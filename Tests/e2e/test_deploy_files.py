"""The deploy/ folder is consistent with the code: files parse, every variable they set is a real
setting (or a key variable their model catalog names), the catalog is mounted where
CHAT_MODELS_FILE says, ports, probes, images and shutdown timings agree, and nginx/systemd accept
their files. (Docker cannot run here: the Dockerfile and compose file are checked by reading
them. test_catalog_files.py loads the catalogs themselves with `chatrelay --check-models`.)"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from deploy_support import (COMPOSE_MODELS, DEPLOY, REPO, SYSTEMD_MODELS, catalog_deployments, catalog_key_variables,
                            chatrelay_settings, config_default, k8s_catalog_text, nginx_args, nginx_binary,
                            render_nginx)

K8S = DEPLOY / "kubernetes"
DOCKER = DEPLOY / "docker"
SYSTEMD = DEPLOY / "systemd"
SETTINGS = chatrelay_settings()


def load_yaml(path: Path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(docs) == 1, f"{path.name}: expected one document"
    return docs[0]


def k8s(name: str) -> dict:
    return load_yaml(K8S / f"{name}.yaml")


def seconds(value) -> float:
    """Compose durations ("45s", "1m30s") or plain numbers."""
    if isinstance(value, (int, float)):
        return float(value)
    total, rest = 0.0, str(value)
    for amount, unit in re.findall(r"([0-9.]+)(ms|s|m|h)", rest):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    assert total > 0, f"unreadable duration {value!r}"
    return total


def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def dockerfile_stages() -> list[tuple[str, str]]:
    """(image, stage name) of each FROM line."""
    return re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile(), re.M | re.I)


def package_products() -> set[str]:
    return set(re.findall(r'\.executable\(name: "([^"]+)"', (REPO / "Package.swift").read_text()))


def image_tag_built() -> str:
    """The tag the Dockerfile's build instructions give the image (`docker build -t NAME:TAG`)."""
    m = re.search(r"docker build .*-t (\S+)", dockerfile())
    assert m, "the Dockerfile should say how it is built and tagged"
    return m.group(1)


def compose() -> dict:
    return load_yaml(DOCKER / "compose.yaml")


def compose_relays(c: dict) -> dict:
    return {n: s for n, s in c["services"].items() if s.get("image", "").startswith("chatrelay") and "entrypoint" not in s}


# --- compose ---

def test_compose_services_and_settings():
    c = compose()
    relays = compose_relays(c)
    assert len(relays) >= 2, "compose should run several ChatRelay instances behind nginx"
    drain = config_default("drainSeconds")
    catalog_keys = set(catalog_key_variables(COMPOSE_MODELS.read_text()))
    for name, svc in relays.items():
        env = svc["environment"]
        unknown = set(env) - SETTINGS - catalog_keys
        assert not unknown, f"{name} sets variables neither ChatRelay nor its catalog reads: {unknown}"
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:" in env["DATABASE_URL"]
        drain = float(env.get("CHAT_DRAIN_S", drain))
        assert seconds(svc["stop_grace_period"]) > drain, f"{name}: stop_grace_period must exceed CHAT_DRAIN_S"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    pg = c["services"]["postgres"]
    assert all(k.startswith("POSTGRES_") for k in pg["environment"])
    assert "healthcheck" in pg and pg["volumes"]
    # The nginx service mounts the shipped config, and its upstream names the relay services.
    nginx = c["services"]["nginx"]
    mount = next(v for v in nginx["volumes"] if "chatrelay.conf" in v)
    assert (DOCKER / mount.split(":")[0]).resolve() == (DEPLOY / "nginx" / "chatrelay.conf").resolve()
    upstream = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", (DEPLOY / "nginx" / "chatrelay.conf").read_text(), re.M)
    assert {h for h, _ in upstream} == set(relays), "nginx upstream and compose services differ"
    assert {int(p) for _, p in upstream} == {8080}
    # The mock provider the demo catalog points at is a service, listening where the URLs say.
    mock = c["services"]["mock-upstream"]
    port = mock["entrypoint"][mock["entrypoint"].index("--port") + 1]
    urls = [d["base_url"] for d in catalog_deployments(COMPOSE_MODELS.read_text()) if "base_url" in d]
    assert urls, "the compose catalog should point its providers at the mock"
    for url in urls:
        assert url == f"http://mock-upstream:{port}" or url.startswith(f"http://mock-upstream:{port}/"), url


def test_compose_mounts_the_catalog():
    c = compose()
    keys = catalog_key_variables(COMPOSE_MODELS.read_text())
    for name, svc in compose_relays(c).items():
        path = svc["environment"]["CHAT_MODELS_FILE"]
        mounts = [v.split(":") for v in svc.get("volumes", []) if isinstance(v, str)]
        mount = next((m for m in mounts if len(m) >= 2 and m[1] == path), None)
        assert mount, f"{name}: nothing is mounted at CHAT_MODELS_FILE ({path})"
        assert (DOCKER / mount[0]).resolve() == COMPOSE_MODELS.resolve()
        assert mount[2:] == ["ro"], f"{name}: mount the catalog read-only"
        # A key variable the catalog needs and compose does not set would stop start-up.
        missing = {v for v, optional in keys.items() if not optional and v not in svc["environment"]}
        assert not missing, f"{name}: the catalog needs {missing}, which compose does not set"


def test_compose_build_and_images_agree_with_dockerfile():
    c = compose()
    tag = image_tag_built()
    for name, svc in c["services"].items():
        if "build" not in svc:
            continue
        assert svc["image"] == tag, f"{name} image {svc['image']} != Dockerfile tag {tag}"
        context = (DOCKER / svc["build"]["context"]).resolve()
        assert context == REPO, "the build context must be the repository root"
        assert (context / svc["build"]["dockerfile"]).resolve() == (DOCKER / "Dockerfile").resolve()
    assert (REPO / ".dockerignore").exists(), "without .dockerignore the context includes .build folders"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".build" in ignored and ".git" in ignored


# --- Dockerfile ---

def test_dockerfile_stages_and_products():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: build, then a slim runtime"
    build_image, build_name = stages[0]
    m = re.match(r"swift:(\d+)\.(\d+)[\w.-]*-bookworm$", build_image)
    assert m and int(m.group(1)) >= 6, f"build stage {build_image}: needs Swift >= 6 on bookworm"
    assert stages[-1][0] == "debian:bookworm-slim", "runtime stage must be debian:bookworm-slim (same libc as the build)"
    text = dockerfile()
    built = set(re.findall(r"--product (\S+)", text))
    assert "chatrelay" in built and built <= package_products(), f"{built} vs Package.swift {package_products()}"
    assert re.search(rf"COPY --from={build_name}\b", text), "runtime must copy from the build stage"
    runtime = text[text.rindex("FROM "):]
    assert "libcurl4" in runtime and "libpq5" in runtime and "libssl3" in runtime
    assert "-dev" not in runtime, "runtime stage installs build headers"
    # Either the Swift runtime is linked in, or its shared libraries are copied over.
    assert "--static-swift-stdlib" in text or "/usr/lib/swift/linux" in runtime
    assert re.search(r"^EXPOSE 8080$", text, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.M)
    user = re.findall(r"^USER (\S+)", runtime, re.M)
    assert user and not user[-1].startswith(("root", "0")), "the runtime runs as root"
    assert "/api/v1/health" in text


# --- Kubernetes ---

def test_kubernetes_files_parse_and_are_listed():
    kust = k8s("kustomization")
    listed = set(kust["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present, f"kustomization resources {listed} != files {present}"
    kinds = {k8s(Path(f).stem)["kind"]: k8s(Path(f).stem)["apiVersion"] for f in listed}
    assert kinds["HorizontalPodAutoscaler"] == "autoscaling/v2"
    assert kinds["PodDisruptionBudget"] == "policy/v1"
    assert kinds["Deployment"] == "apps/v1"


def test_kubernetes_settings_are_real():
    cm, secret = k8s("configmap"), k8s("secret")
    catalog_keys = set(catalog_key_variables(k8s_catalog_text()))
    for name, keys in (("configmap", cm["data"]), ("secret", secret["stringData"])):
        unknown = set(keys) - SETTINGS - catalog_keys
        assert not unknown, f"{name} sets variables neither ChatRelay nor its catalog reads: {unknown}"
    assert "DATABASE_URL" in secret["stringData"], "no embedded PostgreSQL in Kubernetes: DATABASE_URL is required"
    assert not set(cm["data"]) & set(secret["stringData"]), "a setting in both configmap and secret"
    assert all(isinstance(v, str) for v in list(cm["data"].values()) + list(secret["stringData"].values()))


def container() -> dict:
    return k8s("deployment")["spec"]["template"]["spec"]["containers"][0]


def test_kubernetes_deployment_wiring():
    dep, cm, secret, svc = k8s("deployment"), k8s("configmap"), k8s("secret"), k8s("service")
    c = container()
    refs = {next(iter(e.values()))["name"]: next(iter(e)) for e in c["envFrom"]}
    assert refs == {cm["metadata"]["name"]: "configMapRef", secret["metadata"]["name"]: "secretRef"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == int(cm["data"]["PORT"]) == 8080
    assert re.search(r'router\.add\(\.get, "/api/v1/health"\)',
                     (REPO / "Sources/ChatAPI/Server/Worker.swift").read_text()), "health route moved"
    ready = c["readinessProbe"]["httpGet"]
    assert ready["path"] == "/api/v1/health" and ready["port"] in ("http", 8080)
    # Health is 503 while draining: a liveness probe on it would kill pods mid-drain.
    live = c["livenessProbe"]
    assert "tcpSocket" in live or live.get("httpGet", {}).get("path") != "/api/v1/health"
    # Service and selector reach the pods.
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] in ("http", 8080)
    assert k8s("pdb")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert k8s("hpa")["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    # Read-only root: CHAT_DATA_DIR and /tmp must be writable volumes.
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert cm["data"]["CHAT_DATA_DIR"] in mounts and "/tmp" in mounts
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["http"]) and annotations["prometheus.io/path"] == "/metrics"


def test_kubernetes_catalog_is_mounted_read_only():
    cm, models = k8s("configmap"), k8s("models-configmap")
    path = Path(cm["data"]["CHAT_MODELS_FILE"])
    mount = next((m for m in container()["volumeMounts"] if m["mountPath"] == str(path.parent)), None)
    assert mount, f"nothing is mounted at {path.parent} (CHAT_MODELS_FILE is {path})"
    # A subPath mount never sees ConfigMap updates: a SIGHUP would reload the old file.
    assert mount.get("readOnly") is True and "subPath" not in mount
    volumes = {v["name"]: v for v in k8s("deployment")["spec"]["template"]["spec"]["volumes"]}
    source = volumes[mount["name"]]["configMap"]
    assert source["name"] == models["metadata"]["name"]
    files = {i["key"]: i["path"] for i in source["items"]} if "items" in source else {k: k for k in models["data"]}
    assert files.get("models.yaml") == path.name


def test_kubernetes_catalog_keys_come_from_the_secret():
    secret = k8s("secret")["stringData"]
    for var, optional in catalog_key_variables(k8s_catalog_text()).items():
        assert var in secret, f"the catalog reads {var}, which secret.yaml does not define"
        # Empty means unset: a deployment that is not optional would stop every pod.
        assert secret[var] or optional, f"{var} ships empty in secret.yaml but its deployments are not optional"


def test_kubernetes_grace_period_covers_prestop_and_drain():
    spec = k8s("deployment")["spec"]["template"]["spec"]
    drain = float(k8s("configmap")["data"].get("CHAT_DRAIN_S", config_default("drainSeconds")))
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", "preStop should wait for endpoint removal"
    sleep = float(command[1])
    assert spec["terminationGracePeriodSeconds"] > sleep + drain, \
        f"terminationGracePeriodSeconds {spec['terminationGracePeriodSeconds']} <= preStop {sleep} + CHAT_DRAIN_S {drain}"


def test_kubernetes_image_matches_build():
    tag = image_tag_built()
    name, _, version = tag.partition(":")
    assert container()["image"] == tag
    images = {i["name"]: i for i in k8s("kustomization")["images"]}
    assert name in images and str(images[name]["newTag"]) == version


# --- systemd ---

def unit() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (SYSTEMD / "chatrelay.service").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            k, _, v = line.partition("=")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def env_file() -> dict[str, str]:
    pairs = {}
    for line in (SYSTEMD / "chatrelay.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            pairs[k] = v
    return pairs


def test_systemd_limits_and_shutdown():
    u = unit()
    env = env_file()
    assert not set(env) - SETTINGS, f"chatrelay.env sets unknown variables: {set(env) - SETTINGS}"
    drain = float(env.get("CHAT_DRAIN_S", config_default("drainSeconds")))
    assert u["KillSignal"] == ["SIGTERM"]
    assert float(u["TimeoutStopSec"][-1]) > max(drain, config_default("drainSeconds"))
    # Each stream: a client socket and an upstream socket.
    max_conn = float(env.get("CHAT_MAX_CONNECTIONS", config_default("maxConnections")))
    assert int(u["LimitNOFILE"][-1]) >= 2 * max_conn
    assert u.get("DynamicUser") == ["yes"] or u.get("User", ["root"])[-1] != "root"
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("CapabilityBoundingSet", "")):
        assert u.get(key) == [value], f"{key}={u.get(key)}"
    assert set(u["RestrictAddressFamilies"][-1].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    # ProtectSystem=strict: the data folder must be writable some other way.
    data = next((v.split("=", 1)[1] for v in u.get("Environment", []) if v.startswith("CHAT_DATA_DIR=")), None)
    assert data and (data.removeprefix("/var/lib/") in u.get("StateDirectory", []) or data in " ".join(u.get("ReadWritePaths", [])))


def test_systemd_catalog_and_reload():
    u, env = unit(), env_file()
    # `systemctl reload` sends SIGHUP, which reloads the catalog.
    assert u["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    path = env["CHAT_MODELS_FILE"]
    assert path == "/etc/chatrelay/models.yaml", "the unit's install comment and the docs name this path"
    assert path in (SYSTEMD / "chatrelay.service").read_text()
    # Keys the env file leaves commented out are unset: only optional deployments may rely on them.
    for var, optional in catalog_key_variables(SYSTEMD_MODELS.read_text()).items():
        assert env.get(var) or optional, f"models.yaml needs {var}, which chatrelay.env does not set"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path):
    # The shipped unit, pointed at a binary and env file that exist here.
    binary = Path(os.environ.get("CHATRELAY_BUILD_DIR", REPO / ".build" / "debug")) / "chatrelay"
    text = (SYSTEMD / "chatrelay.service").read_text()
    text = text.replace("ExecStart=/usr/local/bin/chatrelay", f"ExecStart={binary if binary.exists() else '/bin/true'}")
    text = text.replace("EnvironmentFile=/etc/chatrelay/chatrelay.env", f"EnvironmentFile={SYSTEMD / 'chatrelay.env'}")
    path = tmp_path / "chatrelay.service"
    path.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [l for l in (r.stdout + r.stderr).splitlines() if "chatrelay.service" in l]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr


# --- nginx ---

def nginx_directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (DEPLOY / "nginx" / "chatrelay.conf").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"([a-z_]+)\s+(.*);$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test_nginx_config_fits_chatrelay():
    d = nginx_directives()
    assert d["proxy_buffering"] == ["off"] and d["proxy_cache"] == ["off"] and d["gzip"] == ["off"]
    assert d["proxy_http_version"] == ["1.1"] and 'Connection ""' in d["proxy_set_header"]
    assert d["keepalive"] and int(d["keepalive"][0]) > 0
    first_token = config_default("upstreamFirstTokenTimeoutSeconds")
    for key in ("proxy_read_timeout", "proxy_send_timeout"):
        assert seconds(d[key][0]) > first_token, f"{key} must outlast CHAT_UPSTREAM_FIRST_TOKEN_TIMEOUT_S"
    size = d["client_max_body_size"][0]
    assert size.endswith("m") and int(size[:-1]) * 1024 * 1024 == config_default("maxBodyBytes")
    retry = d["proxy_next_upstream"][0].split()
    assert {"error", "http_503", "non_idempotent"} <= set(retry)
    assert d["proxy_next_upstream_tries"] == ["2"]
    assert any(v.startswith("X-Request-Id ") for v in d["proxy_set_header"])
    # The idle upstream connection closes on nginx's side first.
    assert seconds(d["keepalive_timeout"][0]) < config_default("idleTimeoutSeconds")
    assert "all" in d["deny"]


@pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed")
def test_nginx_accepts_shipped_config():
    folder = Path(tempfile.mkdtemp(prefix="chatrelay-nginx-t-"))
    try:
        conf = render_nginx(folder, 18080, [18081, 18082])
        r = subprocess.run(nginx_args(conf) + ["-t"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- docs ---

def test_docs_name_existing_deploy_files():
    """Every deploy/... path the Markdown files and scripts mention exists."""
    missing = []
    for doc in list(REPO.glob("*.md")) + list((REPO / "docs").glob("*.md")) + list(DEPLOY.rglob("*.md")) \
            + list((REPO / "scripts").glob("*.sh")):
        for ref in re.findall(r"\bdeploy/[\w./-]*\w", doc.read_text()):
            if not (REPO / ref).exists():
                missing.append(f"{doc.relative_to(REPO)}: {ref}")
    assert not missing, missing
