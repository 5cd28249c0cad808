#!/usr/bin/env python3
"""Runs the curl examples of a documentation page against a running daemon
and checks their output, so the docs cannot drift from what inferd does.

    docs_examples.py PAGE.md BASE WORKDIR

Every ```sh block that runs curl is run with bash in
WORKDIR (where the test has put the example images), with
http://127.0.0.1:8080 replaced by BASE. When the next block is ```json, the
output must match it: every key and array element shown must be there with
the same value (numbers within 1e-3); keys the page leaves out are not
checked. A ```text block must match exactly (after trimming). Other blocks
(```console, ```sh that is not curl) are illustrations, not run.
"""
import json
import re
import subprocess
import sys

page, base, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
blocks = re.findall(r"```(\w+)\n(.*?)```", open(page).read(), re.S)


def matches(want, got, where):
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return f"{where}: want an object, got {got!r}"
        for k, v in want.items():
            if k not in got:
                return f"{where}: key '{k}' missing in {got!r}"
            m = matches(v, got[k], f"{where}.{k}")
            if m:
                return m
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return f"{where}: want a list of {len(want)}, got {got!r}"
        for i, (a, b) in enumerate(zip(want, got)):
            m = matches(a, b, f"{where}[{i}]")
            if m:
                return m
        return None
    if isinstance(want, float) and isinstance(got, (int, float)):
        return None if abs(want - got) <= 1e-3 * max(1.0, abs(want)) else f"{where}: {got} != {want}"
    return None if want == got else f"{where}: {got!r} != {want!r}"


run = 0
for i, (lang, code) in enumerate(blocks):
    if lang != "sh" or "curl " not in code:
        continue
    cmd = code.replace("http://127.0.0.1:8080", base)
    out = subprocess.run(["bash", "-c", cmd], cwd=workdir, capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        sys.exit(f"FAIL: example {i} exited {out.returncode}: {code.strip()}\n{out.stderr}")
    nxt = blocks[i + 1] if i + 1 < len(blocks) else (None, None)
    if nxt[0] == "json":
        try:
            got = json.loads(out.stdout)
        except ValueError:
            sys.exit(f"FAIL: example {i} printed no JSON: {code.strip()}\n{out.stdout[:500]}")
        m = matches(json.loads(nxt[1]), got, "$")
        if m:
            sys.exit(f"FAIL: example {i}: {code.strip()}\n{m}\nfull output: {out.stdout[:800]}")
    elif nxt[0] == "text" and out.stdout.strip() != nxt[1].strip():
        sys.exit(f"FAIL: example {i}: {code.strip()}\nwant {nxt[1].strip()!r}\ngot {out.stdout.strip()!r}")
    run += 1
    print(f"ok - {page.split('/')[-1]} example {i}: {code.strip().splitlines()[0][:90]}")
if run == 0:
    sys.exit(f"FAIL: {page} has no curl examples")
print(f"ok - {run} examples of {page.split('/')[-1]} ran and matched")
