#!/usr/bin/python3
"""Writes the synthetic test images of inferd's default models, with their truth.

    /usr/bin/python3 scripts/gen_images.py --out DIR [--seed S]

Deterministic: the same seed gives the same bytes. Writes PNG (lossless) and a
few JPEG (quality 95) images, and DIR/truth.json:

  {"seed": S, "coordinates": "...",
   "dots":      [{"file", "width", "height", "count", "dots": [{"x", "y", "r"}, ...]}],
   "colours":   [{"file", "width", "height", "label", "fraction"}],
   "scratches": [{"file", "width", "height", "count", "boxes": [[x0, y0, x1, y1], ...]}]}

Coordinates are pixel indices: pixel (column x, row y) has its centre at
(x, y); boxes are inclusive. Needs numpy and PIL (Debian's /usr/bin/python3).

  dots       bright anti-aliased discs, 4-10 px across, brightness 0.85-1.0, on
             a 0.08 background with Gaussian noise (sigma 0.02); centres at
             least 24 px apart and 16 px from the border (the dot_density
             model's working range).
  colours    a dominant colour (a corner of the RGB cube, shade jittered by up
             to 0.12 a channel) covering >= 55% of the image, with rectangles
             and ellipses of two other colours, and mild noise.
  scratches  a bright surface (~0.8, gentle lighting gradient, noise sigma
             0.02) with 0-5 dark (0.2-0.35) straight or gently curved
             scratches, 1-3 px wide, 20-120 px long, at least 12 px apart
             and 6 px from the border.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "black": (0, 0, 0), "white": (1, 1, 1), "red": (1, 0, 0), "green": (0, 1, 0),
    "blue": (0, 0, 1), "yellow": (1, 1, 0), "cyan": (0, 1, 1), "magenta": (1, 0, 1),
}
LABELS = ["black", "white", "red", "green", "blue", "yellow", "cyan", "magenta"]

# (width, height, dot count, format)
DOT_IMAGES = [
    (64, 64, 0, "png"),
    (64, 64, 1, "png"),
    (97, 83, 1, "jpg"),
    (333, 257, 5, "png"),
    (160, 120, 5, "jpg"),
    (256, 192, 20, "png"),
    (301, 211, 20, "jpg"),
    (400, 300, 50, "png"),
    (411, 333, 50, "jpg"),
    (480, 360, 100, "png"),
    (560, 420, 150, "png"),
    (640, 480, 200, "png"),
]
DOT_SPACING = 24.0
DOT_BORDER = 16.0
DOT_BACKGROUND = 0.08
NOISE = 0.02

COLOUR_SIZE = (96, 80)

# (width, height, scratch count, format)
SCRATCH_IMAGES = [
    (128, 128, 0, "png"),
    (128, 128, 1, "png"),
    (160, 120, 2, "jpg"),
    (200, 150, 2, "png"),
    (240, 180, 3, "png"),
    (256, 192, 3, "jpg"),
    (320, 240, 4, "png"),
    (300, 220, 4, "png"),
    (320, 240, 5, "png"),
    (311, 237, 5, "png"),
]
SCRATCH_SPACING = 12.0
SCRATCH_BORDER = 6.0
SUPER = 4  # supersampling factor for anti-aliased scratches


def to_image(rgb):
    """float HxWx3 in [0,1] -> PIL RGB image."""
    a = np.clip(np.rint(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(a, "RGB")


def save(img, out, name, fmt):
    path = os.path.join(out, name)
    if fmt == "jpg":
        img.save(path, "JPEG", quality=95)
    else:
        img.save(path, "PNG", optimize=False, compress_level=6)


def place_dots(rng, w, h, count):
    """Dart throwing: centres >= DOT_SPACING apart and DOT_BORDER from the border."""
    pts = np.zeros((0, 2))
    tries = 0
    lo = DOT_BORDER
    while len(pts) < count:
        tries += 1
        if tries > 200000:
            raise RuntimeError("cannot place %d dots in %dx%d" % (count, w, h))
        # a batch of candidates, accepted one by one
        cand = np.column_stack([rng.uniform(lo, w - 1 - lo, 64), rng.uniform(lo, h - 1 - lo, 64)])
        for c in cand:
            if len(pts) == 0 or np.min(np.sum((pts - c) ** 2, axis=1)) >= DOT_SPACING ** 2:
                pts = np.vstack([pts, c])
                if len(pts) == count:
                    break
    return pts


def make_dots(rng, w, h, count):
    img = np.repeat(np.full((h, w, 1), DOT_BACKGROUND), 3, axis=2) + rng.normal(0.0, NOISE, (h, w, 3))
    pts = place_dots(rng, w, h, count)
    dots = []
    sub = (np.arange(4) + 0.5) / 4.0 - 0.5  # 4x4 sub-pixel samples per pixel
    for cx, cy in pts:
        r = rng.uniform(2.0, 5.0)
        bright = rng.uniform(0.85, 1.0)
        tint = bright - rng.uniform(0.0, 0.04, 3)  # a faint tint, still >= 0.81
        x0, x1 = int(math.floor(cx - r - 1)), int(math.ceil(cx + r + 1))
        y0, y1 = int(math.floor(cy - r - 1)), int(math.ceil(cy + r + 1))
        ys = np.arange(y0, y1 + 1)[:, None, None, None] + sub[None, None, :, None]
        xs = np.arange(x0, x1 + 1)[None, :, None, None] + sub[None, None, None, :]
        cov = (((xs - cx) ** 2 + (ys - cy) ** 2) <= r * r).mean(axis=(2, 3))[:, :, None]
        patch = img[y0:y1 + 1, x0:x1 + 1]
        img[y0:y1 + 1, x0:x1 + 1] = patch * (1 - cov) + tint[None, None, :] * cov
        dots.append({"x": round(float(cx), 2), "y": round(float(cy), 2), "r": round(float(r), 2)})
    return np.clip(img, 0, 1), dots


def jitter(rng, label):
    return np.clip(np.asarray(COLOURS[label], dtype=np.float64) + rng.uniform(-0.12, 0.12, 3), 0, 1)


def make_colour(rng, label):
    w, h = COLOUR_SIZE
    others = [l for l in LABELS if l != label]
    picks = rng.choice(len(others), 2, replace=False)
    second = [others[i] for i in picks]
    while True:
        labels = Image.new("L", (w, h), 0)  # 0: dominant, 1..2: the others
        draw = ImageDraw.Draw(labels)
        for k in range(int(rng.integers(2, 5))):
            idx = 1 + (k % 2)
            sw, sh = int(rng.integers(10, 40)), int(rng.integers(10, 36))
            x0, y0 = int(rng.integers(0, w - sw)), int(rng.integers(0, h - sh))
            if rng.uniform() < 0.5:
                draw.rectangle([x0, y0, x0 + sw, y0 + sh], fill=idx)
            else:
                draw.ellipse([x0, y0, x0 + sw, y0 + sh], fill=idx)
        lab = np.asarray(labels)
        fraction = float(np.mean(lab == 0))
        if 0.55 <= fraction <= 0.85:
            break
    shades = [jitter(rng, label), jitter(rng, second[0]), jitter(rng, second[1])]
    img = np.stack(shades)[lab] + rng.normal(0.0, NOISE, (h, w, 3))
    return np.clip(img, 0, 1), fraction


def bezier(p0, p1, p2, n):
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def make_scratch_path(rng, w, h, placed):
    """A polyline (points, width) that keeps its distance from the border and from placed."""
    for _ in range(2000):
        length = rng.uniform(20.0, 120.0)
        width = rng.uniform(1.0, 3.0)
        angle = rng.uniform(0.0, math.pi)
        d = np.array([math.cos(angle), math.sin(angle)])
        normal = np.array([-d[1], d[0]])
        margin = SCRATCH_BORDER + width / 2 + 1
        c = np.array([rng.uniform(margin, w - 1 - margin), rng.uniform(margin, h - 1 - margin)])
        p0, p2 = c - d * length / 2, c + d * length / 2
        bend = rng.uniform(-0.15, 0.15) * length if rng.uniform() < 0.6 else 0.0
        p1 = c + normal * bend
        pts = bezier(p0, p1, p2, max(8, int(length)))
        if (pts.min(axis=0) < margin).any() or pts[:, 0].max() > w - 1 - margin \
                or pts[:, 1].max() > h - 1 - margin:
            continue
        ok = True
        for other, ow in placed:
            dist = np.sqrt(((pts[:, None, :] - other[None, :, :]) ** 2).sum(axis=2)).min()
            if dist < SCRATCH_SPACING + (width + ow) / 2:
                ok = False
                break
        if ok:
            return pts, width
    raise RuntimeError("cannot place a scratch in %dx%d" % (w, h))


def make_scratches(rng, w, h, count):
    yy, xx = np.mgrid[0:h, 0:w]
    gx, gy = rng.uniform(-0.08, 0.08, 2)
    surface = 0.8 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    tint = rng.uniform(-0.02, 0.02, 3)
    img = surface[:, :, None] + tint[None, None, :]
    placed, boxes = [], []
    for _ in range(count):
        pts, width = make_scratch_path(rng, w, h, placed)
        placed.append((pts, width))
        canvas = Image.new("L", (w * SUPER, h * SUPER), 0)
        sp = [(float(x * SUPER + SUPER / 2), float(y * SUPER + SUPER / 2)) for x, y in pts]
        sw = max(1, int(round(width * SUPER)))
        ImageDraw.Draw(canvas).line(sp, fill=255, width=sw, joint="curve")
        for x, y in (sp[0], sp[-1]):  # round caps
            ImageDraw.Draw(canvas).ellipse([x - sw / 2, y - sw / 2, x + sw / 2, y + sw / 2],
                                           fill=255)
        cov = np.asarray(canvas.reduce(SUPER), dtype=np.float64) / 255.0
        dark = rng.uniform(0.2, 0.35)
        img = img * (1 - cov[:, :, None]) + dark * cov[:, :, None]
        ys, xs = np.nonzero(cov > 0.1)
        boxes.append([int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())])
    img = img + rng.normal(0.0, NOISE, (h, w, 3))
    return np.clip(img, 0, 1), boxes


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    truth = {
        "generator": "scripts/gen_images.py",
        "seed": args.seed,
        "coordinates": "pixel indices: pixel (x, y) has its centre at (x, y); boxes inclusive",
        "dots": [], "colours": [], "scratches": [],
    }
    for i, (w, h, count, fmt) in enumerate(DOT_IMAGES):
        rng = np.random.default_rng([args.seed, 1, i])
        img, dots = make_dots(rng, w, h, count)
        name = "dots_%02d_%d.%s" % (i, count, fmt)
        save(to_image(img), args.out, name, fmt)
        truth["dots"].append({"file": name, "width": w, "height": h, "count": count,
                              "dots": dots})
    for i in range(2 * len(LABELS)):
        label = LABELS[i % len(LABELS)]
        rng = np.random.default_rng([args.seed, 2, i])
        img, fraction = make_colour(rng, label)
        fmt = "jpg" if i in (3, 12) else "png"
        name = "colour_%02d_%s.%s" % (i, label, fmt)
        save(to_image(img), args.out, name, fmt)
        truth["colours"].append({"file": name, "width": COLOUR_SIZE[0], "height": COLOUR_SIZE[1],
                                 "label": label, "fraction": round(fraction, 4)})
    for i, (w, h, count, fmt) in enumerate(SCRATCH_IMAGES):
        rng = np.random.default_rng([args.seed, 3, i])
        img, boxes = make_scratches(rng, w, h, count)
        name = "scratches_%02d_%d.%s" % (i, count, fmt)
        save(to_image(img), args.out, name, fmt)
        truth["scratches"].append({"file": name, "width": w, "height": h, "count": count,
                                   "boxes": boxes})
    tmp = os.path.join(args.out, "truth.json.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        json.dump(truth, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, os.path.join(args.out, "truth.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
