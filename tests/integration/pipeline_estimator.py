#!/usr/bin/env python3
"""Checks a pipeline served as an estimator against the built-in estimator
that runs the same model.

    pipeline_estimator.py BASE DATA_DIR NAME

NAME serves a pipeline image_to_tensor -> tensor_infer(dot_density) ->
density_count(T2) -> json_serialize. For every dots image of DATA_DIR: its
"count.count" equals peopleCountEstimator's count with targets T2 and the
truth; then 48 requests 16 at once, each equal to its image alone; then a
detect area: the pipeline sees only the area. Exits 1 at the first mismatch.
"""
import base64
import concurrent.futures
import json
import sys

from estimator_client import *  # noqa: F401,F403  BASE, DATA, TRUTH, fail, ok, read, mime, post

NAME = sys.argv[3]
E = f"/v1/estimators/{NAME}"
dots = TRUTH["dots"]
alone = {}
for d in dots:
    st, b = post(E, read(d["file"]), mime(d["file"]))
    st2, b2 = post("/v1/estimators/peopleCountEstimator?targets=T2", read(d["file"]), mime(d["file"]))
    if st != 200 or st2 != 200:
        fail(f"{d['file']}: {st} {b} / {st2} {b2}")
    got = b["results"][0]["count"]["count"]
    if got != b2["results"][0]["count"] or got != d["count"]:
        fail(f"{d['file']}: the pipeline counts {got}, peopleCountEstimator "
             f"{b2['results'][0]['count']}, the truth {d['count']}")
    alone[d["file"]] = b["results"][0]
ok(f"{len(dots)} images: the pipeline estimator's count equals peopleCountEstimator's and the truth")


def one(i):
    d = dots[i % len(dots)]
    st, b = post(E, read(d["file"]), mime(d["file"]))
    return st, b, d["file"]


with concurrent.futures.ThreadPoolExecutor(16) as pool:
    got = list(pool.map(one, range(48)))
bad = [(st, b, f) for st, b, f in got if st != 200 or b["results"] != [alone[f]]]
if bad:
    fail(f"16 at once: {len(bad)} differ, e.g. {bad[0]}")
ok("48 requests 16 at once through the pipeline's queues: each equal to its image alone")

d = [x for x in dots if x["count"] == 20][0]
dot = d["dots"][0]
area = {"x": max(0, int(dot["x"]) - 12), "y": max(0, int(dot["y"]) - 12), "width": 24, "height": 24}
body = json.dumps({"images": [{"image": base64.b64encode(read(d["file"])).decode(),
                               "detectArea": area}]}).encode()
st, b = post(E, body, "application/json")
if st != 200 or b["results"][0]["tensor"]["shape"] != [1, 3, 24, 24]:
    fail(f"a detect area: {st} {b}")
ok("a detect area: the pipeline gets the 24x24 area, not the image")
