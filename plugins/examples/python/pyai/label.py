"""The business logic of labelImage: name the dominant colour of an image.

It stands in for the seed's TensorFlow Lite classifier and answers in the
same shape: a list of {"confidence", "label"}, most confident first. The
"model" is the eight corners of the RGB cube: every pixel votes for the
corner it is nearest to, and a label's confidence is its share of the votes.

Nothing here knows about inferd: run it alone to try it on a file,

    /usr/bin/python3 label.py some.png
"""

import io
import json
import sys

import numpy as np
from PIL import Image, UnidentifiedImageError

# Corner (R, G, B bits) -> name; the index is R * 4 + G * 2 + B.
LABELS = ["black", "blue", "green", "cyan", "red", "magenta", "yellow", "white"]
TOP = 5


def label(file_bytes: bytes) -> list[dict]:
    """Labels an encoded image (JPEG or PNG bytes): the TOP best labels."""
    if not isinstance(file_bytes, (bytes, bytearray, memoryview)):
        raise TypeError("labelImage takes the image's bytes (JPEG or PNG), "
                        f"not {type(file_bytes).__name__}")
    try:
        image = Image.open(io.BytesIO(file_bytes)).convert("RGB")
    except UnidentifiedImageError:
        raise ValueError("labelImage: the bytes are not a JPEG or PNG image") from None
    except (OSError, ValueError) as exc:  # a known format, but broken (truncated, ...)
        raise ValueError(f"labelImage: the image does not decode: {exc}") from None
    pixels = np.asarray(image)
    # Each channel above half-way is a 1 bit of the nearest corner.
    bits = pixels >= 128
    corner = bits[..., 0] * 4 + bits[..., 1] * 2 + bits[..., 2]
    votes = np.bincount(corner.ravel(), minlength=len(LABELS)) / corner.size
    # Most votes first; equal votes in LABELS order, so the answer is stable.
    order = sorted(range(len(LABELS)), key=lambda i: (-votes[i], i))
    return [{"confidence": float(votes[i]), "label": LABELS[i]} for i in order[:TOP]]


# To test the logic
if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: label.py IMAGE")
    with open(sys.argv[1], "rb") as f:
        print(json.dumps(label(f.read())))
