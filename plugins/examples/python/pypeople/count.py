"""The business logic of numpyPeopleCount: count bright dots (people).

It stands in for the seed's density-map network and answers in the shape of
inferd's built-in peopleCountEstimator: {"count": n, "points": [{"x", "y"}]}
for target T1, {"count": n} for T2. The "model" is a threshold: a person is
a bright disc on a dark background, so a pixel brighter than THRESHOLD
belongs to one, each connected region of such pixels is one person, and its
point is the region's brightness-weighted centre.

Nothing here knows about inferd: run it alone to try it on a file,

    /usr/bin/python3 count.py some.png [T1|T2]
"""

import json
import sys

import numpy as np

THRESHOLD = 0.45  # half-way between the background (~0.08) and a dot (>= 0.81)
TARGETS = ("T1", "T2")


def regions(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """The 8-connected regions of a boolean mask, each a list of (y, x).

    A flood fill over the set pixels only: the masks here are mostly empty,
    so this is quick in plain Python and needs no scipy."""
    unvisited = set(zip(*np.nonzero(mask)))
    found = []
    while unvisited:
        stack = [unvisited.pop()]
        region = []
        while stack:
            y, x = stack.pop()
            region.append((int(y), int(x)))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    n = (y + dy, x + dx)
                    if n in unvisited:
                        unvisited.remove(n)
                        stack.append(n)
        found.append(region)
    return found


def count_people(rgb: np.ndarray, area: tuple[int, int, int, int] | None = None,
                 targets: str = "T1") -> dict:
    """Counts the dots of an (h, w, 3) uint8 image, only inside area
    (x, y, width, height) when it is given; points are in whole-image pixels."""
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {', '.join(TARGETS)}, not {targets!r}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) RGB image, got shape {rgb.shape}")
    x0, y0 = 0, 0
    if area is not None:
        x0, y0, w, h = area
        if w <= 0 or h <= 0 or x0 < 0 or y0 < 0 or x0 + w > rgb.shape[1] or y0 + h > rgb.shape[0]:
            raise ValueError(f"detect area {x0},{y0} {w}x{h} is not inside the "
                             f"{rgb.shape[1]}x{rgb.shape[0]} image")
        rgb = rgb[y0:y0 + h, x0:x0 + w]
    gray = rgb.mean(axis=2) / 255.0
    found = regions(gray > THRESHOLD)
    if targets == "T2":
        return {"count": len(found)}
    points = []
    for region in found:
        ys, xs = np.array(region).T
        weight = gray[ys, xs]
        points.append({"x": x0 + int(round(float(np.average(xs, weights=weight)))),
                       "y": y0 + int(round(float(np.average(ys, weights=weight))))})
    points.sort(key=lambda p: (p["y"], p["x"]))  # reading order: a stable answer
    return {"count": len(found), "points": points}


# To test the logic
if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: count.py IMAGE [T1|T2]")
    from PIL import Image
    pixels = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
    print(json.dumps(count_people(pixels, targets=sys.argv[2] if len(sys.argv) == 3 else "T1")))
