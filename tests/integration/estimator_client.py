"""What the estimation API's test clients share (stdlib only): the command
line (BASE DATA_DIR MODE ...), the ground truth of scripts/gen_images.py,
reading its images, posting bodies and building multipart ones, and the
"ok - ..." / "FAIL: ..." lines.

    from estimator_client import *   # BASE, DATA, MODE, TRUTH, fail, ok, read, mime, post, multipart
"""
import json
import os
import sys
import urllib.error
import urllib.request
import uuid

__all__ = ["BASE", "DATA", "MODE", "TRUTH", "fail", "ok", "read", "mime", "post", "multipart"]

BASE, DATA, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
TRUTH = json.load(open(os.path.join(DATA, "truth.json")))


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print("ok - " + msg)


def read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def mime(name):
    return "image/png" if name.endswith(".png") else "image/jpeg"


def post(path, body, ctype, timeout=60):
    """(status, JSON answer) of POST BASE+path."""
    req = urllib.request.Request(BASE + path, data=body, method="POST",
                                 headers={"Content-Type": ctype} if ctype else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def multipart(files, fields=None):
    """(body, Content-Type) of a multipart/form-data request: fields, then
    each (file name, bytes) as part image0, image1, ..."""
    boundary = uuid.uuid4().hex
    out = b""
    for k, v in (fields or {}).items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").encode()
    for i, (name, data) in enumerate(files):
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image{i}\"; "
                f"filename=\"{name}\"\r\nContent-Type: {mime(name)}\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, "multipart/form-data; boundary=" + boundary
