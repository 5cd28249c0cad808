"""Tests of the example portable plugins (plugins/examples/python).

Two layers:
- the business logic and the SDK wrappers, in this process, on the synthetic
  images of scripts/gen_images.py (made here, in a temporary folder) and
  their truth.json;
- the packages: pack.py's zips, their install.sh, and each package unpacked
  and run as a real plugin process, driven over the protocol by the SDK's
  test host (sdk/python/tests/host_harness.py, written from the spec).

The daemon's own round trip (install over REST, estimations, routes, events)
is the integration tests' job. Nothing here writes into the source tree.

    PYTHONPATH=sdk/python /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        plugins/examples/python/tests
"""

import asyncio
import base64
import io
import json
import logging
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the example folders

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1]
ROOT = EXAMPLES.parents[2]
SDK = ROOT / "sdk" / "python"
NAMES = ["defect", "monitor", "pyai", "pypeople", "teapot"]

for _p in (SDK, SDK / "tests", *(EXAMPLES / n for n in NAMES)):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from inferd import Context, EstimateItem, Image, Rect, Request, Response  # noqa: E402
from host_harness import Host, Img  # noqa: E402  (the SDK's spec-written test host)

import count  # noqa: E402  pypeople's logic
import estimator  # noqa: E402  pypeople's wrapper
import inference  # noqa: E402  defect's logic and wrapper
import label  # noqa: E402  pyai's logic
import label_func  # noqa: E402  pyai's wrapper
import monitor  # noqa: E402
import teapot  # noqa: E402

PY = "/usr/bin/python3"


# ---- fixtures ------------------------------------------------------------------------

SEEDS = (1, 4, 7)  # the logic is tried on several seeds: scratches and dots vary with them


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """images(seed) -> (folder, truth): gen_images.py's images, made once per seed."""
    made = {}

    def get(seed):
        if seed not in made:
            out = tmp_path_factory.mktemp(f"images{seed}")
            subprocess.run([PY, str(ROOT / "scripts" / "gen_images.py"), "--out", str(out),
                            "--seed", str(seed)], check=True)
            made[seed] = out, json.loads((out / "truth.json").read_text())
        return made[seed]
    return get


@pytest.fixture(scope="module")
def data(images):
    """The images of the default seed: (folder, truth)."""
    return images(1)


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    """Every example packed by pack.py: {name: zip path}."""
    out = tmp_path_factory.mktemp("packs")
    subprocess.run([PY, str(EXAMPLES / "pack.py"), str(out)], check=True, capture_output=True)
    return {n: out / f"{n}.zip" for n in NAMES}


class _Sender:
    """What a Context sends to the host, kept for the in-process tests."""

    def __init__(self):
        self.sent = []

    def emit(self, instance_id, message):
        self.sent.append(("emit", instance_id, message))

    def publish(self, event, payload):
        self.sent.append(("publish", event, payload))


def make_ctx(component, kind, props=None):
    logger = logging.getLogger(f"test.{component}")
    return Context("test", "i1", component, kind, props or {}, logger, _Sender())


def rgb(folder, name):
    return np.asarray(PILImage.open(folder / name).convert("RGB"))


def b64(path):
    return base64.b64encode(path.read_bytes()).decode("ascii")


@pytest.fixture
def receiver(tmp_path):
    """The monitoring service stand-in of the integration tests: (base url, request log)."""
    port_file, log = tmp_path / "port", tmp_path / "received.jsonl"

    def start(*extra):
        proc = subprocess.Popen([PY, str(ROOT / "tests" / "integration" / "monitoring_receiver.py"),
                                 "--port-file", str(port_file), "--log", str(log), *extra])
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.02)
        port = int(port_file.read_text())
        port_file.unlink()

        def received():
            if not log.exists():
                return []
            return [json.loads(line) for line in log.read_text().splitlines()]
        return f"http://127.0.0.1:{port}/1/buckets", received, proc

    procs = []
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture
def plugin_process(tmp_path, packs):
    """plugin_process(name) -> Host: the package unpacked, its executable
    started as the daemon would, hello answered; stopped and checked after."""
    hosts = []

    def start(name):
        folder = tmp_path / f"{name}-pkg"
        with zipfile.ZipFile(packs[name]) as zf:
            zf.extractall(folder)
        manifest = json.loads((folder / f"{name}.json").read_text())
        sub = tmp_path / f"{name}-host"
        sub.mkdir()
        host = Host(sub, folder / manifest["executable"], name=name)
        hosts.append(host)
        hello = host.handshake().value
        return host, hello, manifest

    yield start
    for host in hosts:
        if host.proc.poll() is None:
            host.terminate()  # SIGTERM, as the daemon stops a plugin
            assert host.wait_exit(10) == 0, host.stderr()
        host.cleanup()
        assert not host.violations, f"protocol violations: {host.violations}"


def components(manifest):
    """(kind, name) pairs a manifest declares, as a hello lists them."""
    kinds = {"functions": "function", "sources": "source", "sinks": "sink", "events": "event",
             "backgrounds": "background", "estimators": "estimator"}
    out = set()
    for key, kind in kinds.items():
        for c in manifest.get(key, []):
            out.add((kind, c if isinstance(c, str) else c["name"]))
    return out


# ---- pyai: labelImage ----------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_label_names_every_colour(images, seed):
    folder, truth = images(seed)
    assert len(truth["colours"]) == 16
    for c in truth["colours"]:
        result = label.label((folder / c["file"]).read_bytes())
        assert [r["label"] for r in result][0] == c["label"], (c, result)
        assert len(result) == 5 and len({r["label"] for r in result}) == 5
        confidences = [r["confidence"] for r in result]
        assert confidences == sorted(confidences, reverse=True)
        assert sum(confidences) <= 1.0 + 1e-9
        # The top confidence is the dominant colour's share of the image.
        assert abs(confidences[0] - c["fraction"]) < 0.02, (c, result)
        json.dumps(result)  # plain JSON for the daemon


def test_label_bad_input(data):
    folder, truth = data
    with pytest.raises(ValueError, match="^labelImage: the bytes are not a JPEG or PNG image$"):
        label.label(b"this is not an image")
    png = (folder / truth["colours"][0]["file"]).read_bytes()
    with pytest.raises(ValueError, match="^labelImage: the image does not decode: "):
        label.label(png[:len(png) // 2])
    with pytest.raises(TypeError, match="image's bytes .* not str"):
        label.label("aGVsbG8=")
    f = label_func.LabelImageFunc()
    assert f.validate([b"x"]) == ""
    assert "invalid arg length" in f.validate([])
    assert "invalid arg length" in f.validate([b"x", b"y"])
    assert f.is_aggregate() is False


# ---- defect: inference ---------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_defect_counts_every_scratch(images, seed):
    folder, truth = images(seed)
    assert len(truth["scratches"]) == 10
    for s in truth["scratches"]:
        result = inference.inference(b64(folder / s["file"]))
        assert set(result) == {"inference time", "defect", "base64"}
        assert result["defect"] == s["count"], (s["file"], result["defect"])
        assert isinstance(result["inference time"], float) and result["inference time"] > 0
        picture = PILImage.open(io.BytesIO(base64.b64decode(result["base64"])))
        assert picture.format == "JPEG" and picture.size == (2 * s["width"], s["height"])
        # The mask (right half) is white on the scratches, black elsewhere.
        mask = np.asarray(picture.convert("L"))[:, s["width"]:] > 128
        inside = np.zeros_like(mask)
        for x0, y0, x1, y1 in s["boxes"]:
            inside[max(0, y0 - 3):y1 + 4, max(0, x0 - 3):x1 + 4] = True
        assert not (mask & ~inside).any(), s["file"]
        for x0, y0, x1, y1 in s["boxes"]:
            assert mask[y0:y1 + 1, x0:x1 + 1].sum() >= 10, (s["file"], "no mask on a scratch")


def test_defect_bad_input(data):
    folder, truth = data
    with pytest.raises(ValueError, match="not base64"):
        inference.inference("**not base64**")
    with pytest.raises(ValueError, match="^inference: the bytes are not a JPEG or PNG image$"):
        inference.inference(base64.b64encode(b"plain text").decode())
    png = (folder / truth["scratches"][1]["file"]).read_bytes()
    with pytest.raises(ValueError, match="^inference: the image does not decode: "):
        inference.inference(base64.b64encode(png[:len(png) // 2]).decode())
    with pytest.raises(TypeError, match="base64-encoded image .* not bytes"):
        inference.inference(b"\x89PNG")
    assert "invalid arg length" in inference.inferenceIns.validate([])
    assert inference.inferenceIns.validate(["x"]) == ""


# ---- pypeople: numpyPeopleCount ------------------------------------------------------

def assert_points_match(points, dots, tolerance=1.5):
    """Each point is near a different true dot."""
    free = list(dots)
    for p in points:
        assert set(p) == {"x", "y"} and all(isinstance(v, int) for v in p.values()), p
        d = [np.hypot(p["x"] - t["x"], p["y"] - t["y"]) for t in free]
        assert free and min(d) <= tolerance, (p, "no true dot near it")
        free.pop(int(np.argmin(d)))
    assert not free, f"true dots without a point: {free}"


@pytest.mark.parametrize("seed", SEEDS)
def test_pypeople_counts_every_dot_image(images, seed):
    folder, truth = images(seed)
    assert len(truth["dots"]) == 12
    for d in truth["dots"]:
        pixels = rgb(folder, d["file"])
        t1 = count.count_people(pixels)
        assert t1["count"] == d["count"], (d["file"], t1["count"])
        assert_points_match(t1["points"], d["dots"])
        assert count.count_people(pixels, targets="T2") == {"count": d["count"]}


def split_between(dots, size, key):
    """A coordinate in the middle third that cuts no dot (None when every one does)."""
    for s in range(size // 3, 2 * size // 3):
        if all(abs(t[key] - s) > t["r"] + 2 for t in dots):
            return s
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_pypeople_detect_area(images, seed):
    folder, truth = images(seed)
    tried = 0
    for d in truth["dots"]:
        if d["count"] < 5:
            continue
        sx = split_between(d["dots"], d["width"], "x")
        sy = split_between(d["dots"], d["height"], "y")
        if sx is None or sy is None:
            continue
        tried += 1
        area = (sx, sy, d["width"] - sx, d["height"] - sy)
        want = [t for t in d["dots"] if t["x"] > sx and t["y"] > sy]
        got = count.count_people(rgb(folder, d["file"]), area)
        assert got["count"] == len(want), (d["file"], area)
        assert_points_match(got["points"], want)  # whole-image coordinates
        assert count.count_people(rgb(folder, d["file"]), area, "T2") == {"count": len(want)}
    assert tried >= 3, "too few images to try areas on"


def test_pypeople_bad_input():
    pixels = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ValueError, match="targets must be one of T1, T2, not 'T3'"):
        count.count_people(pixels, targets="T3")
    with pytest.raises(ValueError, match="not inside the 30x20 image"):
        count.count_people(pixels, (10, 0, 25, 5))
    with pytest.raises(ValueError, match=r"\(h, w, 3\)"):
        count.count_people(np.zeros((20, 30), np.uint8))


def test_pypeople_estimate_batch(data):
    """The wrapper: one result per item, an item's error in its own place."""
    folder, truth = data
    d = next(x for x in truth["dots"] if x["count"] == 20)
    image = Image.from_array(rgb(folder, d["file"]))
    est = estimator.NumpyPeopleCount()
    assert est.broker_name == "peopleCountEstimator"
    ctx = make_ctx("numpyPeopleCount", "estimator")
    est.initialize(ctx)
    whole = Rect(0, 0, d["width"], d["height"])
    results = est.estimate_batch([EstimateItem(image), EstimateItem(image, None, {"targets": "T2"}),
                                  EstimateItem(image, whole, {"targets": "T3"}),
                                  EstimateItem(image, whole, {"targets": "T1"})], ctx)
    assert len(results) == 4
    assert results[0]["count"] == 20 and len(results[0]["points"]) == 20
    assert results[1] == {"count": 20}
    assert isinstance(results[2], ValueError) and "T3" in str(results[2])
    assert results[3] == results[0]


# ---- teapot --------------------------------------------------------------------------

def test_teapot_handlers():
    get = Request("GET", "/teapot", {}, {}, b"")
    r = asyncio.run(teapot.TeapotHandler().get(get))
    assert isinstance(r, Response)
    assert (r.status, r.body, r.headers) == (418, "I am teapot", {"Content-Type": "text/plain"})
    r = teapot.version_handler(Request("GET", "/teapot/version", {}, {}, b""))
    assert (r.status, r.body, r.headers) == (200, "T800", {"Content-Type": "text/plain"})


def test_teapot_boils_and_stops():
    async def scenario():
        pot = teapot.Teapot()
        ctx = make_ctx("teapot", "background", {"intervalMs": 10})
        await pot.initialize(ctx)
        temperature = Request("GET", "/teapot/temperature", {}, {}, b"")
        assert pot.get_temperature(temperature) == {"temperature": 0}
        await pot.start(ctx)
        await asyncio.sleep(0.3)
        warm = pot.get_temperature(temperature)["temperature"]
        assert 5 <= warm < 100, warm
        await pot.close(ctx)
        await asyncio.sleep(0.1)
        assert pot.get_temperature(temperature)["temperature"] == pot.temperature
        stopped = pot.temperature
        await asyncio.sleep(0.1)
        assert pot.temperature == stopped, "the water kept warming after close"
        # Left running, it stops at 100.
        pot2 = teapot.Teapot()
        ctx2 = make_ctx("teapot", "background", {"intervalMs": 1})
        await pot2.initialize(ctx2)
        await pot2.start(ctx2)
        for _ in range(400):
            if pot2.task.done():
                break
            await asyncio.sleep(0.01)
        assert pot2.task.done() and pot2.temperature == 100
        await pot2.close(ctx2)

    asyncio.run(scenario())


def test_teapot_bad_interval():
    for bad in (0, -5, "soon"):
        with pytest.raises(ValueError, match="intervalMs must be a positive number"):
            ctx = make_ctx("teapot", "background", {"intervalMs": bad})
            asyncio.run(teapot.Teapot().initialize(ctx))


# ---- monitor ---------------------------------------------------------------------------

POINT = {"series": "request", "tags": {"route": "/health", "path": "/health", "method": "GET",
                                       "status": 200},
         "fields": {"decode_ms": 0, "queue_ms": 0, "inference_ms": 0, "total_ms": 0.4},
         "time": 1700000000.5}


def test_monitor_posts_points(receiver):
    url, received, _ = receiver()
    plug = monitor.RequestMonitoringPlugin()
    assert plug.event_name == "monitoring_event"
    ctx = make_ctx("monitor", "event", {"url": url, "bucket": "b1"})
    plug.initialize(ctx)
    second = dict(POINT, tags=dict(POINT["tags"], method="POST", status=405))
    plug.handle_event([POINT, second], ctx)
    log = received()
    assert [(r["path"], r["query"]) for r in log] == [
        ("/1/buckets", {"bucket": "b1"}), ("/1/buckets/b1/objects", {}),
        ("/1/buckets/b1/objects", {})]
    assert all(r["content_type"] == "application/json" for r in log[1:])
    assert [r["body"] for r in log[1:]] == [POINT, second]
    # A second instance finds the bucket there (409) and is fine with it.
    monitor.RequestMonitoringPlugin().initialize(ctx)
    # A point that is not an object fails its batch, saying which point.
    with pytest.raises(RuntimeError, match="point 2 of 2: a point is a JSON object, not list"):
        plug.handle_event([POINT, [1, 2]], ctx)


def test_monitor_failures(receiver):
    url, _, _ = receiver("--bucket-status", "500")
    ctx = make_ctx("monitor", "event", {"url": url, "bucket": "b2"})
    want = r"failed to create bucket b2: POST .*\?bucket=b2 answered 500"
    with pytest.raises(RuntimeError, match=want):
        monitor.RequestMonitoringPlugin().initialize(ctx)
    url, _, proc = receiver()
    plug = monitor.RequestMonitoringPlugin()
    ctx = make_ctx("monitor", "event", {"url": url, "bucket": "b3", "timeoutMs": 2000})
    plug.initialize(ctx)
    proc.kill()
    proc.wait()
    want = r"point 1 of 2: POST http://127\.0\.0\.1:\d+/1/buckets/b3/objects: "
    with pytest.raises(RuntimeError, match=want):
        plug.handle_event([POINT, POINT], ctx)
    with pytest.raises(ValueError, match="timeoutMs must be a number"):
        ctx = make_ctx("monitor", "event", {"timeoutMs": "x"})
        monitor.RequestMonitoringPlugin().initialize(ctx)


# ---- packages --------------------------------------------------------------------------

def test_pack_writes_every_example(packs, tmp_path):
    for name, path in packs.items():
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            names = list(infos)
            assert names == sorted(names), name
            assert f"{name}.json" in infos, f"{name}: no manifest at the zip's root"
            manifest = json.loads(zf.read(f"{name}.json"))
            assert manifest["version"] == "v1.0.0" and manifest["language"] == "python"
            assert manifest["executable"] in infos, f"{name}: no executable"
            assert infos["install.sh"].external_attr >> 16 == 0o100755, name
            assert "requirements.txt" in infos
            assert not any("__pycache__" in n or n.endswith(".pyc") for n in names), names
            assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos.values())
    # Deterministic: packing again gives the same bytes.
    again = tmp_path / "again"
    subprocess.run([PY, str(EXAMPLES / "pack.py"), str(again), "pyai", "teapot"], check=True,
                   capture_output=True)
    assert sorted(p.name for p in again.iterdir()) == ["pyai.zip", "teapot.zip"]
    for name in ("pyai", "teapot"):
        assert (again / f"{name}.zip").read_bytes() == packs[name].read_bytes(), name
    # The seed's file lists.
    with zipfile.ZipFile(packs["pyai"]) as zf:
        assert {"label.py", "label_func.py", "pyai.py", "pyai.json", "functions/labelImage.json",
                "requirements.txt", "install.sh"} <= set(zf.namelist())
    with zipfile.ZipFile(packs["defect"]) as zf:
        assert {"inference.py", "main.py", "defect.json", "functions/defect.json",
                "requirements.txt", "install.sh"} <= set(zf.namelist())


def test_pack_refuses_unknown_names(tmp_path):
    r = subprocess.run([PY, str(EXAMPLES / "pack.py"), str(tmp_path / "out"), "nope"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no example named nope" in r.stderr
    assert not (tmp_path / "out").exists()
    r = subprocess.run([PY, str(EXAMPLES / "pack.py")], capture_output=True, text=True)
    assert r.returncode == 2 and "OUTDIR" in r.stderr


def test_install_scripts_check_imports(packs, tmp_path):
    for name, path in packs.items():
        folder = tmp_path / name
        with zipfile.ZipFile(path) as zf:
            zf.extractall(folder)
        os.chmod(folder / "install.sh", 0o755)  # zipfile does not restore modes
        env = {"PATH": "/usr/bin:/bin", "INFERD_PYTHON": PY}
        ok = subprocess.run([str(folder / "install.sh")], env=env, capture_output=True, text=True)
        assert ok.returncode == 0, (name, ok.stderr)
        # An interpreter that cannot import anything: a clear refusal.
        env["INFERD_PYTHON"] = "/bin/false"
        bad = subprocess.run([str(folder / "install.sh")], env=env, capture_output=True, text=True)
        assert bad.returncode != 0, name
        assert name in bad.stderr and "/bin/false" in bad.stderr, (name, bad.stderr)


# ---- each package as a real plugin process -------------------------------------------

def test_process_pyai(plugin_process, data):
    folder, truth = data
    host, hello, manifest = plugin_process("pyai")
    assert hello["name"] == "pyai" and hello["protocol"] == 1
    assert {(c["kind"], c["name"]) for c in hello["components"]} == components(manifest)
    host.ok("open", instance="f1", kind="function", component="labelImage", props={})
    for c in truth["colours"][:8]:
        result = host.ok("exec", instance="f1", args=[(folder / c["file"]).read_bytes()])
        assert result[0]["label"] == c["label"], (c, result)
    r = host.rpc("validate", instance="f1", args=[b"a", b"b"]).value
    assert r["ok"] is False and "invalid arg length" in r["error"]["message"]
    r = host.rpc("exec", instance="f1", args=[b"garbage"]).value
    assert r["ok"] is False and "not a JPEG or PNG image" in r["error"]["message"]
    assert host.ok("ping") is None  # still serving after an error


def test_process_defect(plugin_process, data):
    folder, truth = data
    host, hello, manifest = plugin_process("defect")
    assert {(c["kind"], c["name"]) for c in hello["components"]} == components(manifest)
    host.ok("open", instance="f1", kind="function", component="inference", props={})
    for s in truth["scratches"]:
        result = host.ok("exec", instance="f1", args=[b64(folder / s["file"])])
        assert result["defect"] == s["count"], s["file"]


def test_process_pypeople(plugin_process, data):
    folder, truth = data
    host, hello, manifest = plugin_process("pypeople")
    assert {(c["kind"], c["name"]) for c in hello["components"]} == components(manifest)
    host.ok("open", instance="e1", kind="estimator", component="numpyPeopleCount", props={})
    items = []
    for d in truth["dots"]:
        pixels = rgb(folder, d["file"])
        items.append({"image": Img(d["width"], d["height"], pixels.tobytes()), "area": None,
                      "options": {"targets": "T1"}})
    big = items[-1]
    items.append(dict(big, options={"targets": "T2"}))
    items.append(dict(big, options={"targets": "T9"}))
    # The batch's images add up to megabytes: they go through shared memory.
    results = host.ok("estimate", instance="e1", items=items)
    assert len(results) == len(items)
    for d, r in zip(truth["dots"], results):
        assert r["ok"] is True and r["value"]["count"] == d["count"], (d["file"], r)
        assert_points_match(r["value"]["points"], d["dots"])
    assert results[-2] == {"ok": True, "value": {"count": truth["dots"][-1]["count"]}}
    assert results[-1]["ok"] is False and "T9" in results[-1]["error"]["message"]
    # An area: whole-image coordinates.
    d = truth["dots"][3]
    sx = split_between(d["dots"], d["width"], "x")
    area = {"x": sx, "y": 0, "width": d["width"] - sx, "height": d["height"]}
    want = [t for t in d["dots"] if t["x"] > sx]
    [r] = host.ok("estimate", instance="e1", items=[{"image": items[3]["image"], "area": area,
                                                     "options": {}}])
    assert r["ok"] and r["value"]["count"] == len(want)
    assert_points_match(r["value"]["points"], want)


def test_process_teapot(plugin_process):
    host, hello, manifest = plugin_process("teapot")
    assert {(c["kind"], c["name"]) for c in hello["components"]} == components(manifest)
    host.ok("open", instance="b1", kind="background", component="teapot", props={"intervalMs": 20})

    def get(path, method="GET"):
        return host.ok("route", instance="b1", method=method, path=path, query={}, headers={},
                       body=b"")

    r = get("/teapot")
    assert (r["status"], r["body"]) == (418, b"I am teapot")
    assert r["headers"].get("Content-Type", r["headers"].get("content-type")) == "text/plain"
    r = get("/teapot/version")
    assert (r["status"], r["body"]) == (200, b"T800")
    assert get("/teapot/version", "POST")["status"] == 405
    assert get("/teapot", "DELETE")["status"] == 405
    assert get("/teapot/nothing")["status"] == 404
    assert json.loads(get("/teapot/temperature")["body"]) == {"temperature": 0}
    host.ok("start", instance="b1")
    logs = host.messages("log", 3, timeout=10)
    assert all("I boil water, temperature: " in m["message"] for m in logs[:3]), logs
    host.ok("stop", instance="b1")
    t1 = json.loads(get("/teapot/temperature")["body"])["temperature"]
    assert t1 >= 3
    time.sleep(0.2)
    t2 = json.loads(get("/teapot/temperature")["body"])["temperature"]
    assert t2 == t1, "still boiling after stop"
    host.ok("close", instance="b1")
    # A bad property fails open with a message, and the plugin goes on.
    r = host.rpc("open", instance="b2", kind="background", component="teapot",
                 props={"intervalMs": "often"}).value
    assert r["ok"] is False and "intervalMs must be a positive number" in r["error"]["message"]
    assert host.ok("ping") is None


def test_process_monitor(plugin_process, receiver):
    url, received, _ = receiver()
    host, hello, manifest = plugin_process("monitor")
    assert {(c["kind"], c["name"]) for c in hello["components"]} == components(manifest)
    assert manifest["events"][0]["event"] == monitor.RequestMonitoringPlugin.event_name
    host.ok("open", instance="m1", kind="event", component="monitor", props={"url": url})
    host.ok("events", instance="m1", event="monitoring_event", events=[POINT, POINT, POINT])
    log = received()
    assert log[0]["query"] == {"bucket": "plugin_test_bucket"}  # the seed's default bucket
    assert [r["path"] for r in log[1:]] == ["/1/buckets/plugin_test_bucket/objects"] * 3
    assert all(r["body"] == POINT for r in log[1:])
    r = host.rpc("events", instance="m1", event="monitoring_event", events=["not a point"]).value
    assert r["ok"] is False
    assert r["error"]["message"] == "point 1 of 1: a point is a JSON object, not str"


def test_entry_refuses_to_run_by_hand(packs, tmp_path):
    """Started by hand (no INFERD_SOCKET), an entry says it is the daemon's to run."""
    folder = tmp_path / "pyai"
    with zipfile.ZipFile(packs["pyai"]) as zf:
        zf.extractall(folder)
    env = {"PYTHONPATH": str(SDK), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run([PY, str(folder / "pyai.py")], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "INFERD_SOCKET is not set" in r.stderr
