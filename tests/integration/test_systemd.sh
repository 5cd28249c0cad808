#!/usr/bin/env bash
# Running under systemd: the unit that `make install` puts in place passes
# systemd-analyze verify; the daemon speaks sd_notify (READY=1 only once
# /ready would answer 200, STATUS= meanwhile, RELOADING=1 and STOPPING=1);
# SIGHUP applies the request limits and the management token at once and
# names what needs a restart.
. "$(dirname "$0")/lib.sh"
: "${TEST_BUILD_DIR:?}"

# ---- the unit, installed and verified ---------------------------------------------
DESTDIR="$T/dest" cmake --install "$TEST_BUILD_DIR" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -3 "$T/install.log")"
unit=$(find "$T/dest" -path '*/lib/systemd/system/inferd.service')
[ -n "$unit" ] || fail "make install put no inferd.service: $(find "$T/dest" -name '*.service')"
prefix=${unit%/lib/systemd/system/inferd.service}
prefix=${prefix#"$T/dest"}
grep -qx "ExecStart=$prefix/bin/inferd serve" "$unit" || fail "ExecStart: $(grep ExecStart "$unit")"
[ -x "$T/dest$prefix/bin/inferd" ] || fail "no $prefix/bin/inferd installed"
# verify needs the binary where ExecStart says: the installed copy's path.
sed "s#^ExecStart=$prefix/bin/inferd#ExecStart=$T/dest$prefix/bin/inferd#" "$unit" >"$T/inferd.service"
systemd-analyze verify "$T/inferd.service" >"$T/verify.out" 2>&1 || fail "systemd-analyze verify: $(cat "$T/verify.out")"
[ ! -s "$T/verify.out" ] || fail "systemd-analyze verify said: $(cat "$T/verify.out")"
for line in Type=notify DynamicUser=yes StateDirectory=inferd ProtectSystem=strict NoNewPrivileges=yes \
            'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF -- "$line" "$unit" || fail "the unit lacks $line"
done
pass "make install puts inferd.service ($prefix/lib/systemd/system) with its ExecStart; systemd-analyze verify has nothing to say"

# ---- sd_notify ----------------------------------------------------------------------
# A datagram socket, as systemd listens on NOTIFY_SOCKET; what arrives goes to notify.log.
/usr/bin/python3 - "$T/notify.sock" "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode().replace("\n", " | ") + "\n")
PY
LISTENER=$!
notify_cleanup() { kill "$LISTENER" 2>/dev/null; cleanup; }
trap notify_cleanup EXIT
for _ in $(seq 1 100); do [ -S "$T/notify.sock" ] && break; sleep 0.05; done
mkdir -p "$T/models"
echo "not a model" >"$T/models/broken.onnx"
cat >"$T/config.json" <<JSON
{"models.dir": "$T/models", "http.token": "first", "http.token_loopback": true,
 "http.max_body_bytes": 100000}
JSON
NOTIFY_SOCKET="$T/notify.sock" INFERD_CONFIG="$T/config.json" start_daemon
sleep 1
grep -q "STATUS=not ready: model 'broken' is not ready: it failed to load" "$T/notify.log" || fail "no not-ready STATUS: $(cat "$T/notify.log")"
grep -q 'READY=1' "$T/notify.log" && fail "READY=1 while /ready is 503: $(cat "$T/notify.log")"
expect_http GET /ready 503
cp "$TEST_MODELS/dot_density.onnx" "$T/models/broken.onnx"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer first' \
       "$BASE/v2/repository/models/broken/load") || fail "load"
[ "$code" = 200 ] || fail "load broken: $code"
for _ in $(seq 1 50); do grep -q 'READY=1' "$T/notify.log" && break; sleep 0.05; done
grep -q "READY=1 | STATUS=listening on http://127.0.0.1:$PORT" "$T/notify.log" || fail "no READY=1: $(cat "$T/notify.log")"
pass "sd_notify: STATUS says why while /ready is 503 (a model that failed), READY=1 once it is 200"

# ---- SIGHUP: limits and token live ---------------------------------------------------------
auth() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$BASE/v1/plugins"; }
[ "$(auth first)" = 200 ] && [ "$(auth second)" = 401 ] || fail "before the reload: first $(auth first), second $(auth second)"
head -c 5000 /dev/zero | tr '\0' 'x' >"$T/body5k"
big() { curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: image/png' --data-binary @"$T/body5k" "$BASE/v1/estimators/peopleCountEstimator"; }
[ "$(big)" = 415 ] || fail "a 5 kB body before the reload: $(big) (want 415: it is read, and is no image)"
cat >"$T/config.json" <<JSON
{"models.dir": "$T/models", "http.token": "second", "http.token_loopback": true,
 "http.max_body_bytes": 2000, "http.threads": 3}
JSON
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 100); do grep -q 'configuration reloaded' "$T/daemon.log" && break; sleep 0.05; done
grep -q 'configuration reloaded (SIGHUP): 3 key(s) changed, 1 of them need a restart' "$T/daemon.log" ||
  fail "reload line: $(grep -i reload "$T/daemon.log")"
[ "$(auth first)" = 401 ] && [ "$(auth second)" = 200 ] || fail "after the reload: first $(auth first), second $(auth second)"
[ "$(big)" = 413 ] || fail "a 5 kB body after the reload: $(big) (want 413)"
for _ in $(seq 1 50); do grep -q 'RELOADING=1' "$T/notify.log" && [ "$(grep -c 'READY=1' "$T/notify.log")" -ge 2 ] && break; sleep 0.05; done
grep -q 'RELOADING=1' "$T/notify.log" && [ "$(grep -c 'READY=1' "$T/notify.log")" -ge 2 ] ||
  fail "no RELOADING=1 then READY=1: $(cat "$T/notify.log")"
pass "SIGHUP: the new token and http.max_body_bytes apply at once (old token 401, 5 kB 413); http.threads is said to need a restart; RELOADING=1, then READY=1"

stop_daemon
for _ in $(seq 1 50); do grep -q 'STOPPING=1' "$T/notify.log" && break; sleep 0.05; done
grep -q 'STOPPING=1' "$T/notify.log" || fail "no STOPPING=1: $(cat "$T/notify.log")"
pass "SIGTERM: STOPPING=1, then a clean exit"
