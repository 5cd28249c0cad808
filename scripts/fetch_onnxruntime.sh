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
set -euo pipefail
cd "$(dirname "$0")/.."

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
if [ -f "$STAMP" ]; then
  echo "fetch_onnxruntime: ONNX Runtime present in $DEST"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetch_onnxruntime: npm pack $PKG@$VER"
(cd "$work" && npm pack --silent "$PKG@$VER" >/dev/null)
tgz="$work/$PKG-$VER.tgz"
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
  echo "fetch_onnxruntime: SHA-256 mismatch for $PKG@$VER: expected $SHA256, got $got" >&2
  exit 1
fi
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
