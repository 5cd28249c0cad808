#!/usr/bin/env python3
"""Checks a "ctc" estimator serving models/families.py's ctc_digits on
strips made here with known text.

    ctc_check.py BASE ESTIMATOR

Makes 16 strips of 8 px high: each digit a 4 px band of its colour
(families.DIGIT_COLOURS), 2 px of black between digits, random strings of 1
to 12 digits with repeats ("1123": a blank between equal digits keeps both),
and sends each alone: the text must be exact, its confidence above 0.9;
then all 16 at once: each equal to alone. Exits 1 at the first mismatch.
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


def strip(text):
    img = Image.new("RGB", (6 * len(text), 8))
    for i, ch in enumerate(text):
        colour = tuple(round(255 * c) for c in DIGIT_COLOURS[int(ch)])
        img.paste(colour, (6 * i, 0, 6 * i + 4, 8))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()



rng = random.Random(2026)
texts = ["1123", "0", "9990", "5"] + \
    ["".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 13))) for _ in range(12)]
alone = []
for t in texts:
    st, b = post(strip(t))
    if st != 200:
        fail(f"{t}: {st} {b}")
    r = b["results"][0]
    if r["text"] != t or not r["confidence"] > 0.9:
        fail(f"strip {t!r} read as {r}")
    alone.append(r)
print(f"ok - {NAME}: {len(texts)} strips read exactly (repeats kept by the blank), "
      f"confidence >= {min(r['confidence'] for r in alone):.3f}")
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    got = list(pool.map(lambda i: post(strip(texts[i])), range(len(texts))))
for i, (st, b) in enumerate(got):
    if st != 200 or b["results"][0] != alone[i]:
        fail(f"{NAME}: strip {texts[i]!r} at once: {st} {b}, alone {alone[i]}")
print(f"ok - {NAME}: {len(texts)} strips at once, each equal to alone")
