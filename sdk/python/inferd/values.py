"""The value types that cross the protocol besides JSON: images and rectangles.

An ``Image`` that came through shared memory keeps a read-only view of the
mapping instead of a copy, so that ``array()`` can hand numpy a zero-copy view
of a large frame; ``data`` copies only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

BytesLike = Union[bytes, bytearray, memoryview]

#: The only pixel format of protocol version 1: 3 bytes per pixel (R, G, B), no padding.
RGB8 = "rgb8"


def _is_int(v: Any) -> bool:
    # bool is an int subclass, but True is not a coordinate.
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class Rect:
    """A rectangle in pixels: the area of an estimate item, or a result's box."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("x", "y", "width", "height"):
            if not _is_int(getattr(self, name)):
                raise TypeError(f"Rect.{name} must be an int, not {type(getattr(self, name)).__name__}")

    @classmethod
    def from_json(cls, v: Any) -> "Rect":
        """Reads {"x", "y", "width", "height"}; a ValueError says what is wrong."""
        if not isinstance(v, dict):
            raise ValueError("an area is not an object")
        try:
            return cls(v["x"], v["y"], v["width"], v["height"])
        except KeyError as e:
            raise ValueError(f"an area has no {e.args[0]!r}") from None
        except TypeError as e:
            raise ValueError(str(e)) from None

    def to_json(self) -> dict:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


class Image:
    """A decoded RGB image: ``height`` rows of ``width`` pixels, 3 bytes each.

    ``data`` is the pixels as ``bytes``. ``array()`` is a numpy view of shape
    (height, width, 3), uint8, read-only when the image came from the host.
    """

    __slots__ = ("width", "height", "format", "_buf", "_bytes")

    def __init__(self, width: int, height: int, data: BytesLike, format: str = RGB8) -> None:
        if not _is_int(width) or not _is_int(height) or width <= 0 or height <= 0:
            raise ValueError(f"an image of {width!r} x {height!r} pixels (both must be positive ints)")
        if format != RGB8:
            raise ValueError(f"image format {format!r} is not supported (only {RGB8!r})")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"image data must be bytes-like, not {type(data).__name__}")
        view = memoryview(data)
        if view.nbytes != width * height * 3:
            raise ValueError(f"a {width}x{height} rgb8 image needs {width * height * 3} bytes, "
                             f"got {view.nbytes}")
        self.width = width
        self.height = height
        self.format = format
        # bytes stay bytes (no copy needed for .data); anything else is kept as
        # a flat byte view, e.g. over the host's shared memory.
        self._buf: BytesLike = data if isinstance(data, bytes) else view.cast("B")
        self._bytes: bytes | None = data if isinstance(data, bytes) else None

    @property
    def data(self) -> bytes:
        """The pixels, row-major RGB, as bytes (copied once from shared memory)."""
        if self._bytes is None:
            self._bytes = bytes(self._buf)
        return self._bytes

    @property
    def buffer(self) -> BytesLike:
        """The pixels without a copy: bytes, or a read-only view of shared memory."""
        return self._buf

    def array(self) -> Any:
        """A numpy array (height, width, 3) uint8 over the pixels, without a copy.

        Raises ImportError when numpy is not installed.
        """
        import numpy as np  # optional dependency: only this method needs it

        return np.frombuffer(self._buf, dtype=np.uint8).reshape(self.height, self.width, 3)

    @classmethod
    def from_array(cls, a: Any) -> "Image":
        """An image from an array-like of shape (height, width, 3), uint8."""
        import numpy as np

        arr = np.ascontiguousarray(a, dtype=np.uint8)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"an image array must have shape (height, width, 3), not {arr.shape}")
        return cls(int(arr.shape[1]), int(arr.shape[0]), arr.tobytes())

    def crop(self, rect: Rect) -> "Image":
        """The part of the image inside rect (which must lie inside the image), copied."""
        if not isinstance(rect, Rect):
            raise TypeError(f"crop takes a Rect, not {type(rect).__name__}")
        if (rect.x < 0 or rect.y < 0 or rect.width <= 0 or rect.height <= 0
                or rect.x + rect.width > self.width or rect.y + rect.height > self.height):
            raise ValueError(f"{rect} is not inside the {self.width}x{self.height} image")
        stride = self.width * 3
        row = rect.width * 3
        view = memoryview(self._buf)
        out = bytearray(row * rect.height)
        for r in range(rect.height):
            start = (rect.y + r) * stride + rect.x * 3
            out[r * row:(r + 1) * row] = view[start:start + row]
        return Image(rect.width, rect.height, bytes(out))

    def __repr__(self) -> str:
        return f"Image({self.width}x{self.height}, {self.format})"
