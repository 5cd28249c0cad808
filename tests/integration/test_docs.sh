#!/usr/bin/env bash
# The curl examples of docs/service.md, run against a real daemon with the
# images the page names; each output must match the one the page shows.
source "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_SRCDIR:?}"
cp "$TEST_DATA/dots_03_5.png" "$T/dots.png"
cp "$TEST_DATA/dots_05_20.png" "$T/crowd.png"
cp "$TEST_DATA/colour_02_red.png" "$T/red.png"
cp "$TEST_DATA/scratches_03_2.png" "$T/scratches.png"
start_daemon --active teapot
/usr/bin/python3 "$TEST_SRCDIR/tests/integration/docs_examples.py" \
  "$TEST_SRCDIR/docs/service.md" "$BASE" "$T" || fail "docs/service.md examples"
stop_daemon
pass "docs/service.md: every curl example gives the output the page shows"
