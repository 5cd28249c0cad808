"""The SDK driven from the outside: a real plugin process and a host written from the spec."""

import hashlib
import json
import os
import random
import struct
import time
from pathlib import Path

import pytest

from host_harness import SHM_MIN, Img, frame_bytes

FUNCTIONS = ["echo", "aecho", "describe", "reverse", "fail", "sleep", "asleep", "agg", "numpy",
             "notjson", "log", "publish", "metrics"]


def open_instance(host, iid, kind, component, props=None):
    assert host.ok("open", instance=iid, kind=kind, component=component, props=props or {}) is None


def error_of(reply):
    assert reply.value["ok"] is False, f"expected an error, got {reply.value}"
    return reply.value["error"]


# ---- hello and handshake ----------------------------------------------------------


def test_hello_lists_every_component(spawn):
    host = spawn()
    hello = host.handshake().value
    assert hello["type"] == "hello"
    assert hello["protocol"] == 1
    assert hello["name"] == "testplugin"
    assert hello["version"] == "v1.2.3"
    got = {(c["kind"], c["name"]): c for c in hello["components"]}
    want = {("function", f) for f in FUNCTIONS} | {
        ("source", "counter"), ("source", "abytes"), ("sink", "collector"), ("event", "monitor"),
        ("background", "bg"), ("estimator", "sum")}
    assert set(got) == want
    assert got[("function", "agg")]["aggregate"] is True
    assert got[("function", "echo")]["aggregate"] is False
    assert all("aggregate" not in c for (k, _), c in got.items() if k != "function")
    # The plugin answers once welcomed.
    assert host.ok("ping") is None


def test_refused_exits_with_the_message(spawn):
    host = spawn()
    host.accept()
    host.wait_for(lambda r: r.value["type"] == "hello")
    host.send({"type": "refused", "message": "components differ from the manifest"})
    assert host.wait_exit() == 1
    assert "components differ from the manifest" in host.stderr()


# ---- functions ---------------------------------------------------------------------


def test_exec_json_args(host):
    open_instance(host, "i1", "function", "echo")
    args = [1, 2.5, "three", None, True, [1, [2]], {"k": {"n": -4}}]
    assert host.ok("exec", instance="i1", args=args) == args


def test_exec_kilobyte_string(host):
    open_instance(host, "i1", "function", "describe")
    s = "".join(random.Random(1).choice("abcé€😀") for _ in range(1024))
    r = host.rpc("exec", instance="i1", args=[s])
    assert r.value["result"] == [{"type": "str", "len": 1024}]
    assert r.shm is False


def test_megabyte_bytes_through_shared_memory(host):
    open_instance(host, "d", "function", "describe")
    open_instance(host, "r", "function", "reverse")
    data = random.Random(2).randbytes(1 << 20)
    # The harness sends 1 MiB of blobs through a memfd (the spec's rule)...
    assert host.ok("exec", instance="d", args=[data]) == [
        {"type": "bytes", "len": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    # ...and the plugin answers a 1 MiB bytes result through one too.
    r = host.rpc("exec", instance="r", args=[data])
    assert r.shm is True and r.body_len == 0
    assert r.header["result"] == {"$blob": 0}
    assert r.value["result"] == data[::-1]


def test_small_bytes_stay_inline(host):
    open_instance(host, "r", "function", "reverse")
    data = bytes(range(256)) * 200  # 51 200 bytes: below 64 KiB
    r = host.rpc("exec", instance="r", args=[data])
    assert r.shm is False and r.body_len == len(data)
    assert r.value["result"] == data[::-1]
    # Exactly at the threshold the blobs go to shared memory.
    edge = b"\x07" * SHM_MIN
    r = host.rpc("exec", instance="r", args=[edge])
    assert r.shm is True and r.value["result"] == edge


def test_bytes_inside_structures(host):
    open_instance(host, "i1", "function", "echo")
    args = [{"a": b"\x00\x01", "b": [b"", b"xyz"]}, b"tail"]
    r = host.rpc("exec", instance="i1", args=args)
    assert r.value["result"] == args
    assert r.header["result"][1] == {"$blob": 3}  # blobs numbered in order


def test_validate(host):
    open_instance(host, "i1", "function", "echo")
    err = error_of(host.rpc("validate", instance="i1", args=[]))
    assert err == {"code": "invalid", "message": "echo needs at least one argument"}
    assert host.ok("validate", instance="i1", args=[1]) is None


def test_exception_is_an_error_reply_and_the_plugin_goes_on(host):
    open_instance(host, "f", "function", "fail")
    open_instance(host, "e", "function", "echo")
    assert error_of(host.rpc("exec", instance="f", args=[])) == {"code": "plugin", "message": "boom 42"}
    assert error_of(host.rpc("exec", instance="f", args=["code"])) == {
        "code": "unsupported", "message": "you chose this code"}
    assert host.ok("exec", instance="e", args=["still here"]) == ["still here"]
    # The failure's traceback went to the host as a debug log record.
    logs = host.messages("log", 1, level="debug")
    assert "boom 42" in logs[0]["message"] and "Traceback" in logs[0]["message"]


def test_results_that_cannot_be_sent_are_errors(host):
    open_instance(host, "n", "function", "notjson")
    err = error_of(host.rpc("exec", instance="n", args=["nan"]))
    assert err["code"] == "plugin" and "cannot be sent" in err["message"] and "nan" in err["message"]
    err = error_of(host.rpc("exec", instance="n", args=["set"]))
    assert "set" in err["message"]
    assert host.ok("ping") is None


def test_numpy_values_become_json(host):
    open_instance(host, "n", "function", "numpy")
    assert host.ok("exec", instance="n", args=[]) == {"array": [[0, 1, 2], [3, 4, 5]],
                                                      "scalar": 1.5, "flag": True}


def test_async_and_sync_methods(host):
    open_instance(host, "a", "function", "aecho")
    open_instance(host, "s", "function", "echo")
    assert host.ok("exec", instance="a", args=[1, b"x"]) == {"async": True, "args": [1, b"x"]}
    assert host.ok("exec", instance="s", args=[2]) == [2]


def test_aggregate_function_runs(host):
    open_instance(host, "g", "function", "agg")
    assert host.ok("exec", instance="g", args=[[1, 2, 3.5]]) == 6.5


def test_calls_in_flight_answered_out_of_order(host):
    open_instance(host, "as", "function", "asleep")
    open_instance(host, "s", "function", "sleep")
    t0 = time.monotonic()
    ids = [host.call("exec", instance="as", args=[d]) for d in (0.6, 0.4, 0.2)]
    replies = [host.reply(i) for i in ids]
    # Answered shortest first, all three in about the time of the longest.
    assert [r.value["result"] for r in replies] == ["aslept 0.6", "aslept 0.4", "aslept 0.2"]
    assert replies[2].at < replies[1].at < replies[0].at
    assert replies[0].at - t0 < 1.1
    # Plain methods run on a thread pool: four 0.4 s sleeps overlap too.
    t0 = time.monotonic()
    ids = [host.call("exec", instance="s", args=[0.4]) for _ in range(4)]
    assert all(host.reply(i).value["ok"] for i in ids)
    assert time.monotonic() - t0 < 1.2


def test_ping_and_fast_calls_while_a_sync_call_sleeps(host):
    open_instance(host, "s", "function", "sleep")
    open_instance(host, "e", "function", "echo")
    slow = host.call("exec", instance="s", args=[1.5])
    time.sleep(0.1)  # the sleep is under way
    t0 = time.monotonic()
    ping = host.reply(host.call("ping"))
    fast = host.reply(host.call("exec", instance="e", args=["quick"]))
    assert ping.at - t0 < 0.5 and fast.at - t0 < 0.5
    assert fast.value["result"] == ["quick"]
    slow_reply = host.reply(slow)
    assert slow_reply.at > fast.at and slow_reply.value["result"] == "slept 1.5"


def test_frames_split_and_batched(host):
    open_instance(host, "e", "function", "echo")
    # One frame in 7-byte pieces, its memfd on the first byte.
    big = b"\x42" * (SHM_MIN + 1)
    host.send({"type": "call", "id": 900, "op": "exec", "instance": "e", "args": ["split", big]},
              split=True)
    assert host.reply(900).value["result"] == ["split", big]
    # Many frames (some with a descriptor) in one write.
    data, fds = b"", []
    for i in range(20):
        args = [i, bytes([i]) * (SHM_MIN if i % 5 == 0 else 10)]
        frame, fd = frame_bytes({"type": "call", "id": 1000 + i, "op": "exec", "instance": "e",
                                 "args": [i, {"$blob": 0}]}, [args[1]])
        data += frame
        fds.append(fd)
    # All descriptors ride on the first frame's first byte here; the reader
    # queues them and each shm frame takes the next one, in order.
    import array
    import socket
    real = [f for f in fds if f is not None]
    host.conn.sendmsg([data[:1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", real))])
    host.conn.sendall(data[1:])
    for f in real:
        os.close(f)
    for i in range(20):
        assert host.reply(1000 + i).value["result"] == [i, bytes([i]) * (SHM_MIN if i % 5 == 0 else 10)]


def test_unknown_things_are_errors(host):
    assert error_of(host.rpc("exec", instance="nope", args=[]))["code"] == "not_found"
    assert error_of(host.rpc("frobnicate"))["code"] == "unsupported"
    err = error_of(host.rpc("open", instance="x", kind="function", component="nothing", props={}))
    assert err["code"] == "not_found" and "nothing" in err["message"]
    err = error_of(host.rpc("open", instance="x", kind="gizmo", component="echo", props={}))
    assert err["code"] == "invalid"
    open_instance(host, "x", "function", "echo")
    assert error_of(host.rpc("open", instance="x", kind="function", component="echo"))["code"] == "exists"
    assert error_of(host.rpc("collect", instance="x", item=1))["code"] == "unsupported"
    assert error_of(host.rpc("exec", instance="x", args="notalist"))["code"] == "invalid"
    assert host.ok("close", instance="x") is None
    assert error_of(host.rpc("exec", instance="x", args=[1]))["code"] == "not_found"


def test_log_messages(host):
    open_instance(host, "lg", "function", "log")
    assert host.ok("exec", instance="lg", args=["world"]) is None
    warn = host.messages("log", 1, level="warn")[0]
    assert warn["message"] == "lg: hello world"
    debug = host.messages("log", 1, level="debug")[0]
    assert debug["message"] == "lg: details"


def test_publish(host):
    open_instance(host, "p", "function", "publish")
    assert host.ok("exec", instance="p", args=[b"\x01\x02"]) is None
    msg = host.messages("publish", 1)[0]
    assert msg["event"] == "test_published" and msg["payload"] == {"x": b"\x01\x02"}


def test_metrics(host):
    open_instance(host, "m", "function", "metrics")
    refused = host.ok("exec", instance="m", args=[])
    assert refused == ["labels are a dict of str to str", "a metric's value is a number",
                       "a metric needs a name",
                       "a metric's kind is counter, gauge or histogram"]
    msgs = host.messages("metric", 4)
    for m in msgs:
        assert m["instance"] == "m"
    assert msgs[0] == {"type": "metric", "instance": "m", "op": "describe", "name": "lat",
                       "kind": "histogram", "help": "how long", "buckets": [0.1, 1.0]}
    assert (msgs[1]["op"], msgs[1]["name"], msgs[1]["value"], msgs[1]["labels"]) == \
        ("add", "calls_total", 2, {"route": "/a"})
    assert (msgs[2]["op"], msgs[2]["value"], "labels" in msgs[2]) == ("set", 21.5, False)
    assert (msgs[3]["op"], msgs[3]["name"], msgs[3]["value"]) == ("observe", "lat", 0.5)


# ---- estimators, events, backgrounds, sources, sinks ----------------------------------


def pixel_sum(img, x, y, w, h):
    total = 0
    for row in range(y, y + h):
        start = (row * img.width + x) * 3
        total += sum(img.data[start:start + w * 3])
    return total


def test_estimator_batch_with_images_in_shared_memory(host):
    open_instance(host, "est", "estimator", "sum")
    rng = random.Random(3)
    img = Img(200, 150, rng.randbytes(200 * 150 * 3))  # 90 000 bytes: shared memory
    small = Img(4, 2, bytes(range(24)))
    items = [
        {"image": img, "area": {"x": 10, "y": 20, "width": 30, "height": 40}, "options": {"targets": "T1"}},
        {"image": small, "area": None, "options": {}},
        {"image": small, "area": None, "options": {"fail": True}},
    ]
    r = host.rpc("estimate", instance="est", items=items)
    res = r.value["result"]
    assert len(res) == 3
    assert res[0] == {"ok": True, "value": {
        "sum": pixel_sum(img, 10, 20, 30, 40), "width": 200, "height": 150, "readonly": True,
        "area": {"x": 10, "y": 20, "width": 30, "height": 40}, "ready": True}}
    assert res[1]["value"]["sum"] == sum(range(24))
    assert res[2] == {"ok": False, "error": {"code": "plugin", "message": "item failed"}}
    # An area outside the image is refused before the plugin sees it.
    bad = [{"image": small, "area": {"x": 3, "y": 0, "width": 2, "height": 1}, "options": {}}]
    err = error_of(host.rpc("estimate", instance="est", items=bad))
    assert err["code"] == "invalid" and "area" in err["message"]


def test_event_batches(host):
    open_instance(host, "ev", "event", "monitor")
    events = [{"x": 1}, {"x": 2, "raw": b"\xff"}]
    assert host.ok("events", instance="ev", event="test_event", events=events) is None
    assert host.messages("publish", 1, event="seen")[0]["payload"] == {"events": events}
    assert host.ok("close", instance="ev") is None
    deadline = time.monotonic() + 5
    while "event closed ev" not in host.stdout() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "event closed ev" in host.stdout()


def route(host, method, path, body=b"", query=None, headers=None):
    return host.ok("route", instance="bg", method=method, path=path, query=query or {},
                   headers=headers or {}, body=body)


def test_background_routes(host):
    open_instance(host, "bg", "background", "bg")
    assert host.ok("start", instance="bg") is None
    assert host.messages("log", 1, level="info")[0]["message"] == "bg: background started"

    r = route(host, "GET", "/teapot")
    assert r["status"] == 418 and r["body"] == b"I'm a teapot"
    assert r["headers"]["x-pot"] == "1" and r["headers"]["content-type"].startswith("text/plain")

    r = route(host, "POST", "/teapot", body=json.dumps({"tea": "earl grey"}).encode(), query={"cup": "2"})
    assert r["status"] == 200 and json.loads(r["body"]) == {"echo": {"tea": "earl grey"}, "query": {"cup": "2"}}
    assert r["headers"]["content-type"] == "application/json"

    r = route(host, "DELETE", "/teapot")
    assert r["status"] == 405 and r["headers"]["allow"] == "GET, POST"

    r = route(host, "GET", "/nowhere")
    assert r["status"] == 404 and b"/nowhere" in r["body"]

    r = route(host, "GET", "/fn", query={"a": "b"}, headers={"X-Test": "yes"})
    assert r["status"] == 200
    assert json.loads(r["body"]) == {"method": "GET", "query": {"a": "b"}, "x-test": "yes"}
    r = route(host, "POST", "/fn")
    assert r["status"] == 405 and r["headers"]["allow"] == "GET"

    raw = host.rpc("route", instance="bg", method="put", path="/async", query={}, headers={},
                   body=b"\x02\x03")
    assert raw.header["result"]["body"] == {"$blob": 0}  # the body is a blob, not base64
    assert raw.value["result"] == {"status": 201, "headers": {"x-a": "1"}, "body": b"\x00\x01\x02\x03"}

    assert host.ok("stop", instance="bg") is None
    assert host.ok("close", instance="bg") is None
    assert host.stdout().count("background closed bg") == 1  # close once, at stop


def test_source_emits_after_start(host):
    open_instance(host, "src", "source", "counter", {"datasource": "ds1", "count": 3})
    time.sleep(0.1)
    assert not [f for f in host.frames if f.value["type"] == "emit"]  # nothing before start
    assert host.ok("start", instance="src") is None
    msgs = host.messages("emit", 3, instance="src")
    assert [m["message"] for m in msgs] == [{"n": n, "ds": "ds1"} for n in range(3)]
    assert host.ok("stop", instance="src") is None
    assert "source closed src" in host.stdout()
    assert host.ok("close", instance="src") is None
    assert host.stdout().count("source closed src") == 1


def test_async_source_large_messages_and_stop(host):
    open_instance(host, "ab", "source", "abytes")
    assert host.ok("start", instance="ab") is None
    msgs = host.messages("emit", 3, instance="ab")
    for n, m in enumerate(msgs[:3]):
        assert m["message"] == {"n": n, "payload": bytes([n]) * 70000}
    assert all(f.shm for f in host.frames if f.value["type"] == "emit")
    assert host.ok("stop", instance="ab") is None
    time.sleep(0.1)
    count = len([f for f in host.frames if f.value["type"] == "emit"])
    time.sleep(0.2)
    assert len([f for f in host.frames if f.value["type"] == "emit"]) == count  # it stopped


def test_sink_collect(host):
    open_instance(host, "snk", "sink", "collector", {"tag": "t1"})
    item = {"a": 1, "blob": b"\x00" * 10}
    assert host.ok("collect", instance="snk", item=item) is None
    msg = host.messages("publish", 1, event="collected")[0]
    assert msg["payload"] == {"tag": "t1", "data": item, "connected": True}
    assert host.ok("close", instance="snk") is None
    assert "sink closed snk" in host.stdout()


# ---- the end of a plugin ---------------------------------------------------------------


def raw_frame(header: dict, body: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack(">II", len(text), len(body)) + text + body


GARBAGE = {
    "zero header length": struct.pack(">II", 0, 0),
    "header too long": struct.pack(">II", (16 << 20) + 1, 0),
    "body too long": struct.pack(">II", 2, (256 << 20) + 1),
    "not JSON": struct.pack(">II", 5, 0) + b"{nope",
    "not an object": struct.pack(">II", 3, 0) + b"[1]",
    "no type": struct.pack(">II", 2, 0) + b"{}",
    # The table says 3 bytes, the body carries 2.
    "blobs do not add up": raw_frame({"type": "call", "id": 1, "op": "ping", "blobs": [{"size": 3}]}, b"ab"),
    "shm without a descriptor": raw_frame({"type": "call", "id": 1, "op": "ping", "shm": True,
                                           "blobs": [{"size": 1}]}),
    "blob index out of range": raw_frame({"type": "call", "id": 1, "op": "exec", "instance": "i",
                                          "args": [{"$blob": 1}], "blobs": [{"size": 1}]}, b"x"),
    "call without an id": raw_frame({"type": "call", "op": "ping"}),
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_from_the_host_exits_1(spawn, name):
    host = spawn()
    host.handshake()
    assert host.ok("ping") is None
    host.send_raw(GARBAGE[name])
    assert host.wait_exit(5) == 1
    assert "protocol error" in host.stderr()


def test_socket_closed_exits_0(spawn):
    host = spawn()
    host.handshake()
    open_instance(host, "snk", "sink", "collector")
    t0 = time.monotonic()
    host.close_connection()
    assert host.wait_exit(5) == 0
    assert time.monotonic() - t0 < 3
    assert "sink closed snk" in host.stdout()  # instances closed on the way out


def test_sigterm_closes_instances_and_exits_0(spawn):
    host = spawn()
    host.handshake()
    open_instance(host, "snk", "sink", "collector")
    open_instance(host, "src", "source", "counter", {"count": 1000})
    assert host.ok("start", instance="src") is None
    open_instance(host, "s", "function", "sleep")
    host.call("exec", instance="s", args=[30])  # a call that would hold up a plain exit
    time.sleep(0.1)
    t0 = time.monotonic()
    host.terminate()
    assert host.wait_exit(5) == 0
    assert time.monotonic() - t0 < 3
    out = host.stdout()
    assert "sink closed snk" in out and "source closed src" in out


def test_socket_unset_exits_2(spawn):
    host = spawn(env={"INFERD_SOCKET": None})
    assert host.wait_exit(10) == 2
    assert ("this is an inferd portable plugin: the daemon starts it (INFERD_SOCKET is not set)"
            in host.stderr())


def test_no_listener_exits_1(spawn, tmp_path):
    host = spawn(env={"INFERD_SOCKET": str(tmp_path / "missing.sock")})
    assert host.wait_exit(10) == 1
    assert "cannot connect" in host.stderr()


def test_readme_example(spawn, tmp_path):
    """The README's example plugin works as printed."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "readme_main.py"
    script.write_text(code)
    host = spawn(script, name="reverser")
    hello = host.handshake().value
    assert hello["name"] == "reverser"
    assert hello["components"] == [{"kind": "function", "name": "reverse", "aggregate": False}]
    assert host.ok("open", instance="r", kind="function", component="reverse", props={}) is None
    assert host.ok("exec", instance="r", args=["abc"]) == "cba"
    assert host.ok("exec", instance="r", args=[b"\x01\x02"]) == b"\x02\x01"
    assert error_of(host.rpc("validate", instance="r", args=[]))["message"] == "reverse takes one argument"
    assert host.messages("log", 2, level="info")[1]["message"] == "r: reversing 2 items"
