#!/usr/bin/env bash
# bench/rules/run.sh: messages per second and latency through a rule, end to
# end over a real MQTT broker, for a built-in function, a C plugin function,
# a Python portable function and the people_count estimator: runs BUILD_DIR's
# bench/rules_bench (the rules engine in process) against a mosquitto it
# starts on a free loopback port.
#
#   bench/rules/run.sh [BUILD_DIR]    # BUILD_DIR (from the current folder) defaults to build
#
# Builds nothing: build the tree first (cmake --build BUILD_DIR: rules_bench,
# bench_scale.so, the built-in plugins, the default models, the Python SDK).
# Makes its data in a temporary folder: the synthetic images
# (scripts/gen_images.py) and the pyai example's package
# (plugins/examples/python/pack.py). Needs /usr/sbin/mosquitto and
# /usr/bin/python3 with numpy and PIL. Settings (environment): IN_FLIGHT
# (default 32), CONCURRENCY (the rules' options.concurrency, default 1),
# ROW_SECONDS per row (default 6; the 1-in-flight rows half),
# QOS (0 or 1, default 0) for every publish and subscription, CASES (some of
# "builtin,c,python,estimator", default all), BROKER_NODELAY=0 to run the
# broker without `set_tcp_nodelay true` (default 1: as the integration tests
# and docs/rules.md run it; inferd's own MQTT sockets always have it, and
# without it on the broker every result waits ~40 ms for a delayed ACK);
# INFERD_PORTABLE_PYTHON picks the plugin's
# interpreter. Prints the markdown
# table on stdout and writes it as CSV to BUILD_DIR/bench/rules_bench.csv.
# About a minute. Exit status 1 when a result was lost or wrong.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$#" -le 1 ] || { echo "usage: bench/rules/run.sh [BUILD_DIR]" >&2; exit 2; }
BUILD=${1:-build}
BENCH="$BUILD/bench/rules_bench"
[ -x "$BENCH" ] || { echo "bench/rules/run.sh: no $BENCH (build $BUILD first)" >&2; exit 1; }
[ -x /usr/sbin/mosquitto ] || { echo "bench/rules/run.sh: needs /usr/sbin/mosquitto" >&2; exit 1; }

T=$(mktemp -d /tmp/inferd-rules-bench.XXXXXX)
BROKER_PID=""
cleanup() {
  if [ -n "$BROKER_PID" ]; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT

/usr/bin/python3 "$ROOT/scripts/gen_images.py" --out "$T/images" >/dev/null
/usr/bin/python3 "$ROOT/plugins/examples/python/pack.py" "$T" pyai >/dev/null

# The broker, as tests/integration/lib.sh's start_broker starts it:
# anonymous, no persistence, on a free loopback port.
PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
  echo "listener $PORT 127.0.0.1"
  echo "allow_anonymous true"
  echo "persistence false"
  # As root mosquitto would switch to the mosquitto user, which cannot read $T.
  [ "$(id -u)" -ne 0 ] || echo "user root"
  [ "${BROKER_NODELAY:-1}" = 0 ] || echo "set_tcp_nodelay true"
} >"$T/broker.conf"
/usr/sbin/mosquitto -c "$T/broker.conf" >"$T/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 1 200); do
  grep -q ' running$' "$T/broker.log" && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$BROKER_PID" 2>/dev/null || { echo "mosquitto exited: $(cat "$T/broker.log")" >&2; exit 1; }
  sleep 0.05
done
grep -q ' running$' "$T/broker.log" || { echo "mosquitto did not start on port $PORT" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg); $(/usr/sbin/mosquitto -h 2>/dev/null | head -1)" >&2
rc=0
"$BENCH" -o "$BUILD/bench/rules_bench.csv" -w "${IN_FLIGHT:-32}" -t "${ROW_SECONDS:-6}" \
  -q "${QOS:-0}" -n "${CONCURRENCY:-1}" -c "${CASES:-builtin,c,python,estimator}" -b "$BROKER_PID" "tcp://127.0.0.1:$PORT" "$T/pyai.zip" "$T/images" || rc=$?
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exit "$rc"
