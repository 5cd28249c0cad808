#!/usr/bin/env python3
"""Checks an OCR pipeline served as an estimator: text detection (db_text)
-> text_boxes -> object_crop (one part per line) -> recognition
(ctc_digits) -> ctc_decode -> object_join, on pictures made here with known
lines of digits.

    ocr_check.py BASE ESTIMATOR

Makes 8 pictures of 320x200, white, with 1 to 3 lines, each a strip of the
digits 0, 1 and 2 (each a 10 px band of its colour, models/families.py's
DIGIT_COLOURS, 6 px of black between them, 16 px high; no digit twice in a
row). Each alone: one object per line, in reading order, each with its line's
text exactly and a box over its line (IoU >= 0.8); then 16 at once (every
picture twice), each equal to alone; a picture with no text: count 0. Exits
1 at the first mismatch.
"""
import concurrent.futures
import io
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from picture_client import fail, post_to  # noqa: E402
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
from families import DIGIT_COLOURS  # noqa: E402

BASE, NAME = sys.argv[1], sys.argv[2]


def post(body):
    return post_to(BASE, NAME, body)
W, H, BAND, GAP, LINE = 320, 200, 10, 6, 16



def picture(rng):
    img = Image.new("RGB", (W, H), (255, 255, 255))
    lines, y = [], rng.randrange(10, 30)
    for _ in range(rng.randrange(1, 4)):
        text = rng.choice("012")
        for _ in range(rng.randrange(2, 9)):
            text += rng.choice([d for d in "012" if d != text[-1]])
        width = len(text) * (BAND + GAP) - GAP
        x = rng.randrange(10, W - width - 10)
        img.paste((0, 0, 0), (x, y, x + width, y + LINE))
        for i, ch in enumerate(text):
            colour = tuple(round(255 * c) for c in DIGIT_COLOURS[int(ch)])
            img.paste(colour, (x + i * (BAND + GAP), y, x + i * (BAND + GAP) + BAND, y + LINE))
        lines.append((text, (x, y, width, LINE)))
        y += LINE + rng.randrange(24, 40)
        if y + LINE > H - 10:
            break
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue(), lines



def iou(a, b):
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return 0.0 if w <= 0 or h <= 0 else w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


rng = random.Random(77)
pictures = [picture(rng) for _ in range(8)]
alone, worst, n_lines = [], 1.0, 0
for i, (body, lines) in enumerate(pictures):
    st, b = post(body)
    if st != 200:
        fail(f"picture {i}: {st} {b}")
    res = b["results"][0]
    joined = res.get("join", {})
    objs = joined.get("objects", [])
    if joined.get("count") != len(lines) or len(objs) != len(lines):
        fail(f"picture {i}: {len(objs)} objects for {len(lines)} lines {lines}: {res}")
    for k, (o, (text, box)) in enumerate(zip(objs, lines)):
        got = o.get("text", {}).get("text")
        v = iou((o["x"], o["y"], o["width"], o["height"]), box)
        if got != text or v < 0.8:
            fail(f"picture {i}: line {k} {text!r} at {box}: read {got!r} in "
                 f"{(o['x'], o['y'], o['width'], o['height'])} (IoU {v:.3f}); objects {objs}")
        worst = min(worst, v)
        n_lines += 1
    alone.append(res)
print(f"ok - {NAME}: 8 pictures, {n_lines} lines, every text read exactly in its box "
      f"(IoU >= {worst:.3f}), in reading order")

with concurrent.futures.ThreadPoolExecutor(16) as pool:
    got = list(pool.map(lambda k: post(pictures[k % 8][0]), range(16)))
for k, (st, b) in enumerate(got):
    if st != 200 or b["results"][0] != alone[k % 8]:
        fail(f"{NAME}: request {k} of 16 at once: {st} {b}, alone {alone[k % 8]}")
print(f"ok - {NAME}: 16 requests at once through the fan-out, each equal to alone")

blank = io.BytesIO()
Image.new("RGB", (W, H), (255, 255, 255)).save(blank, "PNG")
st, b = post(blank.getvalue())
if st != 200 or b["results"][0].get("join") != {"count": 0, "objects": []}:
    fail(f"a picture with no text: {st} {b}")
print(f"ok - {NAME}: a picture with no text: the join answers count 0 for its frame")
