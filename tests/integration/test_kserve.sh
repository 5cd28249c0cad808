#!/usr/bin/env bash
# The KServe v2 inference protocol (Triton's HTTP API) of `inferd serve`:
# every route with curl, then kserve_client.py (speaking the protocol as
# tritonclient does, JSON and binary tensors) against the default models'
# known behaviour and every error; then a models.dir with a test model of
# every datatype and a file that is not a model.
. "$(dirname "$0")/lib.sh"
: "${TEST_MODELS:?}"
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3


# ---- the default models ------------------------------------------------------------
start_daemon
version=$("$TEST_INFERD" --version | awk '{print $2}')
expect_json GET /v2/health/live 200 'j == {"live": True}'
expect_json GET /v2/health/ready 200 'j == {"ready": True}'
expect_json GET /v2 200 "j['name'] == 'inferd' and j['version'] == '$version' and 'binary_tensor_data' in j['extensions']"
expect_json GET /v2/models/dot_density 200 \
  "j['name'] == 'dot_density' and j['versions'] == ['1'] and j['platform'] == 'onnxruntime_onnx' and j['inputs'] == [{'name': 'image', 'datatype': 'FP32', 'shape': [-1, 3, -1, -1]}] and j['outputs'][0]['name'] == 'density'"
expect_json GET /v2/models/dot_density/versions/1 200 "j['name'] == 'dot_density'"
expect_json GET /v2/models/dot_density/ready 200 "j == {'name': 'dot_density', 'ready': True}"
expect_json GET /v2/models/dot_density/versions/1/ready 200 "j['ready'] is True"
expect_json POST /v2/repository/index 200 \
  "[(m['name'], m['state']) for m in j] == [('colour_classifier', 'READY'), ('dot_density', 'READY'), ('scratch_segmenter', 'READY')]"
expect_json POST /v2/repository/index 200 "len(j) == 3" -d '{"ready": true}'
expect_json POST /v2/repository/index 400 "'such as {\"ready\": true}' in j['error']['message']" -d '[]'
pass "health, server and model metadata, readiness, repository index (curl)"

expect_json GET /v2/models/nope 404 \
  "j['error']['code'] == 'not_found' and j['error']['message'] == \"no model 'nope'; the models are: colour_classifier, dot_density, scratch_segmenter\""
expect_json GET /v2/models/nope/ready 404 "\"no model 'nope'\" in j['error']['message']"
expect_json GET /v2/models/dot_density/versions/7 404 \
  "j['error']['message'] == \"model 'dot_density' has no version '7'; its only version is 1\""
expect_json POST /v2/models/nope/infer 404 "\"no model 'nope'\" in j['error']['message']" -d '{}'
# A known path with another method: the router's 405.
expect_json GET /v2/models/dot_density/infer 405 "j['error']['code'] == 'method_not_allowed'"
expect_json POST /v2/health/live 405 "j['error']['code'] == 'method_not_allowed'"
expect_json DELETE /v2/models/dot_density 405 "j['error']['code'] == 'method_not_allowed'"
expect_json POST /v2/models/dot_density/infer 400 \
  "j['error']['code'] == 'bad_request' and j['error']['message'].startswith('the request is not valid JSON')" \
  -H 'Content-Type: application/json' -d '{"inputs": [}'
expect_json POST /v2/models/colour_classifier/infer 400 \
  "'\"data\" has 2 element(s); shape [1,3,1,1] needs 3' in j['error']['message']" \
  -H 'Content-Type: application/json' \
  -d '{"inputs": [{"name": "image", "shape": [1, 3, 1, 1], "datatype": "FP32", "data": [1, 0]}]}'
expect_json POST /v2/models/dot_density/infer 400 \
  "j['error']['message'] == \"Content-Encoding 'gzip' is not supported; send the request uncompressed\"" \
  -H 'Content-Encoding: gzip' --data-binary @/dev/null
# One request by hand with curl: a 1x1 red pixel.
expect_json POST /v2/models/colour_classifier/infer 200 \
  "j['model_name'] == 'colour_classifier' and j['id'] == 'curl-1' and j['outputs'][0]['shape'] == [1, 8] and max(range(8), key=lambda k: j['outputs'][0]['data'][k]) == 2" \
  -H 'Content-Type: application/json' \
  -d '{"id": "curl-1", "inputs": [{"name": "image", "shape": [1, 3, 1, 1], "datatype": "FP32", "data": [[[[1.0]], [[0]], [[0]]]]}]}'
pass "errors: unknown model and version 404, wrong method 405, bad JSON, data count and compressed body 400 (curl)"

$PY "$here/kserve_checks.py" default "$BASE" "$TEST_MODELS" || fail "kserve_checks.py default"
stop_daemon

# ---- a models.dir of our own: every datatype, and a file that is not a model --------
mkdir "$T/models"
$PY "$here/kserve_checks.py" make-models "$T/models" || fail "cannot make the test model"
cp "$TEST_MODELS/colour_classifier.onnx" "$T/models/"
echo "not a model" > "$T/models/broken.onnx"
INFERD_MODELS_DIR="$T/models" start_daemon
grep -q 'model broken (.*broken.onnx) is not served' "$T/daemon.log" ||
  fail "the daemon did not log the model that failed to load"
expect_json GET /v2/health/live 200 'j == {"live": True}'
expect_json GET /v2/health/ready 503 \
  "j['error']['code'] == 'not_ready' and j['error']['message'].startswith(\"model 'broken' is not ready: it failed to load: \")"
expect_json GET /v2/models/broken/ready 503 "\"model 'broken' is not ready\" in j['error']['message']"
expect_json GET /v2/models/broken 503 "\"model 'broken' is not ready\" in j['error']['message']"
expect_json POST /v2/models/broken/infer 503 "\"model 'broken' is not ready\" in j['error']['message']" -d '{}'
expect_json GET /v2/models/colour_classifier/ready 200 "j['ready'] is True"
expect_json POST /v2/repository/index 200 \
  "[(m['name'], m['state']) for m in j] == [('broken', 'UNAVAILABLE'), ('colour_classifier', 'READY'), ('dtypes', 'READY')] and j[0]['reason']"
expect_json POST /v2/repository/index 200 "[m['name'] for m in j] == ['colour_classifier', 'dtypes']" -d '{"ready": true}'
pass "a model that fails to load: logged, 503 on its routes and /v2/health/ready, UNAVAILABLE in the index; the others served"
$PY "$here/kserve_checks.py" dtypes "$BASE" || fail "kserve_checks.py dtypes"
stop_daemon

# ---- stopping with requests queued: the running ones finish, the queued ones get 503 ----
# Eight 320x240 JSON requests take a worker a third of a second each (several
# seconds under ASan): once all are queued (the debug log says so), SIGTERM
# with no drain time finds two running and most of the rest queued.
$PY -c "
import json, sys, numpy as np
img = np.random.default_rng(1).random((1, 3, 240, 320)).astype(np.float32)
json.dump({'inputs': [{'name': 'image', 'shape': list(img.shape), 'datatype': 'FP32',
                       'data': img.flatten().tolist()}]}, open(sys.argv[1], 'w'))" "$T/big.json"
INFERD_HTTP_SHUTDOWN_TIMEOUT_MS=0 INFERD_LOG_LEVEL=info,kserve=debug start_daemon
for i in 1 2 3 4 5 6 7 8; do
  curl -s -o "$T/stop$i.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$T/big.json" "$BASE/v2/models/scratch_segmenter/infer" > "$T/stop$i.code" &
done
for _ in $(seq 1 600); do
  [ "$(grep -c 'scratch_segmenter: request queued' "$T/daemon.log")" -ge 8 ] && break
  sleep 0.05
done
[ "$(grep -c 'scratch_segmenter: request queued' "$T/daemon.log")" -ge 8 ] ||
  fail "the 8 requests were not all queued within 30 s"
stop_daemon
wait
ran=0 failed=0
for i in 1 2 3 4 5 6 7 8; do
  code=$(cat "$T/stop$i.code")
  case $code in
    200) $PY -c "import json,sys; o=json.load(open(sys.argv[1]))['outputs'][0]; sys.exit(o['shape'] != [1, 1, 240, 320] or len(o['data']) != 240 * 320)" "$T/stop$i.json" ||
           fail "request $i: incomplete 200 reply while stopping"
         ran=$((ran + 1)) ;;
    503) grep -qF "inferd is stopping; model 'scratch_segmenter' did not run" "$T/stop$i.json" ||
           fail "request $i: 503 without the stopping message: $(cat "$T/stop$i.json")"
         failed=$((failed + 1)) ;;
    *) fail "request $i: status $code while stopping: $(head -c 300 "$T/stop$i.json")" ;;
  esac
done
[ "$failed" -gt 0 ] || fail "no request was still queued at SIGTERM ($ran ran): the stop path went untested"
pass "SIGTERM with 8 requests in: $ran finished with 200, $failed queued ones got 503 stopping; exit 0"

# ---- a models.dir that does not exist is refused at start -------------------------
rc=0
INFERD_MODELS_DIR="$T/none" "$TEST_INFERD" serve --listen 127.0.0.1:0 2>"$T/none.log" || rc=$?
[ "$rc" != 0 ] || fail "serve with a missing models.dir exited 0"
grep -q "models.dir: cannot open the folder '$T/none'" "$T/none.log" ||
  fail "missing models.dir: $(cat "$T/none.log")"
pass "a missing models.dir is refused at start (exit $rc)"
