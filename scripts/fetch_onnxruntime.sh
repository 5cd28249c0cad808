#!/usr/bin/env bash
# Brings the ONNX Runtime C library and headers into third_party/onnxruntime.
#
# Why this way: Debian 12 packages no ONNX Runtime, and only Debian's and the
# npm registry can be reached from our machines. The npm package
# com.github.asus4.onnxruntime ships the official Linux x64 build of ONNX
# Runtime (for Unity) together with the C headers. We pin its version and
# SHA-256 and unpack only the library and the headers.
#
# Set ONNXRUNTIME_ROOT to an official ONNX Runtime release folder (with
# include/ and lib/) to use that instead; then this script does nothing.
#
# --gpu also brings ONNX Runtime's CUDA provider from the npm package
# com.github.asus4.onnxruntime.linux-x64-gpu (the same release, 179 MB):
# libonnxruntime_providers_cuda.so and _shared.so beside libonnxruntime.so,
# where ONNX Runtime looks for them. They need CUDA 13 and cuDNN 9 and an
# NVIDIA driver at run time (docs/backends.md, "GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
GPU=0
case "${1:-}" in
  --gpu) GPU=1 ;;
  "") ;;
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "fetch_onnxruntime: unknown option '$1' (--gpu, --help)" >&2; exit 2 ;;
esac

PKG=com.github.asus4.onnxruntime
VER=0.4.9            # ONNX Runtime 1.29.0
SHA256=e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d
DEST=third_party/onnxruntime
STAMP="$DEST/.stamp-$VER-$SHA256"

if [ -n "${ONNXRUNTIME_ROOT:-}" ]; then
  [ -f "$ONNXRUNTIME_ROOT/include/onnxruntime_c_api.h" ] || {
    echo "fetch_onnxruntime: ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT has no include/onnxruntime_c_api.h" >&2; exit 1; }
  echo "fetch_onnxruntime: using ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# pack NAME SHA256: the package's tarball in $work, its SHA-256 checked.
pack() {
  echo "fetch_onnxruntime: npm pack $1@$VER"
  (cd "$work" && npm pack --silent "$1@$VER" >/dev/null)
  got=$(sha256sum "$work/$1-$VER.tgz" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "fetch_onnxruntime: SHA-256 mismatch for $1@$VER: expected $2, got $got" >&2
    exit 1
  fi
}
# The CUDA provider, beside a CPU build this script unpacked.
gpu() {
  [ "$GPU" = 1 ] || return 0
  local gstamp="$DEST/.stamp-gpu-$VER-$GPU_SHA256"
  if [ -f "$gstamp" ]; then
    echo "fetch_onnxruntime: the CUDA provider is present in $DEST/lib"
    return 0
  fi
  pack "$GPU_PKG" "$GPU_SHA256"
  local dir=package/Plugins/Linux/x64
  tar xzf "$work/$GPU_PKG-$VER.tgz" -C "$work" "$dir/libonnxruntime_providers_cuda.so" \
    "$dir/libonnxruntime_providers_shared.so"
  cp "$work/$dir/libonnxruntime_providers_cuda.so" "$work/$dir/libonnxruntime_providers_shared.so" \
    "$DEST/lib/"
  rm -f "$work/$GPU_PKG-$VER.tgz"
  touch "$gstamp"
  echo "fetch_onnxruntime: the CUDA provider unpacked into $DEST/lib"
}
GPU_PKG=com.github.asus4.onnxruntime.linux-x64-gpu
GPU_SHA256=2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412

if [ -f "$STAMP" ]; then
  echo "fetch_onnxruntime: ONNX Runtime present in $DEST"
  gpu
  exit 0
fi

pack "$PKG" "$SHA256"
tgz="$work/$PKG-$VER.tgz"
hdr='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64_x86_64-simulator/onnxruntime.framework/Headers'
lib='package/Plugins/Linux/x64/libonnxruntime.so'
tar xzf "$tgz" -C "$work" "$lib" "$hdr" package/LICENSE
rm -rf "$DEST"
mkdir -p "$DEST/include" "$DEST/lib"
cp "$work/$hdr"/*.h "$DEST/include/"
cp "$work/$lib" "$DEST/lib/libonnxruntime.so.1"
ln -s libonnxruntime.so.1 "$DEST/lib/libonnxruntime.so"
cp "$work/package/LICENSE" "$DEST/LICENSE"
touch "$STAMP"
echo "fetch_onnxruntime: ONNX Runtime 1.29.0 unpacked into $DEST"
gpu
