"""The SDK's protocol module and value types, in process (no plugin process)."""

import json
import os
import struct

import numpy as np
import pytest

from host_harness import frame_bytes as host_frame
from inferd import EstimateItem, Image, PluginError, Rect
from inferd.protocol import (MAX_DEPTH, SHM_MIN, FrameReader, ProtocolError, decode_value,
                             encode_frame, encode_value)


def roundtrip(header: dict) -> tuple[dict, bool]:
    """Encodes with the SDK, reads back with the SDK's reader: (header, shm)."""
    blobs: list = []
    data, fd = encode_frame(encode_value(header, blobs), blobs)
    reader = FrameReader()
    try:
        reader.feed(data, [fd] if fd is not None else [])
        out = reader.next()
    finally:
        reader.close()
    assert reader.next() is None and reader.pending == 0
    return out, fd is not None


def test_values_roundtrip_inline_and_shared():
    small = {"type": "x", "v": [b"ab", {"k": bytearray(b"cd")}, memoryview(b"ef"), (1, 2.5, None)]}
    out, shm = roundtrip(small)
    assert not shm
    assert out["v"] == [b"ab", {"k": b"cd"}, b"ef", [1, 2.5, None]]
    assert out["blobs"] == [{"size": 2}] * 3
    big = {"type": "x", "v": [b"\x01" * (SHM_MIN - 1), b"\x02"]}
    out, shm = roundtrip(big)
    assert shm and "shm" in out and out["v"] == big["v"]


def test_sent_memfd_is_sealed_and_exact():
    import fcntl

    blobs: list = []
    header = encode_value({"type": "x", "v": b"z" * SHM_MIN}, blobs)
    data, fd = encode_frame(header, blobs)
    try:
        hlen, blen = struct.unpack_from(">II", data)
        assert blen == 0 and len(data) == 8 + hlen
        assert json.loads(data[8:])["shm"] is True
        assert os.fstat(fd).st_size == SHM_MIN
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SHRINK
        with pytest.raises(PermissionError):
            os.write(fd, b"no")
    finally:
        os.close(fd)


def test_values_that_cannot_be_sent():
    for bad, words in [(float("nan"), "JSON number"), (float("inf"), "JSON number"),
                       ({1, 2}, "set"), ({1: "a"}, "key"), ({"$blob": 0}, "$blob"),
                       ({"$image": {}}, "$image"), (object(), "object")]:
        with pytest.raises((TypeError, ValueError), match=words.replace("$", r"\$")):
            encode_value({"v": bad}, [])
    deep: list = []
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(ValueError, match="nested"):
        encode_value(deep, [])
    # "$blob" next to another key is ordinary JSON.
    assert encode_value({"$blob": 1, "x": 2}, []) == {"$blob": 1, "x": 2}


def test_numpy_values():
    blobs: list = []
    v = encode_value({"a": np.arange(4).reshape(2, 2), "f": np.float64(0.25), "i": np.int8(-3),
                      "b": np.bytes_(b"raw")}, blobs)
    assert v == {"a": [[0, 1], [2, 3]], "f": 0.25, "i": -3, "b": {"$blob": 0}}
    assert blobs == [b"raw"]
    assert json.dumps(v)


def test_images_from_shared_memory_are_zero_copy_views():
    w, h = 160, 140  # 67 200 bytes: shared memory
    pixels = bytes((i * 7) % 251 for i in range(w * h * 3))
    data, fd = host_frame({"type": "call", "id": 1, "op": "estimate",
                           "items": [{"image": {"$image": {"blob": 0, "width": w, "height": h,
                                                           "format": "rgb8"}}}]}, [pixels])
    reader = FrameReader()
    reader.feed(data, [fd])
    img = reader.next()["items"][0]["image"]
    assert isinstance(img, Image) and (img.width, img.height, img.format) == (w, h, "rgb8")
    assert isinstance(img.buffer, memoryview)  # the mapping itself, not a copy
    arr = img.array()
    assert arr.shape == (h, w, 3) and arr.dtype == np.uint8
    assert not arr.flags.owndata and not arr.flags.writeable
    assert arr.tobytes() == pixels and img.data == pixels
    crop = img.crop(Rect(5, 6, 7, 8))
    assert np.array_equal(crop.array(), arr[6:14, 5:12])


def test_reader_takes_descriptors_in_order_and_frames_in_pieces():
    frames = [host_frame({"type": "m", "n": i, "b": {"$blob": 0}}, [bytes([i]) * (SHM_MIN if i % 2 else 3)])
              for i in range(6)]
    stream = b"".join(f for f, _ in frames)
    fds = [fd for _, fd in frames if fd is not None]
    reader = FrameReader()
    got = []
    reader.feed(stream[:1], fds)  # every descriptor with the first byte
    for i in range(1, len(stream), 5):
        reader.feed(stream[i:i + 5])
        while (h := reader.next()) is not None:
            got.append(h)
    assert [(h["n"], h["b"]) for h in got] == [(i, bytes([i]) * (SHM_MIN if i % 2 else 3)) for i in range(6)]


def raw(text: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">II", len(text), len(body)) + text + body


@pytest.mark.parametrize("frame, message", [
    (struct.pack(">II", 0, 0), "header"),
    (raw(b"null"), "not a JSON object"),
    (raw(b'{"type": 5.0}'), "no \"type\""),
    (raw(b'{"type":"x","blobs":[{"s":1}]}', b"z"), "size"),
    (raw(b'{"type":"x","blobs":{"size":1}}', b"z"), "not an array"),
    (raw(b'{"type":"x","shm":"yes"}'), "shm"),
    (raw(b'{"type":"x","shm":true}'), "without a descriptor"),
    (raw(b'{"type":"x","blobs":[{"size":2}]}', b"z"), "add up"),
    (raw(b'{"type":"x","v":{"$blob":true},"blobs":[{"size":1}]}', b"z"), "names no blob"),
])
def test_reader_refuses_garbage(frame, message):
    reader = FrameReader()
    reader.feed(frame)
    with pytest.raises(ProtocolError, match=message):
        reader.next()


def test_reader_refuses_a_small_memfd():
    data, fd = host_frame({"type": "x"}, [b"abc"], shm=True)
    os.ftruncate(fd, 2)
    reader = FrameReader()
    reader.feed(data, [fd])
    with pytest.raises(ProtocolError, match="holds 2"):
        reader.next()


def test_bad_images_are_protocol_errors():
    for spec in [{"blob": 0, "width": 2, "height": 2, "format": "rgb8"},  # 12 bytes needed
                 {"blob": 0, "width": 1, "height": 1, "format": "bgr8"},
                 {"blob": 0, "width": 0, "height": 1, "format": "rgb8"}]:
        data, _ = host_frame({"type": "x", "img": {"$image": spec}}, [b"abc"])
        reader = FrameReader()
        reader.feed(data)
        with pytest.raises(ProtocolError, match="image"):
            reader.next()


def test_image_and_rect_checks():
    with pytest.raises(ValueError, match="needs 12 bytes"):
        Image(2, 2, b"short")
    with pytest.raises(ValueError, match="not supported"):
        Image(1, 1, b"abc", "gray8")
    img = Image(3, 2, bytes(range(18)))
    assert img.crop(Rect(1, 1, 2, 1)).data == bytes(range(12, 18))
    with pytest.raises(ValueError, match="not inside"):
        img.crop(Rect(2, 0, 2, 1))
    with pytest.raises(TypeError):
        Rect(0, 0, 1.5, 1)
    assert Image.from_array(img.array()).data == img.data
    assert Rect.from_json({"x": 1, "y": 2, "width": 3, "height": 4}) == Rect(1, 2, 3, 4)
    with pytest.raises(ValueError, match="'height'"):
        Rect.from_json({"x": 1, "y": 2, "width": 3})
    assert EstimateItem(img).options == {}
    assert PluginError("m").code == "plugin" and PluginError("m", code="invalid").code == "invalid"


def test_decode_leaves_other_dollar_keys_alone():
    from inferd.protocol import _Blobs

    v = decode_value({"$ref": 1, "a": [{"$other": 2}]}, _Blobs(memoryview(b""), [], None, 0))
    assert v == {"$ref": 1, "a": [{"$other": 2}]}
