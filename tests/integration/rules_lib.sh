# Helpers of the streams and rules tests (sourced after lib.sh).

# api METHOD PATH [BODY]: one request; the status goes to $T/code, the body to $T/body.
api() {
  local method=$1 path=$2 body=${3:-}
  if [ -n "$body" ]; then
    curl -s -o "$T/body" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' \
      --data-binary "$body" "$BASE$path" >"$T/code" || fail "curl $method $path"
  else
    curl -s -o "$T/body" -w '%{http_code}' -X "$method" "$BASE$path" >"$T/code" \
      || fail "curl $method $path"
  fi
}

# expect METHOD PATH BODY STATUS [NEEDLE]: api, then the status and a piece of the body.
expect() {
  api "$1" "$2" "$3"
  [ "$(cat "$T/code")" = "$4" ] || fail "$1 $2 $3: status $(cat "$T/code"), want $4: $(cat "$T/body")"
  # The needle is looked for in the body as it is, and in an error's message
  # as text (where quotes are not escaped).
  if [ -n "${5:-}" ]; then
    grep -qF -- "$5" "$T/body" || /usr/bin/python3 -c '
import json, sys
try:
    msg = json.load(open(sys.argv[1]))["error"]["message"]
except Exception:
    sys.exit(1)
sys.exit(0 if sys.argv[2] in msg else 1)' "$T/body" "$5" || fail "$1 $2: body lacks '$5': $(cat "$T/body")"
  fi
}

# status_field RULE KEY: one field of GET /rules/RULE/status.
status_field() {
  api GET "/rules/$1/status"
  /usr/bin/python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' \
    "$T/body" "$2"
}

# wait_field RULE KEY VALUE [SECONDS]: until the status field has that value.
wait_field() {
  local got=""
  for _ in $(seq 1 $(( ${4:-30} * 10 ))); do
    got=$(status_field "$1" "$2")
    [ "$got" = "$3" ] && return 0
    sleep 0.1
  done
  fail "rule $1: $2 is '$got', want '$3'; status: $(cat "$T/body")"
}

# Subscribers: a real mosquitto_sub in debug mode (-d), so that the test knows
# when its subscription is made (SUBACK) before anything is published.
# sub_start NAME TOPIC [MOSQUITTO_SUB ARGS...]
sub_start() {
  local name=$1 topic=$2
  shift 2
  stdbuf -oL mosquitto_sub -d -p "$MQTT_PORT" -t "$topic" -q 1 "$@" >"$T/sub_$name.out" 2>&1 &
  echo $! >"$T/sub_$name.pid"
  for _ in $(seq 1 100); do
    grep -q 'SUBACK' "$T/sub_$name.out" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "mosquitto_sub on $topic did not subscribe: $(cat "$T/sub_$name.out")"
}

# sub_lines NAME: the payloads received so far (debug lines filtered out).
sub_lines() { grep -v '^Client \|^Subscribed' "$T/sub_$1.out" || true; }

# sub_wait NAME COUNT [SECONDS]: until COUNT payloads arrived.
sub_wait() {
  local n=0
  for _ in $(seq 1 $(( ${3:-60} * 10 ))); do
    n=$(sub_lines "$1" | wc -l)
    [ "$n" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "subscriber $1 got $n messages, want $2: $(sub_lines "$1" | head -c 600)"
}

sub_stop() { kill "$(cat "$T/sub_$1.pid")" 2>/dev/null || true; }

# A rule reads its stream once its MQTT source's subscription is granted.
wait_source() {
  wait_field "$1" "source_$2_0_subscribed" 1 "${3:-30}"
}

# Subscribers go with the test (lib.sh's cleanup stops the daemon and the broker).
rules_cleanup() {
  local p
  for p in "$T"/sub_*.pid; do
    [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true # some have exited already
  done
  cleanup
}
trap rules_cleanup EXIT
