#!/usr/bin/env bash
# Installs everything inferd needs to build, run and test on Debian 12, then
# brings ONNX Runtime. Idempotent: a second run installs nothing and takes
# about a second. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each package and why (keep this list exact: nothing unused).
PKGS=(
  build-essential        # gcc, make: the C17 toolchain
  clang                  # the fuzz targets (libFuzzer) of tests/fuzz
  libclang-rt-14-dev     # libFuzzer's runtime for clang 14 (Debian 12)
  cmake                  # the build, and ctest for the test suite
  pkg-config             # finds the libraries below; installs inferd-plugin.pc
  libjansson-dev         # JSON: values, config, pipeline files, HTTP bodies
  libturbojpeg0-dev      # JPEG decode/encode (libjpeg-turbo)
  libspng-dev            # PNG decode/encode
  zlib1g-dev             # libspng's deflate
  libmicrohttpd-dev      # the HTTP server of `inferd serve`
  libgnutls28-dev        # HTTPS: checking clients' certificates (mutual TLS)
  openssl                # the TLS tests make their certificates
  libcmocka-dev          # unit tests
  libcurl4-openssl-dev   # HTTP clients: the rules' http action, the monitoring example plugin
  libssl-dev             # libcrypto: the SQL digests (md5, sha1, sha256, sha384, sha512)
  libzip-dev             # reads portable plugin packages (zip) entry by entry, links included
  libsqlite3-dev         # the state database: installed portable plugins (streams, rules)
  libmosquitto-dev       # the MQTT client of streams and rules
  libavformat-dev        # video_source (plugins/builtin/media): FFmpeg's demuxers and protocols
  libavcodec-dev         # video_source: FFmpeg's decoders
  libswscale-dev         # video_source: frames to RGB
  libavutil-dev          # video_source: FFmpeg's utilities
  ffmpeg                 # the video_source test makes its videos and serves a live HTTP stream
  vlc-bin                # cvlc: the video_source test's RTSP server on loopback
  vlc-plugin-base        # VLC's RTSP/RTP stream output and MPEG-TS (de)muxers (39 packages, 25 MiB)
  mosquitto              # the broker the stream/rule tests run on a loopback port
  mosquitto-clients      # mosquitto_pub/sub in tests and the docs
  python3-pytest         # the Python SDK's own tests
  curl                   # integration tests talk to the daemon with curl
  systemd                # systemd-analyze: the test of packaging/systemd/inferd.service
  wrk                    # test_bench checks inferd bench against wrk on the same load
  haproxy                # the scale-out test: two daemons behind a load balancer
  npm                    # fetches ONNX Runtime (see scripts/fetch_onnxruntime.sh)
  python3                # model and test-image generators
  python3-numpy          # generators: hand-set weights, synthetic images
  python3-onnx           # generators: writes the default .onnx models
  python3-pil            # generators: writes JPEG/PNG test images
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm may come from elsewhere (nodesource, nvm); any working npm will do.
if command -v npm >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [ "$p" = npm ] || tmp+=("$p"); done; missing=("${tmp[@]+"${tmp[@]}"}")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all Debian packages present"
fi

scripts/fetch_onnxruntime.sh
