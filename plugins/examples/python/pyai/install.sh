#!/bin/sh
# Runs once when the package is installed. There is no package index to
# install from, so this only checks that what requirements.txt lists is
# importable by the interpreter that will run the plugin.
python=${INFERD_PYTHON:-python3}
if ! "$python" -c 'import numpy, PIL' 2>/dev/null; then
    echo "pyai needs numpy and Pillow (see requirements.txt) for $python;" \
         "install them (Debian: apt-get install python3-numpy python3-pil)" >&2
    exit 1
fi
echo "pyai: numpy and Pillow found for $python"
