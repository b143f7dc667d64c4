#!/usr/bin/env bash
# Scenario 1, throughput: 20 tokens with no delay, closed loop at C=1,10,100,1000, per target.
# Env: TARGETS, CONCURRENCY ("1 10 100 1000"), DURATION (10 s), SKIP_BUILD=1.
source "$(dirname "$0")/lib.sh"
S=throughput
prepare $S
for t in $TARGETS; do
  if ! start_target "$t"; then skip $S "$t" "$SKIP_REASON"; stop_target; continue; fi
  log "$S: $t at $URL (server pids: $SERVER_PIDS)"
  bench --concurrency 10 --requests 500 --duration 5 --tokens 20 --quiet || true   # warm-up
  for c in ${CONCURRENCY:-1 10 100 1000}; do
    bench --concurrency "$c" --requests 10000000 --duration "${DURATION:-10}" --grace 15 --timeout 30 \
      --tokens 20 --token-delay-ms 0 --first-delay-ms 0 \
      --label "$S/$t/c$c" --json "$OUT/$S/$t-c$c.json" | tee -a "$OUT/$S/summary.txt"
  done
  stop_target
done
