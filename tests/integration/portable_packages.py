#!/usr/bin/python3
"""Writes the packages test_portable.sh installs: the test plugin tests/portable/slow
and one broken package per way a package can be wrong.

    portable_packages.py SRCDIR OUTDIR

Each bad package is OUTDIR/<name>.zip, installed under <name>; what the daemon must
answer for it is in test_portable.sh.
"""
import json
import os
import stat
import sys
import zipfile

SRC, OUT = sys.argv[1], sys.argv[2]


def write(name, files, links=()):
    """files: {path: bytes|str}; an executable file is one whose path ends in .sh or
    main.py. links: [(path, target)] stored as symbolic links."""
    with zipfile.ZipFile(os.path.join(OUT, name + ".zip"), "w") as z:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, (2026, 1, 1, 0, 0, 0))
            mode = 0o755 if path.endswith((".sh", "main.py")) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            z.writestr(info, data)
        for path, target in links:
            info = zipfile.ZipInfo(path, (2026, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)


def manifest(**extra):
    m = {"version": "v1.0.0", "language": "python", "executable": "main.py",
         "functions": ["f"]}
    m.update(extra)
    return json.dumps(m)


# The test plugin, as it is in the source tree.
slow = os.path.join(SRC, "tests", "portable", "slow")
write("slow", {f: open(os.path.join(slow, f), "rb").read() for f in sorted(os.listdir(slow))})

GOOD_MAIN = ("from inferd import Function, PluginConfig, plugin\n"
             "class F(Function):\n"
             "    def exec(self, args, ctx):\n"
             "        return 1\n"
             "plugin.start(PluginConfig('%s', functions={'f': F}))\n")

write("nomanifest", {"main.py": GOOD_MAIN % "nomanifest"})
write("badjson", {"badjson.json": "{\"version\": ", "main.py": GOOD_MAIN % "badjson"})
write("misnamed", {"other.json": manifest(), "main.py": GOOD_MAIN % "misnamed"})
write("noexec", {"noexec.json": manifest(executable="missing.py")})
write("escape", {"escape.json": manifest(), "main.py": GOOD_MAIN % "escape",
                 "../evil.txt": "outside"})
write("linkout", {"linkout.json": manifest(), "main.py": GOOD_MAIN % "linkout"},
      links=[("models", "/etc")])
write("installfails", {"installfails.json": manifest(), "main.py": GOOD_MAIN % "installfails",
                       "install.sh": "echo checking numpy-ish things\necho 'missing: tflite' >&2\nexit 3\n"})
write("installhangs", {"installhangs.json": manifest(), "main.py": GOOD_MAIN % "installhangs",
                       "install.sh": "echo downloading forever\nsleep 600\n"})
# install.sh leaves a process running outside its group (setsid), one with
# the install's output still open: both must be gone after the install,
# which must not wait for them.
write("escapee", {"escapee.json": manifest(), "main.py": GOOD_MAIN % "escapee",
                  "install.sh": "echo installing\nsetsid sleep 4242 &\n"
                                "setsid sh -c 'sleep 4243' </dev/null >/dev/null 2>&1 &\n"
                                "echo done\n"})
# Prints 5000 lines at start, then works: its output is logged within
# portable.log_lines_per_s.
write("chatty", {"chatty.json": manifest(),
                 "main.py": "for i in range(5000):\n    print('chatty line', i, flush=True)\n"
                            + GOOD_MAIN % "chatty"})
# Starts a process of its own session when it starts: it must end with the
# plugin (removed, stopped, or dead).
write("spawner", {"spawner.json": manifest(),
                  "main.py": "import subprocess\n"
                             "subprocess.Popen(['setsid', 'sleep', '4245'], "
                             "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, "
                             "stderr=subprocess.DEVNULL)\n" + GOOD_MAIN % "spawner"})
write("silent", {"silent.json": manifest(),
                 "main.py": "import time\nprint('loading a model that never loads')\ntime.sleep(600)\n"})
write("garbage", {"garbage.json": manifest(), "main.py": (
    "import os, socket, time\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "s.connect(os.environ['INFERD_SOCKET'])\n"
    "s.sendall(b'\\x00\\x00\\x00\\x05\\x00\\x00\\x00\\x00hello')\n"
    "time.sleep(30)\n")})
write("mismatch", {"mismatch.json": manifest(),
                   "main.py": GOOD_MAIN.replace("'f': F", "'g': F") % "mismatch"})
write("crashes", {"crashes.json": manifest(), "main.py": "import sys\nprint('bye')\nsys.exit(4)\n"})
# For the limits the daemon puts on a plugin (test_portable_limits.sh): a
# call that holds its pool worker for ever, one that allocates MiB, one
# that burns CPU; two pool workers, so two stuck calls exhaust the pool.
write("limits", {"limits.json": json.dumps({
    "version": "v1.0.0", "language": "python", "executable": "main.py",
    "functions": [{"name": n, "minArgs": a, "maxArgs": a} for n, a in
                  (("hang", 1), ("hog", 1), ("spin", 1), ("pid", 0))]}),
    "main.py": (
        "import os, time\n"
        "from inferd import Function, PluginConfig, plugin\n"
        "class Hang(Function):\n"
        "    def exec(self, args, ctx):\n"
        "        time.sleep(args[0] / 1000)\n"
        "        return args[0]\n"
        "class Hog(Function):\n"
        "    def exec(self, args, ctx):\n"
        "        held = bytearray(args[0] << 20)\n"
        "        held[::4096] = b'x' * len(held[::4096])\n"
        "        return len(held) >> 20\n"
        "class Spin(Function):\n"
        "    def exec(self, args, ctx):\n"
        "        end = time.process_time() + args[0] / 1000\n"
        "        while time.process_time() < end:\n"
        "            pass\n"
        "        return args[0]\n"
        "class Pid(Function):\n"
        "    def exec(self, args, ctx):\n"
        "        return os.getpid()\n"
        "plugin.start(PluginConfig('limits', workers=2, functions={\n"
        "    'hang': Hang, 'hog': Hog, 'spin': Spin, 'pid': Pid}))\n")})
