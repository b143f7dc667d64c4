#!/usr/bin/env bash
# Resumable streams at 1,000 open answers: ChatRelay (release, 1 worker) holding 1,000 streamed
# /api/v1/chat turns (one token every 100 ms each, 10,000 tokens/s in all) for HOLD_S seconds,
# with progress writes on (CHAT_PROGRESS_INTERVAL_MS=250) and off (0), alternating, ROUNDS times.
# Records the server's CPU (ChatRelay + its PostgreSQL processes) per variant and the progress
# writes counted in /metrics (statements per worker per interval); then, with writes on, the time
# to a resumed stream's first byte (bench/resume-latency.py).
# Env: ROUNDS (3), HOLD_S (20), STREAMS (1000), SKIP_BUILD=1.
source "$(dirname "$0")/scenarios/lib.sh"
S=resume
prepare $S
STREAMS="${STREAMS:-1000}"
HOLD_S="${HOLD_S:-20}"
summary="$OUT/$S/summary.tsv"
printf 'round\tinterval_ms\tserver_cpu_s\tpg_cpu_s\tprogress_writes\twrites_per_interval\n' >"$summary"
metric() { curl -sf "$URL/metrics" | awk -v m="$1" 'index($0, m " ") == 1 { print $2; f = 1 } END { if (!f) print 0 }'; }
cpu_of() {  # summed utime+stime seconds of the given pids
  local t=0 p
  for p in "$@"; do [[ -r /proc/$p/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
for round in $(seq 1 "${ROUNDS:-3}"); do
  for interval in 250 0; do
    CHATRELAY_EXTRA_ENV="CHAT_PROGRESS_INTERVAL_MS=$interval"
    start_target chatrelay-chat || { log "chatrelay did not start: $SKIP_REASON"; exit 1; }
    pg_master="$(pgrep -f -- "-D ${TMPDIRS[${#TMPDIRS[@]}-1]}/pg/data" | head -1)"
    writes0=$(metric chatrelay_progress_writes_total)
    pg0=$(cpu_of $(pgrep -P "$pg_master") "$pg_master")
    json="$OUT/$S/r$round-i$interval.json"
    bench --hold "$STREAMS" --hold-seconds "$HOLD_S" --tokens 100000 --token-delay-ms 100 --json "$json" --quiet || true
    pg1=$(cpu_of $(pgrep -P "$pg_master") "$pg_master")
    writes=$(( $(metric chatrelay_progress_writes_total) - writes0 ))
    python3 - "$json" "$round" "$interval" "$(( pg1 - pg0 ))" "$writes" "$HOLD_S" >>"$summary" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
tick = 100  # clock ticks per second (getconf CLK_TCK)
pg = int(sys.argv[4]) / tick
writes, hold, interval = int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[3])
per = writes / max(1.0, j["elapsed_s"] / (interval / 1000)) if interval else 0
print(f"{sys.argv[2]}\t{interval}\t{j['server_cpu_s']:.2f}\t{pg:.2f}\t{writes}\t{per:.3f}")
PY
    tail -1 "$summary" >&2
    if [[ $interval == 250 && $round == 1 ]]; then
      python3 "$BENCH/resume-latency.py" "$URL" "$TARGET_KEY" 300 | tee "$OUT/$S/latency.txt" >&2
    fi
    stop_target
  done
done
python3 - "$summary" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def med(interval, col):
    return statistics.median(float(r[col]) for r in rows if r["interval_ms"] == interval)
on, off = med("250", "server_cpu_s") + med("250", "pg_cpu_s"), med("0", "server_cpu_s") + med("0", "pg_cpu_s")
print(f"\nmedians: relay+PostgreSQL CPU with progress writes {on:.2f} s, without {off:.2f} s: +{(on / off - 1) * 100:.1f}%; "
      f"relay alone {med('250', 'server_cpu_s'):.2f} vs {med('0', 'server_cpu_s'):.2f} s; "
      f"writes per worker per 250 ms interval {med('250', 'writes_per_interval'):.3f}")
PY
