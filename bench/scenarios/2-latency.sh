#!/usr/bin/env bash
# Scenario 2, latency: 20 tokens 20 ms apart, closed loop at C=1,100,1000, per target. The mock
# stamps each token with its CLOCK_MONOTONIC send time; the harness, on the same machine, records
# receipt minus stamp. The mock-direct run is the baseline: added per-token delay of a relay =
# its stamp delay minus the direct one, added TTFT = its TTFT minus the direct one.
# Env: TARGETS, CONCURRENCY ("1 100 1000"), DURATION (10 s), TOKENS (20; fewer gives more TTFT
# samples per second at low concurrency), RAMP (seconds over which the C streams start, 0: all at
# once), JITTER (ms each token gap may move either way, 0: exactly 20 ms), SKIP_BUILD=1.
source "$(dirname "$0")/lib.sh"
S=latency
prepare $S
for t in $TARGETS; do
  if ! start_target "$t"; then skip $S "$t" "$SKIP_REASON"; stop_target; continue; fi
  log "$S: $t at $URL (server pids: $SERVER_PIDS)"
  bench --concurrency 10 --requests 100 --duration 5 --tokens 5 --quiet || true   # warm-up
  for c in ${CONCURRENCY:-1 100 1000}; do
    pg_before="$(pg_cpu_seconds)"
    bench --concurrency "$c" --requests 10000000 --duration "${DURATION:-10}" --grace 15 --timeout 30 \
      --tokens "${TOKENS:-20}" --token-delay-ms 20 --first-delay-ms 0 --ramp "${RAMP:-0}" \
      ${JITTER:+--directives "jitter=$JITTER"} \
      --label "$S/$t/c$c" --json "$OUT/$S/$t-c$c.json" | tee -a "$OUT/$S/summary.txt"
    [[ -z "$PG_PIDS" ]] || echo "  postgres cpu: $(echo "$pg_before $(pg_cpu_seconds)" | awk '{printf "%.2f", $2 - $1}') s" \
      | tee -a "$OUT/$S/summary.txt"
  done
  stop_target
done
