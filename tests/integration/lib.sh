# Shared helpers for the integration tests (sourced, not run).
# Each test gets its own temporary folder, removed on exit, and starts the
# real daemon on a free loopback port.
set -euo pipefail

: "${TEST_INFERD:?TEST_INFERD must name the inferd binary}"
T=$(mktemp -d /tmp/inferd-it-XXXXXX)
# Each test's own state folder (installed portable plugins, the database):
# tests run in parallel, and a daemon holds its state folder's lock.
export INFERD_STATE_DIR="$T/state"
# File streams and file actions may use the test's folder (rules.file_dirs).
export INFERD_RULES_FILE_DIRS="$T"
DAEMON_PID=""
BROKER_PID=""
cleanup() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -KILL "$BROKER_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT
# A command that fails outside a condition ends the test (set -e) without
# a word: name it, with the daemon's log, as fail does. errtrace carries the
# trap into functions; only where set -e is on, so that a `set +e` part
# stays quiet.
set -E
trap '_rc=$?; if [[ $- == *e* ]]; then echo "FAIL: line $LINENO: '"'"'$BASH_COMMAND'"'"' exited $_rc" >&2; [ -f "$T/daemon.log" ] && sed "s/^/  daemon: /" "$T/daemon.log" >&2; fi' ERR

fail() {
  echo "FAIL: $*" >&2
  [ -f "$T/daemon.log" ] && sed 's/^/  daemon: /' "$T/daemon.log" >&2
  [ -f "$T/broker.log" ] && sed 's/^/  broker: /' "$T/broker.log" >&2
  exit 1
}
pass() { echo "ok - $*"; }

# make_certs DIR: a test CA (ca.pem, ca.key), a certificate of it for
# 127.0.0.1 and localhost (server.pem, server.key), a client certificate of
# it (client.pem, client.key), and a self-signed one of another CA
# (rogue.pem, rogue.key), all made by openssl in DIR.
make_certs() {
  local d=$1
  mk() { openssl "$@" >>"$d/openssl.log" 2>&1 || fail "openssl $*: $(tail -3 "$d/openssl.log")"; }
  mk req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=inferd test CA"
  mk req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost"
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/san.ext"
  mk x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -out "$d/server.pem" -days 2 -extfile "$d/san.ext"
  mk req -newkey rsa:2048 -nodes -keyout "$d/client.key" -out "$d/client.csr" -subj "/CN=a client"
  mk x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -out "$d/client.pem" -days 2
  mk req -x509 -newkey rsa:2048 -nodes -keyout "$d/rogue.key" -out "$d/rogue.pem" -days 2 -subj "/CN=another CA"
}

# start_daemon [ARGS...]: starts `inferd serve --listen ${LISTEN:-127.0.0.1:0} ARGS`,
# waits for its "listening on" line and sets BASE=http://HOST:PORT and PORT.
start_daemon() {
  # Emptied first: the background job's own redirection may come after the
  # first grep below, which would then read a previous daemon's log.
  : >"$T/daemon.log"
  "$TEST_INFERD" serve --listen "${LISTEN:-127.0.0.1:0}" "$@" 2>"$T/daemon.log" &
  DAEMON_PID=$!
  for _ in $(seq 1 200); do
    if grep -q 'listening on https\?://' "$T/daemon.log" 2>/dev/null; then
      BASE=$(grep -o 'https\?://[^ ]*' "$T/daemon.log" | head -1)
      PORT=${BASE##*:}
      return 0
    fi
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "daemon exited during start-up"
    sleep 0.05
  done
  fail "daemon did not report listening within 10 s"
}

# stop_daemon: SIGTERM, then expects a clean exit 0 within 10 s.
stop_daemon() {
  kill -TERM "$DAEMON_PID"
  local rc=0
  for _ in $(seq 1 200); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$DAEMON_PID" 2>/dev/null && fail "daemon still running 10 s after SIGTERM"
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=""
  [ "$rc" -eq 0 ] || fail "daemon exited with $rc after SIGTERM"
}

# expect_http METHOD PATH STATUS [BODY_SUBSTRING]: one request with curl.
expect_http() {
  local method=$1 path=$2 want=$3 needle=${4:-}
  local code
  code=$(curl -s -o "$T/body" -w '%{http_code}' -X "$method" "$BASE$path") || fail "curl $method $path failed"
  [ "$code" = "$want" ] || fail "$method $path: status $code, want $want; body: $(cat "$T/body")"
  if [ -n "$needle" ]; then
    grep -qF -- "$needle" "$T/body" || fail "$method $path: body lacks '$needle': $(cat "$T/body")"
  fi
}

# start_broker [PORT]: starts an MQTT broker (mosquitto, anonymous, no
# persistence unless BROKER_PERSIST=1) on 127.0.0.1:PORT, a free port when none is given, with its
# config and log in $T; waits until it accepts connections. Sets BROKER_PID
# and exports MQTT_PORT and MQTT_SERVER=tcp://127.0.0.1:$MQTT_PORT. Stopped by
# stop_broker or on exit; `stop_broker; start_broker "$MQTT_PORT"` restarts
# it on the same port.
start_broker() {
  [ -z "$BROKER_PID" ] || fail "start_broker: a broker runs already (pid $BROKER_PID)"
  local port=${1:-}
  if [ -z "$port" ]; then
    port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  {
    echo "listener $port 127.0.0.1"
    echo "allow_anonymous true"
    # BROKER_PERSIST=1: sessions and their queued messages survive a
    # restart (saved in $T when the broker stops).
    if [ "${BROKER_PERSIST:-0}" = 1 ]; then
      echo "persistence true"
      echo "persistence_location $T/"
    else
      echo "persistence false"
    fi
    echo "set_tcp_nodelay true"
    # As root mosquitto would switch to the mosquitto user, which cannot read $T.
    [ "$(id -u)" -ne 0 ] || echo "user root"
    # BROKER_EXTRA: more lines for the listener (its TLS files, ...).
    [ -z "${BROKER_EXTRA:-}" ] || printf '%s\n' "$BROKER_EXTRA"
  } >"$T/broker.conf"
  # Emptied first, as daemon.log: the "running" line must be this broker's.
  : >"$T/broker.log"
  /usr/sbin/mosquitto -c "$T/broker.conf" >>"$T/broker.log" 2>&1 &
  BROKER_PID=$!
  export MQTT_PORT=$port MQTT_SERVER="tcp://127.0.0.1:$port"
  for _ in $(seq 1 200); do
    # "running" comes once its listener is open (another process on the
    # port would answer the probe, but this broker would not log it).
    if grep -q ' running$' "$T/broker.log" && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    kill -0 "$BROKER_PID" 2>/dev/null || { BROKER_PID=""; fail "mosquitto exited during start-up on port $port"; }
    sleep 0.05
  done
  fail "mosquitto did not accept connections on port $port within 10 s"
}

# stop_broker: SIGTERM, and waits for it to exit (SIGKILL after 10 s).
# Keeps MQTT_PORT and MQTT_SERVER for a restart on the same port.
stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}

# expect_exit CODE STDERR_PATTERN CMD...: CMD exits CODE and its first stderr
# line matches the pattern.
expect_exit() {
  local want=$1 line=$2; shift 2
  local rc=0
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, want $want: $(cat "$T/err")"
  local first
  first=$(head -1 "$T/err")
  # shellcheck disable=SC2053 # a pattern on purpose
  [[ "$first" == $line ]] || fail "'$*' stderr: '$first', want '$line'"
}

# expect_json METHOD PATH STATUS PYTHON_EXPR [CURL_ARGS...]: one request; the
# answer's JSON body (j) satisfies the expression.
expect_json() {
  local method=$1 path=$2 want=$3 expr=$4; shift 4
  local code
  code=$(curl -s -o "$T/body" -w '%{http_code}' -X "$method" "$@" "$BASE$path") ||
    fail "curl $method $path failed"
  [ "$code" = "$want" ] || fail "$method $path: status $code, want $want; body: $(cat "$T/body")"
  /usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" "$T/body" ||
    fail "$method $path: body does not satisfy $expr: $(cat "$T/body")"
}
