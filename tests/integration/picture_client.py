"""What the estimator families' checkers share (stdlib and PIL only): the
"FAIL: ..." exit, posting a PNG to a named estimator, a PIL image as PNG
bytes.

    from picture_client import fail, png, post_to
"""
import io
import json
import sys
import urllib.error
import urllib.request


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def png(img):
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def post_to(base, name, body):
    """POST body (PNG bytes) to /v1/estimators/NAME: (status, JSON body)."""
    req = urllib.request.Request(f"{base}/v1/estimators/{name}", data=body,
                                 headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
