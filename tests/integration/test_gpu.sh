#!/usr/bin/env bash
# deviceClass gpu on this machine, whatever it has: ONNX Runtime's CUDA
# provider (scripts/fetch_onnxruntime.sh --gpu, which make test runs), the
# CUDA libraries, a driver, a GPU. Where the GPU cannot be used, the
# estimators run on the CPU, answer as there, and say precisely why: the
# provider file, or the one library that is missing (checked against ldd);
# /v1/estimators and KServe's /config report the device actually used.
# Where a GPU is used, scripts/gpu_check.sh compares it with the CPU.
. "$(dirname "$0")/lib.sh"
: "${TEST_SRCDIR:?}" "${TEST_DATA:?}" "${TEST_ORT_LIB_DIR:?}"
PROVIDER=$TEST_ORT_LIB_DIR/libonnxruntime_providers_cuda.so
[ -f "$PROVIDER" ] || fail "$PROVIDER is missing: scripts/fetch_onnxruntime.sh --gpu brings it (make test runs it)"

# device_of NAME: the estimator's device and deviceFallback, tab-separated.
device_of() {
  curl -s "$BASE/v1/estimators/$1" |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("device","-") + "\t" + d.get("deviceFallback","-"))'
}
count_is_5() {
  curl -s -H 'Content-Type: image/png' --data-binary @"$TEST_DATA/dots_03_5.png" \
    "$BASE/v1/estimators/peopleCountEstimator" | grep -q '"count":5,' || fail "the estimation on $1 was wrong"
}

# 1. No provider beside ONNX Runtime: a folder with only libonnxruntime.so.1
# (LD_LIBRARY_PATH comes before the plugin's RUNPATH).
mkdir -p "$T/ort"
ln -s "$(readlink -f "$TEST_ORT_LIB_DIR/libonnxruntime.so.1")" "$T/ort/libonnxruntime.so.1"
LD_LIBRARY_PATH="$T/ort" INFERD_DEVICE_CLASS=gpu start_daemon
IFS=$'\t' read -r dev why < <(device_of peopleCountEstimator)
[ "$dev" = cpu ] || fail "without the provider: device $dev"
[ "$why" = "ONNX Runtime's CUDA provider is not installed: $T/ort/libonnxruntime_providers_cuda.so does not exist (scripts/fetch_onnxruntime.sh --gpu brings it)" ] ||
  fail "without the provider: $why"
expect_http GET /v1/estimators/peopleCountEstimator 200 '"deviceClass":"gpu","device":"cpu"'
count_is_5 "the CPU fallback"
grep -q "provider cuda is not available (ONNX Runtime's CUDA provider is not installed" "$T/daemon.log" ||
  fail "no warning in the log"
pass "no CUDA provider: deviceClass gpu runs on the CPU, and says the provider file is missing and what brings it"
stop_daemon

# 2. The real provider: the first library it cannot load, or the GPU.
missing=$(ldd "$PROVIDER" | awk '/not found/ {print $1}')
INFERD_DEVICE_CLASS=gpu INFERD_MODELS_BACKEND_OPTIONS='{"provider": "cuda"}' start_daemon
IFS=$'\t' read -r dev why < <(device_of peopleCountEstimator)
kind=$(curl -s "$BASE/v2/models/dot_density/config" |
  /usr/bin/python3 -c 'import json,sys; print([g["kind"] for g in json.load(sys.stdin)["instance_group"]])')
if [ -n "$missing" ]; then
  lib=${why%% is missing*}
  [ "$dev" = cpu ] || fail "device $dev though ldd says missing: $missing"
  echo "$missing" | grep -qxF "$lib" || fail "the fallback names '$lib', ldd's missing ones are: $missing ($why)"
  case "$lib" in
    libcuda.so*) hint="the NVIDIA driver's library: no NVIDIA driver is installed" ;;
    libcudnn*) hint="cuDNN 9, which the CUDA provider needs" ;;
    *) hint="a CUDA 13 runtime library, which the CUDA provider needs" ;;
  esac
  [ "$why" = "$lib is missing ($hint); ONNX Runtime's CUDA provider $PROVIDER cannot load without it" ] ||
    fail "the fallback's reason: $why"
  [ "$kind" = "['KIND_CPU']" ] || fail "KServe's instance_group: $kind"
  count_is_5 "the CPU fallback"
  pass "the CUDA provider without $lib: runs on the CPU and names it ($why); KServe's /config says KIND_CPU"
elif [ "${dev%%:*}" = cuda ]; then
  [ "$kind" = "['KIND_GPU']" ] || fail "KServe's instance_group: $kind"
  count_is_5 "the GPU"
  pass "runs on $dev; KServe's /config says KIND_GPU"
else
  # Every library loads but no session could be made on a GPU (no device).
  [ "$dev" = cpu ] && [ -n "$why" ] && [ "$why" != - ] || fail "device $dev, reason '$why'"
  count_is_5 "the CPU fallback"
  pass "every CUDA library loads but the GPU cannot be used: on the CPU, saying $why"
fi
stop_daemon

# 3. scripts/gpu_check.sh: exit 2 with the reasons without a GPU; its
# comparisons (both daemons on the CPU here) agree.
set +e
"$TEST_SRCDIR/scripts/gpu_check.sh" --inferd "$TEST_INFERD" --seconds 0 >"$T/check.out" 2>&1
rc=$?
set -e
if [ "${dev%%:*}" = cuda ]; then
  [ "$rc" = 0 ] || fail "gpu_check on a GPU: exit $rc: $(tail -5 "$T/check.out")"
  pass "gpu_check: the GPU's answers agree with the CPU's: $(grep differ "$T/check.out")"
else
  [ "$rc" = 2 ] || fail "gpu_check without a GPU: exit $rc: $(tail -5 "$T/check.out")"
  grep -q "estimator peopleCountEstimator runs on cpu: " "$T/check.out" || fail "gpu_check: $(cat "$T/check.out")"
  grep -q "model dot_density runs as \['KIND_CPU'\]" "$T/check.out" || fail "gpu_check: $(cat "$T/check.out")"
  "$TEST_SRCDIR/scripts/gpu_check.sh" --inferd "$TEST_INFERD" --seconds 0 --without-gpu >"$T/check2.out" 2>&1 ||
    fail "gpu_check --without-gpu: $(tail -5 "$T/check2.out")"
  grep -q '^41 requests each to the CPU and the GPU daemon: 0 differ$' "$T/check2.out" || fail "gpu_check: $(cat "$T/check2.out")"
  pass "gpu_check without a GPU: exit 2 naming why; its comparisons agree (41 requests, 0 differ)"
fi
