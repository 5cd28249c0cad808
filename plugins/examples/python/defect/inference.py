"""The business logic of the defect plugin: find scratches on a surface.

It stands in for the seed's OpenVINO segmentation model and answers in the
same shape: {"inference time": ms, "defect": count, "base64": a JPEG of the
image and its mask side by side}. The "model" is a threshold: the surface
is bright (about 0.8), a scratch dark (0.2 to 0.35), so a pixel darker than
THRESHOLD belongs to a defect, and each connected region of such pixels is
one defect. A thin scratch drawn across pixel edges can leave one of its
pixels lighter than the threshold, so the regions are those of the mask
grown by a pixel: that bridges such gaps, and scratches lie 12 px apart,
much further than the growth could join.

The logic (inference) knows nothing about inferd; InferenceFunc, at the
end, wraps it as the plugin's function, as in the seed. Try it on a file:

    PYTHONPATH=sdk/python /usr/bin/python3 inference.py some.png
"""

import base64
import binascii
import io
import json
import sys
from time import perf_counter
from typing import Any, List

import numpy as np
from PIL import Image, UnidentifiedImageError

from inferd import Context, Function

THRESHOLD = 0.65  # under the darkest surface (~0.7 with noise), over a scratch's faint edge
MIN_PIXELS = 4    # smaller regions are specks of noise, not scratches


def grow(mask: np.ndarray) -> np.ndarray:
    """The mask with every set pixel's 8 neighbours set too (a 3x3 dilation)."""
    padded = np.pad(mask, 1)
    h, w = mask.shape
    out = mask.copy()
    for dy in range(3):
        for dx in range(3):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


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


def inference(image_b64: str) -> dict:
    """Segments the defects of a base64-encoded image (JPEG or PNG)."""
    if not isinstance(image_b64, str):
        raise TypeError("inference takes a base64-encoded image (a string), "
                        f"not {type(image_b64).__name__}")
    t0 = perf_counter()
    try:
        raw = base64.b64decode(image_b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"inference: the argument is not base64 ({exc})") from None
    try:
        image = Image.open(io.BytesIO(raw)).convert("RGB")
    except UnidentifiedImageError:
        raise ValueError("inference: the bytes are not a JPEG or PNG image") from None
    except (OSError, ValueError) as exc:  # a known format, but broken (truncated, ...)
        raise ValueError(f"inference: the image does not decode: {exc}") from None
    original = np.asarray(image)
    gray = original.mean(axis=2) / 255.0
    dark = gray < THRESHOLD
    defects = np.zeros_like(dark)  # the dark pixels of the regions that count
    count = 0
    for region in regions(grow(dark)):
        ys, xs = np.array(region).T
        if dark[ys, xs].sum() >= MIN_PIXELS:
            defects[ys, xs] = dark[ys, xs]
            count += 1
    infer_time = (perf_counter() - t0) * 1000.0

    # The seed's picture: the image, then its mask in white on black.
    mask = np.zeros_like(original)
    mask[defects] = 255
    out = io.BytesIO()
    Image.fromarray(np.hstack((original, mask))).save(out, "JPEG", quality=90)
    return {
        "inference time": infer_time,
        "defect": count,
        "base64": base64.b64encode(out.getvalue()).decode("ascii"),
    }


class InferenceFunc(Function):
    """inference(base64 image) -> {"inference time", "defect", "base64"}."""

    def validate(self, args: List[Any]) -> str:
        if len(args) != 1:
            return "invalid arg length: inference takes one argument, a base64-encoded image"
        return ""

    def exec(self, args: List[Any], ctx: Context) -> Any:
        # A plain method: the SDK runs it on its thread pool.
        ctx.logger.debug("executing inference")
        return inference(args[0])

    def is_aggregate(self) -> bool:
        return False


# One instance, handed out for every open (it keeps no state).
inferenceIns = InferenceFunc()


# To test the logic
if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: inference.py IMAGE")
    with open(sys.argv[1], "rb") as f:
        result = inference(base64.b64encode(f.read()).decode("ascii"))
    result["base64"] = result["base64"][:32] + "..."
    print(json.dumps(result))
