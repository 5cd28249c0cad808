#!/usr/bin/env python3
"""The pipeline connectors against real peers: mqtt_source and mqtt_sink
through a real mosquitto (the mosquitto_pub / mosquitto_sub tools), and
http_sink against a local HTTP receiver that fails and then recovers, and
one that is slow (a bounded queue that drops the oldest, counted).

    connectors_check.py BASE DATA_DIR mqtt PIPELINE.json    (MQTT_PORT in the environment)
    connectors_check.py BASE DATA_DIR http PIPELINE.json

Exits 1 with the first mismatch; one "ok - ..." line per check.
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time

from estimator_client import *  # noqa: F401,F403  BASE, DATA, MODE, TRUTH, fail, ok, read, mime
from pipeline_service import call, expect, frame, DOTS, JSON

PIPE = json.load(open(sys.argv[4]))["count_dots"]


def pipeline(name, source, sink):
    """count_dots with its appsrc and appsink replaced."""
    s = json.loads(json.dumps(PIPE))
    del s["in"], s["out"]
    if source:
        s["src"] = dict(source, next="decode")
    else:
        s["src"] = {"factory": "appsrc", "next": "decode"}
    s["json"]["next"] = "sink"
    s["sink"] = sink
    st, b, _ = call("POST", "/v1/pipelines", {"name": name, "pipeline": {name: s}}, JSON)
    expect(st, b, 201, what=f"POST {name}")
    if b["state"] != "running":
        fail(f"{name}: {b}")


def counters(name, element):
    st, b, _ = call("GET", f"/v1/pipelines/{name}")
    return next(e for e in b["elements"] if e["name"] == element).get("counters", {})


def wait_for(what, cond, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    fail(f"{what}: not within {seconds} s")


def check_mqtt():
    port = os.environ["MQTT_PORT"]
    pipeline("cam", {"factory": "mqtt_source", "props": {"topic": "cam/frames"}},
             {"factory": "mqtt_sink", "props": {"topic": "cam/counts"}})
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-t", "cam/counts",
                            "-C", "4", "-W", "30"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)  # the subscriptions are made (the daemon's, and the tool's)
    pick = DOTS[:3]
    for d in pick:
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "cam/frames",
                        "-f", os.path.join(DATA, d["file"])], check=True)
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "cam/frames",
                    "-m", "hello"], check=True)
    out, _ = sub.communicate(timeout=40)
    lines = [json.loads(x) for x in out.splitlines()]
    if len(lines) != 4:
        fail(f"mqtt_sink: {len(lines)} messages on cam/counts, want 4: {out}")
    for got, d in zip(lines[:3], pick):
        if got["count"]["count"] != d["count"] or got["src"]["topic"] != "cam/frames":
            fail(f"mqtt: {got} for {d['file']} (count {d['count']})")
    err = lines[3].get("error", {})
    if "neither JPEG nor PNG" not in err.get("message", "") or lines[3].get("frame") != 3:
        fail(f"mqtt: a message that is no picture gave {lines[3]}")
    c = wait_for("source counters", lambda: counters("cam", "src").get("received") == 4 and
                 counters("cam", "src"))
    # The sink counts a message once its publish call returns, which may be
    # after the broker has handed it to the subscriber (seen under ASan).
    k = wait_for("sink counters", lambda: counters("cam", "sink").get("published") == 4 and
                 counters("cam", "sink"))
    if k.get("published") != 4 or c.get("dropped"):
        fail(f"mqtt counters: source {c}, sink {k}")
    t0 = time.time()
    st, b, _ = call("DELETE", "/v1/pipelines/cam")
    expect(st, b, 200, what="DELETE cam")
    ok(f"mqtt_source -> count -> mqtt_sink: 3 pictures published with mosquitto_pub counted "
       f"right on cam/counts (mosquitto_sub), a text message answered with its error; counters "
       f"received 4, published 4; DELETE took {time.time() - t0:.2f} s")


class Receiver(http.server.ThreadingHTTPServer):
    """Answers 500 to the first `fail_first` requests, then 200 after
    `delay` seconds; keeps the bodies it accepted."""

    def __init__(self, fail_first=0, delay=0.0):
        self.fail_first, self.delay, self.bodies, self.seen = fail_first, delay, [], 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(h):
                body = h.rfile.read(int(h.headers["Content-Length"]))
                with self.lock:
                    self.seen += 1
                    failing = self.seen <= self.fail_first
                if not failing:
                    time.sleep(self.delay)
                    with self.lock:
                        self.bodies.append((h.headers["Content-Type"], body))
                h.send_response(500 if failing else 200)
                h.send_header("Content-Length", "0")
                h.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/results"


def check_http():
    # A receiver that fails three times, then recovers: nothing lost.
    r = Receiver(fail_first=3)
    pipeline("hook", None, {"factory": "http_sink", "props": {"url": r.url(), "retries": 5,
                                                                "retryDelay": "50ms"}})
    pick = DOTS[:3]
    for d in pick:
        st, b, _ = frame("hook", d, "?async=true")
        if st != 202:
            fail(f"hook frame: {st} {b}")
    wait_for("3 results at the receiver", lambda: len(r.bodies) == 3)
    for (ctype, body), d in zip(r.bodies, pick):
        got = json.loads(body)
        if ctype != "application/json" or got["count"]["count"] != d["count"]:
            fail(f"http_sink: {ctype} {got} for {d['file']}")
    c = wait_for("sent 3", lambda: counters("hook", "sink").get("sent") == 3 and
                 counters("hook", "sink"))
    if c.get("retries") != 3 or c.get("failed") or c.get("dropped"):
        fail(f"http_sink counters after a receiver that failed 3 times: {c}")
    st, text, _ = call("GET", "/metrics")
    for line in ('inferd_plugin_count{plugin="connectors",instance="sink",name="sent"} 3',
                 'inferd_plugin_count{plugin="connectors",instance="sink",name="retries"} 3'):
        if line not in text.decode():
            fail(f"/metrics lacks {line}")
    call("DELETE", "/v1/pipelines/hook")
    st, text, _ = call("GET", "/metrics")
    if 'instance="sink"' in text.decode():
        fail("/metrics still has the deleted pipeline's sink")
    r.shutdown()
    ok("http_sink: the receiver failed 3 times then recovered: all 3 results arrived in order, "
       "right; counters sent 3, retries 3, none failed or dropped, on the element and /metrics")

    # A slow receiver (0.5 s a request) and 12 frames at once: the queue of 2
    # keeps the newest, the rest are dropped and counted; nothing vanishes.
    r = Receiver(delay=0.5)
    pipeline("slow", None, {"factory": "http_sink", "props": {"url": r.url(), "queueFrames": 2}})
    for i in range(12):
        st, b, _ = frame("slow", DOTS[i % len(DOTS)], "?async=true")
        if st != 202:
            fail(f"slow frame: {st} {b}")
    c = wait_for("all 12 accounted for", lambda: (lambda k: k.get("sent", 0) + k.get("dropped", 0)
                                                 == 12 and k)(counters("slow", "sink")))
    if c["dropped"] < 1 or c["sent"] != len(r.bodies) or c.get("failed"):
        fail(f"slow receiver: counters {c}, {len(r.bodies)} bodies arrived")
    frames_got = [json.loads(b)["frame"] for _, b in r.bodies]
    if frames_got != sorted(frames_got) or frames_got[-1] != 11:
        fail(f"slow receiver: frames {frames_got} (in order, ending with the newest, 11)")
    call("DELETE", "/v1/pipelines/slow")
    r.shutdown()
    ok(f"http_sink with a slow receiver and queueFrames 2: {c['sent']} sent in order (the newest "
       f"last), {c['dropped']} dropped and counted, 12 in all")


{"mqtt": check_mqtt, "http": check_http}.get(MODE, lambda: fail(f"unknown mode {MODE}"))()
