#!/usr/bin/env bash
# Plain HTTP: GET /api/v1/health, ChatRelay (1 worker) against nginx (1 worker), both pinned to
# CPU 0, wrk pinned to CPU 1. Alternates the servers, RUNS runs each, and prints a markdown
# section for bench/RESULTS.md on stdout (progress goes to stderr).
#
#   bench/http-bench.sh                 # default config (access log on, LOG_LEVEL=info)
#   LOG_LEVELS="info warn" bench/http-bench.sh   # also measure with the access log off
#
# Needs: wrk, nginx (nginx-light), taskset, curl. Run from the package root.
set -euo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-100}
LOG_LEVELS=${LOG_LEVELS:-info}
# Free ports from the kernel (other benches on this machine use the 1808x range).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CR_PORT=${CR_PORT:-$(free_port)}
NGX_PORT=${NGX_PORT:-$(free_port)}
SCRATCH=${SCRATCH:-.build-st}
BIN="$SCRATCH/release/chatrelay"
URL_PATH=/api/v1/health

log() { echo "[bench] $*" >&2; }

command -v wrk >/dev/null && command -v nginx >/dev/null || {
  echo "need wrk and nginx: apt-get install -y wrk nginx-light" >&2; exit 1; }

log "building release"
swift build -c release --scratch-path "$SCRATCH" --product chatrelay >&2

TMP=$(mktemp -d /tmp/http-bench.XXXXXX)
CR_PID=""; NGX_PID=""
cleanup() {
  [ -n "$CR_PID" ] && kill "$CR_PID" 2>/dev/null || true
  [ -n "$NGX_PID" ] && kill "$NGX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  cp "$TMP/wrk.log" /tmp/http-bench-wrk.log 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

now_ns() { date +%s%N; }

# Starts chatrelay with the given LOG_LEVEL; sets CR_PID, STARTUP_MS, IDLE_RSS_KB.
start_chatrelay() {
  local level=$1 t0 t1
  if ss -ltn "sport = :$CR_PORT" | grep -q LISTEN; then echo "port $CR_PORT is taken" >&2; exit 1; fi
  t0=$(now_ns)
  taskset -c 0 env PORT=$CR_PORT HOST=127.0.0.1 CHAT_WORKERS=1 LOG_LEVEL="$level" \
    DATABASE_URL="postgres://unused@127.0.0.1:1/unused" "$BIN" >/dev/null 2>"$TMP/chatrelay.err" &
  CR_PID=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$CR_PORT$URL_PATH"; do
    kill -0 "$CR_PID" 2>/dev/null || { cat "$TMP/chatrelay.err" >&2; exit 1; }
  done
  t1=$(now_ns)
  STARTUP_MS=$(( (t1 - t0) / 1000000 ))
  IDLE_RSS_KB=$(awk '/VmRSS/ {print $2}' "/proc/$CR_PID/status")
}

stop_chatrelay() { kill -TERM "$CR_PID"; wait "$CR_PID" || true; CR_PID=""; }

# nginx answers the health path with a fixed body of the same size as ChatRelay's.
start_nginx() {
  local body=$1
  mkdir -p "$TMP/nginx"
  cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  server_tokens off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  server {
    listen 127.0.0.1:$NGX_PORT;
    location = $URL_PATH {
      default_type application/json;
      return 200 '$body';
    }
  }
}
EOF
  taskset -c 0 nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx.err" &
  NGX_PID=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$NGX_PORT$URL_PATH"; do
    kill -0 "$NGX_PID" 2>/dev/null || { cat "$TMP/nginx.err" >&2; exit 1; }
    sleep 0.01
  done
}

# CPU time (clock ticks, user+system) of a process and its children (nginx: master + worker).
cpu_ticks() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $total
}
HZ=$(getconf CLK_TCK)

# One wrk run; prints "<req/s> <p99 in ms> <server CPU µs per request>". CPU per request is the
# figure that survives a noisy machine: other load steals throughput, not instructions.
run_wrk() {
  local port=$1 pid=$2 out c0 c1
  c0=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$port$URL_PATH")
  c1=$(cpu_ticks "$pid")
  echo "$out" >>"$TMP/wrk.log"
  ps -eo pcpu,comm --sort=-pcpu | sed -n 2,6p | awk '{printf "%s(%s%%) ", $2, $1}' >>"$TMP/others.log"; echo >>"$TMP/others.log"
  local rps p99 n cpu
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$n" 'BEGIN{printf "%.2f", t / hz * 1e6 / n}')
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
  echo "$rps $p99 $cpu"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Start-up and idle RSS: median of 3 fresh starts with the default config.
STARTS=(); RSSES=()
for _ in 1 2 3; do
  start_chatrelay info
  STARTS+=("$STARTUP_MS"); RSSES+=("$IDLE_RSS_KB")
  HEALTH_BODY=$(curl -s "http://127.0.0.1:$CR_PORT$URL_PATH")
  stop_chatrelay
done
START_MED=$(printf '%s\n' "${STARTS[@]}" | median)
RSS_MED=$(printf '%s\n' "${RSSES[@]}" | median)
BODY_LEN=${#HEALTH_BODY}
NGX_BODY=$(printf '{"status":"ok","pad":"%*s"}' $((BODY_LEN - 24)) '' | tr ' ' x)
log "health body ($BODY_LEN bytes): $HEALTH_BODY; nginx body ${#NGX_BODY} bytes"

declare -A RPS P99 CPU
start_nginx "$NGX_BODY"
for run in $(seq 1 "$RUNS"); do
  for level in $LOG_LEVELS; do
    start_chatrelay "$level"
    log "run $run: chatrelay LOG_LEVEL=$level"
    read -r r p c < <(run_wrk $CR_PORT "$CR_PID")
    RPS[cr_$level]+="$r "; P99[cr_$level]+="$p "; CPU[cr_$level]+="$c "
    stop_chatrelay
  done
  log "run $run: nginx"
  read -r r p c < <(run_wrk $NGX_PORT "$NGX_PID")
  RPS[nginx]+="$r "; P99[nginx]+="$p "; CPU[nginx]+="$c "
done

med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }
NGX_RPS=$(med "${RPS[nginx]}"); NGX_P99=$(med "${P99[nginx]}")

NGX_CPU=$(med "${CPU[nginx]}")
echo "| server | runs: req/s | median req/s | runs: p99 ms | median p99 ms | runs: server CPU µs/req | median CPU µs/req | req/s vs nginx | p99 vs nginx | CPU/req vs nginx |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for level in $LOG_LEVELS; do
  R=$(med "${RPS[cr_$level]}"); P=$(med "${P99[cr_$level]}"); C=$(med "${CPU[cr_$level]}")
  echo "| chatrelay LOG_LEVEL=$level | ${RPS[cr_$level]}| $R | ${P99[cr_$level]}| $P | ${CPU[cr_$level]}| $C | $(awk -v a="$R" -v b="$NGX_RPS" 'BEGIN{printf "%.0f%%", 100*a/b}') | $(awk -v a="$P" -v b="$NGX_P99" 'BEGIN{printf "%.2fx", a/b}') | $(awk -v a="$C" -v b="$NGX_CPU" 'BEGIN{printf "%.2fx", a/b}') |"
done
echo "| nginx | ${RPS[nginx]}| $NGX_RPS | ${P99[nginx]}| $NGX_P99 | ${CPU[nginx]}| $NGX_CPU | 100% | 1.00x | 1.00x |"
echo
echo "- ChatRelay idle RSS right after start (VmRSS, median of 3): $((RSS_MED)) kB (runs: ${RSSES[*]} kB)"
echo "- Start-up, exec to first successful health response (median of 3, curl polling): ${START_MED} ms (runs: ${STARTS[*]} ms)"
echo "- Health body: $BODY_LEN bytes (nginx returns a fixed body of ${#NGX_BODY} bytes)"
echo "- Busiest other processes during each wrk run (ps, %CPU over their lifetime):"
sed 's/^/  - /' "$TMP/others.log"
