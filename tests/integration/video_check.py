#!/usr/bin/python3
"""The video_source test's helper (test_video_source.sh): frames with known
dot counts, pipeline documents, the checks of `inferd run`'s output, and the
live-stream scenario against a running daemon. stdlib, numpy and PIL.

    video_check.py frames DIR                 DIR/f_000.png ... f_029.png, DIR/counts.json
    video_check.py pipeline PROPS_JSON        a pipeline document (stdout): video_source
                                              with PROPS -> dot_density -> appsink
    video_check.py counts OUT.jsonl DIR STEP  `inferd run`'s lines: frames 0, STEP, 2*STEP, ...,
                                              each counted right
    video_check.py live BASE DIR http|rtsp    a live stream that goes away and comes back
                                              while a daemon's pipeline reads it; stops

Exits 1 with the first mismatch ("FAIL: ..."); one "ok - ..." line per check.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

FRAMES, WIDTH, HEIGHT = 30, 256, 192


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print("ok - " + msg)


def dots(i):
    return i % 6 + 1


def frames(out):
    """The dots drawn as scripts/gen_images.py draws them (what dot_density
    is made to count): frame i has (i % 6) + 1."""
    import numpy as np
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
    import gen_images
    for i in range(FRAMES):
        img, _ = gen_images.make_dots(np.random.default_rng([2024, 6, i]), WIDTH, HEIGHT, dots(i))
        gen_images.to_image(img).save(os.path.join(out, "f_%03d.png" % i))
    json.dump([dots(i) for i in range(FRAMES)], open(os.path.join(out, "counts.json"), "w"))


def pipeline(props, name="vid"):
    return {name: {
        "src": {"factory": "video_source", "props": props, "next": "tensor"},
        "tensor": {"factory": "image_to_tensor", "props": {"layout": "nchw", "tensorName": "image"},
                   "next": "infer"},
        "infer": {"factory": "tensor_infer", "props": {"modelPath": "dot_density.onnx"},
                  "next": "count"},
        "count": {"factory": "density_count", "props": {"target": "T2", "stride": "4"},
                  "next": "json"},
        "json": {"factory": "json_serialize", "next": "out"},
        "out": {"factory": "appsink"}}}


def counts(path, folder, step):
    want = json.load(open(os.path.join(folder, "counts.json")))
    lines = [json.loads(line) for line in open(path)]
    indexes = list(range(0, FRAMES, step))
    if len(lines) != len(indexes):
        fail(f"{path}: {len(lines)} results, want {len(indexes)}: {lines[:2]}")
    for k, (r, i) in enumerate(zip(lines, indexes)):
        src = r.get("src", {})
        if "error" in r or r["frame"] != k or src.get("index") != i or src.get("ptsMs") != 100 * i:
            fail(f"{path}: result {k}: {r}, want frame {k}, index {i}, ptsMs {100 * i}")
        if r["count"]["count"] != want[i]:
            fail(f"{path}: frame index {i} counted {r['count']['count']}, want {want[i]}")
        if src["dropped"] or src["reconnects"] or src["lost"] or not src["source"].endswith(".mkv"):
            fail(f"{path}: result {k}'s metadata: {src}")


# ---- live streams -------------------------------------------------------------------------


def call(base, method, path, body=None, timeout=30):
    """(status, JSON answer, seconds it took)."""
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"} if body else {})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            st, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        st, raw = e.code, e.read()
    return st, json.loads(raw or b"null"), time.monotonic() - t0


class Results:
    """Every result of /v1/pipelines/NAME/results (Server-Sent Events), as
    they come, on a thread of its own, until the stream ends."""

    def __init__(self, base, name):
        self.events, self.ended = [], False
        self.lock = threading.Lock()
        self.r = urllib.request.urlopen(f"{base}/v1/pipelines/{name}/results", timeout=30)
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        try:
            for line in self.r:
                if line.startswith(b"data: "):
                    with self.lock:
                        self.events.append(json.loads(line[6:]))
        except OSError:
            pass
        self.ended = True

    def wait(self, what, pred, seconds):
        """The events so far, once pred(events) holds; fails after seconds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                events = list(self.events)
            if pred(events):
                return events
            time.sleep(0.05)
        fail(f"{what}: not within {seconds} s; {len(events)} results, the last: {events[-1:]}")


class Server:
    """The live stream: DIR/live.ts (25 fps MPEG-2 in MPEG-TS) looped in
    real time, over HTTP by ffmpeg's own server (one client, as a camera's
    HTTP stream) or over RTSP by VLC (as root VLC refuses to start: it runs
    as nobody, who may read the file)."""

    def __init__(self, folder, proto):
        self.folder, self.proto, self.p = folder, proto, None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = (f"http://127.0.0.1:{self.port}/live.ts" if proto == "http"
                    else f"rtsp://127.0.0.1:{self.port}/live")

    def start(self):
        src = os.path.join(self.folder, "live.ts")
        if self.proto == "http":
            cmd = ["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", src, "-c", "copy",
                   "-f", "mpegts", "-listen", "1", self.url]
        else:
            cmd = ["cvlc", "-I", "dummy", "-q", src, "--loop", "--sout-keep",
                   "--sout", "#gather:rtp{sdp=%s,mux=ts}" % self.url]
            if os.getuid() == 0:
                os.chmod(self.folder, 0o711)
                os.chmod(src, 0o644)
                cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + cmd
        log = open(os.path.join(self.folder, f"{self.proto}-server.log"), "ab")
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  env=dict(os.environ, HOME=self.folder))

    def kill(self):
        if self.p:
            self.p.kill()
            self.p.wait()
            self.p = None


def sane(e, url):
    """A live result: counted (a frame of the looped video has 1 to 6 dots), from url."""
    return "error" not in e and 1 <= e["count"]["count"] <= 6 and e["src"]["source"] == url


def delete(base, name, what):
    st, b, took = call(base, "DELETE", f"/v1/pipelines/{name}")
    if st != 200 or took > 2:
        fail(f"DELETE {what}: {st} {b} after {took:.2f} s, want 200 within 2 s")
    return took


def live(base, folder, proto):
    srv = Server(folder, proto)
    srv.start()
    name = f"live_{proto}"
    props = {"location": srv.url, "reconnectDelay": "200ms", "timeout": "2s"}
    st, b, _ = call(base, "POST", "/v1/pipelines", pipeline(props, name))
    if st != 201:
        fail(f"POST {name}: {st} {b}")
    res = Results(base, name)
    t0 = time.monotonic()
    first = res.wait("the first 10 frames", lambda ev: len(ev) >= 10, 15)
    if not all(sane(e, srv.url) and e["src"]["reconnects"] == 0 for e in first):
        fail(f"{proto}: the first frames: {first[:3]}")
    ok(f"{proto}: frames of the live stream arrive, counted, {time.monotonic() - t0:.1f} s "
       f"after the pipeline was created")

    srv.kill()
    time.sleep(2)
    srv.start()
    t0 = time.monotonic()
    after = res.wait("frames after the server came back",
                     lambda ev: sum(e["src"]["reconnects"] >= 1 for e in ev) >= 5, 20)
    back = [e for e in after if e["src"]["reconnects"] >= 1]
    if not all(sane(e, srv.url) and e["src"]["lost"] > 0 for e in back):
        fail(f"{proto}: frames after reconnecting: {back[:3]}")
    ok(f"{proto}: the server killed, restarted 2 s later: frames again {time.monotonic() - t0:.1f}"
       f" s after its restart, with reconnects {back[0]['src']['reconnects']} and about "
       f"{back[0]['src']['lost']} frames lost in the gap")

    took = delete(base, name, "while connected")
    res.r.close()
    ok(f"{proto}: DELETE while connected returned in {took:.2f} s")

    # In the back-off: the server is down, the first try refused, the
    # next one 5 s away.
    srv.kill()
    props["reconnectDelay"] = "5s"
    st, b, _ = call(base, "POST", "/v1/pipelines", pipeline(props, name))
    if st != 201:
        fail(f"POST {name} again: {st} {b}")
    daemon_log = os.path.join(folder, "daemon.log")
    want = f"cannot open {srv.url}: Connection refused; reconnecting in 5.0 s"
    deadline = time.monotonic() + 5
    while want not in open(daemon_log, errors="replace").read():
        if time.monotonic() > deadline:
            fail(f"{proto}: the daemon's log never said '{want}'")
        time.sleep(0.05)
    took = delete(base, name, "in the back-off")
    ok(f"{proto}: with the server down the source warns '{want}'; DELETE in its back-off "
       f"returned in {took:.2f} s")

    if proto == "http":
        # A server that takes the connection and never answers: the source
        # blocks in FFmpeg's open, its timeout 30 s away.
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen(4)
            props = {"location": "http://127.0.0.1:%d/x.ts" % mute.getsockname()[1],
                     "timeout": "30s"}
            st, b, _ = call(base, "POST", "/v1/pipelines", pipeline(props, name))
            if st != 201:
                fail(f"POST {name} (a mute server): {st} {b}")
            time.sleep(0.5)
            took = delete(base, name, "while blocked on a mute server")
        ok(f"http: DELETE while the source waits on a server that never answers returned in "
           f"{took:.2f} s")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "frames" and len(argv) == 3:
        frames(argv[2])
    elif cmd == "pipeline" and len(argv) == 3:
        json.dump(pipeline(json.loads(argv[2])), sys.stdout)
    elif cmd == "counts" and len(argv) == 5:
        counts(argv[2], argv[3], int(argv[4]))
    elif cmd == "live" and len(argv) == 5:
        live(argv[2], argv[3], argv[4])
    else:
        fail(f"usage: see {argv[0]}'s docstring; got {argv[1:]}")


if __name__ == "__main__":
    main(sys.argv)
