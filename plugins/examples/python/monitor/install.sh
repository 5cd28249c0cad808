#!/bin/sh
# Runs once when the package is installed: the monitor needs only the
# standard library, so this checks that the interpreter has urllib.
python=${INFERD_PYTHON:-python3}
if ! "$python" -c 'import json, urllib.request' 2>/dev/null; then
    echo "monitor needs a Python 3 with urllib.request; $python does not run it" >&2
    exit 1
fi
echo "monitor: $python is fine"
