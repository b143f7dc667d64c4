#!/usr/bin/env bash
# Shared helpers of the bench scenarios: building, starting and stopping the targets, pinning.
# Sourced, not run. Every process started here is recorded and stopped by `cleanup` (trap).
#
# Core layout on the 2-core bench machine (see bench/README.md):
#   CPU 0: the server under test (mock upstream when measured direct; nginx / LiteLLM / ChatRelay
#          otherwise, with ChatRelay's embedded PostgreSQL inheriting the pin)
#   CPU 1: the harness (chatrelay-bench, wrk), and the mock upstream when a relay is measured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="$ROOT/bench"
OUT="${BENCH_OUT:-$BENCH/out}"
SCRATCH="$ROOT/.build-bench"
BIN="$SCRATCH/release"
SERVER_CPU="${SERVER_CPU:-0}"
HARNESS_CPU="${HARNESS_CPU:-1}"
MOCK_RELAY_CPU="${MOCK_RELAY_CPU:-1}"
# Ports: fixed and high so they do not collide with others' dev servers.
MOCK_PORT="${MOCK_PORT:-19101}"
RELAY_PORT="${RELAY_PORT:-19102}"
TARGETS="${TARGETS:-mock nginx litellm chatrelay-chat chatrelay-openai}"
# Another ChatRelay build to measure (bench/compare-builds.sh runs an older revision side by side).
CHATRELAY_BIN="${CHATRELAY_BIN:-$BIN/chatrelay}"
API_KEY="bench-key"

declare -a STARTED_PIDS=()
CHATRELAY_ENV=()
TMPDIRS=()

cleanup() {
  local p
  for p in "${STARTED_PIDS[@]:-}"; do
    [[ -n "$p" ]] && kill "$p" 2>/dev/null || true
  done
  sleep 0.3
  for p in "${STARTED_PIDS[@]:-}"; do
    [[ -n "$p" ]] && kill -9 "$p" 2>/dev/null || true
  done
  STARTED_PIDS=()
  local d
  for d in "${TMPDIRS[@]:-}"; do [[ -n "$d" ]] && rm -rf "$d"; done
  TMPDIRS=()
}
trap cleanup EXIT INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

raise_nofile() { ulimit -n "$(ulimit -Hn)"; }

build_bench() {
  log "building release binaries in .build-bench"
  (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --product chatrelay-bench >&2 \
    && swift build -c release --scratch-path "$SCRATCH" --product mock-upstream >&2)
  if [[ " $TARGETS " == *" chatrelay"* ]]; then
    (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --product chatrelay >&2) \
      || log "chatrelay did not build: its targets will be skipped"
  fi
}

# wait_http URL [seconds] — until the URL answers at all (any status).
wait_http() {
  local url="$1" t="${2:-30}" i=0
  while ((i < t * 10)); do
    if curl -s -o /dev/null -m 1 "$url"; then return 0; fi
    sleep 0.1; i=$((i + 1))
  done
  return 1
}

# stop_pid PID — stops one process this script started, and forgets it.
stop_pid() {
  local p="$1" i=0
  kill "$p" 2>/dev/null || return 0
  while kill -0 "$p" 2>/dev/null && ((i < 50)); do sleep 0.1; i=$((i + 1)); done
  kill -9 "$p" 2>/dev/null || true
  local keep=() q
  for q in "${STARTED_PIDS[@]:-}"; do [[ "$q" != "$p" && -n "$q" ]] && keep+=("$q"); done
  STARTED_PIDS=("${keep[@]:-}")
}

# start_mock CPU — the mock upstream on MOCK_PORT; sets MOCK_PID.
start_mock() {
  local cpu="$1"
  taskset -c "$cpu" "$BIN/mock-upstream" --port "$MOCK_PORT" >"$OUT/logs/mock.log" 2>&1 &
  MOCK_PID=$!
  STARTED_PIDS+=("$MOCK_PID")
  wait_http "http://127.0.0.1:$MOCK_PORT/health" 10 || { log "mock upstream did not start"; return 1; }
}

# start_nginx — a pure relay to the mock: 1 worker, proxy_buffering off, HTTP/1.1 keepalive
# upstream. Sets SERVER_PIDS (the worker) and NGINX_MASTER.
start_nginx() {
  local dir
  dir="$(mktemp -d /tmp/bench-nginx.XXXXXX)"
  TMPDIRS+=("$dir")
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
error_log $dir/logs/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 19000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream mock {
    server 127.0.0.1:$MOCK_PORT;
    keepalive 1024;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$RELAY_PORT backlog=4096;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_cache off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
EOF
  taskset -c "$SERVER_CPU" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$OUT/logs/nginx.log" 2>&1 &
  NGINX_MASTER=$!
  STARTED_PIDS+=("$NGINX_MASTER")
  wait_http "http://127.0.0.1:$RELAY_PORT/health" 10 || { log "nginx did not start"; cat "$dir/logs/error.log" >&2; return 1; }
  SERVER_PIDS="$( (pgrep -P "$NGINX_MASTER" || true) | tr '\n' ' ')"
}

# start_litellm — LiteLLM proxy (1 worker, no database) with one model pointing at the mock.
start_litellm() {
  local venv="$BENCH/.venv"
  if [[ ! -x "$venv/bin/litellm" ]]; then
    log "installing litellm[proxy] into bench/.venv"
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" >&2 || return 1
    "$venv/bin/pip" install -q 'litellm[proxy]' >&2 || return 1
  fi
  local dir
  dir="$(mktemp -d /tmp/bench-litellm.XXXXXX)"
  TMPDIRS+=("$dir")
  cat >"$dir/config.yaml" <<EOF
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:$MOCK_PORT/v1
      api_key: sk-mock
litellm_settings:
  drop_params: true
  telemetry: false
EOF
  # A master key per run (LiteLLM refuses to start without one); the harness sends it.
  LITELLM_KEY="sk-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  TARGET_KEY="$LITELLM_KEY"
  (cd "$dir" && exec env -u DATABASE_URL LITELLM_MASTER_KEY="$LITELLM_KEY" LITELLM_LOG=ERROR LITELLM_TELEMETRY=False \
    taskset -c "$SERVER_CPU" "$venv/bin/litellm" --config "$dir/config.yaml" --host 127.0.0.1 --port "$RELAY_PORT" --num_workers 1) \
    >"$OUT/logs/litellm.log" 2>&1 &
  local pid=$!
  STARTED_PIDS+=("$pid")
  wait_http "http://127.0.0.1:$RELAY_PORT/health/liveliness" 120 || { log "litellm did not start"; tail -5 "$OUT/logs/litellm.log" >&2; return 1; }
  SERVER_PIDS="$pid $( (pgrep -P "$pid" || true) | tr '\n' ' ')"
}

# start_chatrelay — ChatRelay with 1 worker, the mock as its OpenAI base URL; sets SERVER_PIDS
# (chatrelay and its embedded PostgreSQL processes). Extra env can be given as arguments.
start_chatrelay() {
  [[ -x "$CHATRELAY_BIN" ]] || { log "no chatrelay binary at $CHATRELAY_BIN"; return 1; }
  local dir a extra=()
  for a in "$@"; do [[ -n "$a" ]] && extra+=("$a"); done
  dir="$(mktemp -d /tmp/bench-chatrelay.XXXXXX)"
  chmod 711 "$dir"  # the embedded PostgreSQL runs as the postgres user, which must traverse it
  TMPDIRS+=("$dir")
  env PORT="$RELAY_PORT" HOST=127.0.0.1 CHAT_WORKERS=1 CHAT_API_KEYS="$API_KEY" CHAT_DATA_DIR="$dir" \
    OPENAI_API_KEY=sk-mock OPENAI_BASE_URL="http://127.0.0.1:$MOCK_PORT/v1" LOG_LEVEL=warn \
    CHAT_MAX_CONNECTIONS=65536 ${CHATRELAY_EXTRA_ENV:-} "${extra[@]}" \
    taskset -c "$SERVER_CPU" "$CHATRELAY_BIN" >"$OUT/logs/chatrelay.log" 2>&1 &
  local pid=$!
  STARTED_PIDS+=("$pid")
  wait_http "http://127.0.0.1:$RELAY_PORT/api/v1/health" 90 || { log "chatrelay did not start"; tail -5 "$OUT/logs/chatrelay.log" >&2; return 1; }
  SERVER_PIDS="$pid $(descendants "$pid")"
  # The embedded PostgreSQL: pg_ctl daemonizes it, so it is no descendant of ChatRelay; it is found
  # by its data folder. PG_CPU moves it (postmaster and backends; later backends inherit both
  # settings) to its own core; PG_NICE lowers its priority, standing in for a database on its own
  # machine (its bursts then wait for the relay instead of taking its slices).
  local master p
  master="$(pgrep -f -- "-D $dir/pg/data" | head -1 || true)"
  PG_PIDS="${master:+$master $(descendants "$master")}"
  for p in $PG_PIDS; do
    [[ -z "${PG_CPU:-}" ]] || taskset -a -p -c "$PG_CPU" "$p" >/dev/null
    [[ -z "${PG_NICE:-}" ]] || renice -n "$PG_NICE" -p "$p" >/dev/null
  done
}

# pg_cpu_seconds — CPU seconds (user + system) the embedded PostgreSQL has used so far.
pg_cpu_seconds() {
  local p ticks=0 f
  for p in ${PG_PIDS:-}; do
    f="$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null)" || continue
    ticks=$((ticks + ${f% *} + ${f#* }))
  done
  echo "$ticks $(getconf CLK_TCK)" | awk '{printf "%.2f", $1 / $2}'
}

descendants() {
  local c
  for c in $(pgrep -P "$1" || true); do echo -n "$c "; descendants "$c"; done
}

# probe_endpoint URL PATH BODY — true unless the endpoint is missing (404/405/501) or unreachable.
probe_endpoint() {
  local code
  code="$(curl -s -o /dev/null -m 10 -w '%{http_code}' -H "Authorization: Bearer $API_KEY" \
    -H 'Content-Type: application/json' -d "$3" "$1$2" || echo 000)"
  [[ "$code" != 404 && "$code" != 405 && "$code" != 501 && "$code" != 000 ]]
}

# start_target NAME — starts the mock and the target; sets URL, BENCH_TARGET (openai|chat|anthropic),
# SERVER_PIDS (the server under test) and MOCK_PID. Returns 1 (with SKIP_REASON) to skip it.
start_target() {
  local name="$1"
  SKIP_REASON=""
  SERVER_PIDS=""
  PG_PIDS=""
  TARGET_KEY="$API_KEY"
  BENCH_TARGET=openai
  case "$name" in
    mock)
      start_mock "$SERVER_CPU" || { SKIP_REASON="mock upstream did not start"; return 1; }
      URL="http://127.0.0.1:$MOCK_PORT"; SERVER_PIDS="$MOCK_PID" ;;
    nginx)
      command -v nginx >/dev/null || { SKIP_REASON="nginx not installed"; return 1; }
      start_mock "$MOCK_RELAY_CPU" || { SKIP_REASON="mock upstream did not start"; return 1; }
      start_nginx || { SKIP_REASON="nginx did not start"; return 1; }
      URL="http://127.0.0.1:$RELAY_PORT" ;;
    litellm)
      start_mock "$MOCK_RELAY_CPU" || { SKIP_REASON="mock upstream did not start"; return 1; }
      start_litellm || { SKIP_REASON="LiteLLM proxy could not be installed or started here (see bench/out/logs/litellm.log)"; return 1; }
      URL="http://127.0.0.1:$RELAY_PORT" ;;
    chatrelay)
      # ChatRelay alone (plain HTTP scenarios): no endpoint probe.
      start_mock "$MOCK_RELAY_CPU" || { SKIP_REASON="mock upstream did not start"; return 1; }
      start_chatrelay "${CHATRELAY_ENV[@]:-}" || { SKIP_REASON="chatrelay did not build or start"; return 1; }
      URL="http://127.0.0.1:$RELAY_PORT" ;;
    chatrelay-chat|chatrelay-openai|chatrelay-anthropic)
      start_mock "$MOCK_RELAY_CPU" || { SKIP_REASON="mock upstream did not start"; return 1; }
      start_chatrelay "${CHATRELAY_ENV[@]:-}" || { SKIP_REASON="chatrelay did not build or start"; return 1; }
      URL="http://127.0.0.1:$RELAY_PORT"
      if [[ "$name" == chatrelay-chat ]]; then
        BENCH_TARGET=chat
        probe_endpoint "$URL" /api/v1/chat '{"message":"hi [mock tokens=1]","model":"gpt-4o-mini"}' \
          || { SKIP_REASON="ChatRelay POST /api/v1/chat is not there yet (404)"; return 1; }
      elif [[ "$name" == chatrelay-anthropic ]]; then
        BENCH_TARGET=anthropic
        probe_endpoint "$URL" /v1/messages '{"model":"gpt-4o-mini","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi [mock tokens=1]"}]}' \
          || { SKIP_REASON="ChatRelay POST /v1/messages is not there yet (404)"; return 1; }
      else
        probe_endpoint "$URL" /v1/chat/completions '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi [mock tokens=1]"}]}' \
          || { SKIP_REASON="ChatRelay POST /v1/chat/completions is not there yet (404)"; return 1; }
      fi ;;
    *) SKIP_REASON="unknown target $name"; return 1 ;;
  esac
}

stop_target() { cleanup; sleep 0.5; }

# bench ARGS… — the harness on its own core, against URL, measuring SERVER_PIDS and the mock.
bench() {
  local pids=() p
  for p in $SERVER_PIDS; do pids+=(--server-pid "$p"); done
  taskset -c "$HARNESS_CPU" "$BIN/chatrelay-bench" --url "$URL" --target "$BENCH_TARGET" --key "$TARGET_KEY" "${pids[@]}" "$@"
}

# skip SCENARIO TARGET REASON — records why a target was not measured.
skip() {
  mkdir -p "$OUT/$1"
  echo "$2: $3" >>"$OUT/$1/skipped.txt"
  log "SKIP $2: $3"
}

prepare() {
  local scenario="$1"
  raise_nofile
  mkdir -p "$OUT/logs" "$OUT/$scenario"
  # Only this run's targets are replaced: other targets' results of an earlier run stay
  # (rm -rf bench/out for a clean pass).
  local t
  for t in $TARGETS; do
    rm -f "$OUT/$scenario/$t"-*.json "$OUT/$scenario/$t"-*.txt
    [[ -f "$OUT/$scenario/skipped.txt" ]] && sed -i "/^$t:/d" "$OUT/$scenario/skipped.txt"
  done
  true
  [[ "${SKIP_BUILD:-0}" == 1 ]] || build_bench
}
