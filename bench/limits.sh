#!/usr/bin/env bash
# A limited key against an unlimited one, side by side on ONE ChatRelay (scenario 1's load:
# 20 tokens, no delay, closed loop): answers/s, server CPU per 1,000 answers, and PostgreSQL
# transactions per answer (pg_stat_database.xact_commit + xact_rollback, which counts every
# round trip that commits: the turn's own statements, the usage ledger's and the limits' syncs).
# It also reads /metrics: admissions of the limited key that waited for the database (claims or
# reads on the request's path) and the limits' statements, per answer.
# The limited key has every limit (rpm, tpm, max_streams, a daily budget), set high enough never
# to refuse, so what is measured is the cost of enforcing them.
# Env: ROUNDS (3), DURATION (10 s), CONCURRENCY ("10 100"), SURFACES ("chat openai"), SKIP_BUILD=1.
source "$(dirname "$0")/scenarios/lib.sh"
S=limits
prepare $S
ADMIN_KEY="bench-admin-key-0123456789"
CHATRELAY_EXTRA_ENV="CHAT_ADMIN_KEYS=$ADMIN_KEY"
start_target chatrelay-chat || { log "chatrelay did not start: $SKIP_REASON"; exit 1; }
PGDIR="${TMPDIRS[${#TMPDIRS[@]}-1]}/pg/run"
xacts() {
  psql -h "$PGDIR" -p 5432 -U postgres -d chatrelay -Atc \
    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
}
metric() {  # metric 'name{labels}' → its value (0 when absent)
  curl -sf "$URL/metrics" | awk -v m="$1" 'index($0, m " ") == 1 { print $2; found = 1 } END { if (!found) print 0 }'
}
LIMITED="$(curl -sf -X POST "$URL/admin/v1/keys" -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
  -d '{"name":"bench-limited","rpm":10000000,"tpm":10000000000,"max_streams":100000,"budget_usd":"1000000","budget_period":"day"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')"
[[ -n "$LIMITED" ]] || { log "could not create the limited key"; exit 1; }
UNLIMITED="$API_KEY"
log "$S: ChatRelay at $URL (server pids: $SERVER_PIDS), limited key ${LIMITED:0:10}…"
bench --concurrency 10 --requests 2000 --duration 5 --tokens 20 --quiet || true   # warm-up
summary="$OUT/$S/summary.tsv"
printf 'round\tsurface\tconcurrency\tkey\tanswers_per_s\tcpu_s_per_1000\txacts_per_answer\twaits_per_answer\tlimit_stmts_per_answer\n' >"$summary"
for round in $(seq 1 "${ROUNDS:-3}"); do
  for surface in ${SURFACES:-chat openai}; do
    BENCH_TARGET=$surface
    for c in ${CONCURRENCY:-10 100}; do
      for which in unlimited limited; do
        TARGET_KEY=$UNLIMITED
        [[ $which == limited ]] && TARGET_KEY=$LIMITED
        before=$(xacts)
        waits_before=$(metric 'chatrelay_limit_admissions_total{path="database"}')
        stmts_before=$(metric 'chatrelay_limit_statements_total')
        json="$OUT/$S/r$round-$surface-c$c-$which.json"
        bench --concurrency "$c" --requests 10000000 --duration "${DURATION:-10}" --grace 15 --timeout 30 \
          --tokens 20 --token-delay-ms 0 --first-delay-ms 0 --label "$S/$surface/c$c/$which" --json "$json" --quiet || true
        sleep 1.2   # the last ledger flush and limit sync of the run
        after=$(xacts)
        waits=$(( $(metric 'chatrelay_limit_admissions_total{path="database"}') - waits_before ))
        stmts=$(( $(metric 'chatrelay_limit_statements_total') - stmts_before ))
        python3 - "$json" "$before" "$after" "$round" "$surface" "$c" "$which" "$waits" "$stmts" >>"$summary" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
answers = max(1, j["completed"] - j.get("error_total", 0))
x = (int(sys.argv[3]) - int(sys.argv[2])) / answers
print(f"{sys.argv[4]}\t{sys.argv[5]}\t{sys.argv[6]}\t{sys.argv[7]}\t{j['rps']:.0f}\t{j['server_cpu_s_per_1000']:.4f}\t{x:.3f}"
      f"\t{int(sys.argv[8]) / answers:.4f}\t{int(sys.argv[9]) / answers:.4f}")
EOF
        tail -1 "$summary" >&2
      done
    done
  done
done
stop_target
python3 - "$summary" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("\nmedians over rounds (limited vs unlimited, same server, alternating runs):")
for surface in sorted({r["surface"] for r in rows}):
    for c in sorted({r["concurrency"] for r in rows}, key=int):
        def med(key, col):
            return statistics.median(float(r[col]) for r in rows if r["surface"] == surface and r["concurrency"] == c and r["key"] == key)
        u, l = med("unlimited", "answers_per_s"), med("limited", "answers_per_s")
        print(f"{surface} C={c}: answers/s {u:.0f} vs {l:.0f} ({(l / u - 1) * 100:+.1f}%), "
              f"CPU s/1000 {med('unlimited', 'cpu_s_per_1000'):.4f} vs {med('limited', 'cpu_s_per_1000'):.4f}, "
              f"transactions/answer {med('unlimited', 'xacts_per_answer'):.3f} vs {med('limited', 'xacts_per_answer'):.3f}, "
              f"limited key: admissions waiting for the database per answer {med('limited', 'waits_per_answer'):.4f}, "
              f"limit statements per answer {med('limited', 'limit_stmts_per_answer'):.4f}")
EOF
