"""The KServe v2 API of a running inferd, driven by kserve_client.py.

    kserve_checks.py make-models DIR     writes the test model dtypes.onnx into DIR
    kserve_checks.py default BASE MODELS the default models: behaviour, JSON vs binary, errors
    kserve_checks.py dtypes BASE         every datatype through dtypes.onnx (a daemon
                                         whose models.dir holds it)

Each check prints "ok - ..."; the first failure raises (exit 1) with what was
expected and what came back.
"""

import concurrent.futures
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kserve_client import (BINARY_HEADER, DTYPES, InferInput, InferRequestedOutput,  # noqa: E402
                           KServeClient, KServeError)


def ok(what):
    print("ok - " + what, flush=True)


def expect_error(status, code, needle, fn, *args, **kwargs):
    """fn(...) must fail with this HTTP status, error code and message part."""
    try:
        fn(*args, **kwargs)
    except KServeError as e:
        assert e.status == status and e.code == code and needle in e.message, \
            "want %d %s with %r, got %d %s %r" % (status, code, needle, e.status, e.code, e.message)
        return e.message
    raise AssertionError("want %d %s with %r, the call succeeded" % (status, code, needle))


def image_input(img, binary, name="image"):
    """img: float32 NCHW."""
    i = InferInput(name, img.shape, "FP32")
    return i.set_data_from_numpy(img.astype(np.float32), binary_data=binary)


def solid(colour, h=8, w=8, n=1):
    return np.tile(np.asarray(colour, np.float32)[None, :, None, None], (n, 1, h, w))


def draw_dots(rng, k, h=120, w=160, spacing=30, border=18, r=3.0):
    """k bright discs on a dark noisy background, centres on a grid `spacing`
    apart (the model needs ~22) and `border` from the edges."""
    img = np.full((h, w), 0.08) + rng.normal(0.0, 0.02, (h, w))
    cells = [(y, x) for y in range(border, h - border + 1, spacing)
             for x in range(border, w - border + 1, spacing)]
    assert k <= len(cells)
    yy, xx = np.mgrid[0:h, 0:w]
    for idx in rng.choice(len(cells), k, replace=False):
        cy, cx = cells[idx]
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 0.95
    img = np.clip(img, 0, 1)
    return np.repeat(img[None, None], 3, axis=1).astype(np.float32)


# ---- the default models ------------------------------------------------------------

def check_metadata(c, models):
    assert c.is_server_live()
    assert c.is_server_ready()
    meta = c.get_server_metadata()
    assert meta["name"] == "inferd" and "binary_tensor_data" in meta["extensions"], meta
    names = sorted(f[:-5] for f in os.listdir(models) if f.endswith(".onnx"))
    index = c.get_model_repository_index()
    assert [(m["name"], m["version"], m["state"]) for m in index] == \
        [(n, "1", "READY") for n in names], index
    for n in names:
        for version in ("", "1"):
            m = c.get_model_metadata(n, version)
            assert m["name"] == n and m["versions"] == ["1"] and m["platform"] == "onnxruntime_onnx", m
            assert m["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 3, -1, -1]}], m
            assert c.is_model_ready(n, version)
    outs = {n: c.get_model_metadata(n)["outputs"] for n in names}
    assert outs["colour_classifier"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 8]}], outs
    assert outs["dot_density"][0]["name"] == "density" and len(outs["dot_density"][0]["shape"]) == 4, outs
    assert outs["scratch_segmenter"][0]["name"] == "mask", outs
    ok("server and model metadata, readiness, repository index of %s" % ", ".join(names))


def check_colours(c, models):
    labels = open(os.path.join(models, "colour_classifier.labels")).read().split()
    red = labels.index("red")
    ref = None  # the all-JSON answer, which the binary ones must equal
    for binary_in in (False, True):
        for binary_out in (False, True):
            res = c.infer("colour_classifier", [image_input(solid((1, 0, 0)), binary_in)],
                          outputs=[InferRequestedOutput("probabilities", binary_out)],
                          request_id="red-%d%d" % (binary_in, binary_out))
            r = res.get_response()
            assert r["model_name"] == "colour_classifier" and r["model_version"] == "1", r
            assert r["id"] == "red-%d%d" % (binary_in, binary_out), r
            p = res.as_numpy("probabilities")
            assert p.shape == (1, 8) and p.dtype == np.float32, p
            assert int(np.argmax(p[0])) == red and p[0, red] > 0.9, p
            assert abs(float(p.sum()) - 1.0) < 1e-5, p.sum()
            if binary_in or binary_out:
                assert np.array_equal(p, ref), (p, ref)
            else:
                ref = p
    ok("colour_classifier: solid red 8x8 is label %d 'red' with p=%.6f, rows sum to 1; "
       "JSON and binary in/out give identical numbers" % (red, ref[0, red]))

    # A batch of two, nested (row-major) JSON data and flat data alike.
    batch = np.concatenate([solid((1, 0, 0)), solid((0, 0, 1))])
    nested = InferInput("image", batch.shape, "FP32").set_json(batch.tolist())
    flat = image_input(batch, False)
    # (priority and timeout are parameters tritonclient may send: accepted, no effect)
    a = c.infer("colour_classifier", [nested], binary_output=False,
                parameters={"priority": 1, "timeout": 1000000}).as_numpy("probabilities")
    b = c.infer("colour_classifier", [flat]).as_numpy("probabilities")
    assert [int(x) for x in np.argmax(a, axis=1)] == [red, labels.index("blue")], a
    assert np.array_equal(a, b), (a, b)
    ok("colour_classifier: a batch of red and blue, nested and flat data, binary_data_output")


def check_dots(c):
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    for k in sorted({0, 1, int(rng.integers(2, 16))}):  # 15 places in 160x120
        img = draw_dots(rng, k)
        for binary in (False, True):
            d = c.infer("dot_density", [image_input(img, binary)], binary_output=binary) \
                .as_numpy("density")
            assert d.shape == (1, 1, math.ceil(120 / 4), math.ceil(160 / 4)), d.shape
            assert abs(float(d.sum()) - k) <= 0.01, (k, float(d.sum()))
        ok("dot_density: %d drawn dots sum to %.4f, map %s" % (k, float(d.sum()), list(d.shape)))


def check_scratches(c):
    h, w = 61, 93
    img = np.full((h, w), 0.8)
    img[30:32, 10:80] = 0.25  # a dark scratch, 2 px wide
    img = np.repeat(img[None, None], 3, axis=1).astype(np.float32)
    for binary in (False, True):
        m = c.infer("scratch_segmenter", [image_input(img, binary)], binary_output=binary) \
            .as_numpy("mask")
        assert m.shape == (1, 1, h, w), m.shape
        assert (m[0, 0, 30:32, 15:75] >= 0.5).all(), m[0, 0, 30:32, 15:75].min()
        assert (m[0, 0, :20] < 0.5).all() and (m[0, 0, 42:] < 0.5).all(), "mask away from the scratch"
    ok("scratch_segmenter: mask %s matches the %dx%d input; the scratch is found, nothing else"
       % (list(m.shape), h, w))


def check_concurrency(c, models):
    labels = open(os.path.join(models, "colour_classifier.labels")).read().split()
    colours = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0)}

    def one(i):
        name = list(colours)[i % len(colours)]
        p = c.infer("colour_classifier", [image_input(solid(colours[name], 16, 16), i % 2 == 0)],
                    binary_output=i % 3 == 0).as_numpy("probabilities")
        return labels[int(np.argmax(p[0]))] == name

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(160)))
    assert all(results), results.count(False)
    ok("160 requests from 8 threads at once, all answered right")


def check_binary_reply(c):
    """The reply's framing, read by hand rather than through the client."""
    body, headers = c.build_request([image_input(solid((0, 1, 0)), True)],
                                    [InferRequestedOutput("probabilities", True)])
    status, rh, rb = c.infer_raw("colour_classifier", body, headers)
    assert status == 200 and rh["Content-Type"] == "application/octet-stream", (status, dict(rh))
    n = int(rh[BINARY_HEADER])
    head = json.loads(rb[:n])
    out = head["outputs"][0]
    assert "data" not in out and out["parameters"]["binary_data_size"] == 32 and len(rb) == n + 32, head
    body, headers = c.build_request([image_input(solid((0, 1, 0)), False)], binary_output=False)
    status, rh, rb = c.infer_raw("colour_classifier", body, headers)
    assert status == 200 and rh["Content-Type"].startswith("application/json"), dict(rh)
    assert rh.get(BINARY_HEADER) is None and len(json.loads(rb)["outputs"][0]["data"]) == 8
    ok("binary reply: JSON header of %d bytes + 32 raw bytes, octet-stream; JSON reply is "
       "application/json" % n)


def check_errors(c):
    img = solid((1, 0, 0))
    cc = "colour_classifier"
    msg = expect_error(404, "not_found", "no model 'nope'", c.infer, "nope", [image_input(img, False)])
    assert "colour_classifier, dot_density, scratch_segmenter" in msg, msg
    expect_error(404, "not_found", "no model 'nope'", c.get_model_metadata, "nope")
    expect_error(404, "not_found", "has no version '2'", c.get_model_metadata, cc, "2")
    expect_error(404, "not_found", "has no version '2'", c.infer, cc, [image_input(img, False)],
                 version="2")
    # dtypes the FP32 model does not take
    for dt in ("FP64", "INT32", "INT64", "UINT8"):
        i = InferInput("image", img.shape, dt).set_data_from_numpy(img.astype(DTYPES[dt]), False)
        expect_error(400, "bad_request", "input 'image' of model 'colour_classifier' is FP32; the "
                     "request gives %s" % dt, c.infer, cc, [i])
    i = InferInput("image", img.shape, "BYTES").set_json(["a"] * img.size)
    expect_error(400, "bad_request", "datatype BYTES is not supported", c.infer, cc, [i])
    i = InferInput("image", img.shape, "float32").set_json(img.flatten().tolist())
    expect_error(400, "bad_request", "unknown datatype 'float32'", c.infer, cc, [i])
    # shapes and data
    i = InferInput("image", [3, 8, 8], "FP32").set_json(img.flatten().tolist())
    expect_error(400, "bad_request", "has 4 dimensions [-1,3,-1,-1] (-1: any size); the "
                 "request's shape [3,8,8] has 3", c.infer, cc, [i])
    i = InferInput("image", [1, 4, 8, 8], "FP32").set_json([0.5] * 256)
    expect_error(400, "bad_request", "dimension 1 of the request's shape [1,4,8,8] is 4 where "
                 "the model's shape [-1,3,-1,-1] needs 3", c.infer, cc, [i])
    i = InferInput("image", img.shape, "FP32").set_json(img.flatten().tolist()[:-1])
    expect_error(400, "bad_request", "\"data\" has 191 element(s); shape [1,3,8,8] needs 192",
                 c.infer, cc, [i])
    i = InferInput("image", img.shape, "FP32").set_json(img.flatten().tolist()[:-1] + ["x"])
    expect_error(400, "bad_request", "data[191] is a string; FP32 wants a number", c.infer, cc, [i])
    i = InferInput("image", img.shape, "FP32").set_json([1e39] + img.flatten().tolist()[1:])
    expect_error(400, "bad_request", "data[0] = 1e+39 is out of range for FP32", c.infer, cc, [i])
    i = InferInput("image", [1, 3, 0, 8], "FP32").set_json([])
    expect_error(400, "bad_request", "input 'image': shape [1,3,0,8] has no elements", c.infer, cc, [i])
    i = InferInput("image", [1, -3, 8, 8], "FP32").set_json([])
    expect_error(400, "bad_request", "shape[1] must be an integer >= 0", c.infer, cc, [i])
    # names
    expect_error(400, "bad_request", "model 'colour_classifier' has no input 'img'; its inputs "
                 "are: image", c.infer, cc, [image_input(img, False, "img")])
    expect_error(400, "bad_request", "input 'image' of model 'colour_classifier' is missing",
                 c.infer, cc, [])
    expect_error(400, "bad_request", "input 'image' is given twice", c.infer, cc,
                 [image_input(img, False), image_input(img, True)])
    expect_error(400, "bad_request", "model 'colour_classifier' has no output 'labels'; its "
                 "outputs are: probabilities", c.infer, cc, [image_input(img, False)],
                 outputs=[InferRequestedOutput("labels")])
    b = json.dumps({"inputs": [image_input(img, False).tensor()],
                    "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}]})
    status, _, rb = c.infer_raw(cc, b.encode(), {"Content-Type": "application/json"})
    assert status == 400 and "the classification extension is not supported" in \
        KServeError(status, rb).message, rb
    # binary framing
    raw = img.astype(np.float32).tobytes()
    expect_error(400, "bad_request", "binary_data_size is 764 bytes; shape [1,3,8,8] of FP32 "
                 "needs 768", c.infer, cc, [InferInput("image", img.shape, "FP32").set_raw(raw[:-4])])
    body, headers = c.build_request([InferInput("image", img.shape, "FP32").set_raw(raw)])
    for extra, needle in ((b"\0\0\0\0", "binary_data_size add up to 768 byte(s) but the body has 772"),
                          (None, "binary_data_size 768 goes past the end of the body (764 byte(s)")):
        b = body + extra if extra else body[:-4]
        status, _, rb = c.infer_raw(cc, b, headers)
        e = KServeError(status, rb)
        assert status == 400 and needle in e.message, (status, e.message)
    h = dict(headers, **{BINARY_HEADER: str(len(body) + 1)})
    status, _, rb = c.infer_raw(cc, body, h)
    assert status == 400 and "it must be the byte count of the JSON" in KServeError(status, rb).message
    h = {k: v for k, v in headers.items() if k != BINARY_HEADER}
    status, _, rb = c.infer_raw(cc, body[:int(headers[BINARY_HEADER])], h)
    assert status == 400 and "has binary_data_size but the request has no " + BINARY_HEADER \
        in KServeError(status, rb).message, rb
    # bodies that are not requests
    for b, needle in ((b"{\"inputs\": [", "the request is not valid JSON"),
                      (b"[1, 2]", "the request must be a JSON object"),
                      (b"", "the request has no body"),
                      (b"{\"inputs\": 3}", "the request needs \"inputs\": an array"),
                      (b"{\"id\": 7, \"inputs\": []}", "\"id\" must be a string")):
        status, _, rb = c.infer_raw(cc, b, {"Content-Type": "application/json"})
        e = KServeError(status, rb)
        assert status == 400 and e.code == "bad_request" and needle in e.message, (b, status, e.message)
    ok("errors: unknown model/version 404; dtype, BYTES, rank, dims, data count, element type, "
       "range, names, outputs, binary framing and bad JSON 400, each with its message")


# ---- every datatype ------------------------------------------------------------------

# dtypes.onnx: one input per datatype ("in_UINT8", ...; shape [-1]) with an
# Identity to "out_UINT8", ..., and "fixed": FP32 [2,3] -> "fixed_out".
DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64"]


def make_models(folder):
    import onnx
    from onnx import TensorProto, helper
    elem = {"BOOL": TensorProto.BOOL, "UINT8": TensorProto.UINT8, "UINT16": TensorProto.UINT16,
            "UINT32": TensorProto.UINT32, "UINT64": TensorProto.UINT64, "INT8": TensorProto.INT8,
            "INT16": TensorProto.INT16, "INT32": TensorProto.INT32, "INT64": TensorProto.INT64,
            "FP16": TensorProto.FLOAT16, "FP32": TensorProto.FLOAT, "FP64": TensorProto.DOUBLE}
    ins = [helper.make_tensor_value_info("in_" + d, elem[d], ["n_" + d]) for d in DATATYPES]
    outs = [helper.make_tensor_value_info("out_" + d, elem[d], ["n_" + d]) for d in DATATYPES]
    nodes = [helper.make_node("Identity", ["in_" + d], ["out_" + d]) for d in DATATYPES]
    ins.append(helper.make_tensor_value_info("fixed", TensorProto.FLOAT, [2, 3]))
    outs.append(helper.make_tensor_value_info("fixed_out", TensorProto.FLOAT, [2, 3]))
    nodes.append(helper.make_node("Identity", ["fixed"], ["fixed_out"]))
    graph = helper.make_graph(nodes, "dtypes", ins, outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="inferd-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(folder, "dtypes.onnx"))


def dtype_values(d):
    """Values that reach each end of the datatype's range."""
    dt = DTYPES[d]
    if d == "BOOL":
        return np.array([True, False, True])
    if d.startswith("FP"):
        info = np.finfo(dt)
        return np.array([0.0, -1.5, 0.1, float(info.max), float(info.tiny)], dtype=dt)
    info = np.iinfo(dt)
    hi = min(int(info.max), 2 ** 63 - 1)  # JSON integers stop at int64
    return np.array([info.min, 0, 1, hi], dtype=dt)


def dtype_inputs(binary, override=None):
    inputs = []
    for d in DATATYPES:
        v = dtype_values(d)
        i = InferInput("in_" + d, v.shape, d).set_data_from_numpy(v, binary or d == "FP16")
        inputs.append(override(d, i) if override else i)
    fixed = np.arange(6, dtype=np.float32).reshape(2, 3)
    inputs.append(InferInput("fixed", [2, 3], "FP32").set_data_from_numpy(fixed, binary))
    return inputs


def check_dtypes(c):
    meta = c.get_model_metadata("dtypes")
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == \
        [("in_" + d, d, [-1]) for d in DATATYPES] + [("fixed", "FP32", [2, 3])], meta
    json_outs = [InferRequestedOutput("out_" + d, d == "FP16") for d in DATATYPES] + \
        [InferRequestedOutput("fixed_out", False)]
    for binary in (False, True):
        outs = None if binary else json_outs
        res = c.infer("dtypes", dtype_inputs(binary), outputs=outs, binary_output=binary or None)
        for d in DATATYPES:
            got, want = res.as_numpy("out_" + d), dtype_values(d)
            assert got.dtype == DTYPES[d], (d, got.dtype)
            assert np.array_equal(got, want), (d, binary, got, want)
        assert np.array_equal(res.as_numpy("fixed_out"), np.arange(6).reshape(2, 3))
        # UINT64 above int64 only travels as binary.
    big = np.array([2 ** 64 - 1, 2 ** 63], dtype=np.uint64)
    res = c.infer("dtypes", dtype_inputs(True, lambda d, i: InferInput(
        "in_UINT64", big.shape, "UINT64").set_data_from_numpy(big, True) if d == "UINT64" else i),
        outputs=[InferRequestedOutput("out_UINT64", True)])
    assert np.array_equal(res.as_numpy("out_UINT64"), big), res.as_numpy("out_UINT64")
    ok("every datatype (%s) round-trips as JSON and as binary, ranges' ends included"
       % ", ".join(DATATYPES))

    def with_json(name, data, shape=None):
        def override(d, i):
            if "in_" + d != name:
                return i
            return InferInput(name, shape or [len(data)], d).set_json(data)
        return dtype_inputs(False, override)

    for d, bad, needle in (("UINT8", [1, 300], "data[1] = 300 is out of range for UINT8 (0..255)"),
                           ("INT8", [-129], "data[0] = -129 is out of range for INT8 (-128..127)"),
                           ("UINT16", [65536], "out of range for UINT16 (0..65535)"),
                           ("INT16", [0, 0, 40000], "data[2] = 40000 is out of range for INT16"),
                           ("UINT32", [-1], "data[0] = -1 is out of range for UINT32"),
                           ("INT32", [2 ** 31], "out of range for INT32"),
                           ("UINT64", [-5], "data[0] = -5 is out of range for UINT64"),
                           ("INT64", [1.5], "data[0] is a double; INT64 wants an integer"),
                           ("BOOL", [True, 2], "data[1] is an int; BOOL wants true or false"),
                           ("FP64", [None], "data[0] is a null; FP64 wants a number")):
        expect_error(400, "bad_request", "input 'in_%s': %s" % (d, needle) if "data[" in needle
                     else needle, c.infer, "dtypes", with_json("in_" + d, bad))
    expect_error(400, "bad_request", "input 'in_FP16' is FP16, which JSON cannot carry",
                 c.infer, "dtypes", with_json("in_FP16", [1.0]))
    expect_error(400, "bad_request", "output 'out_FP16' is FP16, which JSON cannot carry",
                 c.infer, "dtypes", dtype_inputs(False), binary_output=False)
    bad_bool = np.array([0, 1, 7], dtype=np.uint8).tobytes()
    expect_error(400, "bad_request", "input 'in_BOOL': BOOL element 2 is byte 7", c.infer, "dtypes",
                 dtype_inputs(True, lambda d, i: InferInput("in_BOOL", [3], "BOOL").set_raw(bad_bool)
                              if d == "BOOL" else i))
    expect_error(400, "bad_request", "input 'fixed' of model 'dtypes': dimension 1 of the "
                 "request's shape [2,4] is 4 where the model's shape [2,3] needs 3",
                 c.infer, "dtypes", dtype_inputs(False, None)[:-1] +
                 [InferInput("fixed", [2, 4], "FP32").set_json([0.0] * 8)])
    ok("dtypes: range, element type, FP16-in-JSON, BOOL byte and static-dimension errors")


def main(argv):
    if argv[1] == "make-models":
        make_models(argv[2])
        return 0
    c = KServeClient(argv[2])
    if argv[1] == "default":
        models = argv[3]
        check_metadata(c, models)
        check_colours(c, models)
        check_dots(c)
        check_scratches(c)
        check_binary_reply(c)
        check_concurrency(c, models)
        check_errors(c)
    elif argv[1] == "dtypes":
        check_dtypes(c)
    else:
        raise SystemExit("usage: kserve_checks.py make-models DIR | default BASE MODELS | dtypes BASE")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
