#!/usr/bin/python3
"""Writes versions of one portable plugin, "ver", for the upgrade tests.

    portable_versions.py OUTDIR

Its one function ver(x) answers {"v": VERSION, "x": x}, so a result says
which version made it:
  ver-1.zip, ver-2.zip   good versions 1.0.0 and 2.0.0;
  ver-crash.zip          3.0.0, whose process exits before its handshake;
  ver-badopen.zip        4.0.0, which starts but cannot open an instance;
  ver-other.zip          5.0.0, which declares a second function.
"""
import json
import os
import stat
import sys
import zipfile

OUT = sys.argv[1]

MAIN = '''#!/usr/bin/env python3
import sys
from inferd import Function, PluginConfig, plugin

VERSION = {v}
{before}

class Ver(Function):
    def __init__(self):
        {init}

    def exec(self, args, ctx):
        return {{"v": VERSION, "x": args[0]}}


if __name__ == "__main__":
    plugin.start(PluginConfig("ver", functions={{{functions}}}))
'''


def write(path, version, functions=("ver",), before="", init="pass"):
    manifest = {"version": f"{version}.0.0", "language": "python", "executable": "main.py",
                "description": f"version {version}",
                "functions": [{"name": f, "minArgs": 1, "maxArgs": 1} for f in functions]}
    main = MAIN.format(v=version, before=before, init=init,
                       functions=", ".join(f'"{f}": Ver' for f in functions))
    with zipfile.ZipFile(os.path.join(OUT, path), "w") as z:
        for name, data, mode in (("ver.json", json.dumps(manifest), 0o644),
                                 ("main.py", main, 0o755)):
            info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | mode) << 16
            z.writestr(info, data)


write("ver-1.zip", 1)
write("ver-2.zip", 2)
write("ver-crash.zip", 3, before='print("version 3 gives up", file=sys.stderr)\nsys.exit(3)')
# The SDK makes one object to describe the components at its handshake;
# the instances opened after it are the ones that fail.
write("ver-badopen.zip", 4, before="MADE = [0]",
      init='MADE[0] += 1\n        if MADE[0] > 1:\n            raise RuntimeError("version 4 cannot open this")')
write("ver-other.zip", 5, functions=("ver", "ver2"))
