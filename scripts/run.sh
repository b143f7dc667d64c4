#!/usr/bin/env bash
# Sets up and starts ChatRelay on a fresh Debian machine: installs the system packages, builds a
# release binary, and runs it. With DATABASE_URL unset it starts its own PostgreSQL in
# CHAT_DATA_DIR (./.chatrelay); with no provider key it serves the built-in mock models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product chatrelay >&2
exec .build/release/chatrelay "$@"
