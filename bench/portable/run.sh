#!/usr/bin/env bash
# bench/portable/run.sh: calls into a Python portable plugin, by payload and
# transport, through libinferd in process (no HTTP): runs BUILD_DIR's
# bench/portable_bench against this tree's bench/portable/benchlen package.
#
#   bench/portable/run.sh [BUILD_DIR]    # BUILD_DIR (from the current folder) defaults to build
#
# Builds nothing: build the tree first (cmake --build BUILD_DIR), which also
# copies the Python SDK to BUILD_DIR/share/inferd/python, the plugin's
# PYTHONPATH. INFERD_PORTABLE_PYTHON picks the interpreter (default python3
# from /usr/local/bin:/usr/bin:/bin). Prints the markdown table on stdout and
# writes it as CSV to BUILD_DIR/bench/portable_bench.csv. About 10-20 s.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$#" -le 1 ] || { echo "usage: bench/portable/run.sh [BUILD_DIR]" >&2; exit 2; }
BUILD=${1:-build}
BENCH="$BUILD/bench/portable_bench"
[ -x "$BENCH" ] || { echo "bench/portable/run.sh: no $BENCH (build $BUILD first)" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec "$BENCH" -o "$BUILD/bench/portable_bench.csv" "$ROOT/bench/portable/benchlen"
