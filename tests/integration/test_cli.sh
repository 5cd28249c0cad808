#!/usr/bin/env bash
# The inferd binary: --help, --version, config, usage and config errors with
# their exit codes, and `serve` answering /health and /version over real HTTP.
. "$(dirname "$0")/lib.sh"

# --version and --help
out=$("$TEST_INFERD" --version) || fail "--version exited non-zero"
[[ "$out" =~ ^inferd\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version printed '$out'"
pass "--version prints '$out'"
"$TEST_INFERD" --help > "$T/help" || fail "--help exited non-zero"
for word in serve run config --listen INFERD_LISTEN "Exit codes"; do
  grep -qF -- "$word" "$T/help" || fail "--help does not mention $word"
done
pass "--help documents commands, flags and exit codes"

# Each command's own --help (not the global one), exit 0.
for cmd in "serve|usage: inferd serve [OPTIONS]" "config|usage: inferd config [--json] [OPTIONS]" \
           "run|usage: inferd run PIPELINE.json [FILE|FOLDER|-]... [OPTIONS]" \
           "plugin|usage: inferd plugin COMMAND [ARGS] [OPTIONS]" \
           "plugin list|usage: inferd plugin COMMAND [ARGS] [OPTIONS]" \
           "plugin inspect|usage: inferd plugin COMMAND [ARGS] [OPTIONS]" \
           "pipeline|usage: inferd pipeline COMMAND [ARGS] [OPTIONS]" \
           "model|usage: inferd model COMMAND [ARGS] [OPTIONS]" \
           "plugin activate|usage: inferd plugin activate NAME [OPTIONS]" \
           "describe|usage: inferd describe SURFACE [--json]" \
           "worker|usage: inferd worker [--describe] PLUGIN.so"; do
  # shellcheck disable=SC2086 # the command's words on purpose
  out=$("$TEST_INFERD" ${cmd%%|*} --help) || fail "${cmd%%|*} --help exited non-zero"
  [ "$(printf '%s\n' "$out" | head -1)" = "${cmd#*|}" ] ||
    fail "${cmd%%|*} --help: $(printf '%s\n' "$out" | head -2)"
done
pass "every command and plugin subcommand has its own --help (exit 0)"

# Usage errors: exit 2 with a message.
expect_exit() { # expect_exit CODE NEEDLE CMD...
  local want=$1 needle=$2; shift 2
  local rc=0
  "$@" >"$T/out" 2>&1 || rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, want $want: $(cat "$T/out")"
  grep -qF -- "$needle" "$T/out" || fail "'$*' output lacks '$needle': $(cat "$T/out")"
}
expect_exit 2 "missing command" "$TEST_INFERD"
expect_exit 2 "unknown command 'frobnicate'" "$TEST_INFERD" frobnicate
expect_exit 2 "unexpected argument 'extra'" "$TEST_INFERD" serve extra
expect_exit 2 "run needs a pipeline file" "$TEST_INFERD" run
expect_exit 2 "cannot open pipeline file p.json" "$TEST_INFERD" run p.json x.png
pass "usage errors exit 2 with a message"

# Config errors: exit 2, naming the source, key and value.
echo '{"listen": "127.0.0.1:0", "log": {"levle": "debug"}}' > "$T/bad.json"
expect_exit 2 "unknown property 'log.levle'" "$TEST_INFERD" serve --config "$T/bad.json"
# Nested keys are checked with the file: every fault at once, with its path.
echo '{"mqtt": {"profiles": {"edge": {"sever": "tcp://e:1883", "protocolVersion": 3}}}}' > "$T/bad_profiles.json"
expect_exit 2 "unknown property 'mqtt.profiles.edge.sever' (did you mean 'server'?" \
  "$TEST_INFERD" config --config "$T/bad_profiles.json"
expect_exit 2 "property 'mqtt.profiles.edge.protocolVersion': out of range (got 3; allowed: int in [4, 5])" \
  "$TEST_INFERD" config --config "$T/bad_profiles.json"
echo '{"listen": ' > "$T/broken.json"
expect_exit 2 "broken.json" "$TEST_INFERD" serve --config "$T/broken.json"
expect_exit 2 "INFERD_LISTN" env INFERD_LISTN=1 "$TEST_INFERD" serve
expect_exit 2 "unknown log level 'chatty'" "$TEST_INFERD" serve --log-level chatty
expect_exit 2 "one of text, json" "$TEST_INFERD" serve --log-format xml
expect_exit 2 "listen (from --listen): listen address '127.0.0.1:99999': port must be a number" \
  "$TEST_INFERD" serve --listen 127.0.0.1:99999
expect_exit 2 "expected HOST:PORT" env INFERD_LISTEN=localhost "$TEST_INFERD" serve
pass "config errors exit 2 and say where and what"

# inferd config shows values and their sources.
echo '{"http": {"threads": 3}}' > "$T/good.json"
INFERD_LOG_FORMAT=json "$TEST_INFERD" config --config "$T/good.json" --listen :9 > "$T/cfg"
grep -q '^listen  *= ":9"  *(--listen)' "$T/cfg" || fail "config: listen: $(cat "$T/cfg")"
grep -q '^http.threads  *= 3  *(file ' "$T/cfg" || fail "config: http.threads: $(cat "$T/cfg")"
grep -q '^log.format  *= "json"  *(env INFERD_LOG_FORMAT)' "$T/cfg" || fail "config: log.format"
pass "config prints values with their sources"

# serve: /health, /version, JSON errors, graceful stop.
start_daemon --config "$T/good.json"
expect_http GET /health 200 '"status":"ok"'
expect_http GET /version 200 '"name":"inferd"'
curl -s -I "$BASE/health" | grep -qi '^content-type: application/json' || fail "content type"
expect_http GET /nope 404 '"code":"not_found"'
expect_http POST /health 405 '"code":"method_not_allowed"'
curl -s -X POST --data-binary 'ignored body' "$BASE/nope" | grep -q '"error"' || fail "POST with body"
pass "serve answers /health, /version and JSON errors"
stop_daemon
grep -q 'SIGTERM received, stopping' "$T/daemon.log" || fail "no stop line in the log"
if grep -q 'WARN\|ERROR' "$T/daemon.log"; then fail "a clean run logged a warning"; fi
pass "SIGTERM stops the daemon with exit 0"

# JSON logs are one object per line.
INFERD_LOG_FORMAT=json start_daemon
grep -q '^{"time":"[^"]*","level":"info","component":"serve","msg":"inferd .* listening on' \
  "$T/daemon.log" || fail "json log line: $(cat "$T/daemon.log")"
# A second daemon on the same port fails at start with exit 1.
port=${BASE##*:}
rc=0; INFERD_STATE_DIR="$T/state2" "$TEST_INFERD" serve --listen "127.0.0.1:$port" 2>"$T/second.log" || rc=$?
[ "$rc" = 1 ] || fail "second daemon on a used port exited $rc"
grep -q "cannot listen on 127.0.0.1:$port" "$T/second.log" || fail "second daemon message"
# ... and one on the same state folder, before it touches anything.
rc=0; "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/second.log" || rc=$?
[ "$rc" = 1 ] || fail "second daemon on a used state folder exited $rc"
grep -q "state.dir $T/state is in use by a running inferd daemon" "$T/second.log" \
  || fail "second daemon on the same state folder: $(cat "$T/second.log")"
kill -INT "$DAEMON_PID"; wait "$DAEMON_PID" || fail "SIGINT exit code"; DAEMON_PID=""
pass "json logs; a used port is refused; SIGINT stops cleanly"
echo "test_cli: all passed"

# What a command other than serve prints: no informational log lines.
"$TEST_INFERD" plugin list --active teapot >"$T/out" 2>"$T/err" || fail "plugin list"
[ ! -s "$T/err" ] || fail "plugin list wrote to stderr: $(cat "$T/err")"
"$TEST_INFERD" plugin list --active teapot --log-level info >/dev/null 2>"$T/err" || fail "plugin list --log-level info"
grep -q 'loaded plugin teapot' "$T/err" || fail "--log-level info did not log: $(cat "$T/err")"
pass "plugin list logs nothing on stderr unless log.level asks for it"

# inferd config --json: each key with its value and where it came from; secrets masked.
INFERD_HTTP_TOKEN=s3cret "$TEST_INFERD" config --json --listen 127.0.0.1:9999 >"$T/out" || fail "config --json"
/usr/bin/python3 - "$T/out" <<'PY' || fail "config --json: $(head -c 400 "$T/out")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["listen"] == {"value": "127.0.0.1:9999", "source": "--listen"}, c["listen"]
assert c["http.token"]["value"] == "***" and c["http.token"]["source"].startswith("env"), c["http.token"]
assert c["log.level"] == {"value": "info", "source": "default"}, c["log.level"]
assert "portable.python" in c and "mqtt.server" in c
PY
grep -q s3cret "$T/out" && fail "config --json printed the token"
pass "config --json: an object of every key with value and source, the token as ***"

# Unknown keys: did-you-mean, and the keys of the group, never a list cut short.
echo '{"portable.memory_limit": 5}' >"$T/bad.json"
expect_exit 2 "inferd: config file $T/bad.json: unknown property 'portable.memory_limit' (did you mean 'portable.memory_limit_mb'? known under 'portable.': portable.python, portable.sdk_dir, " \
  "$TEST_INFERD" config -c "$T/bad.json"
grep -qE ', and [0-9]+ more\)$' "$T/out" || fail "the group's list does not say how many it left out: $(cat "$T/out")"
echo '{"mqtt.serverr": "x"}' >"$T/bad.json"
expect_exit 2 "unknown property 'mqtt.serverr' (did you mean 'mqtt.server'? known under 'mqtt.': mqtt.server, mqtt.tls_ca, mqtt.tls_cert, mqtt.tls_key, mqtt.profiles)" \
  "$TEST_INFERD" config -c "$T/bad.json"
echo '{"zzz": 1}' >"$T/bad.json"
expect_exit 2 "unknown property 'zzz' (" "$TEST_INFERD" config -c "$T/bad.json"
grep -qE 'unknown property .zzz. \([0-9]+ properties are known\)' "$T/out" || fail "no count: $(cat "$T/out")"
INFERD_PORTABLE_PYTHN=x expect_exit 2 \
  "unknown environment variable INFERD_PORTABLE_PYTHN: no such config key (did you mean INFERD_PORTABLE_PYTHON? run \`inferd config\` for the keys)" \
  "$TEST_INFERD" config
pass "an unknown key gets did-you-mean and its group's keys (portable.*, mqtt.*), or how many keys there are; an unknown variable its nearest name"
