#!/usr/bin/env bash
# End-to-end tests: the official OpenAI SDK, plain HTTP checks and a schemathesis run of
# docs/openapi.yaml against a real chatrelay (embedded PostgreSQL) in front of mock-upstream.
# Creates Tests/e2e/.venv (git-ignored) from Tests/e2e/requirements.txt, builds the debug
# products when missing, runs pytest and exits with its status. Binaries come from
# CHATRELAY_BUILD_DIR (default .build/debug). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

BUILD_DIR="${CHATRELAY_BUILD_DIR:-.build/debug}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$PWD/$BUILD_DIR"
export CHATRELAY_BUILD_DIR="$BUILD_DIR"

VENV="${E2E_VENV:-Tests/e2e/.venv}"
REQ=Tests/e2e/requirements.txt
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "== e2e: creating $VENV" >&2
  python3 -m venv "$VENV" >&2
fi
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "== e2e: pip install -r $REQ" >&2
  "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ" >&2
  echo "$want" >"$stamp"
fi

# Build what is missing. The scratch path is the build folder's parent (.build for .build/debug).
scratch="$(dirname "$BUILD_DIR")"
for product in chatrelay mock-upstream; do
  if [[ ! -x "$BUILD_DIR/$product" ]]; then
    echo "== e2e: swift build --product $product --scratch-path $scratch" >&2
    swift build --product "$product" --scratch-path "$scratch" 2>&1 | tail -n 3 >&2
  fi
done

if ! ls Tests/e2e/test_*.py >/dev/null 2>&1; then
  echo "e2e: no Tests/e2e/test_*.py" >&2
  exit 1
fi

set +e
"$VENV/bin/python" -m pytest Tests/e2e -p no:cacheprovider "$@"
status=$?
set -e
# 5 = no tests collected: never a pass.
if [[ $status -eq 5 ]]; then exit 1; fi
exit "$status"
