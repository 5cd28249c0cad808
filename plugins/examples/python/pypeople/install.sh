#!/bin/sh
# Runs once when the package is installed. There is no package index to
# install from, so this only checks that what requirements.txt lists is
# importable by the interpreter that will run the plugin.
python=${INFERD_PYTHON:-python3}
if ! "$python" -c 'import numpy' 2>/dev/null; then
    echo "pypeople needs numpy (see requirements.txt) for $python;" \
         "install it (Debian: apt-get install python3-numpy)" >&2
    exit 1
fi
echo "pypeople: numpy found for $python"
