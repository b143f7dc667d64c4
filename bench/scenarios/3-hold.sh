#!/usr/bin/env bash
# Scenario 3, hold: open HOLD_STREAMS streams (one token a second, a very long answer) in steps,
# sample the server's RSS and open fds at each step (per open stream), hold, then close them all.
# A relay needs two fds per stream (client + upstream) under the 20,000-per-process limit.
# Env: TARGETS, HOLD_STREAMS (5000), HOLD_STEPS ("1000,2000,3000,4000,5000"), SKIP_BUILD=1.
source "$(dirname "$0")/lib.sh"
S=hold
prepare $S
N="${HOLD_STREAMS:-5000}"
STEPS="${HOLD_STEPS:-1000,2000,3000,4000,5000}"
for t in $TARGETS; do
  if ! start_target "$t"; then skip $S "$t" "$SKIP_REASON"; stop_target; continue; fi
  log "$S: $t at $URL (server pids: $SERVER_PIDS)"
  bench --hold "$N" --steps "$STEPS" --hold-seconds 5 --open-timeout 60 \
    --mock-url "http://127.0.0.1:$MOCK_PORT" \
    --label "$S/$t/n$N" --json "$OUT/$S/$t-n$N.json" | tee -a "$OUT/$S/summary.txt"
  stop_target
done
