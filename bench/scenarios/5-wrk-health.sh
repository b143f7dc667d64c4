#!/usr/bin/env bash
# Scenario 5, plain HTTP: wrk on ChatRelay's GET /api/v1/health (and, for scale, the mock
# upstream's GET /health and nginx relaying it). 1 wrk thread pinned to the harness core.
# Env: WRK_CONNECTIONS ("10 100"), DURATION (10 s), TARGETS, SKIP_BUILD=1.
source "$(dirname "$0")/lib.sh"
S=wrk
prepare $S
command -v wrk >/dev/null || { skip $S all "wrk not installed (apt-get install wrk)"; exit 0; }
for t in $(echo $TARGETS | tr ' ' '\n' | sed 's/^chatrelay-.*/chatrelay/' | awk '!seen[$0]++'); do
  case "$t" in
    mock) path=/health ;;
    nginx) path=/health ;;
    chatrelay|chatrelay-chat|chatrelay-openai) t=chatrelay; path=/api/v1/health ;;
    *) continue ;;
  esac
  if ! start_target "$t"; then skip $S "$t" "$SKIP_REASON"; stop_target; continue; fi
  for c in ${WRK_CONNECTIONS:-10 100}; do
    log "$S: $t $URL$path c=$c"
    taskset -c "$HARNESS_CPU" wrk -t1 -c"$c" -d"${DURATION:-10}s" --latency "$URL$path" >"$OUT/$S/$t-c$c.txt" 2>&1 || true
    cat "$OUT/$S/$t-c$c.txt" | tee -a "$OUT/$S/summary.txt"
  done
  stop_target
done
