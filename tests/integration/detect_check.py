#!/usr/bin/env python3
"""Checks a "detect" estimator serving models/families.py's squares
detectors against pictures made here with a known truth.

    detect_check.py BASE ESTIMATOR

Makes 12 pictures of 192x128 (dark, a little noise) with 0 to 3 squares of
48x48, red or green, at random places (a fixed seed), so that the model's
128x128 letterboxed input sees 32x32 squares. Every picture alone: as many
objects as squares, each square matched by one box of its label with IoU >=
0.9 (in the picture's pixels: the letterbox mapped back). Then 16 at once:
each answer equal to its picture's alone. Exits 1 at the first mismatch;
prints "ok - ..." lines.
"""
import concurrent.futures
import io
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from picture_client import fail, post_to  # noqa: E402
from PIL import Image

BASE, NAME = sys.argv[1], sys.argv[2]


def post(body):
    return post_to(BASE, NAME, body)
W, H, S = 192, 128, 48
COLOURS = {"red": (230, 20, 20), "green": (20, 210, 30)}



def picture(rng):
    """A PNG and its squares [(label, x, y)], at least 16 px apart (the model's
    window over two squares closer than that scores like one square)."""
    img = Image.new("RGB", (W, H))
    px = img.load()
    for y in range(H):
        for x in range(W):
            v = rng.randrange(0, 24)
            px[x, y] = (v, v, v)
    squares = []
    for _ in range(rng.randrange(0, 4)):
        for _try in range(100):
            x, y = rng.randrange(0, W - S + 1), rng.randrange(0, H - S + 1)
            if all(abs(x - a) >= S + 16 or abs(y - b) >= S + 16 for _, a, b in squares):
                break
        else:
            continue
        label = rng.choice(sorted(COLOURS))
        img.paste(COLOURS[label], (x, y, x + S, y + S))
        squares.append((label, x, y))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue(), squares



def iou(a, b):
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    w, h = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter)


rng = random.Random(1607)
pictures = [picture(rng) for _ in range(12)]
alone, worst, total = [], 1.0, 0
for i, (body, squares) in enumerate(pictures):
    st, b = post(body)
    if st != 200:
        fail(f"picture {i}: {st} {b}")
    res = b["results"][0]
    objs = res["objects"]
    if res["count"] != len(squares) or len(objs) != len(squares):
        fail(f"picture {i}: {len(objs)} objects for {len(squares)} squares: {res}, truth {squares}")
    for label, x, y in squares:
        truth = (x, y, x + S, y + S)
        best = max(((iou(truth, (o["x"], o["y"], o["x"] + o["width"], o["y"] + o["height"])), k)
                    for k, o in enumerate(objs) if o.get("label") == label), default=(0.0, None))
        best = (best[0], objs[best[1]] if best[1] is not None else None)
        if best[0] < 0.9:
            fail(f"picture {i}: the {label} square at {truth} best matches {best[1]} "
                 f"(IoU {best[0]:.3f}); objects {objs}")
        worst = min(worst, best[0])
        total += 1
    alone.append(res)
print(f"ok - {NAME}: 12 pictures, {total} squares, every one found with its label, "
      f"IoU >= {worst:.3f}, no extra boxes")

with concurrent.futures.ThreadPoolExecutor(16) as pool:
    got = list(pool.map(lambda i: post(pictures[i % 12][0]), range(48)))
for i, (st, b) in enumerate(got):
    if st != 200 or b["results"][0] != alone[i % 12]:
        fail(f"{NAME}: request {i} of 48 (16 at once): {st} {b}, alone {alone[i % 12]}")
print(f"ok - {NAME}: 48 requests 16 at once, each equal to its picture alone")
