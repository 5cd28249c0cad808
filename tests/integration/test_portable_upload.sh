#!/usr/bin/env bash
# Installing a portable plugin by uploading its zip (POST /plugins/portables
# ?name=NAME, Content-Type: application/zip): it runs at once; a duplicate,
# a bad zip, a body over http.max_body_bytes, a missing name and a web
# page's content type each get their clear 4xx, and nothing is left behind.
source "$(dirname "$0")/lib.sh"
: "${TEST_SRCDIR:?}" "${TEST_DATA:?}"
mkdir -p "$T/packages"
/usr/bin/python3 "$TEST_SRCDIR/plugins/examples/python/pack.py" "$T/packages" >/dev/null || fail "pack.py"
export INFERD_HTTP_MAX_BODY_BYTES=4000000

upload() { # upload NAME FILE [TYPE] -> $T/body, prints the status
  curl -s -o "$T/body" -w '%{http_code}' -H "Content-Type: ${3:-application/zip}" \
    --data-binary @"$2" "$BASE/plugins/portables${1:+?name=$1}"
}
left_behind() { # what an install of NAME left in the state folder
  ls -d "$INFERD_STATE_DIR/uploads/$1@"*.zip "$INFERD_STATE_DIR/plugins/$1" 2>/dev/null || true
}

start_daemon
code=$(upload pyai "$T/packages/pyai.zip")
[ "$code" = 201 ] && grep -q '"status":"running"' "$T/body" || fail "upload pyai: $code $(cat "$T/body")"
grep -q "\"file\":\"$INFERD_STATE_DIR/uploads/pyai@[0-9]*.zip\"" "$T/body" || fail "upload's file: $(cat "$T/body")"
code=$(curl -s -o "$T/call" -w '%{http_code}' -H 'Content-Type: image/png' \
  --data-binary @"$TEST_DATA/colour_02_red.png" "$BASE/v1/functions/labelImage/exec")
[ "$code" = 200 ] || fail "calling the uploaded plugin: $code $(cat "$T/call")"
# Its own counter (ctx.count in label_func.py), on /metrics.
for _ in $(seq 50); do
  curl -s "$BASE/metrics" > "$T/metrics"
  grep -q 'inferd_plugin_count{plugin="pyai",instance="labelImage",name="labelled"} 1' "$T/metrics" &&
    grep -q 'inferd_plugin_pyai_label_seconds_count{instance="labelImage"} 1' "$T/metrics" && break
  sleep 0.05
done
grep -q 'inferd_plugin_count{plugin="pyai",instance="labelImage",name="labelled"} 1' "$T/metrics" ||
  fail "pyai's own counter: $(grep plugin_count "$T/metrics")"
# Its own metrics (ctx.metric_add, ctx.metric_observe in label_func.py).
best=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"][0]["label"])' "$T/call")
grep -qx '# TYPE inferd_plugin_pyai_labels_total counter' "$T/metrics" &&
  grep -qx "inferd_plugin_pyai_labels_total{instance=\"labelImage\",label=\"$best\"} 1" "$T/metrics" &&
  grep -qx '# TYPE inferd_plugin_pyai_label_seconds histogram' "$T/metrics" &&
  grep -qx 'inferd_plugin_pyai_label_seconds_count{instance="labelImage"} 1' "$T/metrics" &&
  grep -qx 'inferd_plugin_pyai_label_seconds_bucket{instance="labelImage",le="+Inf"} 1' "$T/metrics" ||
  fail "pyai's own metrics: $(grep inferd_plugin_pyai "$T/metrics")"
pass "an uploaded zip installs and runs at once; its functions answer; its own counter, and its labelled counter and histogram (ctx.metric_add, ctx.metric_observe) reach /metrics"

code=$(upload pyai "$T/packages/pyai.zip")
[ "$code" = 409 ] && grep -qF 'portable plugin pyai is installed already: remove it first (DELETE /plugins/portables/pyai)' "$T/body" ||
  fail "duplicate upload: $code $(cat "$T/body")"
head -c 5000 /dev/urandom > "$T/junk.zip"
code=$(upload junk "$T/junk.zip")
[ "$code" = 400 ] && grep -q '"code":"bad_package"' "$T/body" || fail "a bad zip: $code $(cat "$T/body")"
[ -z "$(left_behind junk)" ] || fail "a bad zip left $(left_behind junk)"
head -c 5000000 /dev/zero > "$T/big.zip"
code=$(upload big "$T/big.zip")
[ "$code" = 413 ] || fail "a body over http.max_body_bytes: $code $(cat "$T/body")"
[ -z "$(left_behind big)" ] || fail "a too-large body left $(left_behind big)"
code=$(upload "" "$T/packages/teapot.zip")
[ "$code" = 400 ] && grep -qF 'an uploaded package needs its name: POST /plugins/portables?name=NAME' "$T/body" ||
  fail "no name: $code $(cat "$T/body")"
code=$(upload teapot "$T/packages/teapot.zip" text/plain)
[ "$code" = 415 ] || fail "text/plain (what a web page may send): $code $(cat "$T/body")"
[ -z "$(left_behind teapot)" ] || fail "refused uploads left $(left_behind teapot)"
pass "a duplicate 409 saying what holds the name, a bad zip 400 bad_package, a body too large 413, no name 400, text/plain 415; none leaves a file or a folder"

curl -s -o /dev/null -X DELETE "$BASE/plugins/portables/pyai"
[ -z "$(left_behind pyai)" ] || fail "DELETE left $(left_behind pyai)"
code=$(upload pyai "$T/packages/pyai.zip")
[ "$code" = 201 ] || fail "upload again after DELETE: $code $(cat "$T/body")"
stop_daemon
pass "DELETE takes the uploaded zip with it; the same name uploads again"
