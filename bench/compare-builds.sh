#!/usr/bin/env bash
# Scenario 1 (throughput) for two ChatRelay builds side by side, in alternating rounds, so that a
# change's cost is read against the machine's noise of the same hour rather than an old table.
#   bench/compare-builds.sh BASE_REV      e.g. HEAD~1
# Variants per round: `base` (BASE_REV, built once in .build-base), `new` (this tree, no
# models.yaml: the built-in catalog) and `new-file` (this tree routing through a models.yaml
# whose model points at the mock). Prints medians of answers/s and server CPU-s per 1000 answers
# per variant, target and concurrency. Env: ROUNDS (3), CONCURRENCY ("10 100"), DURATION (10),
# TARGETS ("chatrelay-openai chatrelay-chat").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BASE_REV="${1:?usage: bench/compare-builds.sh BASE_REV}"
ROUNDS="${ROUNDS:-3}"
export CONCURRENCY="${CONCURRENCY:-10 100}" DURATION="${DURATION:-10}" TARGETS="${TARGETS:-chatrelay-openai chatrelay-chat}"
OUT="${BENCH_OUT:-$ROOT/bench/out}/compare"
mkdir -p "$OUT"

base_src="$ROOT/.build-base/src"
if [[ ! -d "$base_src" ]]; then git worktree add -f "$base_src" "$BASE_REV" >&2; else git -C "$base_src" checkout -q --detach "$BASE_REV"; fi
(cd "$base_src" && swift build -c release --product chatrelay --scratch-path "$ROOT/.build-base/scratch" >&2)
swift build -c release --scratch-path .build-bench --product chatrelay-bench >&2
swift build -c release --scratch-path .build-bench --product mock-upstream >&2
swift build -c release --scratch-path .build-bench --product chatrelay >&2

# The harness asks for gpt-4o-mini; the file catalog serves that name from the mock as OpenAI.
models="$OUT/models.yaml"
cat >"$models" <<YAML
models:
  - name: gpt-4o-mini
    deployments:
      - {id: bench-mock, provider: openai, base_url: "http://127.0.0.1:${MOCK_PORT:-19101}/v1", api_key_env: OPENAI_API_KEY}
YAML

for r in $(seq 1 "$ROUNDS"); do
  for v in base new new-file; do
    bin="$ROOT/.build-bench/release/chatrelay"; extra=""
    [[ $v == base ]] && bin="$ROOT/.build-base/scratch/release/chatrelay"
    [[ $v == new-file ]] && extra="CHAT_MODELS_FILE=$models"
    echo "== round $r: $v" >&2
    BENCH_OUT="$OUT/r$r-$v" CHATRELAY_BIN="$bin" CHATRELAY_EXTRA_ENV="$extra" SKIP_BUILD=1 bench/scenarios/1-throughput.sh >/dev/null
  done
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import glob, json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
for path in glob.glob(f"{out}/r*-*/throughput/*.json"):
    variant = path.split("/")[-3].split("-", 1)[1]
    j = json.load(open(path))
    key = (j["label"].split("/")[1], j["concurrency"], variant)
    rows.setdefault(key, []).append((j["rps"], j.get("server_cpu_s_per_1000") or 0, j.get("error_total", 0)))
print("| target | C | variant | answers/s median (runs) | CPU-s per 1000 answers median | errors |")
print("|---|---:|---|---|---:|---:|")
for (t, c, v) in sorted(rows, key=lambda k: (k[0], k[1], ["base", "new", "new-file"].index(k[2]))):
    runs = rows[(t, c, v)]
    rps = [r[0] for r in runs]
    print(f"| {t} | {c} | {v} | {statistics.median(rps):.0f} ({', '.join(f'{x:.0f}' for x in rps)}) | "
          f"{statistics.median(r[1] for r in runs):.3f} | {sum(r[2] for r in runs)} |")
PY
