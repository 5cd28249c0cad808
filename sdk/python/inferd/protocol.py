"""Frames, blobs, shared memory and values of the portable plugin protocol.

This is the plugin side of the "Transport" and "Values" sections of
docs/portable-protocol.md, kept free of asyncio and sockets so that it can be
read (and tested) on its own:

- ``encode_value`` / ``decode_value`` turn Python values into the JSON of a
  header (bytes become ``{"$blob": i}``) and back;
- ``encode_frame`` lays out one frame, its blobs inline below ``SHM_MIN``
  bytes, else in one sealed memfd whose descriptor the caller passes with the
  frame's first byte;
- ``FrameReader`` cuts a received byte stream (plus the descriptors that came
  with it) into decoded headers, and raises ``ProtocolError`` for a frame it
  cannot parse: the connection is then unusable.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import sys
from collections import deque
from typing import Any, Iterable, Sequence

from .values import RGB8, BytesLike, Image, Rect

PROTOCOL_VERSION = 1
MAX_HEADER = 16 << 20  # bytes of JSON in one header
MAX_BODY = 256 << 20  # bytes of blobs in one frame (inline or shared)
SHM_MIN = 64 << 10  # blobs adding up to this or more go through shared memory
# The host parses headers at most 64 levels deep; a value sits 2-3 levels down.
MAX_DEPTH = 60

_LENGTHS = struct.Struct(">II")


class ProtocolError(Exception):
    """The peer sent something that breaks the protocol; the connection is unusable."""


# ---- values ------------------------------------------------------------------


def _numpy() -> Any:
    # Only values made by a plugin that imported numpy can be numpy values, so
    # there is no need to import it here.
    return sys.modules.get("numpy")


def encode_value(value: Any, blobs: list, depth: int = 0) -> Any:
    """A JSON-able copy of value where bytes-like values are ``{"$blob": i}``.

    The bytes are appended to blobs. Image becomes ``{"$image": ...}``, Rect
    an object, tuples lists, numpy arrays and scalars plain Python values.
    Raises TypeError or ValueError for what JSON cannot carry (NaN, a set,
    an object whose only key is "$blob", ...), so that the caller can answer
    with an error instead of sending a frame the host would reject.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"a value nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum's JSON would be its name otherwise
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        blobs.append(value)
        return {"$blob": len(blobs) - 1}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"an object key must be a str, not {type(k).__name__} ({k!r})")
            out[k] = encode_value(v, blobs, depth + 1)
        if len(out) == 1 and ("$blob" in out or "$image" in out):
            raise ValueError(f"an object whose only key is {next(iter(out))!r} cannot be sent: "
                             "the protocol reads it as a blob reference")
        return out
    if isinstance(value, (list, tuple)):
        return [encode_value(v, blobs, depth + 1) for v in value]
    if isinstance(value, Image):
        blobs.append(value.buffer)
        return {"$image": {"blob": len(blobs) - 1, "width": value.width,
                           "height": value.height, "format": value.format}}
    if isinstance(value, Rect):
        return value.to_json()
    np = _numpy()
    if np is not None:
        if isinstance(value, np.ndarray):
            return encode_value(value.tolist(), blobs, depth)
        if isinstance(value, np.generic):
            return encode_value(value.item(), blobs, depth)
    raise TypeError(f"a {type(value).__name__} value cannot be sent (not JSON, bytes or Image)")


class _Blobs:
    """The blobs of one received frame, and whether an Image still uses them.

    Inline blobs are views of the frame's body. Blobs in shared memory are
    read from the descriptor: a bytes value with one pread (the kernel copies
    from its pages: no mapping, no page fault per page), an Image over a
    mapping made the first time one asks (no copy)."""

    def __init__(self, body: memoryview, sizes: list[int], fd: int | None, size: int) -> None:
        self.body = body
        self.offsets, off = [], 0
        for s in sizes:
            self.offsets.append((off, s))
            off += s
        self.fd = fd          # owned: shared memory, until release
        self.size = size      # its size
        self.mapping: mmap.mmap | None = None
        self.whole: memoryview | None = None
        self.kept = False     # an Image holds a view: the mapping must outlive this frame

    def _check(self, i: Any) -> tuple[int, int]:
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(self.offsets):
            raise ProtocolError(f'{{"$blob": {i!r}}} names no blob of the frame '
                                f"(it has {len(self.offsets)})")
        return self.offsets[i]

    def get(self, i: Any) -> memoryview:
        """Blob i as a view of the frame (shared memory mapped on demand)."""
        off, size = self._check(i)
        if self.fd is None:
            return self.body[off:off + size]
        if self.mapping is None and self.size > 0:
            try:
                self.mapping = mmap.mmap(self.fd, self.size, flags=mmap.MAP_SHARED,
                                         prot=mmap.PROT_READ)
            except OSError as e:
                raise ProtocolError(f"shared memory: {e}") from None
            self.whole = memoryview(self.mapping)
        return self.whole[off:off + size] if self.whole is not None else memoryview(b"")

    def get_bytes(self, i: Any) -> bytes:
        """Blob i copied out."""
        off, size = self._check(i)
        if self.fd is None:
            return bytes(self.body[off:off + size])
        try:
            data = os.pread(self.fd, size, off)
        except OSError as e:
            raise ProtocolError(f"shared memory: {e}") from None
        if len(data) != size:
            raise ProtocolError(f"shared memory: {len(data)} of {size} bytes read")
        return data

    def release(self) -> None:
        """Closes the descriptor; unmaps now unless an Image keeps a view."""
        if self.fd is not None:
            os.close(self.fd)  # a mapping stays valid without it
            self.fd = None
        if self.kept or self.mapping is None:
            return
        self.whole.release()
        try:
            self.mapping.close()
        except BufferError:
            pass  # a view escaped after all: the mapping goes with the last reference


def _decode_image(spec: Any, blobs: _Blobs) -> Image:
    if not isinstance(spec, dict):
        raise ProtocolError('"$image" is not an object')
    w, h, fmt = spec.get("width"), spec.get("height"), spec.get("format", RGB8)
    view = blobs.get(spec.get("blob"))
    try:
        img = Image(w, h, view, fmt)
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"a bad $image: {e}") from None
    if not isinstance(img.buffer, bytes):
        blobs.kept = True
    return img


def decode_value(value: Any, blobs: _Blobs) -> Any:
    """The Python value of a header's JSON: ``{"$blob": i}`` is bytes (copied),
    ``{"$image": ...}`` an Image (over the frame's memory, no copy)."""
    if isinstance(value, dict):
        if len(value) == 1:
            if "$blob" in value:
                return blobs.get_bytes(value["$blob"])
            if "$image" in value:
                return _decode_image(value["$image"], blobs)
        return {k: decode_value(v, blobs) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v, blobs) for v in value]
    return value


# ---- sending -----------------------------------------------------------------


def make_memfd(blobs: Sequence[BytesLike]) -> int:
    """A sealed memfd holding blobs back to back; the caller owns the descriptor."""
    fd = os.memfd_create("inferd-blob", os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0))
    try:
        for b in blobs:
            view = memoryview(b).cast("B")
            while view:
                n = os.write(fd, view)
                view = view[n:]
        try:
            import fcntl

            # Sealed, the receiver can trust that the bytes do not change under it.
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                        fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
        except (ImportError, AttributeError, OSError):
            pass  # sealing is optional in the protocol
        return fd
    except BaseException:
        os.close(fd)
        raise


def encode_header(header: dict, blobs: Sequence[BytesLike]) -> tuple[bytes, int, bool]:
    """The JSON text of a header (already value-encoded) with its blob table.

    Returns (text, total blob bytes, whether the blobs go through shared memory).
    """
    sizes = [memoryview(b).nbytes for b in blobs]
    total = sum(sizes)
    if total > MAX_BODY:
        raise ValueError(f"{total} bytes of blobs in one message (at most {MAX_BODY})")
    shm = total >= SHM_MIN
    if sizes:
        header = dict(header, blobs=[{"size": n} for n in sizes])
        if shm:
            header["shm"] = True
    # ensure_ascii=False with a strict encode: a lone surrogate is an error
    # here rather than an escape the host would refuse.
    text = json.dumps(header, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    if not 1 <= len(text) <= MAX_HEADER:
        raise ValueError(f"a message header of {len(text)} bytes (at most {MAX_HEADER})")
    return text, total, shm


def encode_frame(header: dict, blobs: Sequence[BytesLike]) -> tuple[bytes, int | None]:
    """One whole frame: its bytes, and the memfd to pass with it (or None).

    header is already value-encoded (see encode_value) and refers to blobs.
    The caller sends the descriptor with the frame's first byte and closes it.
    """
    text, total, shm = encode_header(header, blobs)
    if shm:
        fd = make_memfd(blobs)
        return _LENGTHS.pack(len(text), 0) + text, fd
    parts = [_LENGTHS.pack(len(text), total), text]
    parts.extend(blobs)
    return b"".join(parts), None


# ---- receiving ---------------------------------------------------------------


class FrameReader:
    """Cuts received bytes into frames and decodes their headers.

    ``feed`` takes what one recvmsg returned (bytes and descriptors); ``next``
    gives the next whole frame's decoded header, or None until more arrives.
    A frame with ``"shm": true`` takes the oldest descriptor not yet taken:
    descriptors arrive with a frame's first byte, so no later than the frame.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._fds: deque[int] = deque()

    def feed(self, data: bytes, fds: Iterable[int] = ()) -> None:
        self._fds.extend(fds)
        self._buf += data

    @property
    def pending(self) -> int:
        """Bytes received that are not a whole frame yet."""
        return len(self._buf)

    def close(self) -> None:
        """Closes the descriptors no frame took."""
        while self._fds:
            os.close(self._fds.popleft())

    def next(self) -> dict | None:
        buf = self._buf
        if len(buf) < 8:
            return None
        hlen, blen = _LENGTHS.unpack_from(buf)
        if not 1 <= hlen <= MAX_HEADER or blen > MAX_BODY:
            raise ProtocolError(f"a frame with a {hlen}-byte header and a {blen}-byte body "
                                f"(header 1..{MAX_HEADER}, body at most {MAX_BODY})")
        need = 8 + hlen + blen
        if len(buf) < need:
            return None
        text = bytes(buf[8:8 + hlen])
        body = bytes(buf[8 + hlen:need])
        del buf[:need]
        try:
            header = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ProtocolError(f"a frame header is not JSON: {e}") from None
        if not isinstance(header, dict):
            raise ProtocolError("a frame header is not a JSON object")
        if not isinstance(header.get("type"), str):
            raise ProtocolError('a frame header has no "type"')
        if "blobs" not in header and "shm" not in header and b'"$' not in text:
            return header  # nothing to decode: no blob, no marker (a bad one is said below)
        blobs = self._take_blobs(header, body)
        try:
            return decode_value(header, blobs)
        finally:
            blobs.release()

    def _take_blobs(self, header: dict, body: bytes) -> _Blobs:
        table = header.get("blobs", [])
        shm = header.get("shm", False)
        if not isinstance(table, list):
            raise ProtocolError('"blobs" is not an array')
        if not isinstance(shm, bool):
            raise ProtocolError('"shm" is not true or false')
        sizes = []
        for i, entry in enumerate(table):
            size = entry.get("size") if isinstance(entry, dict) else None
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ProtocolError(f"blobs[{i}] has no size")
            sizes.append(size)
        total = sum(sizes)
        if not shm:
            if total != len(body):
                raise ProtocolError(f"the blobs add up to {total} bytes, the frame carries {len(body)}")
            return _Blobs(memoryview(body), sizes, None, total)
        if not self._fds:
            raise ProtocolError('a frame says "shm" but came without a descriptor')
        if body:
            raise ProtocolError(f'a frame says "shm" but has a {len(body)}-byte body')
        fd = self._fds.popleft()
        try:
            have = os.fstat(fd).st_size
        except OSError as e:
            os.close(fd)
            raise ProtocolError(f"shared memory: {e}") from None
        if total > have:
            os.close(fd)
            raise ProtocolError(f"the blobs add up to {total} bytes, the shared memory "
                                f"holds {have}")
        return _Blobs(memoryview(b""), sizes, fd, have)
