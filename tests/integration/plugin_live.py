#!/usr/bin/env python3
"""Activates and deactivates C plugins while requests run (POST
/v1/plugins/{name}/activate|deactivate), stdlib only.

    plugin_live.py BASE DATA_DIR

Three clients count people on a picture of 5 dots through
peopleCountEstimator, one more asks GET /teapot, while the main thread
activates people_count_onnx (which replaces peopleCountEstimator) and
teapot (a background component with routes), then deactivates both, three
times over. No estimation may fail; each answer must be the built-in's or
the replacement's (each taken alone first: they count 5 with points a few
pixels apart), and both must be seen; /teapot answers only 418 or 404,
both seen.
"""
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

BASE, DATA = sys.argv[1], sys.argv[2]
IMAGE = open(os.path.join(DATA, "dots_03_5.png"), "rb").read()


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def call(method, path, body=None, ctype=None):
    req = urllib.request.Request(BASE + path, data=body, method=method,
                                 headers={"Content-Type": ctype} if ctype else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


stop = threading.Event()
errors, shapes, teapot = [], {}, {}
lock = threading.Lock()


def answer():
    """(status, the answer as a comparable value or the body)."""
    st, body = call("POST", "/v1/estimators/peopleCountEstimator", IMAGE, "image/png")
    try:
        r = json.loads(body)["results"][0]
        return st, (r["count"], tuple(sorted((p["x"], p["y"]) for p in r["points"])))
    except Exception:  # anything not an answer
        return st, body[:200]


def change(name, what):
    st, body = call("POST", f"/v1/plugins/{name}/{what}", b"", "application/json")
    if st != 200:
        fail(f"{what} {name}: {st} {body[:300]}")


st, BUILTIN = answer()
change("people_count_onnx", "activate")
st2, REPLACEMENT = answer()
change("people_count_onnx", "deactivate")
if st != 200 or st2 != 200 or BUILTIN[0] != 5 or REPLACEMENT[0] != 5 or BUILTIN == REPLACEMENT:
    fail(f"the two answers alone: {st} {BUILTIN}, {st2} {REPLACEMENT}")
KINDS = {BUILTIN: "built-in", REPLACEMENT: "replacement"}


def estimate_client():
    while not stop.is_set():
        st, a = answer()
        kind = KINDS.get(a) if st == 200 and isinstance(a, tuple) else None
        with lock:
            if kind:
                shapes[kind] = shapes.get(kind, 0) + 1
            else:
                errors.append((st, a))


def teapot_client():
    while not stop.is_set():
        st, _ = call("GET", "/teapot")
        with lock:
            teapot[st] = teapot.get(st, 0) + 1


threads = [threading.Thread(target=estimate_client) for _ in range(3)]
threads.append(threading.Thread(target=teapot_client))
for t in threads:
    t.start()
cycles = 3
for _ in range(cycles):
    time.sleep(0.3)
    change("people_count_onnx", "activate")
    change("teapot", "activate")
    time.sleep(0.3)
    st, body = call("GET", "/v1/estimators/peopleCountEstimator")
    if st != 200 or json.loads(body)["plugin"] != "people_count_onnx":
        fail(f"while active: {st} {body[:200]}")
    change("people_count_onnx", "deactivate")
    change("teapot", "deactivate")
time.sleep(0.3)
stop.set()
for t in threads:
    t.join()

if errors:
    fail(f"{len(errors)} estimations failed while plugins came and went: {errors[:3]}")
if set(shapes) != {"replacement", "built-in"}:
    fail(f"answers came from {shapes}, not from both components")
if set(teapot) != {418, 404}:
    fail(f"GET /teapot answered {teapot} (want only 418 while active and 404 while not)")
st, body = call("GET", "/v1/estimators/peopleCountEstimator")
if st != 200 or json.loads(body)["plugin"] != "estimators":
    fail(f"after deactivation: {st} {body[:200]}")
n = sum(shapes.values())
print(f"ok - {cycles} activations and deactivations of people_count_onnx and teapot under load: "
      f"{n} estimations, none failed, all counted 5 ({shapes['replacement']} by the "
      f"replacement, {shapes['built-in']} by the built-in); GET /teapot {teapot.get(418)} x 418 "
      f"and {teapot.get(404)} x 404, nothing else")
