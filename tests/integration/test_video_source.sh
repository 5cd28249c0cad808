#!/usr/bin/env bash
# video_source (plugins/builtin/media) end to end, with real components:
# videos made here by the ffmpeg CLI from frames whose dots are known,
# counted by the default dot_density model through `inferd run`; a live
# MPEG-TS stream over HTTP (ffmpeg's own server) and over RTSP (VLC) that
# goes away and comes back while a daemon's pipeline reads it, and stops
# that do not wait for the network; what bad inputs get, word for word.
. "$(dirname "$0")/lib.sh"
: "${TEST_SRCDIR:?}"
check() { /usr/bin/python3 "$TEST_SRCDIR/tests/integration/video_check.py" "$@"; }
for tool in ffmpeg cvlc; do
  command -v "$tool" >/dev/null || fail "$tool is not installed: run scripts/setup.sh"
done

# ---- the videos: 30 frames of 256x192, frame i with (i % 6) + 1 dots
check frames "$T" || fail "cannot draw the frames"
ffmpeg -v error -framerate 10 -i "$T/f_%03d.png" -c:v mjpeg -q:v 2 "$T/v.mkv" ||
  fail "ffmpeg cannot make v.mkv"
ffmpeg -v error -framerate 25 -i "$T/f_%03d.png" -c:v mpeg2video -q:v 2 "$T/live.ts" ||
  fail "ffmpeg cannot make live.ts"
echo "a text file, not a video" > "$T/notes.bin"

# run NAME PROPS: `inferd run` of video_source with PROPS -> dot_density;
# its lines in $T/NAME.jsonl, its standard error in $T/NAME.err, exit code in rc.
run() {
  check pipeline "$2" > "$T/$1.json"
  rc=0
  "$TEST_INFERD" run "$T/$1.json" > "$T/$1.jsonl" 2> "$T/$1.err" || rc=$?
}

# ---- a file: every frame, in order, counted right; fps takes some
run all "{\"location\": \"$T/v.mkv\"}"
[ "$rc" = 0 ] || fail "run all: exit $rc: $(cat "$T/all.err")"
check counts "$T/all.jsonl" "$T" 1 || fail "a 30-frame file"
pass "a 30-frame MJPEG file (10 fps): 30 results, index 0..29 and ptsMs 0..2900 in order, every frame's dots counted right"
run fps5 "{\"location\": \"$T/v.mkv\", \"fps\": 5}"
[ "$rc" = 0 ] || fail "run fps5: exit $rc: $(cat "$T/fps5.err")"
check counts "$T/fps5.jsonl" "$T" 2 || fail "fps 5"
pass "fps 5: 15 results, every other frame (index 0, 2, ..., 28), counted right"

# ---- what bad inputs get
expect_error() { # expect_error NAME PROPS CODE MESSAGE: an errored frame, exit 1
  run "$1" "$2"
  local want="{\"input\":\"?\",\"error\":{\"code\":\"$3\",\"message\":\"element src (video_source, plugin media 1.0.0): process failed: $4\"}}"
  [ "$rc" = 1 ] && [ "$(cat "$T/$1.jsonl")" = "$want" ] ||
    fail "$1: exit $rc, printed $(cat "$T/$1.jsonl"); want exit 1 and $want"
}
expect_refused() { # expect_refused NAME PROPS MESSAGE: refused at load, exit 2
  run "$1" "$2"
  [ "$rc" = 2 ] && grep -qF -- "$3" "$T/$1.err" ||
    fail "$1: exit $rc, said $(cat "$T/$1.err"); want exit 2 and $3"
}
expect_error missing "{\"location\": \"$T/nope.mkv\"}" io \
  "cannot open $T/nope.mkv: No such file or directory"
expect_error notvideo "{\"location\": \"$T/notes.bin\"}" invalid \
  "cannot open $T/notes.bin: Invalid data found when processing input"
pass "a file that is not there, and one that is not a video: one errored frame each, naming the file and FFmpeg's reason"
expect_refused negfps "{\"location\": \"$T/v.mkv\", \"fps\": -1}" \
  "$T/negfps.json: element src (video_source): property 'fps': out of range (got -1; allowed: double in [0, 1000])"
expect_refused behind "{\"location\": \"$T/v.mkv\", \"behind\": \"newest\"}" \
  "$T/behind.json: element src (video_source): property 'behind': unknown value (got \"newest\"; allowed: one of auto, wait, drop-oldest)"
expect_refused scheme "{\"location\": \"ftp://127.0.0.1/v.mkv\"}" \
  "$T/scheme.json: element src (video_source, plugin media 1.0.0): init failed: location \"ftp://...\": not a file path, nor an rtsp, http, https, udp or tcp URL"
pass "fps -1, behind \"newest\" and an ftp:// location are refused at load, each with its reason"

# ---- live streams, read by a daemon's pipeline
start_daemon
check live "$BASE" "$T" http || fail "the HTTP live stream"
check live "$BASE" "$T" rtsp || fail "the RTSP live stream"
# The daemon stops while a source waits out its back-off (nothing listens
# on the discard port): a clean exit, soon.
check pipeline '{"location": "tcp://127.0.0.1:9", "reconnectDelay": "10s"}' > "$T/down.json"
curl -s -o "$T/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data-binary @"$T/down.json" "$BASE/v1/pipelines" | grep -qx 201 || fail "POST down: $(cat "$T/body")"
sleep 0.5
t0=$(date +%s%N)
stop_daemon
took_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$took_ms" -lt 5000 ] || fail "the daemon took $took_ms ms to stop, as if it waited out the 10 s back-off"
pass "the daemon stops cleanly in $took_ms ms while a source waits out its back-off"
