#!/usr/bin/env bash
# Installs the Debian packages ChatRelay needs to build, test and run, when any is missing.
# Usage: scripts/install-deps.sh [--test]   (--test adds what the test suite needs)
set -euo pipefail
need=(pkg-config libcurl4-openssl-dev libpq-dev libssl-dev postgresql ca-certificates)
# prometheus: its promtool lints the /metrics output (Tests/e2e/test_metrics.py);
# nginx: the reverse-proxy tests run the shipped deploy/nginx config (Tests/e2e/test_nginx.py);
# chromium, chromium-driver: a real browser's EventSource resumes a dropped stream, driven by
# Selenium through Debian's chromedriver (Tests/e2e/test_browser_resume.py; nothing is downloaded).
if [[ "${1:-}" == "--test" ]]; then need+=(python3 python3-venv python3-pip prometheus nginx chromium chromium-driver); fi
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null; then
  for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do [[ -x $d/swift ]] && export PATH="$d:$PATH"; done
fi
command -v swift >/dev/null || { echo "Swift 6 toolchain not found: install it from swift.org and put it on PATH" >&2; exit 1; }
