#!/usr/bin/env bash
# The KServe model repository of `inferd serve` (Triton's layout, beside the
# flat *.onnx files): the index with versions and states, a config.json
# (maxBatchSize, backendOptions) and a bad one, /config, loading a model
# added after start, reloading and unloading while requests run, a failed
# reload that keeps the old version, statistics and /metrics per model
# (kserve_repository.py), and `inferd model ...` with its exit codes.
. "$(dirname "$0")/lib.sh"
: "${TEST_MODELS:?}"
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
M="$T/models"

make_model() { $PY "$here/kserve_repository.py" make "$1" "$2" || fail "cannot make $1"; }
infer_x='{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}'
model() { "$TEST_INFERD" model "$@"; }

# ---- the repository: a flat file, a folder with a config, a bad config, a slow model ------
mkdir -p "$M"
cp "$TEST_MODELS/colour_classifier.onnx" "$M/"
$PY "$here/kserve_repository.py" make-slow "$M/slow.onnx" || fail "cannot make slow.onnx"
make_model "$M/scale/1/model.onnx" 1
echo '{"maxBatchSize": 8, "backendOptions": {"intra_op_threads": 1}}' >"$M/scale/config.json"
make_model "$M/bad/1/model.onnx" 5
echo '{"maxBatch": 8}' >"$M/bad/config.json"
mkdir "$M/notes" # a folder without versions is not a model
INFERD_MODELS_DIR="$M" INFERD_LOG_LEVEL=info,kserve=debug start_daemon
export INFERD_URL=$BASE

expect_json POST /v2/repository/index 200 \
  "[(m['name'], m.get('version'), m['state']) for m in j] == [('bad', '1', 'UNAVAILABLE'), ('colour_classifier', '1', 'READY'), ('scale', '1', 'READY'), ('slow', '1', 'READY')] and \"unknown property 'maxBatch' (did you mean 'maxBatchSize'?\" in j[0]['reason'] and j[0]['reason'].startswith('$M/bad/config.json: ')"
expect_json GET /v2/models/bad/ready 503 \
  "j['error']['message'].startswith(\"model 'bad' is not ready: it failed to load: $M/bad/config.json: unknown property 'maxBatch' (did you mean 'maxBatchSize'?\")"
expect_json POST /v2/models/bad/infer 503 "j['error']['code'] == 'not_ready'" -d "$infer_x"
expect_json GET /v2/health/ready 503 "\"model 'bad' is not ready\" in j['error']['message']"
expect_json POST /v2/models/scale/infer 200 \
  "j['model_version'] == '1' and j['outputs'][0]['data'] == [1.0, 2.0]" -d "$infer_x"
expect_json POST /v2/models/colour_classifier/infer 200 "j['model_version'] == '1'" \
  -d '{"inputs": [{"name": "image", "shape": [1, 3, 1, 1], "datatype": "FP32", "data": [1, 0, 0]}]}'
expect_json GET /v2 200 "{'model_repository', 'statistics', 'model_configuration'} <= set(j['extensions'])"
pass "index: versions and states; a bad config.json makes only that model UNAVAILABLE with the did-you-mean reason (503 on its routes); the flat file and the folder serve"

expect_json GET /v2/models/scale/config 200 \
  "j == {'name': 'scale', 'platform': 'onnxruntime_onnx', 'backend': 'onnxruntime', 'version_policy': {'all': {}}, 'max_batch_size': 8, 'instance_group': [{'name': 'scale', 'kind': 'KIND_CPU', 'count': 1}], 'input': [{'name': 'x', 'data_type': 'TYPE_FP32', 'dims': [2]}], 'output': [{'name': 'y', 'data_type': 'TYPE_FP32', 'dims': [2]}], 'parameters': {'intra_op_threads': {'string_value': '1'}}}"
expect_json GET /v2/models/colour_classifier/versions/1/config 200 \
  "j['max_batch_size'] == 0 and j['input'] == [{'name': 'image', 'data_type': 'TYPE_FP32', 'dims': [-1, 3, -1, -1]}] and j['parameters'] == {}"
expect_json GET /v2/models/scale/versions/4/config 404 \
  "j['error']['message'] == \"model 'scale' has no version '4'; its only version is 1\""
pass "/config: Triton's shape (TYPE_FP32, dims without the batch when maxBatchSize > 0, the backend options as parameters)"

# A config that is fixed, and a model added after start: loaded on request.
echo '{"maxBatchSize": 8}' >"$M/bad/config.json"
make_model "$M/late/1/model.onnx" 7
expect_json POST /v2/repository/index 200 "{'name': 'late', 'state': 'UNAVAILABLE', 'reason': 'not loaded'} in j"
expect_json POST /v2/models/late/infer 404 \
  "j['error']['message'] == \"model 'late' is in models.dir but not loaded: POST /v2/repository/models/late/load loads it\"" -d "$infer_x"
expect_json POST /v2/repository/models/late/load 200 "j == {'name': 'late', 'state': 'READY', 'versions': ['1']}"
expect_json POST /v2/models/late/infer 200 "j['outputs'][0]['data'] == [7.0, 14.0]" -d "$infer_x"
expect_json POST /v2/repository/models/bad/load 200 "j['state'] == 'READY'"
expect_json GET /v2/health/ready 200 "j == {'ready': True}"
expect_json POST /v2/repository/models/nope/load 404 \
  "j['error']['message'] == \"no model 'nope' in models.dir ($M); the models are: bad, colour_classifier, late, scale, slow\""
expect_json POST /v2/repository/models/late/load 400 \
  "j['error']['message'] == \"the load request: unknown property 'parameters.config' (known: none)\"" \
  -H 'Content-Type: application/json' -d '{"parameters": {"config": "{}"}}'
pass "a model added after start is listed (not loaded), 404 until loaded, then served; a fixed config loads; unknown names 404 with the models"

$PY "$here/kserve_repository.py" reload "$BASE" "$M" || fail "kserve_repository.py reload"

# A reload whose new version does not load: 400 with the backend's reason,
# the versions that served go on.
mkdir -p "$M/scale/5" && echo "not a model" >"$M/scale/5/model.onnx"
expect_json POST /v2/repository/models/scale/load 400 \
  "j['error']['message'].startswith('version 5: backend onnxruntime: cannot load $M/scale/5/model.onnx: ')"
expect_json POST /v2/models/scale/infer 200 "j['model_version'] == '2' and j['outputs'][0]['data'] == [3.0, 6.0]" -d "$infer_x"
expect_json POST /v2/repository/index 200 "[m['version'] for m in j if m['name'] == 'scale'] == ['1', '2']"
rm -r "$M/scale/5"
pass "a reload that fails answers 400 with the backend's reason; versions 1 and 2 go on serving"

# versionPolicy (Triton's version_policy): latest N, specific, all; each bad one 400.
cp "$M/scale/config.json" "$T/scale_config.json"
echo '{"maxBatchSize": 8, "versionPolicy": {"latest": {"numVersions": 1}}}' >"$M/scale/config.json"
expect_json POST /v2/repository/models/scale/load 200 "j == {'name': 'scale', 'state': 'READY', 'versions': ['2']}"
expect_json GET /v2/models/scale/config 200 "j['version_policy'] == {'latest': {'num_versions': 1}}"
expect_json POST /v2/models/scale/versions/1/infer 404 "\"has no version '1'\" in j['error']['message']" -d "$infer_x"
echo '{"maxBatchSize": 8, "versionPolicy": {"specific": {"versions": [1]}}}' >"$M/scale/config.json"
expect_json POST /v2/repository/models/scale/load 200 "j['versions'] == ['1']"
expect_json POST /v2/models/scale/infer 200 "j['model_version'] == '1' and j['outputs'][0]['data'] == [1.0, 2.0]" -d "$infer_x"
expect_json GET /v2/models/scale/config 200 "j['version_policy'] == {'specific': {'versions': [1]}}"
for bad in '{"specific": {"versions": [3]}}|names version 3, which has no folder' \
           '{"latest": {"numVersions": 1}, "all": {}}|versionPolicy takes one of latest, all and specific, not 2 of them' \
           '{"latest": {"numVersions": 0}}|numVersions' \
           '{"lastest": {}}|unknown property '"'"'versionPolicy.lastest'"'"' (did you mean '"'"'latest'"'"'?'; do
  echo "{\"versionPolicy\": ${bad%%|*}}" >"$M/scale/config.json"
  expect_json POST /v2/repository/models/scale/load 400 "j['error']['code'] == 'bad_request'"
  grep -qF -- "${bad#*|}" "$T/body" || fail "versionPolicy ${bad%%|*}: $(cat "$T/body")"
done
expect_json POST /v2/models/scale/infer 200 "j['model_version'] == '1'" -d "$infer_x"
cp "$T/scale_config.json" "$M/scale/config.json"
expect_json POST /v2/repository/models/scale/load 200 "j['versions'] == ['1', '2']"
pass "versionPolicy: latest 1 serves version 2 only (version 1 404), specific [1] serves 1; a version without its folder, two policies, numVersions 0, a misspelt key: 400 each, what served goes on"

$PY "$here/kserve_repository.py" unload "$BASE" "$T/daemon.log" || fail "kserve_repository.py unload"
expect_json GET /v2/models/slow/ready 404 "'is not loaded' in j['error']['message']"
expect_json GET /v2/health/ready 200 "j == {'ready': True}"
expect_json POST /v2/repository/models/slow/unload 200 "j == {'name': 'slow', 'state': 'UNAVAILABLE', 'versions': [], 'reason': 'unloaded'}"
expect_json POST /v2/repository/models/nope/unload 404 "j['error']['message'].startswith(\"no model 'nope'; the models are: bad, \")"
pass "an unloaded model: 404 not loaded on its routes, not counted by /v2/health/ready; unloading again is 200; unknown 404"

# Statistics routes.
expect_json GET /v2/models/stats 200 \
  "sorted({(s['name'], s['version']) for s in j['model_stats']}) == [('bad', '1'), ('colour_classifier', '1'), ('late', '1'), ('scale', '1'), ('scale', '2'), ('slow', '1')]"
expect_json GET /v2/models/late/stats 200 \
  "[(s['version'], s['inference_count'], s['inference_stats']['success']['count']) for s in j['model_stats']] == [('1', 1, 1)] and j['model_stats'][0]['inference_stats']['compute_infer']['ns'] > 0"
expect_json GET /v2/models/scale/versions/1/stats 200 "[s['version'] for s in j['model_stats']] == ['1']"
expect_json GET /v2/models/scale/versions/9/stats 404 "\"has no version '9'; its versions are: 1, 2\" in j['error']['message']"
expect_json GET /v2/models/nope/stats 404 "\"no model 'nope'\" in j['error']['message']"
pass "stats of every model, of one, of one version; unknown model and version 404"

# ---- inferd model ------------------------------------------------------------------------
model list >"$T/list" || fail "model list: $(cat "$T/err")"
head -1 "$T/list" | grep -qE '^NAME +VERSION +STATE +REASON$' || fail "model list header: $(cat "$T/list")"
grep -qE '^scale +2 +READY *$' "$T/list" || fail "model list: $(cat "$T/list")"
grep -qE '^slow +1 +UNAVAILABLE +unloaded$' "$T/list" || fail "model list: $(cat "$T/list")"
model list --json | $PY -c "import json,sys; assert len(json.load(sys.stdin)) == 6" || fail "model list --json"
model info scale >"$T/info" || fail "model info"
grep -qx 'versions:   1, 2' "$T/info" && grep -qx 'max batch:  8' "$T/info" &&
  grep -qx 'inputs:     x FP32 \[-1,2\]' "$T/info" || fail "model info: $(cat "$T/info")"
model info scale --version 1 --json | $PY -c "import json,sys; j=json.load(sys.stdin); assert j['metadata']['name'] == 'scale' and j['config']['max_batch_size'] == 8" ||
  fail "model info --json"
[ "$(model unload late)" = "late: UNAVAILABLE" ] || fail "model unload late"
[ "$(model load late)" = "late: READY (versions 1)" ] || fail "model load late"
model stats scale >"$T/stats" || fail "model stats"
head -1 "$T/stats" | grep -qE '^NAME +VERSION +SUCCESS +FAIL +INFERENCES +QUEUE_MS +INPUT_MS +INFER_MS +OUTPUT_MS$' ||
  fail "model stats header: $(cat "$T/stats")"
grep -qE '^scale +2 +[1-9][0-9]* +2 +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$' "$T/stats" || fail "model stats: $(cat "$T/stats")"
model stats --json | $PY -c "import json,sys; assert len(json.load(sys.stdin)['model_stats']) == 6" || fail "model stats --json"
pass "inferd model list, info (--version, --json), unload, load, stats print what the daemon says"

expect_exit 1 "inferd: 404 not_found: no model 'nope' in models.dir ($M); the models are: *" model load nope
expect_exit 1 "inferd: 404 not_found: model 'slow' is not loaded (it was unloaded)*" model info slow
expect_exit 1 "inferd: 404 not_found: model 'scale' has no version '7'*" model stats scale --version 7
expect_exit 2 "inferd: model: unknown command 'frob'" model frob
expect_exit 2 "inferd: model info: missing NAME" model info
expect_exit 2 "inferd: model stats: --version needs a NAME" model stats --version 1
expect_exit 2 "inferd: model load: --version is not an option of this command" model load scale --version 1
expect_exit 1 "inferd: cannot reach http://127.0.0.1:1: *" model list --url http://127.0.0.1:1
model --help | grep -qF 'usage: inferd model COMMAND' || fail "model --help"
"$TEST_INFERD" --help | grep -qF 'model COMMAND' || fail "inferd --help lacks model"
pass "inferd model: daemon errors and an unreachable daemon exit 1, usage errors exit 2"

stop_daemon
echo "test_kserve_repository: all passed"
