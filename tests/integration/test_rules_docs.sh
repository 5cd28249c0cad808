#!/usr/bin/env bash
# The examples of docs/rules.md (its tutorial: the seeds' two flows, the
# built-in estimators as functions, a window over HTTP push), run in order
# against a real mosquitto broker and the real daemon, with the images and
# the example packages the page names; each output must match the page.
source "$(dirname "$0")/lib.sh"
: "${TEST_DATA:?}" "${TEST_SRCDIR:?}"

# The page packs the example plugins with plugins/examples/python/pack.py
# from the source tree, into the folder it runs in.
ln -s "$TEST_SRCDIR/plugins" "$T/plugins"
# The images the page publishes: three colours as JPEG (seed 004 sends JPEG
# bytes), a clean surface and two scratched ones as PNG (seed 003).
/usr/bin/python3 - "$TEST_DATA" "$T" <<'PY' || fail "making the page's images"
import shutil, sys
from PIL import Image
data, out = sys.argv[1], sys.argv[2]
for src, dst in [("colour_02_red.png", "red.jpg"), ("colour_03_green.jpg", "green.jpg"),
                 ("colour_04_blue.png", "blue.jpg")]:
    Image.open(f"{data}/{src}").convert("RGB").save(f"{out}/{dst}", "JPEG", quality=92)
for src, dst in [("scratches_00_0.png", "clean.png"), ("scratches_03_2.png", "scratches2.png"),
                 ("scratches_04_3.png", "scratches3.png")]:
    shutil.copy(f"{data}/{src}", f"{out}/{dst}")
PY

start_broker
export INFERD_MQTT_SERVER="$MQTT_SERVER"
# As the page starts it for its C plugin section.
export INFERD_PLUGIN_SETTINGS='{"simulated_sensor": {"intervalMs": 100, "count": 3}}'
start_daemon --active sensors
# The page shows the broker at 127.0.0.1:1883; this one has a port of its own.
/usr/bin/python3 "$TEST_SRCDIR/tests/integration/docs_examples.py" \
  "$TEST_SRCDIR/docs/rules.md" "$BASE" "$T" \
  --replace="127.0.0.1:1883=127.0.0.1:$MQTT_PORT" --replace="-p 1883=-p $MQTT_PORT" \
  || fail "docs/rules.md examples"
stop_daemon
stop_broker
pass "docs/rules.md: every example gives the output the page shows"
