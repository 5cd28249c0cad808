#!/usr/bin/env python3
"""Reloads an estimator's model while requests run (POST
/v1/estimators/{name}/reload), stdlib and onnx only.

    estimator_reload.py BASE DATA_DIR MODEL_FILE

MODEL_FILE is the file the estimator "crowd" (density family) was defined
with, a copy of dot_density.onnx. The test rewrites it as the same network
with its density map doubled (so every count doubles), reloads under load,
then writes a file that is no model and reloads again.
"""
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

import onnx
from onnx import helper, numpy_helper
import numpy as np

BASE, DATA, MODEL = sys.argv[1], sys.argv[2], sys.argv[3]
TRUTH = json.load(open(os.path.join(DATA, "truth.json")))
DOTS = next(d for d in TRUTH["dots"] if d["count"] == 20)
IMAGE = open(os.path.join(DATA, DOTS["file"]), "rb").read()


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def post(path, body=b"", ctype="image/png"):
    req = urllib.request.Request(BASE + path, data=body, method="POST",
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def doubled(src, dst):
    """src's network with its output multiplied by 2, written atomically."""
    m = onnx.load(src)
    out = m.graph.output[0]
    m.graph.initializer.append(numpy_helper.from_array(np.array(2.0, np.float32), "two"))
    m.graph.node.append(helper.make_node("Mul", [out.name + "_raw", "two"], [out.name]))
    for n in m.graph.node[:-1]:
        n.output[:] = [o + "_raw" if o == out.name else o for o in n.output]
    onnx.save(m, dst + ".tmp")
    os.replace(dst + ".tmp", dst)


def count():
    st, b = post("/v1/estimators/crowd?targets=T2", IMAGE)
    return st, b["results"][0]["count"] if st == 200 else b


original = open(MODEL, "rb").read()
answers, errors, stop = [], [], threading.Event()


def client():
    mine = []
    while not stop.is_set():
        st, c = count()
        (mine if st == 200 else errors).append(c)
    answers.append(mine)


threads = [threading.Thread(target=client) for _ in range(3)]
for t in threads:
    t.start()
time.sleep(0.5)
doubled(MODEL, MODEL)
st, b = post("/v1/estimators/crowd/reload", ctype="application/json")
if st != 200 or b.get("name") != "crowd":
    fail(f"reload: {st} {b}")
time.sleep(0.5)
stop.set()
for t in threads:
    t.join()
if errors:
    fail(f"{len(errors)} requests failed during the reload: {errors[:3]}")
for mine in answers:
    if not mine or mine != sorted(mine) or set(mine) - {20, 40} or mine[-1] != 40:
        fail(f"a client's counts: {mine[:5]}...{mine[-5:]} (want 20s, then 40s)")
n = sum(len(m) for m in answers)
print(f"ok - reload under load: {n} requests from 3 clients, none failed; each went from 20 "
      f"to 40 once the doubled model was in")

# A file that is no model: the reload is refused with why, the last model serves on.
with open(MODEL, "wb") as f:
    f.write(b"not a model")
st, b = post("/v1/estimators/crowd/reload", ctype="application/json")
if st != 400 or "was not reloaded (it serves on as it was)" not in b["error"]["message"]:
    fail(f"reload of a broken file: {st} {b}")
st, c = count()
if st != 200 or c != 40:
    fail(f"after the refused reload: {st} {c}")
st, b = post("/v1/estimators/nope/reload", ctype="application/json")
if st != 404 or "no estimator named 'nope'" not in b["error"]["message"]:
    fail(f"reload of an unknown estimator: {st} {b}")
open(MODEL, "wb").write(original)
st, b = post("/v1/estimators/crowd/reload", ctype="application/json")
st2, c = count()
if st != 200 or c != 20:
    fail(f"back to the first model: {st} {b} {c}")
print("ok - a file that is no model: 400 saying it serves on as it was, and it does (40); an "
      "unknown estimator 404; the first model back: 20")
