#!/usr/bin/env python3
"""Drives a running inferd's estimation API the way a client would (stdlib
urllib only) and checks every answer against the synthetic images' ground
truth (truth.json of scripts/gen_images.py).

    service_client.py BASE DATA_DIR check       every body kind, options, areas, errors
    service_client.py BASE DATA_DIR concurrent N   N requests at once, all correct

Exits 1 with the first mismatch; prints one "ok - ..." line per check.
"""
import base64
import concurrent.futures
import json
import math
import sys

from estimator_client import *  # noqa: F401,F403  BASE, DATA, MODE, TRUTH, fail, ok, read, mime, post, multipart


def expect_error(status, body, want_status, code, needle, what):
    if status != want_status:
        fail(f"{what}: status {status}, want {want_status}: {body}")
    err = body.get("error", {})
    if err.get("code") != code or needle not in err.get("message", ""):
        fail(f"{what}: error {err}, want code {code} and a message with '{needle}'")
    ok(f"{what} -> {want_status} {code}")


def near(points, dots, tol):
    """Every point within tol px of a distinct true dot."""
    left = [(d["x"], d["y"]) for d in dots]
    for p in points:
        best = min(left, key=lambda d: math.hypot(d[0] - p["x"], d[1] - p["y"]), default=None)
        if best is None or math.hypot(best[0] - p["x"], best[1] - p["y"]) > tol:
            return False
        left.remove(best)
    return True


def check_people():
    dots = [d for d in TRUTH["dots"] if d["count"] <= 50]
    # raw body, T1: exact count, every point on a dot
    for d in dots:
        st, b = post("/v1/estimators/peopleCountEstimator", read(d["file"]), mime(d["file"]))
        r = b["results"][0] if st == 200 else None
        if not r or r["count"] != d["count"] or len(r["points"]) != d["count"]:
            fail(f"people {d['file']}: {st} {b}, want count {d['count']}")
        if not near(r["points"], d["dots"], 3.0):
            fail(f"people {d['file']}: points {r['points']} are not on the dots {d['dots']}")
    ok(f"peopleCountEstimator raw body, T1: exact counts and points on {len(dots)} images")
    # T2 as a query option: count only
    d = dots[3]
    st, b = post("/v1/estimators/peopleCountEstimator?targets=T2", read(d["file"]), mime(d["file"]))
    if st != 200 or b["results"] != [{"count": d["count"]}]:
        fail(f"T2: {st} {b}")
    ok("targets=T2 gives the count only")
    # multipart with several images and an option field, answers in order
    pick = dots[:4]
    body, ctype = multipart([(x["file"], read(x["file"])) for x in pick], {"targets": "T2"})
    st, b = post("/v1/estimators/peopleCountEstimator", body, ctype)
    if st != 200 or [r["count"] for r in b["results"]] != [x["count"] for x in pick]:
        fail(f"multipart: {st} {b}")
    ok("multipart with 4 images: one result per image, in order")
    # JSON with base64 and a detect area: only the dots inside, in image coordinates
    # a split line that no dot comes near, on an image with a few dots
    d, cut = None, None
    for cand in (x for x in TRUTH["dots"] if 5 <= x["count"] <= 20 and x["file"].endswith(".png")):
        for c in range(cand["width"] // 3, 2 * cand["width"] // 3):
            if all(abs(p["x"] - c) > p["r"] + 8 for p in cand["dots"]):
                d, cut = cand, c
                break
        if d:
            break
    if not d:
        fail("no test image with a clean split for the detect area")
    w, h = d["width"], d["height"]
    area = {"x": cut, "y": 0, "width": w - cut, "height": h}
    inside = [p for p in d["dots"] if p["x"] > cut]
    img = base64.b64encode(read(d["file"])).decode()
    req = {"images": [img, {"image": img, "detectArea": area}], "targets": "T1"}
    st, b = post("/v1/estimators/peopleCountEstimator", json.dumps(req).encode(), "application/json")
    if st != 200 or b["results"][0]["count"] != d["count"] or b["results"][1]["count"] != len(inside):
        fail(f"detect area: {st} {b}, want {d['count']} and {len(inside)}")
    if not near(b["results"][1]["points"], inside, 3.0):
        fail(f"detect area points {b['results'][1]['points']} are not on {inside} (image space)")
    ok(f"JSON body with a detect area: {len(inside)} of {d['count']} dots, points in image space")
    # the same area as a query parameter on a raw body
    q = f"detectArea={area['x']},{area['y']},{area['width']},{area['height']}"
    st, b = post("/v1/estimators/peopleCountEstimator?" + q, read(d["file"]), "image/png")
    if st != 200 or b["results"][0]["count"] != len(inside):
        fail(f"detectArea query: {st} {b}")
    ok("detectArea as a query parameter on a raw body")


def check_labels_and_defects():
    for c in TRUTH["colours"]:
        st, b = post("/v1/estimators/imageLabelEstimator?topK=3", read(c["file"]), mime(c["file"]))
        labels = b["results"][0]["labels"] if st == 200 else []
        if len(labels) != 3 or labels[0]["label"] != c["label"]:
            fail(f"label {c['file']}: {st} {b}, want {c['label']} first of 3")
        if not all(labels[i]["score"] >= labels[i + 1]["score"] for i in range(2)):
            fail(f"label {c['file']}: not best first: {labels}")
    ok(f"imageLabelEstimator: right label first, topK=3 in order, on {len(TRUTH['colours'])} images")
    for s in TRUTH["scratches"]:
        body, ctype = multipart([(s["file"], read(s["file"]))], {"mask": "true"})
        st, b = post("/v1/estimators/defectEstimator", body, ctype)
        r = b["results"][0] if st == 200 else {}
        if r.get("count") != s["count"] or len(r.get("defects", [])) != s["count"]:
            fail(f"defects {s['file']}: {st} {b}, want {s['count']}")
        png = base64.b64decode(r["mask"])
        if png[:8] != b"\x89PNG\r\n\x1a\n":
            fail(f"defects {s['file']}: the mask is not a PNG")
        wh = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        if wh != (s["width"], s["height"]):
            fail(f"defects {s['file']}: mask is {wh}, want {(s['width'], s['height'])}")
    st, b = post("/v1/estimators/defectEstimator", read(TRUTH["scratches"][1]["file"]), "image/png")
    if st != 200 or "mask" in b["results"][0]:
        fail(f"defects without mask=true: {st} {b}")
    ok(f"defectEstimator: exact counts on {len(TRUTH['scratches'])} images, mask PNG only when asked")


def check_errors():
    png = read(TRUTH["dots"][3]["file"])
    E = "/v1/estimators/peopleCountEstimator"
    expect_error(*post("/v1/estimators/nope", png, "image/png"), 404, "not_found",
                 "no estimator named 'nope'", "unknown estimator")
    expect_error(*post(E, b"hello", "text/plain"), 415, "unsupported_media_type",
                 "Content-Type 'text/plain' is not supported", "wrong content type")
    expect_error(*post(E, b"GIF89a....", "image/png"), 415, "unsupported_media_type",
                 "image 0 is neither JPEG nor PNG", "bytes that are not an image")
    expect_error(*post(E, png[:200], "image/png"), 400, "bad_request", "image 0:",
                 "a truncated PNG")
    expect_error(*post(E, b"", "image/png"), 400, "bad_request", "the request body is empty",
                 "an empty body")
    expect_error(*post(E + "?targets=T3", png, "image/png"), 400, "bad_request",
                 "'targets'", "a bad option value")
    expect_error(*post(E + "?colour=red", png, "image/png"), 400, "bad_request",
                 "colour", "an unknown option")
    expect_error(*post(E + "?detectArea=1,2,3", png, "image/png"), 400, "bad_request",
                 "expected x,y,width,height", "a malformed detectArea")
    expect_error(*post(E + "?detectArea=300,0,100,100", png, "image/png"), 400, "bad_request",
                 "is not inside the 333x257 image", "a detect area outside the image")
    expect_error(*post(E, b"{\"images\": [", "application/json"), 400, "bad_request",
                 "the JSON body", "malformed JSON")
    expect_error(*post(E, b"{\"images\": []}", "application/json"), 400, "bad_request",
                 "non-empty array", "JSON without images")
    expect_error(*post(E, b"{\"images\": [\"@@@\"]}", "application/json"), 400, "bad_request",
                 "images[0]", "bad base64")
    deep = b"{\"images\": [\"x\"], \"a\": " + b"[" * 100 + b"]" * 100 + b"}"
    expect_error(*post(E, deep, "application/json"), 400, "bad_request", "deep",
                 "JSON nested deeper than http.max_json_depth")
    area = {"images": [{"image": base64.b64encode(png).decode(), "detectArea": {"x": 1}}]}
    expect_error(*post(E, json.dumps(area).encode(), "application/json"), 400, "bad_request",
                 "images[0]: missing required property 'detectArea.y'", "an incomplete detectArea")
    bad = {"images": [{"image": base64.b64encode(png).decode(), "detectarea": {},
                       "x": 1}]}
    expect_error(*post(E, json.dumps(bad).encode(), "application/json"), 400, "bad_request",
                 "images[0]: unknown property 'detectarea' (did you mean 'detectArea'?",
                 "a misspelt image field")
    body, ctype = multipart([], {"targets": "T1"})
    expect_error(*post(E, body, ctype), 400, "bad_request", "no image part",
                 "multipart without an image")
    many, ctype = multipart([("a.png", png)] * 5, {})
    expect_error(*post(E, many, ctype), 413, "too_large", "http.max_images",
                 "more images than http.max_images")


def one(i):
    d = TRUTH["dots"][1 + i % 8]
    st, b = post("/v1/estimators/peopleCountEstimator?targets=T2", read(d["file"]),
                 mime(d["file"]), timeout=120)
    return st == 200 and b["results"] == [{"count": d["count"]}], (st, b, d["file"])


if MODE == "check":
    check_people()
    check_labels_and_defects()
    check_errors()
elif MODE == "concurrent":
    n = int(sys.argv[4])
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(one, range(n)))
    bad = [r[1] for r in results if not r[0]]
    if bad:
        fail(f"{len(bad)} of {n} concurrent requests wrong, e.g. {bad[0]}")
    ok(f"{n} concurrent requests, all answered correctly")
else:
    fail("unknown mode " + MODE)
