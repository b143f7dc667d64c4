"""docs/openapi.yaml against the running server: schemathesis generates requests for every
operation (examples, boundary coverage and fuzzing, valid and invalid data) and checks that no
response is a 5xx server error the document does not list, that every status and content type
is documented, and that bodies and headers match their schemas."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import KEYS, REPO

SCHEMA = REPO / "docs" / "openapi.yaml"
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
])


def test_openapi_document_matches_server(relay_url, workdir):
    st = Path(sys.executable).with_name("st")
    report = workdir / "schemathesis"
    args = [
        str(st), "run", str(SCHEMA),
        "--url", relay_url,
        "-H", f"Authorization: Bearer {KEYS[0]}",
        "--checks", os.environ.get("E2E_SCHEMATHESIS_CHECKS", CHECKS),
        "--phases", os.environ.get("E2E_SCHEMATHESIS_PHASES", "examples,coverage,fuzzing"),
        "--max-examples", os.environ.get("E2E_SCHEMATHESIS_EXAMPLES", "40"),
        "--seed", os.environ.get("E2E_SCHEMATHESIS_SEED", "20261124"),
        "--workers", "2",
        "--request-timeout", "20",
        "--no-color",
        "--report", "junit", "--report-dir", str(report),
    ]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="", NO_COLOR="1")
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=workdir)
    out = r.stdout + r.stderr
    if r.returncode != 0 and tool_flake_only(report):
        # schemathesis draws schema examples within a time budget, so on a loaded machine the same
        # seed can draw differently on its replay and it reports "Inconsistent results" about its
        # own generation, with no request made. One more run tells that from a real finding.
        r = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=workdir)
        out = r.stdout + r.stderr
    assert r.returncode == 0, f"schemathesis failed (exit {r.returncode}):\n{out[-20000:]}"


def tool_flake_only(report: Path) -> bool:
    """True when every problem in the latest JUnit report is schemathesis's own "Inconsistent
    results" while generating examples: no check failed against the server."""
    reports = sorted(report.glob("junit-*.xml"))
    if not reports:
        return False
    text = reports[-1].read_text(errors="replace")
    problems = text.count("<error") + text.count("<failure")
    flakes = text.count("Inconsistent results")
    return problems > 0 and problems == flakes and "<failure" not in text
