#!/usr/bin/env bash
# Scenario 4, disconnect storm: open VANISH_STREAMS streams, close every client socket at once,
# then poll the mock upstream's /health active_streams and the server's fds and RSS until they are
# back to baseline; reports how long that took. ChatRelay runs with CHAT_ON_DISCONNECT=cancel.
# Env: VANISH_TARGETS (default: chatrelay-chat chatrelay-openai mock nginx), VANISH_STREAMS (10000),
#      VANISH_RESET=1 (close with RST instead of FIN), SKIP_BUILD=1.
source "$(dirname "$0")/lib.sh"
S=disconnect
TARGETS="${VANISH_TARGETS:-chatrelay-chat chatrelay-openai mock nginx}"
prepare $S
N="${VANISH_STREAMS:-10000}"
CHATRELAY_ENV=(CHAT_ON_DISCONNECT=cancel)
extra=()
[[ "${VANISH_RESET:-0}" == 1 ]] && extra+=(--reset)
for t in $TARGETS; do
  if ! start_target "$t"; then skip $S "$t" "$SKIP_REASON"; stop_target; continue; fi
  log "$S: $t at $URL (server pids: $SERVER_PIDS)"
  bench --vanish "$N" --open-timeout 60 --settle-timeout 60 --max-connects 512 \
    --mock-url "http://127.0.0.1:$MOCK_PORT" "${extra[@]}" \
    --label "$S/$t/n$N" --json "$OUT/$S/$t-n$N.json" | tee -a "$OUT/$S/summary.txt"
  stop_target
done
