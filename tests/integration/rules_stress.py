#!/usr/bin/env python3
"""Races the streams and rules API against itself: THREADS clients for
SECONDS seconds, each picking at random among creating, replacing (PUT) and
deleting stream S, creating, replacing, deleting, stopping and restarting
rules on S, and pushing to it. Every answer must be one the API documents
for that call (2xx, 400, 404, 409, 503); the caller then checks that the
daemon is alive and its log holds no sanitizer report.

    rules_stress.py BASE SECONDS THREADS
"""
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request

BASE, SECONDS, THREADS = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
STREAM = ('CREATE STREAM s (n BIGINT) WITH (TYPE="httppush", DATASOURCE="/s%d")')
ALLOWED = {200, 201, 202, 204, 400, 404, 409, 503}


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def rule(rid):
    return {"id": rid, "sql": "SELECT n * 2 AS m FROM s WHERE n > 0",
            "actions": [{"log": {}}], "options": {"bufferLength": 16}}


OPS = [
    lambda rnd: call("POST", "/streams", {"sql": STREAM % rnd.randint(0, 1)}),
    lambda rnd: call("PUT", "/streams/s", {"sql": STREAM % rnd.randint(0, 1)}),
    lambda rnd: call("DELETE", "/streams/s"),
    lambda rnd: call("POST", "/rules", rule("r%d" % rnd.randint(0, 2))),
    lambda rnd: call("PUT", "/rules/r%d" % rnd.randint(0, 2), rule("r%d" % 0)),
    lambda rnd: call("DELETE", "/rules/r%d" % rnd.randint(0, 2)),
    lambda rnd: call("POST", "/rules/r%d/restart" % rnd.randint(0, 2)),
    lambda rnd: call("POST", "/rules/r%d/stop" % rnd.randint(0, 2)),
    lambda rnd: call("POST", "/push/s%d" % rnd.randint(0, 1), {"n": rnd.randint(-1, 9)}),
]

counts, bad, lock = {}, [], threading.Lock()


def worker(seed):
    rnd = random.Random(seed)
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        i = rnd.randrange(len(OPS))
        try:
            st = OPS[i](rnd)
        except Exception as e:  # a dropped connection: the daemon died
            with lock:
                bad.append("op %d: %r" % (i, e))
            return
        with lock:
            counts[st] = counts.get(st, 0) + 1
            if st not in ALLOWED:
                bad.append("op %d answered %d" % (i, st))


threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
total = sum(counts.values())
if bad:
    print("FAIL: %d bad answers, e.g. %s" % (len(bad), bad[:3]), file=sys.stderr)
    sys.exit(1)
print("ok - %d calls from %d clients in %g s, statuses %s" % (total, THREADS, SECONDS,
                                                              dict(sorted(counts.items()))))
