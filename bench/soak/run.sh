#!/usr/bin/env bash
# bench/soak/run.sh: the daemon under a steady mixed load for a long time,
# and what it holds over that time: estimations over HTTP (`inferd bench`,
# the project's own load tool, 2 clients in a closed loop), a rule fed over
# MQTT (mosquitto_pub in a loop, results subscribed), /metrics scrapes and
# management calls (a rule stopped and started, a stream replaced) every few
# seconds. Every SAMPLE seconds it prints one row: elapsed time, the daemon's
# RSS and peak RSS, open descriptors, threads, requests answered so far and
# non-2xx answers, rule results received. A leak shows as a column that only
# grows. At the end, inferd bench's own count of the estimations (requests/s,
# p50/p99, errors) goes to stderr.
#
#   bench/soak/run.sh [BUILD_DIR]   # DURATION (s, default 3600), SAMPLE (s, default 60)
#
# Needs mosquitto and mosquitto-clients (scripts/setup.sh installs them) and
# a built tree (BUILD_DIR/inferd serves and makes the load). Everything it
# makes is in a mktemp folder removed on exit, with its daemon, broker and
# load. Exit status 1 when the daemon dies, answers an estimation with
# something other than 2xx, or leaves one unanswered.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$#" -le 1 ] || { echo "usage: bench/soak/run.sh [BUILD_DIR]" >&2; exit 2; }
BUILD=${1:-build}
INFERD="$BUILD/inferd"
DURATION=${DURATION:-3600}
SAMPLE=${SAMPLE:-60}
NAME=bench/soak
. "$ROOT/bench/http/lib.sh"
[ -x /usr/sbin/mosquitto ] || die "mosquitto is not installed"
[ -x "$INFERD" ] || die "$INFERD is missing: build the tree first"
BROKER_PID="" PUB_PID="" SUB_PID="" LOAD_PID=""
stop_load() {
  for p in $LOAD_PID $PUB_PID $SUB_PID $BROKER_PID; do kill -KILL "$p" 2>/dev/null || true; done
}
trap 'stop_load; cleanup' EXIT

# ---- broker, image, daemon --------------------------------------------------------
MQTT_PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n%s\n' "$MQTT_PORT" \
  "$([ "$(id -u)" -ne 0 ] || echo 'user root')" >"$T/broker.conf"
/usr/sbin/mosquitto -c "$T/broker.conf" >"$T/broker.log" 2>&1 &
BROKER_PID=$!
disown "$BROKER_PID" # killed at the end: no job notice
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$MQTT_PORT") 2>/dev/null && break; sleep 0.05; done
/usr/bin/python3 - "$ROOT/scripts" "$T/dots.png" <<'EOF'
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import gen_images as g
img, _ = g.make_dots(np.random.default_rng([2026, 12, 7]), 320, 240, 12)
g.to_image(img).save(sys.argv[2], "PNG")
EOF
export INFERD_STATE_DIR="$T/state" INFERD_MQTT_SERVER="tcp://127.0.0.1:$MQTT_PORT"
start_daemon '{}'
api() { curl -s -o /dev/null -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "$BASE$2"; }
STREAM='{"sql": "CREATE STREAM readings (id BIGINT, t FLOAT) WITH (DATASOURCE=\"soak/in\")"}'
[ "$(api POST /streams "$STREAM")" = 201 ] || die "creating the stream"
RULE='{"id": "soak", "sql": "SELECT id, t * 2 AS t2 FROM readings WHERE t > 0", "actions": [{"mqtt": {"topic": "soak/out", "sendSingle": true}}]}'
[ "$(api POST /rules "$RULE")" = 201 ] || die "creating the rule"

# ---- the load ---------------------------------------------------------------------------
mosquitto_sub -p "$MQTT_PORT" -t soak/out >"$T/results" 2>/dev/null &
SUB_PID=$!
disown "$SUB_PID"
( i=0; while :; do
    i=$((i + 1))
    mosquitto_pub -p "$MQTT_PORT" -t soak/in -m "{\"id\": $i, \"t\": $((i % 50)).5}" 2>/dev/null || true
    sleep 0.02
  done ) &
PUB_PID=$!
disown "$PUB_PID"
# The estimations: for the whole DURATION, with no warm-up of its own, so
# that its count at the end holds every estimation the daemon answered (the
# last "HTTP 2xx" total, give or take what came after that sample); its CSV
# and table are read at the end (lib.sh's load_result), its progress line is
# not shown.
"$INFERD" bench "$BASE/v1/estimators/peopleCountEstimator?targets=T2" --body "$T/dots.png" \
  --type image/png -c 2 -d "$DURATION" --warmup 0 --csv "$T/load.csv" \
  >"$T/load.out" 2>"$T/load.err" &
LOAD_PID=$!
disown "$LOAD_PID"

# ---- samples ------------------------------------------------------------------------------
echo "soak: $DURATION s, a row every $SAMPLE s; inferd bench 2 clients of estimations, an MQTT message every 20 ms (about 30/s: mosquitto_pub starts each time) through a rule, scrapes and management calls" >&2
printf '| elapsed s | RSS MiB | peak MiB | fds | threads | HTTP 2xx | HTTP other | rule results |\n'
printf '|---|---|---|---|---|---|---|---|\n'
start=$(date +%s)
next=0
while :; do
  now=$(( $(date +%s) - start ))
  kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon died after $now s"
  # scrapes and management calls between samples
  curl -s -o "$T/metrics" "$BASE/metrics" || die "GET /metrics failed"
  if [ $((now % 10)) -lt 2 ]; then
    api POST /rules/soak/restart >/dev/null
    api PUT /streams/readings "$STREAM" >/dev/null
  fi
  if [ "$now" -ge "$next" ]; then
    rss=$(awk '$1 == "VmRSS:" {printf "%.1f", $2 / 1024}' "/proc/$DAEMON_PID/status")
    hwm=$(awk '$1 == "VmHWM:" {printf "%.1f", $2 / 1024}' "/proc/$DAEMON_PID/status")
    thr=$(awk '$1 == "Threads:" {print $2}' "/proc/$DAEMON_PID/status")
    fds=$(ls "/proc/$DAEMON_PID/fd" | wc -l)
    ok=$(awk '/^inferd_http_requests_total\{route="\/v1\/estimators\/\*",method="POST",status="2/ {s += $2} END {print s + 0}' "$T/metrics")
    bad=$(awk '/^inferd_http_requests_total\{route="\/v1\/estimators\/\*",method="POST",status="[^2]/ {s += $2} END {print s + 0}' "$T/metrics")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$now" "$rss" "$hwm" "$fds" "$thr" "$ok" "$bad" \
      "$(wc -l <"$T/results")"
    [ "$bad" = 0 ] || die "estimations answered other than 2xx: $bad"
    next=$((next + SAMPLE))
  fi
  [ "$now" -ge "$DURATION" ] && break
  sleep 2
done
# inferd bench ends on its own once its DURATION is over and its last
# requests are answered (each gets 60 s at most); disowned, it is waited for
# by polling, and the CSV it writes when it ends says how it went.
for _ in $(seq 1 700); do
  kill -0 "$LOAD_PID" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$LOAD_PID" 2>/dev/null && die "inferd bench was still running 70 s after its $DURATION s"
LOAD_PID=""
load_result
echo "soak: inferd bench: $REQUESTS estimations, $RPS/s, p50 $P50 ms, p99 $P99 ms, errors: $ERROR_DETAIL" >&2
[ "$ERRORS" -eq 0 ] || die "$ERRORS of $REQUESTS estimations got no 2xx (by status: $ERROR_DETAIL${LAST_ERROR:+; last error: $LAST_ERROR})"
stop_load
stop_daemon
