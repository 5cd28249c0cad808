#!/usr/bin/env python3
"""Drives a running inferd's pipeline API (/v1/pipelines) as a client
would, stdlib only, with the example pipeline count_dots and the synthetic
images (their true dot counts from truth.json).

    pipeline_service.py BASE DATA_DIR first PIPELINE.json   create, frames, SSE, PUT under load, stop
    pipeline_service.py BASE DATA_DIR after_restart         it is back and running; delete

Exits 1 with the first mismatch; one "ok - ..." line per check.
"""
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from estimator_client import *  # noqa: F401,F403  BASE, DATA, MODE, TRUTH, fail, ok, read, mime

import sys

JSON = "application/json"


def call(method, path, body=None, ctype=None, headers=None, timeout=60):
    """(status, JSON or bytes, headers) of one request."""
    h = dict(headers or {})
    if ctype:
        h["Content-Type"] = ctype
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, st, hd = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, st, hd = e.read(), e.code, e.headers
    if hd.get("Content-Type", "").startswith("application/json"):
        return st, json.loads(raw), hd
    return st, raw, hd


def expect(st, body, want, code=None, needle=None, what=""):
    if st != want:
        fail(f"{what}: status {st}, want {want}: {body}")
    if code is not None:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        if err.get("code") != code or (needle and needle not in err.get("message", "")):
            fail(f"{what}: error {err}, want code {code} with '{needle}'")


DOTS = [d for d in TRUTH["dots"] if 0 < d["count"] <= 50]


def frame(name, d, query=""):
    return call("POST", f"/v1/pipelines/{name}/frames{query}", read(d["file"]), mime(d["file"]))


class Listener:
    """Reads /results (Server-Sent Events) on a raw socket as it comes,
    collecting the data of every "result" event, until the server ends the
    stream. HTTP/1.0, so the body is not chunked: it ends with the
    connection."""

    def __init__(self, name):
        u = urllib.parse.urlparse(BASE)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        self.sock.sendall(f"GET /v1/pipelines/{name}/results HTTP/1.0\r\nHost: {u.hostname}\r\n"
                          f"Accept: text/event-stream\r\n\r\n".encode())
        self.events, self.ended, self.head = [], False, None
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if self.head is None and b"\r\n\r\n" in buf:
                    self.head, _, buf = buf.partition(b"\r\n\r\n")
                while self.head is not None and b"\n\n" in buf:
                    block, _, buf = buf.partition(b"\n\n")
                    lines = block.decode().split("\n")
                    if "event: result" in lines:
                        data = "".join(x[6:] for x in lines if x.startswith("data: "))
                        with self.lock:
                            self.events.append(json.loads(data))
        except OSError:
            pass
        finally:
            self.ended = True

    def wait_end(self, what, seconds=10):
        self.t.join(seconds)
        if not self.ended:
            fail(f"{what}: the results stream did not end")


def first(pipeline_file):
    doc = json.load(open(pipeline_file))
    # ---- create, and what a bad definition gets
    st, b, _ = call("POST", "/v1/pipelines", doc, JSON)
    expect(st, b, 201, what="POST /v1/pipelines")
    if b["name"] != "count_dots" or b["state"] != "running" or len(b["elements"]) != 7:
        fail(f"created: {b}")
    st, b, _ = call("POST", "/v1/pipelines", doc, JSON)
    expect(st, b, 409, "conflict", "exists already", "POST the same name again")
    bad = {"broken": {"in": {"factory": "appsrc", "next": "out"}, "out": {"factory": "nope"}}}
    st, b, _ = call("POST", "/v1/pipelines", bad, JSON)
    expect(st, b, 400, "bad_request", 'unknown factory "nope"', "POST an unknown factory")
    st, b, _ = call("POST", "/v1/pipelines", {"a": {}, "b": {}}, JSON)
    expect(st, b, 400, "bad_request", "one key", "POST two streams")
    st, b, _ = call("POST", "/v1/pipelines", {"pipeline": doc, "strat": False}, JSON)
    expect(st, b, 400, "bad_request", "did you mean 'start'", "POST a misspelt key")
    st, b, _ = call("POST", "/v1/pipelines", b"{}", "text/plain")
    expect(st, b, 415, "unsupported_media_type", None, "POST text/plain (a web page's form)")
    st, b, _ = call("POST", "/v1/pipelines", doc, JSON, {"Origin": "http://evil.example"})
    expect(st, b, 403, "forbidden", "Origin", "POST from a foreign Origin")
    st, b, _ = call("GET", "/v1/pipelines")
    if st != 200 or [p["name"] for p in b["pipelines"]] != ["count_dots"]:
        fail(f"GET /v1/pipelines: {st} {b}")
    ok("create: 201 running with 7 elements; a name taken 409, bad documents 400 naming the "
       "fault, a web page's request 415/403; the list has it")

    # ---- frames: the result, the counters, what bad frames get
    for d in DOTS[:4]:
        st, b, _ = frame("count_dots", d)
        if st != 200 or b["frame"] is None or b["count"]["count"] != d["count"]:
            fail(f"frame {d['file']}: {st} {b}, want count {d['count']}")
    # An element counts a call when it returns, which can be just after the
    # frame's answer went out (its push handed the frame on): look again a
    # little while.
    for _ in range(100):
        st, b, _ = call("GET", "/v1/pipelines/count_dots")
        els = {e["name"]: e for e in b["elements"]}
        good = els["decode"]["in"] == 4 and els["out"]["out"] == 4 and \
            b["counters"]["pushed"] == 4 and els["infer"]["process_calls"] == 4 and \
            els["infer"]["out"] == 4 and els["infer"]["latency_avg_ms"] > 0
        if good:
            break
        time.sleep(0.02)
    if not good:
        fail(f"element counters after 4 frames: {b}")
    import base64
    d = DOTS[4]
    st, b, _ = call("POST", "/v1/pipelines/count_dots/frames",
                    {"images": [base64.b64encode(read(d["file"])).decode()]}, JSON)
    if st != 200 or b["count"]["count"] != d["count"]:
        fail(f"a frame as JSON base64: {st} {b}")
    st, b, _ = call("POST", "/v1/pipelines/count_dots/frames", b"not an image", "image/png")
    expect(st, b, 415, "unsupported_media_type", "neither JPEG nor PNG", "a frame that is no image")
    png = read(DOTS[0]["file"])
    st, b, _ = call("POST", "/v1/pipelines/count_dots/frames", png[:200], "image/png")
    expect(st, b, 400, "bad_request", "decode", "a truncated PNG (the decoder's error)")
    st, b, _ = call("POST", "/v1/pipelines/count_dots/frames?timeuot=1s", png, "image/png")
    expect(st, b, 400, "bad_request", "did you mean 'timeout'", "a misspelt query option")
    st, b, _ = call("POST", "/v1/pipelines/nope/frames", png, "image/png")
    expect(st, b, 404, "not_found", "no pipeline nope", "a frame for no pipeline")
    ok("frames: each answered with its own count (raw and JSON bodies); per-element counters "
       "(in, out, calls, latency) move; no image 415, a truncated one 400 from the decoder, a misspelt option "
       "400, an unknown pipeline 404")

    # ---- asynchronous frames and the results stream
    lis = Listener("count_dots")
    time.sleep(0.3)
    st, b, _ = call("POST", "/v1/pipelines/count_dots/frames?async=true", *multipart_of(DOTS[:3]))
    if st != 202 or len(b["frames"]) != 3:
        fail(f"async frames: {st} {b}")
    ids = b["frames"]
    deadline = time.time() + 10
    while time.time() < deadline:
        with lis.lock:
            got = {e["frame"]: e for e in lis.events}
        if all(i in got for i in ids):
            break
        time.sleep(0.05)
    else:
        fail(f"SSE: frames {ids} not all seen: {lis.events}")
    for i, d in zip(ids, DOTS[:3]):
        if got[i]["count"]["count"] != d["count"] or got[i]["sink"] != "out":
            fail(f"SSE frame {i}: {got[i]}, want {d['count']}")
    if b"text/event-stream" not in lis.head:
        fail(f"SSE head: {lis.head}")
    ok("async: 202 with 3 frame ids; each result reached the SSE listener with its count")

    # ---- a frame whose result comes after its timeout: a large picture,
    # which takes the pipeline far longer than 5 ms
    import io
    from PIL import Image
    big = io.BytesIO()
    Image.effect_noise((2048, 1536), 60).convert("RGB").save(big, "PNG")
    st, b, _ = call("POST", "/v1/pipelines/count_dots/frames?timeout=5ms", big.getvalue(),
                    "image/png")
    expect(st, b, 504, "timeout", "no result within its timeout", "timeout=5ms")
    ok("a frame past its timeout: 504, and it goes on to the listeners")

    # ---- PUT while frames flow: each answered by the old or the new
    new_doc = json.loads(json.dumps(doc))
    s = new_doc["count_dots"]
    s["tally"] = s.pop("count")
    s["infer"]["next"] = "tally"
    results, errors = [], []
    put_done = threading.Event()

    # Each client sends frames one after another: the PUT starts once some
    # are answered, and each client goes on for 5 frames after it returned.
    def client(k):
        after, j = 0, 0
        while after < 5 and j < 300:
            d = DOTS[(k + j) % len(DOTS)]
            j += 1
            done_before = put_done.is_set()
            st, b, _ = frame("count_dots", d)
            if st != 200:
                errors.append((st, b))
                continue
            results.append((time.time(), d["count"], b, done_before))
            after += done_before

    threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    wait_until = time.time() + 30
    while len(results) < 6 and time.time() < wait_until:
        time.sleep(0.01)
    t0 = time.time()
    st, b, _ = call("PUT", "/v1/pipelines/count_dots", new_doc, JSON)
    t1 = time.time()
    put_done.set()
    expect(st, b, 200, what="PUT under load")
    for t in threads:
        t.join()
    if errors:
        fail(f"PUT under load: {len(errors)} frames failed: {errors[:3]}")
    old = [r for r in results if "count" in r[2]]
    new = [r for r in results if "tally" in r[2]]
    if len(old) + len(new) != len(results) or not old or not new:
        fail(f"PUT: {len(old)} old and {len(new)} new answers of {len(results)}")
    for _, want, body, _ in results:
        got = (body.get("count") or body.get("tally"))["count"]
        if got != want:
            fail(f"PUT: a frame counted {got}, want {want}: {body}")
    if any(sent_after for _, _, _, sent_after in old):
        fail("PUT: a frame sent after the PUT returned was answered by the old pipeline")
    frames_seen = sorted(b["frame"] for _, _, b, _ in results)
    if len(set(frames_seen)) != len(results):
        fail(f"PUT: frame ids repeat across the swap: {frames_seen}")
    ok(f"PUT while 3 clients send frames: all {len(results)} answered and right, {len(old)} by "
       f"the old pipeline and {len(new)} by the new (none sent after the PUT by the old), frame "
       f"ids unique; PUT took {t1 - t0:.2f} s")

    # ---- stop and start
    st, b, _ = call("POST", "/v1/pipelines/count_dots/stop", None, None)
    expect(st, b, 200, what="stop")
    if b["state"] != "stopped":
        fail(f"stop: {b}")
    st, b, _ = frame("count_dots", DOTS[0])
    expect(st, b, 503, "not_ready", "is stopped", "a frame for a stopped pipeline")
    st, b, _ = call("POST", "/v1/pipelines/count_dots/start", None, None)
    expect(st, b, 200, what="start")
    st, b, _ = frame("count_dots", DOTS[1])
    if st != 200 or b["tally"]["count"] != DOTS[1]["count"]:
        fail(f"after start: {st} {b}")
    ok("stop: frames 503 saying it is stopped; start: frames answered again")
    lis.sock.close()
    overlay(doc)


def overlay(doc):
    """The frame drawn: a pipeline ending in overlay and image_encoder answers
    with a PNG whose pixels differ from the picture on every true dot and
    equal it far from all of them."""
    import io
    from PIL import Image
    s = json.loads(json.dumps(doc))["count_dots"]
    s["count"]["next"] = "draw"
    s["draw"] = {"factory": "overlay", "props": {"counts": False, "pointRadius": 3},
                 "next": "png"}
    s["png"] = {"factory": "image_encoder", "props": {"codec": "png"}, "next": "out"}
    del s["json"]
    st, b, _ = call("POST", "/v1/pipelines", {"name": "drawn", "pipeline": {"drawn": s}}, JSON)
    expect(st, b, 201, what="POST the overlay pipeline")
    d = max(DOTS, key=lambda x: x["count"])
    st, png, hd = frame("drawn", d)
    if st != 200 or hd.get("Content-Type") != "image/png" or not hd.get("X-Inferd-Frame"):
        fail(f"overlay frame: {st} {hd.get('Content-Type')} {png[:200]}")
    drawn = Image.open(io.BytesIO(png)).convert("RGB")
    src = Image.open(io.BytesIO(read(d["file"]))).convert("RGB")
    if drawn.size != src.size:
        fail(f"overlay: size {drawn.size}, the picture's {src.size}")
    for dot in d["dots"]:
        x, y = round(dot["x"]), round(dot["y"])
        if drawn.getpixel((x, y)) == src.getpixel((x, y)):
            fail(f"overlay: nothing drawn on the dot at {x},{y}")
    far = 0
    for y in range(0, src.size[1], 4):
        for x in range(0, src.size[0], 4):
            if all((x - t["x"]) ** 2 + (y - t["y"]) ** 2 > 15 ** 2 for t in d["dots"]):
                far += 1
                if drawn.getpixel((x, y)) != src.getpixel((x, y)):
                    fail(f"overlay: pixel {x},{y}, far from every dot, changed")
    st, b, _ = call("DELETE", "/v1/pipelines/drawn")
    expect(st, b, 200, what="DELETE drawn")
    ok(f"overlay + image_encoder: the frame comes back as a PNG with all {d['count']} dots "
       f"drawn over and {far} pixels far from them untouched")


def multipart_of(dots):
    import uuid
    boundary = uuid.uuid4().hex
    out = b""
    for i, d in enumerate(dots):
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image{i}\"; "
                f"filename=\"{d['file']}\"\r\nContent-Type: {mime(d['file'])}\r\n\r\n").encode()
        out += read(d["file"]) + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, "multipart/form-data; boundary=" + boundary


def after_restart():
    st, b, _ = call("GET", "/v1/pipelines/count_dots")
    if st != 200 or b["state"] != "running" or "tally" not in b["pipeline"]["count_dots"]:
        fail(f"after restart: {st} {b}")
    st, b, _ = frame("count_dots", DOTS[2])
    if st != 200 or b["tally"]["count"] != DOTS[2]["count"]:
        fail(f"after restart, a frame: {st} {b}")
    ok("after a restart the replaced pipeline is back, running, and answers")
    lis = Listener("count_dots")
    time.sleep(0.3)
    st, b, _ = call("DELETE", "/v1/pipelines/count_dots")
    expect(st, b, 200, what="DELETE")
    lis.wait_end("DELETE with a listener")
    st, b, _ = call("GET", "/v1/pipelines/count_dots")
    expect(st, b, 404, "not_found", "no pipeline count_dots", "GET after DELETE")
    st, b, _ = frame("count_dots", DOTS[0])
    expect(st, b, 404, "not_found", "no pipeline", "a frame after DELETE")
    st, b, _ = call("DELETE", "/v1/pipelines/count_dots")
    expect(st, b, 404, "not_found", "no pipeline", "DELETE again")
    ok("DELETE: 200, its results stream ends, then 404 for it, its frames and a second DELETE")

    # A pipeline that reads its own input (filesrc over the images' folder)
    # ends with it: state "ended", every picture delivered.
    import glob
    n = len([f for f in glob.glob(DATA + "/*") if f.endswith((".png", ".jpg"))])
    doc = {"folder": {"files": {"factory": "filesrc", "props": {"location": DATA},
                                "next": "decode"},
                      "decode": {"factory": "image_decoder", "next": "json"},
                      "json": {"factory": "json_serialize", "next": "out"},
                      "out": {"factory": "appsink"}}}
    st, b, _ = call("POST", "/v1/pipelines", doc, JSON)
    expect(st, b, 201, what="POST a filesrc pipeline")
    deadline = time.time() + 20
    while time.time() < deadline:
        st, b, _ = call("GET", "/v1/pipelines/folder")
        if b["state"] == "ended":
            break
        time.sleep(0.05)
    if b["state"] != "ended" or b["counters"]["delivered"] != n:
        fail(f"a filesrc pipeline at the end of its folder ({n} pictures): {b}")
    call("DELETE", "/v1/pipelines/folder")
    ok(f"a pipeline that reads its own folder ends with it: state ended, {n} pictures delivered")


if __name__ == "__main__":
    if MODE == "first":
        first(sys.argv[4])
    elif MODE == "after_restart":
        after_restart()
    else:
        fail(f"unknown mode {MODE}")
