#!/usr/bin/env python3
"""Sends estimations through the load balancer from 3 threads for SECONDS,
and reports how many got 200 and what the others got.

    scaleout_client.py URL IMAGE SECONDS OUT.json
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

URL, IMAGE, SECONDS, OUT = sys.argv[1], open(sys.argv[2], "rb").read(), float(sys.argv[3]), sys.argv[4]
ok, bad, lock = [0], [], threading.Lock()
end = time.monotonic() + SECONDS


def client():
    while time.monotonic() < end:
        req = urllib.request.Request(URL, data=IMAGE, headers={"Content-Type": "image/png"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                good = r.status == 200 and json.loads(r.read())["results"][0]["count"] == 5
                why = r.status
        except urllib.error.HTTPError as e:
            good, why = False, e.code
        except Exception as e:  # a reset connection, a timeout
            good, why = False, type(e).__name__
        with lock:
            if good:
                ok[0] += 1
            else:
                bad.append(str(why))


threads = [threading.Thread(target=client) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
json.dump({"ok": ok[0], "bad": bad}, open(OUT, "w"))
