#!/usr/bin/env bash
# Estimator families: new estimator names defined in the config with
# "type" (density, classify, segment), served like the built-in ones
# (HTTP, batching, metrics, GET /v1/estimators), each with its own model and
# input contract; what a wrong definition gets at start (exit 2, naming the
# key and what there is).
. "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_SRCDIR:?}" "${TEST_MODELS:?}"
PY=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
M="$T/models"
$PY "$TEST_SRCDIR/models/variants.py" --out "$M" || fail "models/variants.py failed"

cat >"$T/est.json" <<JSON
{"crowd": {"type": "density", "modelPath": "$M/dot_density_u8_nhwc.onnx", "maxBatch": 4},
 "colours": {"type": "classify", "modelPath": "$M/colour_classifier_bgr.onnx",
             "labelsFile": "colour_classifier_bgr.labels",
             "input": {"channelOrder": "bgr", "scale": 1, "mean": [103.53, 116.28, 123.675],
                       "std": [57.375, 57.12, 58.395]}}}
JSON
INFERD_ESTIMATORS="$(cat "$T/est.json")" start_daemon
curl -s "$BASE/v1/estimators" >"$T/list" || fail "GET /v1/estimators"
$PY - "$T/list" <<'PY' || fail "GET /v1/estimators: $(cat "$T/list")"
import json, sys
e = {x["name"]: x for x in json.load(open(sys.argv[1]))["estimators"]}
assert set(e) == {"crowd", "colours", "peopleCountEstimator", "imageLabelEstimator",
                  "defectEstimator"}, sorted(e)
assert e["crowd"]["component"] == "density" and e["crowd"]["modelBatch"] == 1, e["crowd"]
assert e["colours"]["component"] == "classify" and e["colours"]["maxBatch"] == 8, e["colours"]
assert [o["name"] for o in e["crowd"]["options"]] == ["targets"], e["crowd"]
PY
pass "GET /v1/estimators: the defined names beside the built-in ones, with their families"

post() { # NAME FILE QUERY -> body in $T/body, status in $T/code
  curl -s -o "$T/body" -w '%{http_code}' -H 'Content-Type: image/png' \
    --data-binary @"$TEST_DATA/$2" "$BASE/v1/estimators/$1$3" >"$T/code"
}
post crowd dots_05_20.png '?targets=T2'
[ "$(cat "$T/code")" = 200 ] && grep -q '"count":20' "$T/body" || fail "crowd: $(cat "$T/code") $(cat "$T/body")"
post colours colour_04_blue.png '?topK=2'
[ "$(cat "$T/code")" = 200 ] && $PY -c "import json,sys; b=json.load(open('$T/body')); assert b['results'][0]['labels'][0]['label']=='blue' and len(b['results'][0]['labels'])==2, b" ||
  fail "colours: $(cat "$T/code") $(cat "$T/body")"
post crowd dots_05_20.png '?targets=T9'
[ "$(cat "$T/code")" = 400 ] && grep -q "targets" "$T/body" || fail "crowd targets=T9: $(cat "$T/code") $(cat "$T/body")"
# The counter moves when the worker finishes the item, which can be just
# after the response went out: wait for it a little. (Read into a file:
# grep -q on a pipe would stop curl mid-body, failing the pipe.)
for _ in $(seq 50); do
  curl -s "$BASE/metrics" >"$T/metrics"
  grep -q 'inferd_estimator_items_total{estimator="crowd"} 1' "$T/metrics" && break
  sleep 0.1
done
grep -q 'inferd_estimator_items_total{estimator="crowd"} 1' "$T/metrics" ||
  fail "metrics for crowd: $(grep crowd "$T/metrics")"
stop_daemon
pass "crowd (density, uint8 NHWC model) counts 20; colours (classify, BGR mean/std) names blue; options checked; metrics per name"

"$TEST_INFERD" plugin inspect density >"$T/inspect" 2>/dev/null || fail "inspect density"
grep -qF 'family: serves the names the config gives it (estimators.NAME = {"type": "density", ...})' "$T/inspect" &&
  grep -qE '^    input +a JSON object' "$T/inspect" || fail "inspect density: $(cat "$T/inspect")"
pass "plugin inspect density: a family, with its settings and the input contract"

refused() { # SETTINGS NEEDLE
  local rc=0
  INFERD_ESTIMATORS="$1" "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/refused.log" || rc=$?
  [ "$rc" = 2 ] && grep -qF -- "$2" "$T/refused.log" || fail "$1: exit $rc, want 2 with '$2': $(cat "$T/refused.log")"
}
refused '{"crowd": {"type": "densty"}}' \
  "config estimators.crowd: type 'densty' is no estimator family (there are: density, classify, segment, detect, text, ctc, pipeline)"
refused '{"crowd": {"maxBatch": 2}}' \
  'config estimators.crowd: no such estimator (there are: peopleCountEstimator, imageLabelEstimator, defectEstimator); to define one, give its "type" (a family: density, classify, segment, detect, text, ctc, pipeline)'
refused '{"peopleCountEstimator": {"type": "density"}}' \
  'config estimators.peopleCountEstimator: served by peopleCountEstimator (plugin estimators); "type" defines new names only'
refused '{"crowd": {"type": "density", "peakTreshold": 2}}' \
  "estimator crowd (density): unknown property 'peakTreshold' (did you mean 'peakThreshold'?"
refused '{"crowd": {"type": 3}}' "property 'type'"
pass "a wrong definition stops the start (exit 2): unknown family, no type, type on a built-in name, a misspelt setting, a bad type"

# ---- detect: YOLOv8, YOLOv5 and SSD-style heads through a letterbox ----------------------
$PY "$TEST_SRCDIR/models/families.py" --out "$M" || fail "models/families.py failed"
box="\"input\": {\"resize\": \"letterbox\", \"padValue\": 114}, \"labelsFile\": \"squares.labels\", \"scoreThreshold\": 0.8"
INFERD_ESTIMATORS="{\"v8\": {\"type\": \"detect\", \"modelPath\": \"$M/squares_yolov8.onnx\", $box},
  \"v5\": {\"type\": \"detect\", \"modelPath\": \"$M/squares_yolov5.onnx\", \"head\": \"yolov5\", $box},
  \"ssd\": {\"type\": \"detect\", \"modelPath\": \"$M/squares_ssd.onnx\", \"boxesNormalized\": true, $box}}" \
  start_daemon
for name in v8 v5 ssd; do
  $PY "$here/detect_check.py" "$BASE" "$name" || fail "detect $name"
done
stop_daemon
pass "detect: YOLOv8, YOLOv5 and SSD-style heads find every square with its label (IoU >= 0.9 in the picture's pixels), one box each, 16 at once equal to alone"
refused "{\"d\": {\"type\": \"detect\", \"modelPath\": \"$M/squares_yolov8.onnx\", \"head\": \"boxes_scores\"}}" \
  "model $M/squares_yolov8.onnx has one output: head boxes_scores needs two"
refused '{"d": {"type": "detect"}}' "missing required property 'modelPath'"
pass "detect: a head the model cannot give, a missing modelPath: exit 2"

# ---- text: a DB-style map, boxes unclipped, rotated, in reading order ----------------------
INFERD_ESTIMATORS="{\"lines\": {\"type\": \"text\", \"modelPath\": \"$M/db_text.onnx\", \"unclipRatio\": 0.3,
  \"input\": {\"resize\": \"limit\", \"limit\": 960, \"multiple\": 32}}}" start_daemon
$PY "$here/text_check.py" "$BASE" lines || fail "text lines"
stop_daemon
pass "text: every line of 10 pictures found in reading order (IoU >= 0.85 through limit/32), a turned line's corners within 4 px, at once equal to alone"

# ---- ctc: a recogniser's [N,T,C] scores, greedy decoding over a charset --------------------
INFERD_ESTIMATORS="{\"digits\": {\"type\": \"ctc\", \"modelPath\": \"$M/ctc_digits.onnx\", \"charsetFile\": \"digits.charset\",
  \"input\": {\"resize\": \"letterbox\", \"width\": 128, \"height\": 8, \"padPosition\": \"topleft\"}}}" \
  start_daemon
$PY "$here/ctc_check.py" "$BASE" digits || fail "ctc digits"
stop_daemon
pass "ctc: digit strips padded right to 128 (letterbox topleft) read exactly, repeats kept, at once equal to alone"
strip="\"input\": {\"resize\": \"letterbox\", \"width\": 128, \"height\": 8, \"padPosition\": \"topleft\"}"
refused "{\"d\": {\"type\": \"ctc\", \"modelPath\": \"$M/ctc_digits.onnx\", \"charsetFile\": \"digits.charset\"}}" \
  "its input [-1,3,8,-1] fixes one side only: give the contract's resize"
refused "{\"d\": {\"type\": \"ctc\", \"modelPath\": \"$M/ctc_digits.onnx\", \"charsetFile\": \"digits.charset\", \"blankIndex\": 11, $strip}}" \
  "blankIndex 11: there are 11 classes (the charset's 10 and the blank)"
refused "{\"d\": {\"type\": \"ctc\", \"modelPath\": \"$M/ctc_digits.onnx\", \"charsetFile\": \"nope.charset\", $strip}}" \
  "charsetFile"
pass "ctc: no resize for a fixed height, a blank index past the classes, a missing charset: exit 2"

# ---- pipeline: a pipeline file as an estimator ---------------------------------------------
cat >"$T/count.json" <<JSON
{"count": {"in": {"factory": "appsrc", "next": "tensor"},
  "tensor": {"factory": "image_to_tensor", "next": "infer"},
  "infer": {"factory": "tensor_infer", "props": {"modelPath": "$TEST_MODELS/dot_density.onnx"}, "next": "count"},
  "count": {"factory": "density_count", "props": {"target": "T2"}, "next": "json"},
  "json": {"factory": "json_serialize", "next": "out"},
  "out": {"factory": "appsink"}}}
JSON
INFERD_ESTIMATORS="{\"crowdPipe\": {\"type\": \"pipeline\", \"pipeline\": \"$T/count.json\", \"maxBatch\": 4}}" start_daemon
$PY "$here/pipeline_estimator.py" "$BASE" "$TEST_DATA" crowdPipe || fail "the pipeline estimator"
stop_daemon
pass "pipeline: a pipeline file served as an estimator counts as peopleCountEstimator does, 16 at once equal to alone, detect areas cropped"
cat >"$T/two.json" <<'JSON'
{"two": {"a": {"factory": "appsrc", "next": "s"}, "b": {"factory": "appsrc", "next": "s:1"},
  "s": {"factory": "synchronize", "props": {"status": 1}, "next": "out"}, "out": {"factory": "appsink"}}}
JSON
refused "{\"p\": {\"type\": \"pipeline\", \"pipeline\": \"$T/two.json\"}}" \
  "has 2 source(s) and 1 sink(s): an estimator's pipeline has one appsrc (the image) and one appsink (the result)"
refused "{\"p\": {\"type\": \"pipeline\", \"pipeline\": \"$T/nope.json\"}}" "nope.json"
refused '{"p": {"type": "pipeline"}}' "missing required property 'pipeline'"
pass "pipeline: two sources, a missing file, no pipeline key: exit 2"

# ---- detection -> a crop per text box -> recognition, one pipeline file --------------------
cat >"$T/ocr.json" <<JSON
{"ocr": {"in": {"factory": "appsrc", "next": "det_size"},
  "det_size": {"factory": "image_resize", "props": {"limit": 960, "multiple": 32}, "next": "det_tensor"},
  "det_tensor": {"factory": "image_to_tensor", "next": "det"},
  "det": {"factory": "tensor_infer", "props": {"modelPath": "$M/db_text.onnx"}, "next": "boxes"},
  "boxes": {"factory": "text_boxes", "props": {"unclipRatio": 0.3}, "next": "crop"},
  "crop": {"factory": "object_crop", "props": {"dataSource": "boxes"}, "next": "rec_size"},
  "rec_size": {"factory": "image_resize", "props": {"resizeHeight": 8, "keepAspect": true}, "next": "rec_tensor"},
  "rec_tensor": {"factory": "image_to_tensor", "next": "rec"},
  "rec": {"factory": "tensor_infer", "props": {"modelPath": "$M/ctc_digits.onnx"}, "next": "text"},
  "text": {"factory": "ctc_decode", "props": {"charsetFile": "$M/digits.charset"}, "next": "join"},
  "join": {"factory": "object_join", "props": {"resultSource": "text"}, "next": "json"},
  "json": {"factory": "json_serialize", "props": {"dataSource": "join"}, "next": "out"},
  "out": {"factory": "appsink"}}}
JSON
INFERD_ESTIMATORS="{\"ocr\": {\"type\": \"pipeline\", \"pipeline\": \"$T/ocr.json\"}}" start_daemon
$PY "$here/ocr_check.py" "$BASE" ocr || fail "the OCR pipeline"
stop_daemon
pass "an OCR pipeline (text_boxes -> object_crop -> recogniser -> ctc_decode -> object_join) served as an estimator: every line read exactly in its box, 16 at once equal to alone, no text gives count 0"
echo "test_estimator_families: all passed"
