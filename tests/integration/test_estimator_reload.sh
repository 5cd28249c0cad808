#!/usr/bin/env bash
# An estimator's model replaced and reloaded while requests run (POST
# /v1/estimators/{name}/reload): none fails, answers move to the new model;
# a file that is no model is refused and the old one serves on
# (estimator_reload.py).
. "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_MODELS:?}"
cp "$TEST_MODELS/dot_density.onnx" "$T/crowd.onnx"
INFERD_ESTIMATORS="{\"crowd\": {\"type\": \"density\", \"modelPath\": \"$T/crowd.onnx\"}}" start_daemon
/usr/bin/python3 "$(dirname "$0")/estimator_reload.py" "$BASE" "$TEST_DATA" "$T/crowd.onnx" ||
  fail "estimator_reload.py"
grep -q "crowd: reloaded" "$T/daemon.log" || fail "no reload line in the log"
stop_daemon
