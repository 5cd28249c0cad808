"""The KServe model repository of a running inferd: reloads and unloads under
load, statistics and metrics, driven by kserve_client.py.

    kserve_repository.py make FILE K          writes a model y = K * x (x: FP32 [batch, 2])
    kserve_repository.py make-slow FILE       writes a model y = x + n that loops n times
                                              (n: INT64 [1], x: FP32 [1]): a run as long as
                                              the request asks (200000: a fifth of a second)
    kserve_repository.py reload BASE MODELS   threads infer on "scale" while version 2
                                              is added and loaded, then rewritten and
                                              reloaded; then the statistics and /metrics
    kserve_repository.py unload BASE LOG      slow requests on "slow" while it is unloaded

Each check prints "ok - ..."; the first failure raises (exit 1).
"""

import json
import os
import re
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kserve_client import InferInput, KServeClient, KServeError  # noqa: E402


def ok(what):
    print("ok - " + what, flush=True)


def make(path, k):
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])
    scale = helper.make_tensor("k", TensorProto.FLOAT, [1], [float(k)])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "scale", [x], [y],
                              [scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="inferd-tests")
    model.ir_version = 8
    save(model, path)


def save(model, path):
    import onnx
    onnx.checker.check_model(model, full_check=True)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # Written beside and renamed: a reload never reads half a file.
    onnx.save(model, path + ".tmp")
    os.replace(path + ".tmp", path)


def make_slow(path):
    from onnx import TensorProto as T, helper
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["x_in", "one"], ["x_out"])], "body",
        [helper.make_tensor_value_info("i", T.INT64, []),
         helper.make_tensor_value_info("cond_in", T.BOOL, []),
         helper.make_tensor_value_info("x_in", T.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", T.BOOL, []),
         helper.make_tensor_value_info("x_out", T.FLOAT, [1])],
        [helper.make_tensor("one", T.FLOAT, [1], [1.0])])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["n", "scalar"], ["m"]),
         helper.make_node("Loop", ["m", "", "x"], ["y"], body=body)], "slow",
        [helper.make_tensor_value_info("n", T.INT64, [1]),
         helper.make_tensor_value_info("x", T.FLOAT, [1])],
        [helper.make_tensor_value_info("y", T.FLOAT, [1])],
        [helper.make_tensor("scalar", T.INT64, [0], [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="inferd-tests")
    model.ir_version = 8
    save(model, path)


def x_input(rows=1):
    return InferInput("x", [rows, 2], "FP32").set_data_from_numpy(
        np.tile(np.array([[1.0, 2.0]], np.float32), (rows, 1)), binary_data=False)


def post(c, path):
    status, _, body = c.request("POST", path, b"{}", {"Content-Type": "application/json"})
    return status, json.loads(body)


def scale_stats(c):
    """{version: model_stat} of model scale, once they stand still: a worker
    counts a request just after its reply went out."""
    prev = None
    for _ in range(100):
        cur = {s["version"]: s for s in c.get_json("/v2/models/scale/stats")["model_stats"]}
        if cur == prev:
            return cur
        prev = cur
        time.sleep(0.02)
    return cur


def count(stats, version, key):
    return stats.get(version, {}).get("inference_stats", {}).get(key, {}).get("count", 0)


# ---- reload under load -------------------------------------------------------------------

class Hammer:
    """Threads that infer on a model in a loop, each keeping its answers in order."""

    def __init__(self, base, model, threads):
        self.c = KServeClient(base)
        self.model = model
        self.stop = threading.Event()
        self.answers = [[] for _ in range(threads)]  # (version, factor) or ("error", message)
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def run(self, i):
        c = KServeClient(self.c.base)
        while not self.stop.is_set():
            try:
                r = c.infer(self.model, [x_input()], binary_output=False)
                y = r.as_numpy("y")
                self.answers[i].append((r.get_response()["model_version"], float(y[0, 0])))
            except (KServeError, OSError) as e:
                self.answers[i].append(("error", str(e)))

    def total(self):
        return sum(len(a) for a in self.answers)

    def wait_for(self, more, timeout=30):
        want = self.total() + more
        deadline = time.monotonic() + timeout
        while self.total() < want:
            assert time.monotonic() < deadline, "the requests stalled at %d" % self.total()
            time.sleep(0.005)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def check_reload(base, models):
    c = KServeClient(base)
    before = scale_stats(c)
    folder = os.path.join(models, "scale")
    with Hammer(base, "scale", 4) as h:
        h.wait_for(20)
        make(os.path.join(folder, "2", "model.onnx"), 2)
        status, body = post(c, "/v2/repository/models/scale/load")
        assert status == 200 and body == {"name": "scale", "state": "READY",
                                          "versions": ["1", "2"]}, (status, body)
        h.wait_for(20)
        # The same file, rewritten: a reload reads it again.
        make(os.path.join(folder, "2", "model.onnx"), 3)
        status, body = post(c, "/v2/repository/models/scale/load")
        assert status == 200, (status, body)
        h.wait_for(20)
    errors = [a for t in h.answers for a in t if a[0] == "error"]
    assert not errors, errors[:3]
    seen = set()
    for t in h.answers:
        factors = [f for _, f in t]
        assert factors == sorted(factors), "a thread went back to an older model: %s" % factors
        seen.update(t)
    assert seen == {("1", 1.0), ("2", 2.0), ("2", 3.0)}, seen
    n = h.total()
    ok("reload under load: %d requests from 4 threads, none failed; each thread's answers "
       "went from version 1 to version 2 and then to its rewritten file (x1, x2, x3)" % n)

    # The statistics count exactly those, by version, and time every phase.
    after = scale_stats(c)
    by_version = {v: sum(1 for t in h.answers for a in t if a[0] == v) for v in ("1", "2")}
    for v, made in by_version.items():
        got = count(after, v, "success") - count(before, v, "success")
        assert got == made, "version %s: %d successes counted, %d made" % (v, got, made)
    # Failures: a wrong datatype, and a batch over maxBatchSize (8); a batch of 3 is 3 inferences.
    wrong = InferInput("x", [1, 2], "INT32").set_data_from_numpy(np.ones((1, 2), np.int32), False)
    for inp, needle in ((wrong, "input 'x' of model 'scale' is FP32"),
                        (x_input(9), "carries a batch of 9; its maxBatchSize is 8")):
        try:
            c.infer("scale", [inp])
            raise AssertionError("a bad request succeeded")
        except KServeError as e:
            assert e.status == 400 and needle in e.message, e
    c.infer("scale", [x_input(3)], binary_output=False)
    final = scale_stats(c)["2"]
    s2, a2 = final["inference_stats"], after["2"]["inference_stats"]
    assert s2["fail"]["count"] - a2["fail"]["count"] == 2, (s2, a2)
    assert s2["success"]["count"] - a2["success"]["count"] == 1, (s2, a2)
    assert final["inference_count"] - after["2"]["inference_count"] == 3, (final, after["2"])
    assert final["execution_count"] == s2["success"]["count"], final
    for phase in ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output"):
        assert s2[phase]["ns"] > 0, (phase, s2)
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert s2[phase]["count"] == s2["success"]["count"], (phase, s2)
    assert abs(final["last_inference"] / 1000 - time.time()) < 60, final["last_inference"]
    ok("statistics: successes per version equal the requests made (%s), 2 failures and a batch "
       "of 3 counted; every duration > 0 ns" % by_version)

    # /metrics says the same.
    status, _, text = c.request("GET", "/metrics")
    text = text.decode()
    for result, key in (("success", "success"), ("failure", "fail")):
        m = re.search(r'^inferd_kserve_requests_total\{model="scale",version="2",result="%s"\} '
                      r'(\d+)$' % result, text, re.M)
        assert m and int(m.group(1)) == s2[key]["count"], (result, m and m.group(0))
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        m = re.search(r'^inferd_kserve_phase_seconds_total\{model="scale",version="2",'
                      r'phase="%s"\} ([0-9.]+)$' % phase, text, re.M)
        assert m and abs(float(m.group(1)) * 1e9 - s2[phase]["ns"]) < 1e3, (phase, m)
    ok("/metrics: inferd_kserve_requests_total and _phase_seconds_total of scale version 2 "
       "equal its statistics")


# ---- unload under load -------------------------------------------------------------------

def check_unload(base, log):
    """Four requests of a fifth of a second each on 'slow' (two KServe workers):
    running or queued when the unload comes."""
    c = KServeClient(base)
    results = [None] * 4

    def slow_inputs(n, x=0.0):
        return [InferInput("n", [1], "INT64").set_data_from_numpy(np.array([n], np.int64)),
                InferInput("x", [1], "FP32").set_data_from_numpy(np.array([x], np.float32))]

    def one(i):
        try:
            results[i] = float(c.infer("slow", slow_inputs(200000 + i, i)).as_numpy("y")[0])
        except KServeError as e:
            results[i] = e

    def queued():
        return open(log).read().count("slow: request queued")

    already = queued()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while queued() < already + 4:
        assert time.monotonic() < deadline, "the requests were not queued"
        time.sleep(0.005)
    status, body = post(c, "/v2/repository/models/slow/unload")
    assert status == 200 and body["state"] == "UNLOADING", (status, body)
    index = {m["name"]: m for m in c.get_model_repository_index()}
    assert index["slow"]["state"] == "UNLOADING", index["slow"]
    try:
        c.infer("slow", slow_inputs(1))
        raise AssertionError("a request after the unload ran")
    except KServeError as e:
        assert e.status == 404 and "is not loaded (it was unloaded)" in e.message, e
    for t in threads:
        t.join()
    assert results == [200000.0, 200002.0, 200004.0, 200006.0], results
    # A worker lets go of the session just after its reply went out: look
    # again a little while.
    deadline = time.monotonic() + 5
    while True:
        index = {m["name"]: m for m in c.get_model_repository_index()}
        if index["slow"]["state"] != "UNLOADING" or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert index["slow"] == {"name": "slow", "version": "1", "state": "UNAVAILABLE",
                             "reason": "unloaded"}, index["slow"]
    while "model slow: version 1 closed" not in open(log).read() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "model slow: version 1 closed" in open(log).read(), "the session was not closed"
    ok("unload with 4 requests in: state UNLOADING, a new request gets 404 not loaded, the 4 "
       "finish with their answers, then the session closes and the model is UNAVAILABLE")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(args[0], float(args[1]))
    elif cmd == "make-slow":
        make_slow(args[0])
    elif cmd == "reload":
        check_reload(*args)
    elif cmd == "unload":
        check_unload(*args)
    else:
        sys.exit("unknown command " + cmd)
