#!/usr/bin/env python3
"""Checks a "text" estimator serving models/families.py's db_text on
pictures of text-like lines made here with a known truth.

    text_check.py BASE ESTIMATOR

Makes 10 pictures of 300x210, white, with 1 to 4 lines, each a row of dark
glyph blocks (6 to 12 px wide, 2 px apart) 16 to 22 px high, lines at least
14 px apart; and one picture with a solid line turned by 15 degrees. Each
alone: as many texts as lines, in reading order (top to bottom), each line's
box matched with IoU >= 0.85 (axis-aligned bounds); the turned line's four
corners each within 4 px of the truth's (the model's square erosion shrinks a
turned line ~0.5 px more than a level one). Then all at once, each equal to
alone. Exits 1 at the first mismatch.
"""
import concurrent.futures
import os
import math
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from picture_client import fail, png, post_to  # noqa: E402
from PIL import Image, ImageDraw

BASE, NAME = sys.argv[1], sys.argv[2]


def post(body):
    return post_to(BASE, NAME, body)
W, H = 300, 210




def lines_picture(rng):
    img = Image.new("RGB", (W, H), (250, 250, 250))
    d = ImageDraw.Draw(img)
    lines, y = [], rng.randrange(8, 20)
    for _ in range(rng.randrange(1, 5)):
        h = rng.randrange(16, 23)
        if y + h > H - 8:
            break
        x0 = rng.randrange(8, 60)
        x = x0
        end = rng.randrange(x0 + 50, W - 8)
        while x < end:
            g = rng.randrange(6, 13)
            d.rectangle([x, y, min(x + g, end) - 1, y + h - 1], fill=(25, 25, 25))
            x += g + 2
        lines.append((x0, y, min(x, end + 2) - 2 - x0, h))
        y += h + rng.randrange(14, 30)
    # the truth: each line's extent (the last block may end before `end`)
    return img, lines


def turned_picture():
    img = Image.new("RGB", (W, H), (250, 250, 250))
    cx, cy, lw, lh, a = 150, 105, 180, 24, math.radians(15)
    pts = []
    for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        u, v = su * lw / 2, sv * lh / 2
        pts.append((cx + u * math.cos(a) - v * math.sin(a), cy + u * math.sin(a) + v * math.cos(a)))
    ImageDraw.Draw(img).polygon(pts, fill=(25, 25, 25))
    return img, pts



def iou(a, b):
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    w = min(ax0 + aw, bx0 + bw) - max(ax0, bx0)
    h = min(ay0 + ah, by0 + bh) - max(ay0, by0)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / (aw * ah + bw * bh - w * h)


def measured_truth(img, line):
    """The line's dark pixels' exact extent (the drawing's last block may be cut)."""
    x0, y0, w, h = line
    px = img.load()
    xs = [x for x in range(x0, min(W, x0 + w + 20)) for y in (y0 + h // 2,) if px[x, y][0] < 128]
    return (min(xs), y0, max(xs) + 1 - min(xs), h)


rng = random.Random(4242)
pictures = [lines_picture(rng) for _ in range(10)]
bodies = [png(img) for img, _ in pictures]
alone, worst = [], 1.0
for i, (img, lines) in enumerate(pictures):
    st, b = post(bodies[i])
    if st != 200:
        fail(f"picture {i}: {st} {b}")
    res = b["results"][0]
    texts = res["texts"]
    truth = [measured_truth(img, ln) for ln in lines]
    if res["count"] != len(truth) or len(texts) != len(truth):
        fail(f"picture {i}: {len(texts)} texts for {len(truth)} lines: {res}, truth {truth}")
    for k, (t, tr) in enumerate(zip(texts, truth)):  # reading order: top to bottom
        got = (t["x"], t["y"], t["width"], t["height"])
        v = iou(got, tr)
        if v < 0.85:
            fail(f"picture {i}: text {k} {got} against line {tr}: IoU {v:.3f}; texts {texts}")
        worst = min(worst, v)
    alone.append(res)
print(f"ok - {NAME}: 10 pictures, {sum(len(l) for _, l in pictures)} lines, each found in "
      f"reading order, IoU >= {worst:.3f}")

img, corners = turned_picture()
st, b = post(png(img))
if st != 200 or b["results"][0]["count"] != 1:
    fail(f"the turned line: {st} {b}")
pts = [(p["x"], p["y"]) for p in b["results"][0]["texts"][0]["points"]]
for cx, cy in corners:
    near = min(math.hypot(cx - x, cy - y) for x, y in pts)
    if near > 4:
        fail(f"the turned line: corner ({cx:.1f}, {cy:.1f}) is {near:.1f} px from {pts}")
first = pts[0]
if first != min(pts, key=lambda p: p[0] + p[1]):
    fail(f"the turned line: the points do not start at the top-left: {pts}")
print(f"ok - {NAME}: a line turned by 15 degrees: four corners within 4 px, top-left first")

with concurrent.futures.ThreadPoolExecutor(10) as pool:
    got = list(pool.map(post, bodies))
for i, (st, b) in enumerate(got):
    if st != 200 or b["results"][0] != alone[i]:
        fail(f"{NAME}: picture {i} at once: {st} {b}, alone {alone[i]}")
print(f"ok - {NAME}: 10 pictures at once, each equal to alone")
