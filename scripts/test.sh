#!/usr/bin/env bash
# Runs the whole test suite: Swift unit and integration tests (real sockets, a throw-away
# PostgreSQL cluster the tests start in a temporary folder), the Python end-to-end tests with the
# official SDKs, and a bounded fuzz run of the parsers (HTTP, JSON, SSE, provider streams; the
# seconds are split across them, see scripts/fuzz.sh). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
export PATH="/opt/swift/usr/bin:$PATH"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"

echo "== swift build" >&2
swift build --build-tests 2>&1 | tail -n 3
echo "== swift test" >&2
log=$(mktemp)
set +e
swift test --skip-build >"$log" 2>&1
swift_status=$?
set -e
grep -E '✘|Fatal error|Crash' "$log" | head -n 60 || true
if [[ $swift_status -ne 0 ]]; then tail -n 60 "$log"; exit "$swift_status"; fi
grep -E 'Test run with' "$log" | tail -n 1

if [[ -x scripts/fuzz.sh ]]; then
  echo "== fuzz the parsers for ${FUZZ_SECONDS}s in all" >&2
  scripts/fuzz.sh "$FUZZ_SECONDS"
fi

# pytest runs last so its closing line ("N passed") is the suite's last word.
if ls Tests/e2e/test_*.py >/dev/null 2>&1; then
  echo "== end-to-end (pytest)" >&2
  scripts/e2e.sh
fi
