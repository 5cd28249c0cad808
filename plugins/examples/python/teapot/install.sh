#!/bin/sh
# Runs once when the package is installed: the teapot needs only the
# standard library, so this checks that the interpreter has asyncio.
python=${INFERD_PYTHON:-python3}
if ! "$python" -c 'import asyncio, json' 2>/dev/null; then
    echo "teapot needs a Python 3 with asyncio; $python does not run it" >&2
    exit 1
fi
echo "teapot: $python is fine"
