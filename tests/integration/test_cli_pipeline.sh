#!/usr/bin/env bash
# `inferd pipeline`, the client of a running daemon's /v1/pipelines: create,
# list, push (JSON and bytes results, --async), results as they come, show
# with per-element counters, stop/start/replace/delete; usage errors (exit 2),
# daemon errors and an unreachable daemon (exit 1) with their messages.
. "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_SRCDIR:?}"
doc="$TEST_SRCDIR/examples/pipelines/count_dots.json"
img="$TEST_DATA/dots_05_20.png"

# expect_out OUTPUT CMD...: CMD exits 0 and prints OUTPUT.
expect_out() {
  local want=$1; shift
  local out
  out=$("$@" 2>"$T/err") || fail "'$*' exited non-zero: $(cat "$T/err")"
  [ "$out" = "$want" ] || fail "'$*' printed '$out', want '$want'"
}
pl() { "$TEST_INFERD" pipeline "$@"; }

# Help and usage errors need no daemon.
pl --help >"$T/help" || fail "pipeline --help exited non-zero"
for word in "usage: inferd pipeline COMMAND" list show create replace delete start stop \
            push results --url --token --json INFERD_URL "Exit codes"; do
  grep -qF -- "$word" "$T/help" || fail "pipeline --help does not mention $word"
done
pl push --help | grep -qF 'usage: inferd pipeline push NAME IMAGE... [--async]' \
  || fail "pipeline push --help"
"$TEST_INFERD" --help | grep -qF 'pipeline COMMAND' || fail "inferd --help lacks pipeline"
pass "pipeline --help and push --help print the usage"

expect_exit 2 "inferd: pipeline: unknown command 'frobnicate'" pl frobnicate
grep -qF 'usage: inferd pipeline list' "$T/err" || fail "unknown command: no usage"
expect_exit 2 "inferd: pipeline: missing COMMAND" pl
expect_exit 2 "inferd: pipeline show: missing NAME" pl show
grep -qFx 'usage: inferd pipeline show NAME' "$T/err" || fail "missing NAME: no usage"
expect_exit 2 "inferd: pipeline push: missing IMAGE" pl push count_dots
expect_exit 2 "inferd: pipeline show: unexpected argument 'extra'" pl show a extra
expect_exit 2 "inferd: pipeline list: unknown option '--frob'" pl list --frob
expect_exit 2 "inferd: pipeline list: --async is not an option of this command" pl list --async
expect_exit 2 "inferd: pipeline results: --count takes a number above 0, not 'x'" \
  pl results a --count x
expect_exit 2 "inferd: cannot read $T/none.json: No such file or directory" \
  pl create "$T/none.json" --url http://127.0.0.1:1
pass "usage errors exit 2, say what is wrong and show the usage"

expect_exit 1 "inferd: cannot reach http://127.0.0.1:1: *" pl list --url http://127.0.0.1:1
expect_exit 1 "inferd: cannot reach http://127.0.0.1:1: *" \
  env INFERD_URL=http://127.0.0.1:1 "$TEST_INFERD" pipeline show count_dots
pass "a daemon that is not running: exit 1, cannot reach"

start_daemon
export INFERD_URL=$BASE

expect_out "count_dots: running" pl create "$doc"
expect_exit 1 "inferd: 409 conflict: pipeline count_dots exists already*" pl create "$doc"
pl list >"$T/list" || fail "list exited non-zero"
head -1 "$T/list" | grep -qE '^NAME +STATE +PUSHED +DELIVERED +ERRORS$' || fail "list header: $(cat "$T/list")"
grep -qE '^count_dots +running +0 +0 +0$' "$T/list" || fail "list: $(cat "$T/list")"
pl list --json | grep -qF '{"pipelines":[{"name":"count_dots","state":"running"' || fail "list --json"
pass "create starts count_dots; list shows it running"

# A follower of the results, registered (listeners: 1) before the frames go in.
pl results count_dots --count 2 >"$T/results" 2>"$T/results.err" &
follower=$!
for _ in $(seq 1 100); do
  pl show count_dots --json | grep -qF '"listeners":1' && break
  sleep 0.05
done

pl push count_dots "$img" >"$T/push" || fail "push exited non-zero"
[ "$(wc -l <"$T/push")" = 1 ] || fail "push printed $(wc -l <"$T/push") lines"
grep -qF '"count":{"count":20,' "$T/push" || fail "push result: $(cat "$T/push")"
grep -qF '"count":20' "$T/push" || fail "push result: $(cat "$T/push")"
pass "push prints the frame's result on one line (20 dots)"

pl show count_dots >"$T/show" || fail "show exited non-zero"
grep -qx 'state:     running' "$T/show" || fail "show state: $(cat "$T/show")"
grep -qx 'frames:    pushed 1, delivered 1, errors 0, dropped 0' "$T/show" || fail "show counters: $(cat "$T/show")"
grep -qE '^NAME +FACTORY +IN +OUT +ERRORS +DROPPED +QUEUE +LATENCY_MS$' "$T/show" || fail "show header"
n=$(sed '1,/^NAME  *FACTORY/d' "$T/show" | wc -l)
[ "$n" = 7 ] || fail "show lists $n elements, want 7: $(cat "$T/show")"
grep -qE '^decode +image_decoder +1 +1 +0 +0 +0/8 +[0-9.]+$' "$T/show" || fail "show decode: $(cat "$T/show")"
pass "show: state, counters and the 7 elements (decoder in=1)"

expect_out '{"pipeline":"count_dots","frames":[1]}' pl push count_dots "$img" --async
wait "$follower" || fail "results exited non-zero: $(cat "$T/results.err")"
[ "$(wc -l <"$T/results")" = 2 ] || fail "results printed: $(cat "$T/results")"
grep -q '^{"pipeline":"count_dots","sink":"out","frame":0,.*"count":20' "$T/results" || fail "results frame 0"
grep -q '^{"pipeline":"count_dots","sink":"out","frame":1,.*"count":20' "$T/results" || fail "results frame 1"
pass "push --async prints the frame id; results --count 2 prints both results and ends"

expect_exit 2 "inferd: $TEST_SRCDIR/README.md is not a PNG or JPEG image" pl push count_dots "$TEST_SRCDIR/README.md"
expect_exit 1 "inferd: 404 not_found: no pipeline nope" pl show nope
expect_exit 1 "inferd: 404 not_found: no pipeline nope" pl push nope "$img"
expect_exit 1 "inferd: 404 not_found: no pipeline nope" pl results nope
pass "a pipeline that does not exist: exit 1, no pipeline"

expect_out "count_dots: stopped" pl stop count_dots
grep -qE '^count_dots +stopped +- +- +-$' <(pl list) || fail "list after stop: $(pl list)"
expect_exit 1 "inferd: 503 not_ready: pipeline count_dots is stopped*" pl push count_dots "$img"
expect_out "count_dots: running" pl start count_dots
expect_out "count_dots: running" pl replace count_dots "$doc"
pl push count_dots "$img" >"$T/push" || fail "push after replace exited non-zero"
grep -qF '"count":20' "$T/push" || fail "push after replace: $(cat "$T/push")"
expect_out "count_dots: deleted" pl delete count_dots
expect_exit 1 "inferd: 404 not_found: no pipeline count_dots" pl show count_dots
expect_out "count_dots: stopped" pl create "$doc" --stopped
pass "stop, start, replace, delete; create --stopped"

# A pipeline that ends in an encoder answers bytes: described on one line.
cat >"$T/reencode.json" <<'EOF'
{"reencode": {"in": {"factory": "appsrc", "next": "decode"},
              "decode": {"factory": "image_decoder", "props": {"format": "rgb"}, "next": "enc"},
              "enc": {"factory": "image_encoder", "props": {"codec": "png"}, "next": "out"},
              "out": {"factory": "appsink"}}}
EOF
pl create "$T/reencode.json" >/dev/null || fail "create reencode"
out=$(pl push reencode "$img") || fail "push reencode exited non-zero"
[[ "$out" =~ ^\{\"frame\":0,\"bytes\":[0-9]+,\"type\":\"image/png\"\}$ ]] || fail "push reencode printed '$out'"
pass "a result in bytes prints frame, bytes and type"

stop_daemon
echo "test_cli_pipeline: all passed"
