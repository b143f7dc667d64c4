#!/usr/bin/env bash
# What a long conversation costs the other streams of its worker: 100 streams (20 tokens 20 ms
# apart, scenario 2's shape) measured while a client keeps sending turns to a 5,000-message
# conversation (each message ~200 characters, 1 MB in all), against the same streams with no such
# client. Twice: with the default history budget (CHAT_HISTORY_MAX_MESSAGES=1000) and with the
# budget lifted (every message loaded, converted and sent upstream, as before the budget).
# Reads the added per-token delay (stamp delay) p50/p99 of the 100 streams and the long turns' TTFT.
# Env: ROUNDS (3), DURATION (10 s), SKIP_BUILD=1.
source "$(dirname "$0")/scenarios/lib.sh"
S=history
prepare $S
summary="$OUT/$S/summary.tsv"
printf 'round\tbudget\tload\tanswers_per_s\tstamp_p50_ms\tstamp_p99_ms\tlong_turns\tlong_ttft_p50_ms\n' >"$summary"
long_turns() {  # long_turns URL CONV SECONDS OUTFILE — one turn after another on the long conversation
  python3 - "$@" <<'PY'
import json, sys, time, urllib.request
url, conv, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
end, ttfts = time.monotonic() + seconds, []
while time.monotonic() < end:
    body = json.dumps({"message": "[mock tokens=5 delay=20] and then?", "model": "gpt-4o-mini", "conversation_id": conv}).encode()
    req = urllib.request.Request(f"{url}/api/v1/chat", data=body, headers={"Authorization": "Bearer bench-key", "Content-Type": "application/json"})
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as r:
        first = None
        for line in r:
            if first is None and line.startswith(b"event: token"):
                first = time.monotonic() - t0
        ttfts.append((first or 0) * 1000)
json.dump(ttfts, open(out, "w"))
PY
}
for budget in default lifted; do
  if [[ $budget == lifted ]]; then CHATRELAY_EXTRA_ENV="CHAT_HISTORY_MAX_MESSAGES=1000000 CHAT_HISTORY_MAX_CHARS=1000000000"; else CHATRELAY_EXTRA_ENV=""; fi
  start_target chatrelay-chat || { log "chatrelay did not start: $SKIP_REASON"; exit 1; }
  PGDIR="${TMPDIRS[${#TMPDIRS[@]}-1]}/pg/run"
  conv=$(curl -sN "$URL/api/v1/chat" -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
    -d '{"message":"[mock tokens=2] start","model":"gpt-4o-mini"}' | sed -n 's/.*"conversation_id":"\([^"]*\)".*/\1/p' | head -1)
  psql -h "$PGDIR" -p 5432 -U postgres -d chatrelay -qc "
    INSERT INTO messages (id, conversation_id, role, content, status, created_at)
    SELECT gen_random_uuid(), '$conv'::uuid, CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
           repeat('history ', 25) || i, 'complete', now() - interval '1 day' + i * interval '1 millisecond'
    FROM generate_series(1, 4998) AS i"
  log "$S: budget=$budget, conversation $conv with 5,000 messages"
  bench --concurrency 10 --requests 200 --duration 5 --tokens 5 --quiet || true   # warm-up
  for round in $(seq 1 "${ROUNDS:-3}"); do
    for load in none long; do
      json="$OUT/$S/$budget-r$round-$load.json"
      turns="$OUT/$S/$budget-r$round-$load-turns.json"
      echo '[]' >"$turns"
      pid=""
      if [[ $load == long ]]; then long_turns "$URL" "$conv" "${DURATION:-10}" "$turns" & pid=$!; fi
      bench --concurrency 100 --requests 10000000 --duration "${DURATION:-10}" --grace 15 --timeout 30 \
        --tokens 20 --token-delay-ms 20 --first-delay-ms 0 --label "$S/$budget/$load" --json "$json" --quiet || true
      [[ -z "$pid" ]] || wait "$pid"
      python3 - "$json" "$turns" "$round" "$budget" "$load" >>"$summary" <<'PY'
import json, statistics, sys
j, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
s = j["stamp_delay_us"]
print(f"{sys.argv[3]}\t{sys.argv[4]}\t{sys.argv[5]}\t{j['rps']:.1f}\t{s['p50'] / 1000:.2f}\t{s['p99'] / 1000:.2f}\t{len(t)}"
      f"\t{statistics.median(t) if t else 0:.1f}")
PY
      tail -1 "$summary" >&2
    done
  done
  stop_target
done
python3 - "$summary" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("\nmedians over rounds:")
for b in ("default", "lifted"):
    for load in ("none", "long"):
        r = [x for x in rows if x["budget"] == b and x["load"] == load]
        if not r: continue
        m = lambda c: statistics.median(float(x[c]) for x in r)
        print(f"budget={b} load={load}: 100 streams' added per-token p50 {m('stamp_p50_ms'):.2f} ms, p99 {m('stamp_p99_ms'):.2f} ms;"
              f" long turns {m('long_turns'):.0f} in the run, their TTFT p50 {m('long_ttft_p50_ms'):.1f} ms")
PY
