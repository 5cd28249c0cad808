#!/usr/bin/env bash
# Estimators follow the model: the default models declared the usual ways
# (models/variants.py: a fixed batch of 1, a fixed batch of 4, a dynamic
# batch, a fixed 224x224 input, uint8 NHWC pixels) each serve 64 requests at once with every
# answer equal to the answer alone, never a batch the model cannot take; a
# model no estimator can serve stops the daemon at start (exit 2) naming the
# model, its input and shape; a KServe request the model's declared inputs
# cannot take is 400, a failure inside the run is 500 with ONNX Runtime's
# message.
. "$(dirname "$0")/lib.sh"
: "${TEST_MODELS:?}" "${TEST_DATA:?}" "${TEST_SRCDIR:?}"
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
M="$T/models"
$PY "$TEST_SRCDIR/models/variants.py" --out "$M" || fail "models/variants.py failed"

# ---- peopleCountEstimator on batch 1, 4 and dynamic; defaults otherwise ----------------
for v in b1:1 b4:4 dyn:8 u8_nhwc:1; do
  name=${v%%:*} limit=${v##*:}
  INFERD_ESTIMATORS="{\"peopleCountEstimator\": {\"modelPath\": \"$M/dot_density_$name.onnx\"}}" \
    start_daemon
  curl -s "$BASE/v1/estimators" >"$T/list" || fail "GET /v1/estimators"
  $PY - "$T/list" "$limit" <<'PYEOF' || fail "GET /v1/estimators for dot_density_$name: $(cat "$T/list")"
import json, sys
j = json.load(open(sys.argv[1]))
e = [x for x in j["estimators"] if x["name"] == "peopleCountEstimator"][0]
want = int(sys.argv[2])
assert e["maxBatch"] == want and e["modelBatch"] == (0 if want == 8 else want), e
assert e["maxDelayUs"] == 0 and e["workers"] >= 1, e
PYEOF
  $PY "$here/estimator_models.py" "$BASE" "$TEST_DATA" people "$limit" ||
    fail "dot_density_$name as peopleCountEstimator"
  stop_daemon
  pass "dot_density_$name: batch limit $limit, 64 at once and 1..9 at once equal to alone"
done

# ---- points mapped back through a contract's resize ----------------------------------------
# A letterbox of 256x192 into 256x256 puts the image 32 rows down; limit with
# multiple 32 scales each side by its own factor (333x257 -> 320x256).
for c in 'letterbox:{"resize": "letterbox", "width": 256, "height": 256, "padValue": 0}:dots_05_20.png' \
         'limit:{"resize": "limit", "multiple": 32}:dots_03_5.png dots_05_20.png dots_07_50.png dots_09_100.png'; do
  name=${c%%:*} rest=${c#*:} contract=${rest%:*} files=${rest##*:}
  INFERD_ESTIMATORS="{\"peopleCountEstimator\": {\"input\": $contract}}" start_daemon
  # shellcheck disable=SC2086
  $PY "$here/estimator_models.py" "$BASE" "$TEST_DATA" points $files || fail "points through $name"
  stop_daemon
done
pass "points come back in the image's pixels through letterbox and limit (multiple of 32)"

# ---- a BGR mean/std classifier: served right only with its input contract ----------------
bgr="\"modelPath\": \"$M/colour_classifier_bgr.onnx\", \"labelsFile\": \"colour_classifier_bgr.labels\""
INFERD_ESTIMATORS="{\"imageLabelEstimator\": {$bgr, \"input\": {\"channelOrder\": \"bgr\", \"scale\": 1, \"mean\": [103.53, 116.28, 123.675], \"std\": [57.375, 57.12, 58.395]}}}" \
  start_daemon
curl -s "$BASE/v1/estimators/imageLabelEstimator" >"$T/desc" || fail "GET the estimator"
$PY "$here/estimator_models.py" "$BASE" "$TEST_DATA" bgr with || fail "colour_classifier_bgr with its contract"
stop_daemon
INFERD_ESTIMATORS="{\"imageLabelEstimator\": {$bgr}}" start_daemon
$PY "$here/estimator_models.py" "$BASE" "$TEST_DATA" bgr without || fail "colour_classifier_bgr without its contract"
stop_daemon
pass "colour_classifier_bgr: right with channelOrder bgr, scale 1, mean and std; wrong without"

# ---- the contract from the model's metadata_props; the config wins, key by key --------------
meta="\"modelPath\": \"$M/colour_classifier_bgr_meta.onnx\", \"labelsFile\": \"colour_classifier_bgr_meta.labels\""
INFERD_ESTIMATORS="{\"imageLabelEstimator\": {$meta}}" start_daemon
$PY "$here/estimator_models.py" "$BASE" "$TEST_DATA" bgr with || fail "the contract from metadata_props"
stop_daemon
INFERD_ESTIMATORS="{\"imageLabelEstimator\": {$meta, \"input\": {\"channelOrder\": \"rgb\"}}}" start_daemon
$PY "$here/estimator_models.py" "$BASE" "$TEST_DATA" bgr without || fail "the config's channelOrder over the metadata's"
stop_daemon
rc=0
INFERD_ESTIMATORS="{\"imageLabelEstimator\": {\"modelPath\": \"$M/colour_classifier_bad_meta.onnx\", \"labelsFile\": \"colour_classifier_bad_meta.labels\"}}" \
  "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/refused.log" || rc=$?
[ "$rc" = 2 ] && grep -qF "colour_classifier_bad_meta.onnx: metadata: property 'inferd.input.channelOrder': unknown value (got \"bgrx\"" "$T/refused.log" ||
  fail "a bad contract in metadata_props: exit $rc: $(cat "$T/refused.log")"
pass "metadata_props inferd.input: the model says its contract (served right with no config), the config's key wins over it, a bad one stops the start naming the model"

# ---- imageLabelEstimator on a [1,3,224,224] model ------------------------------------
INFERD_ESTIMATORS="{\"imageLabelEstimator\": {\"modelPath\": \"$M/colour_classifier_224.onnx\", \"labelsFile\": \"colour_classifier_224.labels\"}}" \
  start_daemon
$PY "$here/estimator_models.py" "$BASE" "$TEST_DATA" labels224 || fail "colour_classifier_224"
stop_daemon
pass "colour_classifier_224: 224x224 labelled, other sizes stretched to it, never grouped"

# ---- a model no estimator can serve: refused at start, exit 2 ----------------------------
rc=0
INFERD_ESTIMATORS="{\"peopleCountEstimator\": {\"modelPath\": \"$M/gray_input.onnx\"}}" \
  "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/refused.log" || rc=$?
[ "$rc" = 2 ] || fail "gray_input as peopleCountEstimator: exit $rc, want 2: $(cat "$T/refused.log")"
for needle in "gray_input.onnx" "input 'image'" "[-1,1,-1,-1]" "has 1 channels (nchw); channelOrder rgb gives 3"; do
  grep -qF -- "$needle" "$T/refused.log" || fail "the refusal lacks '$needle': $(cat "$T/refused.log")"
done
pass "a [N,1,H,W] model as peopleCountEstimator: exit 2, naming the model, input and shape"
rc=0
INFERD_ESTIMATORS="{\"imageLabelEstimator\": {\"modelPath\": \"$M/colour_classifier_224.onnx\", \"labelsFile\": \"colour_classifier_224.labels\", \"input\": {\"resize\": \"none\"}}}" \
  "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/refused.log" || rc=$?
[ "$rc" = 2 ] && grep -qF "takes a fixed size, which resize none cannot always give" "$T/refused.log" ||
  fail "resize none on a 224x224 model: exit $rc, want 2: $(cat "$T/refused.log")"
rc=0
INFERD_ESTIMATORS='{"peopleCountEstimator": {"input": {"menu": [0.5], "resize": "fit"}}}' \
  "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/refused.log" || rc=$?
[ "$rc" = 2 ] && grep -qF "unknown property 'input.menu' (did you mean 'mean'?" "$T/refused.log" &&
  grep -qF "property 'input.resize': unknown value (got \"fit\"" "$T/refused.log" ||
  fail "a bad input contract: exit $rc, want 2 naming both keys: $(cat "$T/refused.log")"
pass "contracts that do not fit (resize none on a fixed size, a misspelt key, a bad value): exit 2, naming them"
rc=0
INFERD_ESTIMATORS='{"peopleCountEstimator": {"maxBatchBytes": 0}}' \
  "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/refused.log" || rc=$?
[ "$rc" = 2 ] && grep -q "maxBatchBytes" "$T/refused.log" ||
  fail "maxBatchBytes 0: exit $rc, want 2 naming the key: $(cat "$T/refused.log")"
rc=0
INFERD_ESTIMATORS='{"peopleCountEstimator": {"backendOptions": {"provider": "cuda"}}}' \
  "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/refused.log" || rc=$?
[ "$rc" = 2 ] && grep -q "deviceClass" "$T/refused.log" ||
  fail "backendOptions.provider: exit $rc, want 2 pointing at deviceClass: $(cat "$T/refused.log")"
rc=0
INFERD_ESTIMATORS='{"peopleCountEstimator": {"backendOptions": {"intra_op_threads": "many"}}}' \
  "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/refused.log" || rc=$?
[ "$rc" = 2 ] && grep -q "intra_op_threads" "$T/refused.log" ||
  fail "backendOptions.intra_op_threads 'many': exit $rc, want 2: $(cat "$T/refused.log")"
pass "bad estimator settings (maxBatchBytes 0, backendOptions provider, a bad backend option): exit 2"

# ---- KServe: the caller's mistakes are 400, a failing run is 500 --------------------------
mkdir -p "$T/ks"
cp "$M/fails_unless_4x4.onnx" "$M/dot_density_b1.onnx" "$T/ks/"
# ...with every memory and thread option of the backend set (a real session).
INFERD_MODELS_DIR="$T/ks" INFERD_MODELS_BACKEND_OPTIONS='{"intra_op_threads": 1, "allow_spinning": false, "cpu_mem_arena": false, "mem_pattern": false}' \
  start_daemon
infer() { # MODEL SHAPE(json) -> status in $T/code, body in $T/body
  local model=$1 shape=$2 n
  n=$($PY -c "import math, json; print(math.prod(json.loads('$shape')))")
  $PY -c "import json; print(json.dumps({'inputs': [{'name': 'image', 'datatype': 'FP32', 'shape': json.loads('$shape'), 'data': [0.5] * $n}]}))" >"$T/req"
  curl -s -o "$T/body" -w '%{http_code}' -X POST --data-binary @"$T/req" \
    "$BASE/v2/models/$model/infer" >"$T/code"
}
infer fails_unless_4x4 '[2,3,4,4]'
[ "$(cat "$T/code")" = 200 ] || fail "fails_unless_4x4 [2,3,4,4]: $(cat "$T/code") $(cat "$T/body")"
infer fails_unless_4x4 '[1,3,5,5]'
[ "$(cat "$T/code")" = 500 ] && grep -q '"model_error"' "$T/body" && grep -q "failed to run" "$T/body" &&
  grep -qi "broadcast\|shape\|dimension" "$T/body" ||
  fail "fails_unless_4x4 [1,3,5,5] (runs only 4x4): want 500 model_error with ONNX Runtime's message, got $(cat "$T/code") $(cat "$T/body")"
infer dot_density_b1 '[2,3,8,8]'
[ "$(cat "$T/code")" = 400 ] && grep -q "needs 1" "$T/body" && grep -q '\[1,3,-1,-1\]' "$T/body" ||
  fail "dot_density_b1 [2,3,8,8]: want 400 naming the shape [1,3,-1,-1], got $(cat "$T/code") $(cat "$T/body")"
infer dot_density_b1 '[1,3,8]'
[ "$(cat "$T/code")" = 400 ] && grep -q '\[1,3,-1,-1\]' "$T/body" ||
  fail "dot_density_b1 rank 3: want 400, got $(cat "$T/code") $(cat "$T/body")"
infer dot_density_b1 '[1,3,8,8]'
[ "$(cat "$T/code")" = 200 ] || fail "dot_density_b1 [1,3,8,8]: $(cat "$T/code") $(cat "$T/body")"
stop_daemon
pass "KServe: a shape the declared input cannot take is 400 naming it; a failing run is 500 model_error"

rc=0
INFERD_MODELS_DIR="$T/ks" INFERD_MODELS_BACKEND_OPTIONS='{"mem_pattern": "sometimes"}' \
  "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/refused.log" || rc=$?
[ "$rc" = 2 ] && grep -q "models.backend_options: property 'mem_pattern'" "$T/refused.log" ||
  fail "models.backend_options with a bad value: exit $rc, want 2 naming it: $(cat "$T/refused.log")"
pass "models.backend_options: applied to every KServe model; a bad one stops the start (exit 2)"
