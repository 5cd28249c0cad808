#!/usr/bin/env python3
"""Runs the shell examples of a documentation page against a running daemon
and checks their output, so the docs cannot drift from what inferd does.

    docs_examples.py PAGE.md BASE WORKDIR [--replace OLD=NEW]...

Every ```sh block that runs curl, mosquitto_pub or mosquitto_sub, or that an
output block follows, is run with bash in WORKDIR (where the test has put
the example images), with http://127.0.0.1:8080 replaced by BASE and then
each OLD by its NEW, in the order given, in the block and in the output
block that follows it (the page shows the addresses a user has, the test
has its own ports). When the next block is ```json, the output
must match it: every key and array element shown must be there with the
same value (numbers within 1e-3); keys the page leaves out are not checked.
A ```text block must match exactly (after trimming). Other blocks
(```console, ```sh without those commands and without an output block) are
illustrations, not run.

A block right after the comment <!-- retry --> is run again until its
output matches, for up to 30 s: for what a daemon updates on its own
threads (a rule's status once it runs). Each block runs in its own process
group, so that what it starts in the background (mosquitto_sub ... &) goes
with it when it overruns its 60 s.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("page")
parser.add_argument("base")
parser.add_argument("workdir")
parser.add_argument("--replace", action="append", default=[], metavar="OLD=NEW",
                    help="also replace OLD by NEW in every block and its output (after BASE)")
args = parser.parse_args()
page, base, workdir = args.page, args.base, args.workdir
replacements = []
for r in args.replace:
    old, sep, new = r.partition("=")
    if not sep or not old:
        sys.exit(f"docs_examples.py: --replace wants OLD=NEW, got {r!r}")
    replacements.append((old, new))

# (retry, language, code) of every fenced block, in page order.
blocks = [(m.group(1) is not None, m.group(2), m.group(3))
          for m in re.finditer(r"(<!--\s*retry\s*-->\s*)?```(\w+)\n(.*?)```", open(page).read(),
                               re.S)]
RUNS = ("curl ", "mosquitto_pub", "mosquitto_sub")
BLOCK_TIMEOUT_S = 60
RETRY_S = 30


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


def run(cmd):
    """Runs cmd with bash in its own process group: (exit status, stdout, stderr)."""
    p = subprocess.Popen(["bash", "-c", cmd], cwd=workdir, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # bash and what it left in the background
        out, err = p.communicate()
        return None, out, err
    return p.returncode, out, err


def check(i, code, cmd, nxt):
    """Runs one example: None when it did what the page says, else why not."""
    rc, out, err = run(cmd)
    if rc is None:
        return f"example {i} ran over {BLOCK_TIMEOUT_S} s: {code.strip()}\n{out[-500:]}{err[-500:]}"
    if rc != 0:
        return f"example {i} exited {rc}: {code.strip()}\n{err}"
    if nxt[0] == "json":
        try:
            got = json.loads(out)
        except ValueError:
            return f"example {i} printed no JSON: {code.strip()}\n{out[:500]}"
        m = matches(json.loads(nxt[1]), got, "$")
        if m:
            return f"example {i}: {code.strip()}\n{m}\nfull output: {out[:800]}"
    elif nxt[0] == "text" and out.strip() != nxt[1].strip():
        return f"example {i}: {code.strip()}\nwant {nxt[1].strip()!r}\ngot {out.strip()!r}"
    return None


ran = 0
for i, (retry, lang, code) in enumerate(blocks):
    nxt = blocks[i + 1][1:] if i + 1 < len(blocks) else (None, None)
    if lang != "sh" or not (any(r in code for r in RUNS) or nxt[0] in ("json", "text")):
        continue
    cmd = code.replace("http://127.0.0.1:8080", base)
    for old, new in replacements:
        cmd = cmd.replace(old, new)
        if nxt[0] in ("json", "text"):
            nxt = (nxt[0], nxt[1].replace(old, new))
    deadline = time.monotonic() + RETRY_S
    while True:
        failure = check(i, code, cmd, nxt)
        if failure is None or not retry or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if failure:
        sys.exit(f"FAIL: {failure}" + (f"\n(still so after {RETRY_S} s of retries)" if retry else ""))
    ran += 1
    print(f"ok - {page.split('/')[-1]} example {i}: {code.strip().splitlines()[0][:90]}")
if ran == 0:
    sys.exit(f"FAIL: {page} has no examples to run")
print(f"ok - {ran} examples of {page.split('/')[-1]} ran and matched")
