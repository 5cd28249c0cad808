#!/usr/bin/env python3
"""Drives a running inferd's estimators that serve models declared the usual
ways (models/variants.py) and checks that grouping never changes an answer.

    estimator_models.py BASE DATA_DIR people MAX_BATCH
        peopleCountEstimator: every dots image alone (the reference, checked
        against the ground truth), then 64 requests at once, then 1..9 at
        once, then 9 images in one multipart request: every answer 200 and
        equal to the image's answer alone; /metrics shows no batch above
        MAX_BATCH (the model's fixed batch, or maxBatch), and grouping
        happened when MAX_BATCH > 1.
    estimator_models.py BASE DATA_DIR labels224
        imageLabelEstimator on a model fixed at [1,3,224,224]: 224x224
        images (raw and as a detect area) are labelled; other sizes are
        stretched to 224x224 (the default contract's resize auto) and
        labelled; 64 at once equal the answers alone.

    estimator_models.py BASE DATA_DIR points FILE...
        peopleCountEstimator with targets T1 on the dots images FILE...: the
        true count and every point within 4 px of a true dot (for contracts
        that resize: the points are mapped back to the image).
    estimator_models.py BASE DATA_DIR bgr with|without
        imageLabelEstimator on colour_classifier_bgr.onnx: with its input
        contract every colour is named right (alone and 32 at once); without
        it, some are not (the contract is what makes the answer right).

Exits 1 with the first mismatch; prints one "ok - ..." line per check.
"""
import base64
import concurrent.futures
import io
import json
import re
import sys
import urllib.request

from PIL import Image

from estimator_client import *  # noqa: F401,F403  BASE, DATA, MODE, TRUTH, fail, ok, read, mime, post, multipart


def metrics(estimator):
    with urllib.request.urlopen(BASE + "/metrics", timeout=30) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'^(inferd_estimator_\w+?)\{estimator="%s"(?:,le="([^"]+)")?\} (\d+)$'
                         % estimator, text, re.M):
        out[m.group(1) + (":" + m.group(2) if m.group(2) else "")] = int(m.group(3))
    return out


def at_once(n, call):
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def check_people(max_batch):
    E = "/v1/estimators/peopleCountEstimator"
    dots = TRUTH["dots"]
    alone = {}
    for d in dots:
        st, b = post(E, read(d["file"]), mime(d["file"]))
        if st != 200 or b["results"][0]["count"] != d["count"]:
            fail(f"{d['file']} alone: {st} {b}, want count {d['count']}")
        alone[d["file"]] = b["results"][0]
    ok(f"{len(dots)} images one at a time: 200 and the true counts")

    def one(i):
        d = dots[i % len(dots)]
        st, b = post(E, read(d["file"]), mime(d["file"]))
        return st, b, d["file"]

    for n in [64] + list(range(1, 10)):
        bad = [(st, b, f) for st, b, f in at_once(n, one)
               if st != 200 or b["results"] != [alone[f]]]
        if bad:
            fail(f"{n} at once: {len(bad)} answers differ from the image alone, e.g. {bad[0]}, "
                 f"alone {alone[bad[0][2]]}")
    ok("64 requests at once, then 1..9 at once: all 200, each equal to its image alone")

    before = metrics("peopleCountEstimator")
    pick = dots[:9]
    body, ctype = multipart([(d["file"], read(d["file"])) for d in pick])
    st, b = post(E, body, ctype)
    if st != 200 or b["results"] != [alone[d["file"]] for d in pick]:
        fail(f"9 images in one request: {st} {b}")
    after = metrics("peopleCountEstimator")
    runs = after["inferd_estimator_batch_size_count"] - before["inferd_estimator_batch_size_count"]
    # 9 images queued at once: as few runs as the batch allows (two workers
    # may split them further, never merge beyond the limit).
    if runs < -(-9 // max_batch):
        fail(f"9 images ran in {runs} batches: more than {max_batch} in one")
    ok(f"9 images in one request: equal answers, {runs} model runs (batch limit {max_batch})")

    m = after
    total = m["inferd_estimator_batch_size_count"]
    le = {1: "1", 4: "4", 8: "8"}[max_batch]
    if m["inferd_estimator_batch_size_bucket:" + le] != total:
        fail(f"some of {total} batches held more than {max_batch} images: {m}")
    grouped = m["inferd_estimator_batch_size_sum"] - m["inferd_estimator_batch_size_count"]
    if max_batch > 1 and grouped == 0:
        fail(f"no batch held more than one image (limit {max_batch}): {m}")
    if m.get("inferd_estimator_delay_waits_total", -1) != 0:
        fail(f"a batch waited for maxDelayUs, which is 0: {m}")
    if m["inferd_estimator_failed_total"] != 0:
        fail(f"failed items: {m}")
    ok(f"/metrics: {total} batches, none above {max_batch}, no delay waits, no failures")


def png(w, h, colour):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, "PNG")
    return buf.getvalue()


def check_labels224():
    E = "/v1/estimators/imageLabelEstimator"
    st, b = post(E, png(224, 224, (20, 10, 220)), "image/png")
    if st != 200 or b["results"][0]["labels"][0]["label"] != "blue":
        fail(f"224x224 blue: {st} {b}")
    ok("a 224x224 image on a [1,3,224,224] model: labelled")
    big = png(300, 260, (220, 10, 10))
    area = json.dumps({"x": 10, "y": 20, "width": 224, "height": 224})
    req = {"images": [{"image": base64.b64encode(big).decode(), "detectArea": json.loads(area)}]}
    st, b = post(E, json.dumps(req).encode(), "application/json")
    if st != 200 or b["results"][0]["labels"][0]["label"] != "red":
        fail(f"224x224 detect area: {st} {b}")
    ok("a 224x224 detect area of a larger image: labelled")
    st, b = post(E, png(96, 80, (0, 200, 0)), "image/png")
    if st != 200 or b["results"][0]["labels"][0]["label"] != "green":
        fail(f"96x80 on a 224x224 model: {st} {b}, want it stretched to 224x224 and labelled")
    ok("a 96x80 image on a 224x224 model: stretched to the model's size (resize auto), labelled")

    colours = [((20, 10, 220), "blue"), ((220, 10, 10), "red"), ((10, 200, 10), "green")]

    def one(i):
        c, want = colours[i % 3]
        st, b = post(E, png(224, 224, c), "image/png")
        return st == 200 and b["results"][0]["labels"][0]["label"] == want, (st, b)
    bad = [r for good, r in at_once(64, one) if not good]
    if bad:
        fail(f"64 at once on the [1,3,224,224] model: {len(bad)} wrong, e.g. {bad[0]}")
    m = metrics("imageLabelEstimator")
    if m["inferd_estimator_batch_size_bucket:1"] != m["inferd_estimator_batch_size_count"]:
        fail(f"a model fixed at batch 1 got a group: {m}")
    ok("64 at once on the [1,3,224,224] model: all right, every run a single image")


def check_bgr(contract):
    """colour_classifier_bgr: with its contract (BGR, mean/std) every colour
    is named right, alone and 32 at once; without it, not all are."""
    E = "/v1/estimators/imageLabelEstimator"
    colours = [((20, 10, 220), "blue"), ((220, 10, 10), "red"), ((10, 200, 10), "green")]
    got = []
    for c, want in colours:
        st, b = post(E, png(64, 48, c), "image/png")
        if st != 200:
            fail(f"{want}: {st} {b}")
        got.append(b["results"][0]["labels"][0]["label"])
    right = [g == w for g, (_, w) in zip(got, colours)]
    if contract == "with":
        if not all(right):
            fail(f"with the BGR mean/std contract: {got}, want blue, red, green")

        def one(i):
            c, want = colours[i % 3]
            st, b = post(E, png(64, 48, c), "image/png")
            return st == 200 and b["results"][0]["labels"][0]["label"] == want, (st, b)
        bad = [r for good, r in at_once(32, one) if not good]
        if bad:
            fail(f"32 at once: {len(bad)} wrong, e.g. {bad[0]}")
        ok("a BGR mean/std model with its contract: blue, red, green named right, 32 at once too")
    else:
        if all(right):
            fail(f"without the contract the BGR model still named every colour: {got}")
        ok(f"the same model fed the default contract (RGB in [0,1]) is wrong: {got}")


def check_points(files):
    """peopleCountEstimator T1 through a resizing contract: the true count,
    and every point within 4 px of a true dot, in the image's own pixels."""
    E = "/v1/estimators/peopleCountEstimator"
    dots = {d["file"]: d for d in TRUTH["dots"]}
    for f in files:
        d = dots[f]
        st, b = post(E + "?targets=T1", read(f), mime(f))
        if st != 200 or b["results"][0]["count"] != d["count"]:
            fail(f"{f}: {st} {b}, want count {d['count']}")
        for p in b["results"][0]["points"]:
            near = min(((p["x"] - t["x"]) ** 2 + (p["y"] - t["y"]) ** 2) ** 0.5 for t in d["dots"])
            if near > 4:
                fail(f"{f}: point {p} is {near:.1f} px from the nearest true dot")
    ok(f"{', '.join(files)}: true counts, every point within 4 px of a true dot")


if MODE == "people":
    check_people(int(sys.argv[4]))
elif MODE == "points":
    check_points(sys.argv[4:])
elif MODE == "bgr":
    check_bgr(sys.argv[4])
elif MODE == "labels224":
    check_labels224()
else:
    fail("unknown mode " + MODE)
