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

# docs/plugins.md: activating and deactivating plugins at run time (REST and
# the CLI, the inferd of this build first on PATH).
INFERD_STATE_DIR="$T/state" start_daemon
PATH="$(dirname "$TEST_INFERD"):$PATH" /usr/bin/python3 "$TEST_SRCDIR/tests/integration/docs_examples.py" \
  "$TEST_SRCDIR/docs/plugins.md" "$BASE" "$T" || fail "docs/plugins.md examples"
stop_daemon
pass "docs/plugins.md: activation at run time gives the output the page shows"

# docs/pipelines.md: its first example, as the page gives it, from another folder.
/usr/bin/python3 - "$TEST_SRCDIR/docs/pipelines.md" "$T/count_dots.json" <<'PY' || fail "docs/pipelines.md: no first example"
import re, sys
block = re.findall(r"```json\n(.*?)```", open(sys.argv[1]).read(), re.S)[0]
open(sys.argv[2], "w").write(block)
PY
(cd "$T" && "$TEST_INFERD" run count_dots.json dots.png) >"$T/run.out" || fail "inferd run the first example"
/usr/bin/python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); assert r["count"]["count"] == 5, r' "$T/run.out" ||
  fail "the first example counted: $(head -c 300 "$T/run.out")"
pass "docs/pipelines.md: the first example runs as written from any folder and counts the 5 dots"

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

# README "Pipelines as a service": its block run as written (the daemon's
# address and the build's paths replaced by this test's), and the picture
# it answers is the one the README shows, pixel for pixel.
start_daemon
/usr/bin/python3 - "$TEST_SRCDIR/README.md" "$T/readme_pipeline.sh" <<'PY' || fail "README: no pipeline block"
import re, sys
page = open(sys.argv[1]).read()
section = page[page.index("### Pipelines as a service"):page.index("## Plugins")]
blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
assert len(blocks) == 2, len(blocks)
open(sys.argv[2], "w").write("".join(blocks))
PY
sed -i -e "s|http://127.0.0.1:8080|$BASE|g" -e "s|build/inferd|$TEST_INFERD|g" \
  -e "s|build/tests/data|$TEST_DATA|g" -e "s|examples/|$TEST_SRCDIR/examples/|g" "$T/readme_pipeline.sh"
(cd "$T" && INFERD_URL="$BASE" bash -e readme_pipeline.sh) > "$T/readme.out" 2>&1 ||
  fail "README pipeline block: $(cat "$T/readme.out")"
/usr/bin/python3 - "$T/drawn.png" "$TEST_SRCDIR/docs/img/overlay.png" <<'PY' || fail "README: the picture differs from docs/img/overlay.png"
import sys
from PIL import Image
a, b = (Image.open(p).convert("RGB") for p in sys.argv[1:3])
assert a.size == b.size and a.tobytes() == b.tobytes(), (a.size, b.size)
PY
/usr/bin/python3 - "$T/readme.out" <<'PY' || fail "README: the video's results: $(cat "$T/readme.out")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert len(lines) == 3, lines
for l in lines:
    assert l["pipeline"] == "video_count" and l["count"]["count"] >= 0 and "ptsMs" in l["src"], l
PY
stop_daemon
pass "README: the pipelines-as-a-service blocks run: the picture is the one the README shows, the video is counted live"
