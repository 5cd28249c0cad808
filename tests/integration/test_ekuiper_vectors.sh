#!/usr/bin/env bash
# eKuiper's own rule test vectors (tests/ekuiper/vectors.json, from its
# internal/topo/topotest) through the daemon's REST API: every case that
# runs is compared with what eKuiper expects. The cases that fail are
# listed with why in tests/ekuiper/known_failures.txt; the test fails when
# another case fails or a listed one passes, so the list and the pass rate
# stay true.
. "$(dirname "$0")/lib.sh"
V="$TEST_SRCDIR/tests/ekuiper"
mkdir -p "$T/ekuiper"
start_daemon
/usr/bin/python3 "$V/run.py" "$BASE" "$T/ekuiper" --known "$V/known_failures.txt" >"$T/report" ||
  fail "eKuiper's vectors: $(grep -B1 '^  ^' "$T/report")"
stop_daemon
pass "$(tail -n 1 "$T/report")"
