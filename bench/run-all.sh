#!/usr/bin/env bash
# Runs every bench scenario (or those named: run-all.sh throughput latency hold disconnect wrk),
# then rewrites the section of bench/RESULTS.md between <!-- bench:begin --> and <!-- bench:end -->
# (everything else in the file is kept) and the charts in bench/charts/.
# Env: TARGETS, DURATION, HOLD_STREAMS, VANISH_STREAMS, … (see each scenario); REPORT_ONLY=1 to
# only regenerate RESULTS.md from bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
B="$ROOT/bench"
OUT="${BENCH_OUT:-$B/out}"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"

declare -A SCRIPT=([throughput]=1-throughput.sh [latency]=2-latency.sh [hold]=3-hold.sh [disconnect]=4-disconnect-storm.sh [wrk]=5-wrk-health.sh)
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(throughput latency hold disconnect wrk)

if [[ "${REPORT_ONLY:-0}" != 1 ]]; then
  (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product chatrelay-bench >&2 \
    && swift build -c release --scratch-path .build-bench --product mock-upstream >&2)
  (cd "$ROOT" && swift build -c release --scratch-path .build-bench --product chatrelay >&2) || echo "chatrelay did not build; its targets are skipped" >&2
  for s in "${scenarios[@]}"; do
    [[ -n "${SCRIPT[$s]:-}" ]] || { echo "unknown scenario $s" >&2; exit 2; }
    SKIP_BUILD=1 "$B/scenarios/${SCRIPT[$s]}" || echo "scenario $s failed (exit $?)" >&2
    mkdir -p "$OUT/$s"
    echo "$(env | grep -E '^(TARGETS|VANISH_TARGETS|DURATION|CONCURRENCY|HOLD_STREAMS|HOLD_STEPS|VANISH_STREAMS|WRK_CONNECTIONS)=' | tr '\n' ' ')bench/scenarios/${SCRIPT[$s]}" >>"$OUT/$s/command.txt"
  done
fi

# Python with matplotlib for the charts.
PY="$B/.venv/bin/python"
if [[ ! -x "$PY" ]] || ! "$PY" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$B/.venv" >&2 && "$B/.venv/bin/pip" install -q matplotlib >&2 || PY=python3
fi

facts="$OUT/facts.md"
{
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet || echo ' (with uncommitted changes)')."
  echo
  echo "| machine | |"
  echo "|---|---|"
  echo "| cores (nproc) | $(nproc) |"
  echo "| CPU | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |"
  echo "| kernel | $(uname -r) |"
  echo "| memory | $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) |"
  echo "| open files (hard) | $(ulimit -Hn) |"
  echo "| Swift | $(swift --version 2>&1 | head -1) |"
  echo "| nginx | $(nginx -v 2>&1 | cut -d/ -f2) |"
  echo "| LiteLLM | $([[ -x $B/.venv/bin/python ]] && $B/.venv/bin/python -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null || echo 'not installed') |"
  echo "| wrk | $(wrk --version 2>&1 | head -1 | awk '{print $2}') |"
  echo "| load average at report time | $(cut -d' ' -f1-3 /proc/loadavg) |"
  echo
  echo "Pinning: the server under test on CPU 0 (\`taskset -c 0\`), the harness on CPU 1; when a relay is"
  echo "measured the mock upstream shares CPU 1 with the harness, when the mock is measured direct it is"
  echo "the server on CPU 0. The load average column shows what else the machine was doing (this is a"
  echo "shared development machine: parallel builds make figures noisy)."
  echo
  echo "Commands:"
  echo
  echo '```'
  for s in throughput latency hold disconnect wrk; do cat "$OUT/$s/command.txt" 2>/dev/null || true; done
  echo '# each scenario runs, per target and step, e.g.:'
  echo '# taskset -c 1 chatrelay-bench --url http://127.0.0.1:PORT --target openai --concurrency 100 --duration 10 --tokens 20 --token-delay-ms 20 --server-pid PID --json out.json'
  echo '```'
} >"$facts"

section="$OUT/section.md"
"$PY" "$B/tools/report.py" "$OUT" "$B/charts" "$facts" >"$section"

results="$B/RESULTS.md"
[[ -f "$results" ]] || printf '# Bench results\n\n<!-- bench:begin -->\n<!-- bench:end -->\n' >"$results"
grep -q '<!-- bench:begin -->' "$results" || printf '\n<!-- bench:begin -->\n<!-- bench:end -->\n' >>"$results"
"$PY" - "$results" "$section" <<'PYEOF'
import sys
path, sec = sys.argv[1], sys.argv[2]
text = open(path).read()
new = open(sec).read().rstrip()
a = text.index("<!-- bench:begin -->") + len("<!-- bench:begin -->")
b = text.index("<!-- bench:end -->")
open(path, "w").write(text[:a] + "\n" + new + "\n" + text[b:])
PYEOF
echo "wrote $results and $B/charts/" >&2
