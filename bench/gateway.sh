#!/usr/bin/env bash
# Multi-model turns, the response cache and request coalescing, each side by side with the plain
# path on ONE ChatRelay (mock upstream, built-in catalog), alternating within each round:
#   A. a 4-model turn against a 1-model turn: server CPU per turn (target: at most 4×);
#   B. cache hits against live answers on scenario 1's load (20 tokens, no delay, closed loop),
#      on /v1/chat/completions (nothing stored per answer) and /api/v1/chat (each answer, hit or
#      not, is stored in its conversation with a synchronous commit): answers/s (target: hits at
#      least 5×);
#   C. 100 identical requests joined to one upstream stream against 10 and against 100 separate
#      streams (100 tokens 20 ms apart, /v1/chat/completions so that no per-answer storage is in
#      the figure): server CPU for the whole batch (target: 100 joined < 10 separate).
# Env: ROUNDS (3), DURATION (10 s), CONCURRENCY ("10"), SKIP_BUILD=1.
source "$(dirname "$0")/scenarios/lib.sh"
S=gateway
prepare $S
start_target chatrelay-chat || { log "chatrelay did not start: $SKIP_REASON"; exit 1; }
BENCH_TARGET=chat
log "$S: ChatRelay at $URL (server pids: $SERVER_PIDS)"
bench --concurrency 10 --requests 2000 --duration 5 --tokens 20 --quiet || true   # warm-up
summary="$OUT/$S/summary.tsv"
printf 'round\tpart\tcase\tconcurrency\tanswers_per_s\tcpu_s_per_1000\tcompleted\tcpu_s_total\n' >"$summary"
row() {  # row ROUND PART CASE C JSON
  python3 - "$@" >>"$summary" <<'PY'
import json, sys
r, part, case, c, path = sys.argv[1:6]
j = json.load(open(path))
done = max(1, j["completed"] - j.get("error_total", 0))
per = j["server_cpu_s_per_1000"]
print(f"{r}\t{part}\t{case}\t{c}\t{j['rps']:.1f}\t{per:.4f}\t{done}\t{per * done / 1000:.4f}")
PY
  tail -1 "$summary" >&2
}
for round in $(seq 1 "${ROUNDS:-3}"); do
  for c in ${CONCURRENCY:-10}; do
    # A. one model against four (the same model four times: four upstream streams per turn).
    for models in 1 4; do
      json="$OUT/$S/r$round-multi-$models-c$c.json"
      extra=()
      [[ $models == 4 ]] && extra=(--models gpt-4o-mini,gpt-4o-mini,gpt-4o-mini,gpt-4o-mini)
      bench --concurrency "$c" --requests 10000000 --duration "${DURATION:-10}" --grace 15 --timeout 30 \
        --tokens 20 --token-delay-ms 0 --first-delay-ms 0 --no-stamp "${extra[@]}" \
        --label "$S/multi/$models/c$c" --json "$json" --quiet || true
      row "$round" multi "$models" "$c" "$json"
    done
    # B. live answers against hits (the first request of the hit run fills the cache).
    for surface in openai chat; do
      BENCH_TARGET=$surface
      for which in live hit; do
        json="$OUT/$S/r$round-cache-$surface-$which-c$c.json"
        extra=()
        [[ $which == hit ]] && extra=(--cache-ttl 600 --prompt "cache round $round")
        bench --concurrency "$c" --requests 10000000 --duration "${DURATION:-10}" --grace 15 --timeout 30 \
          --tokens 20 --token-delay-ms 0 --first-delay-ms 0 --no-stamp "${extra[@]}" \
          --label "$S/cache/$surface/$which/c$c" --json "$json" --quiet || true
        row "$round" "cache-$surface" "$which" "$c" "$json"
      done
    done
    BENCH_TARGET=chat
  done
  # C. separate streams against 100 requests joined to one (a fresh prompt: a cold cache).
  BENCH_TARGET=openai
  for which in separate10 separate100 joined100; do
    json="$OUT/$S/r$round-join-$which.json"
    n=${which//[a-z]/}
    extra=()
    [[ $which == joined* ]] && extra=(--cache-ttl 600 --prompt "join round $round")
    bench --concurrency "$n" --requests "$n" --duration 60 --grace 15 --timeout 30 \
      --tokens 100 --token-delay-ms 20 --first-delay-ms 0 --no-stamp "${extra[@]}" \
      --label "$S/join/$which" --json "$json" --quiet || true
    row "$round" join "$which" "$n" "$json"
  done
  BENCH_TARGET=chat
done
stop_target
python3 - "$summary" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def med(part, case, col, c=None):
    v = [float(r[col]) for r in rows if r["part"] == part and r["case"] == case and (c is None or r["concurrency"] == c)]
    return statistics.median(v) if v else float("nan")
print("\nmedians over rounds (same server, alternating runs):")
for c in sorted({r["concurrency"] for r in rows if r["part"] == "multi"}, key=int):
    one, four = med("multi", "1", "cpu_s_per_1000", c), med("multi", "4", "cpu_s_per_1000", c)
    print(f"A. C={c}: CPU per turn, 4 models {four:.4f} s/1000 vs 1 model {one:.4f} s/1000: {four / one:.2f}× (target ≤ 4×)")
    for part in ("cache-openai", "cache-chat"):
        live, hit = med(part, "live", "answers_per_s", c), med(part, "hit", "answers_per_s", c)
        print(f"B. {part} C={c}: answers/s, cache hits {hit:.0f} vs live {live:.0f}: {hit / live:.2f}× (target ≥ 5×); "
              f"CPU s/1000 {med(part, 'hit', 'cpu_s_per_1000', c):.4f} vs {med(part, 'live', 'cpu_s_per_1000', c):.4f}")
sep10, sep100, joined = (med("join", w, "cpu_s_total") for w in ("separate10", "separate100", "joined100"))
print(f"C. server CPU for the batch: 100 joined {joined:.3f} s vs 10 separate {sep10:.3f} s: {joined / sep10:.2f}× (target < 1); "
      f"vs 100 separate {sep100:.3f} s: {joined / sep100:.2f}×")
PY
