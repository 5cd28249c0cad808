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

# docs/models.md: its example runs against the contract it shows, and every
# {"estimators": ...} configuration on the page parses and passes `inferd config`
# (the config keys; the estimator settings themselves are checked at serve).
INFERD_ESTIMATORS='{"peopleCountEstimator": {"input": {"resize": "letterbox", "width": 256, "height": 256}}}' \
  start_daemon
/usr/bin/python3 "$TEST_SRCDIR/tests/integration/docs_examples.py" \
  "$TEST_SRCDIR/docs/models.md" "$BASE" "$T" || fail "docs/models.md examples"
stop_daemon
/usr/bin/python3 - "$TEST_SRCDIR/docs/models.md" "$T" <<'PY' || fail "docs/models.md configurations"
import json, re, sys
page = open(sys.argv[1]).read()
blocks = [b for b in re.findall(r"```json\n(.*?)```", page, re.S) if b.startswith('{"estimators"')]
assert blocks, "no configuration block"
for i, b in enumerate(blocks):
    json.loads(b)
    open(f"{sys.argv[2]}/models_{i}.json", "w").write(b)
PY
for f in "$T"/models_*.json; do
  "$TEST_INFERD" config --config "$f" >"$T/out" 2>&1 || fail "docs/models.md: $f refused: $(cat "$T/out")"
done
pass "docs/models.md: the example gives the output shown; its configurations parse and pass inferd config"
