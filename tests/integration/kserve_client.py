"""A small KServe v2 / Triton HTTP client, the way tritonclient.http speaks it.

Standard library (urllib, json) plus numpy. It builds the same
requests tritonclient builds: inputs as JSON "data" or as binary tensor data
(parameters.binary_data_size, the Inference-Header-Content-Length header and
the raw little-endian bytes after the JSON), outputs asked for by name with
parameters.binary_data, or all of them with the request's
parameters.binary_data_output; and it reads both kinds of reply.

    c = KServeClient("http://127.0.0.1:8080")
    i = InferInput("image", [1, 3, 8, 8], "FP32")
    i.set_data_from_numpy(arr, binary_data=True)
    res = c.infer("colour_classifier", [i], outputs=[InferRequestedOutput("probabilities")])
    res.as_numpy("probabilities")
"""

import json
import urllib.error
import urllib.request

import numpy as np

BINARY_HEADER = "Inference-Header-Content-Length"

# KServe datatype <-> numpy dtype (little-endian, as the protocol sends them).
DTYPES = {
    "BOOL": np.dtype("bool"), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}


def np_to_datatype(dtype):
    for name, dt in DTYPES.items():
        if np.dtype(dtype) == dt:
            return name
    raise ValueError("no KServe datatype for %s" % dtype)


class KServeError(Exception):
    """A reply with a status >= 400: status, the error code and message."""

    def __init__(self, status, body):
        self.status = status
        self.body = body
        try:
            err = json.loads(body)["error"]
            self.code, self.message = err["code"], err["message"]
        except (ValueError, KeyError, TypeError):
            self.code, self.message = None, body.decode("utf-8", "replace")
        super().__init__("HTTP %d %s: %s" % (status, self.code, self.message))


class InferInput:
    def __init__(self, name, shape, datatype):
        self.name, self.shape, self.datatype = name, list(shape), datatype
        self.data = None    # JSON data (a list), or
        self.raw = None     # binary data (bytes)

    def set_data_from_numpy(self, arr, binary_data=True):
        arr = np.asarray(arr)
        if np_to_datatype(arr.dtype) != self.datatype:
            raise ValueError("%s: array is %s, input is %s" % (self.name, arr.dtype, self.datatype))
        if list(arr.shape) != self.shape:
            raise ValueError("%s: array shape %s, input shape %s" % (self.name, arr.shape, self.shape))
        if binary_data:
            self.raw, self.data = np.ascontiguousarray(arr, DTYPES[self.datatype]).tobytes(), None
        else:
            self.data, self.raw = arr.flatten().tolist(), None
        return self

    def set_raw(self, raw):
        """Binary data as given (tests send wrong sizes on purpose)."""
        self.raw, self.data = bytes(raw), None
        return self

    def set_json(self, data):
        """JSON data as given (nested or flat; tests send wrong ones)."""
        self.data, self.raw = data, None
        return self

    def tensor(self):
        t = {"name": self.name, "shape": self.shape, "datatype": self.datatype}
        if self.raw is not None:
            t["parameters"] = {"binary_data_size": len(self.raw)}
        else:
            t["data"] = self.data
        return t


class InferRequestedOutput:
    def __init__(self, name, binary_data=True):
        self.name, self.binary_data = name, binary_data

    def tensor(self):
        return {"name": self.name, "parameters": {"binary_data": self.binary_data}}


class InferResult:
    def __init__(self, response, binary):
        """response: the JSON part; binary: the bytes after it."""
        self.response = response
        self._arrays = {}
        at = 0
        for out in response.get("outputs", []):
            dt = DTYPES[out["datatype"]]
            size = out.get("parameters", {}).get("binary_data_size")
            if size is not None:
                arr = np.frombuffer(binary[at:at + size], dtype=dt)
                if len(arr) * dt.itemsize != size:
                    raise ValueError("%s: %d binary bytes, reply has %d" % (out["name"], size, len(binary) - at))
                at += size
            else:
                arr = np.array(out["data"], dtype=dt)
            self._arrays[out["name"]] = arr.reshape(out["shape"])
        if at != len(binary):
            raise ValueError("reply has %d binary bytes, its outputs take %d" % (len(binary), at))

    def as_numpy(self, name):
        return self._arrays.get(name)

    def get_response(self):
        return self.response


class KServeClient:
    def __init__(self, base, timeout=30):
        self.base, self.timeout = base.rstrip("/"), timeout

    def request(self, method, path, body=None, headers=None):
        """One request: (status, headers, body bytes); raises nothing on 4xx/5xx."""
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def get_json(self, path):
        status, _, body = self.request("GET", path)
        if status >= 400:
            raise KServeError(status, body)
        return json.loads(body)

    def is_server_live(self):
        return self.get_json("/v2/health/live").get("live") is True

    def is_server_ready(self):
        return self.request("GET", "/v2/health/ready")[0] == 200

    def get_server_metadata(self):
        return self.get_json("/v2")

    def get_model_metadata(self, model, version=""):
        return self.get_json(self._model_path(model, version))

    def is_model_ready(self, model, version=""):
        return self.request("GET", self._model_path(model, version) + "/ready")[0] == 200

    def get_model_repository_index(self):
        status, _, body = self.request("POST", "/v2/repository/index", b"")
        if status >= 400:
            raise KServeError(status, body)
        return json.loads(body)

    @staticmethod
    def _model_path(model, version):
        return "/v2/models/%s%s" % (model, "/versions/%s" % version if version else "")

    @staticmethod
    def build_request(inputs, outputs=None, request_id=None, binary_output=None, parameters=None):
        """(body, headers) as tritonclient builds them. binary_output applies
        when outputs is None (each InferRequestedOutput says its own)."""
        req = {}
        if request_id is not None:
            req["id"] = request_id
        params = dict(parameters or {})
        if outputs is None:
            # As tritonclient: no outputs named means all of them, binary
            # unless asked otherwise.
            params["binary_data_output"] = True if binary_output is None else binary_output
        if params:
            req["parameters"] = params
        req["inputs"] = [i.tensor() for i in inputs]
        if outputs is not None:
            req["outputs"] = [o.tensor() for o in outputs]
        head = json.dumps(req).encode()
        raws = [i.raw for i in inputs if i.raw is not None]
        headers = {"Content-Type": "application/json"}
        if not raws:
            return head, headers
        headers = {"Content-Type": "application/octet-stream", BINARY_HEADER: str(len(head))}
        return head + b"".join(raws), headers

    def infer_raw(self, model, body, headers, version=""):
        """Posts a prepared body: (status, headers, body bytes)."""
        return self.request("POST", self._model_path(model, version) + "/infer", body, headers)

    def infer(self, model, inputs, outputs=None, request_id=None, binary_output=None,
              version="", parameters=None):
        body, headers = self.build_request(inputs, outputs, request_id, binary_output, parameters)
        status, rh, rbody = self.infer_raw(model, body, headers, version)
        if status >= 400:
            raise KServeError(status, rbody)
        return parse_response(rh, rbody)


def parse_response(headers, body):
    """An InferResult from a reply's headers and body (JSON, or JSON + binary)."""
    n = headers.get(BINARY_HEADER)
    if n is None:
        if not headers.get("Content-Type", "").startswith("application/json"):
            raise ValueError("JSON reply with Content-Type %r" % headers.get("Content-Type"))
        return InferResult(json.loads(body), b"")
    if headers.get("Content-Type") != "application/octet-stream":
        raise ValueError("binary reply with Content-Type %r" % headers.get("Content-Type"))
    n = int(n)
    return InferResult(json.loads(body[:n]), body[n:])


__all__ = ["KServeClient", "KServeError", "InferInput", "InferRequestedOutput", "InferResult",
           "parse_response", "np_to_datatype", "DTYPES", "BINARY_HEADER"]
