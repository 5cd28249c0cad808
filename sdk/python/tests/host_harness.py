"""A small host for the tests: the host side of docs/portable-protocol.md.

Written from the spec and independently of the SDK (nothing here imports
``inferd``), so that the tests check the SDK against the protocol rather than
against itself. It listens on a Unix socket in a private folder, starts a
plugin script with INFERD_SOCKET set, and then lets a test send frames
(blobs inline below 64 KiB, else through one memfd passed with SCM_RIGHTS on
the frame's first byte) and wait for what the plugin sends back. Every frame
the plugin sends is checked against the spec's rules; a broken rule is kept
in ``violations`` and fails the test at teardown.
"""

from __future__ import annotations

import array
import itertools
import json
import mmap
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

SDK_DIR = Path(__file__).resolve().parents[1]  # sdk/python: what PYTHONPATH needs
SHM_MIN = 64 << 10
MAX_HEADER = 16 << 20
MAX_BODY = 256 << 20


@dataclass
class Img:
    """An image to send as {"$image": ...} (and what one received decodes to)."""

    width: int
    height: int
    data: bytes
    format: str = "rgb8"


@dataclass
class Received:
    """One frame from the plugin: its raw header, its decoded values, how it came."""

    header: dict  # the JSON header as sent ("$blob" objects left as they are)
    value: dict  # the header with blobs as bytes and images as Img
    shm: bool  # the blobs came through shared memory
    body_len: int
    at: float  # time.monotonic() when it was read


def encode(value: Any, blobs: list) -> Any:
    if isinstance(value, (bytes, bytearray)):
        blobs.append(bytes(value))
        return {"$blob": len(blobs) - 1}
    if isinstance(value, Img):
        blobs.append(value.data)
        return {"$image": {"blob": len(blobs) - 1, "width": value.width, "height": value.height,
                           "format": value.format}}
    if isinstance(value, dict):
        return {k: encode(v, blobs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, blobs) for v in value]
    return value


def decode(value: Any, blobs: list) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "$blob" in value:
            return blobs[value["$blob"]]
        if len(value) == 1 and "$image" in value:
            spec = value["$image"]
            return Img(spec["width"], spec["height"], blobs[spec["blob"]], spec["format"])
        return {k: decode(v, blobs) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, blobs) for v in value]
    return value


def frame_bytes(header: dict, blobs: list, shm: Optional[bool] = None) -> tuple[bytes, Optional[int]]:
    """A frame (bytes, memfd or None) as the spec lays it out."""
    total = sum(len(b) for b in blobs)
    use_shm = total >= SHM_MIN if shm is None else shm
    header = dict(header)
    if blobs:
        header["blobs"] = [{"size": len(b)} for b in blobs]
    if use_shm:
        header["shm"] = True
    text = json.dumps(header).encode()
    if use_shm:
        fd = os.memfd_create("test-host-blob", os.MFD_CLOEXEC)
        for b in blobs:
            os.write(fd, b)
        return struct.pack(">II", len(text), 0) + text, fd
    return struct.pack(">II", len(text), total) + text + b"".join(blobs), None


class Host:
    """One plugin process and its connection, seen from the host."""

    def __init__(self, tmp_path: Path, script: Path, name: str = "testplugin",
                 env: Optional[dict] = None) -> None:
        self.tmp = tmp_path
        folder = tmp_path / "run"
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)
        self.socket_path = str(folder / f"{name}.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket_path)
        self.listener.listen(1)
        self.stdout_path = tmp_path / "stdout.txt"
        self.stderr_path = tmp_path / "stderr.txt"
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "INFERD_SOCKET": self.socket_path,
            "INFERD_PLUGIN": name,
            "INFERD_PROTOCOL": "1",
            "PYTHONPATH": str(SDK_DIR),
            "PYTHONDONTWRITEBYTECODE": "1",  # never write into the source tree
            "PYTHONUNBUFFERED": "1",
        }
        full_env.update(env or {})
        full_env = {k: v for k, v in full_env.items() if v is not None}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, str(script)], env=full_env, cwd=tmp_path,
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.conn: Optional[socket.socket] = None
        self.frames: list[Received] = []
        self.violations: list[str] = []
        self.closed = False  # the plugin's side reached end of stream
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._fds: deque[int] = deque()
        self._thread: Optional[threading.Thread] = None

    # ---- connection --------------------------------------------------------------

    def accept(self, timeout: float = 10.0) -> None:
        """Waits for the plugin to connect (failing early if it exits first)."""
        self.listener.settimeout(0.05)
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn, _ = self.listener.accept()
                break
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise AssertionError(f"the plugin exited ({self.proc.returncode}) before "
                                         f"connecting: {self.stderr()}")
                if time.monotonic() > deadline:
                    raise AssertionError("the plugin did not connect")
        conn.setblocking(True)
        self.conn = conn
        self._thread = threading.Thread(target=self._read_loop, daemon=True)
        self._thread.start()

    def handshake(self) -> Received:
        """accept, wait for hello, answer welcome; returns the hello."""
        self.accept()
        hello = self.wait_for(lambda r: True, what="hello")
        self.send({"type": "welcome", "protocol": 1, "heartbeatMs": 2000})
        return hello

    def send(self, header: dict, *, shm: Optional[bool] = None, split: bool = False) -> None:
        """Encodes values (bytes, Img) into blobs and sends one frame."""
        blobs: list = []
        header = encode(header, blobs)
        data, fd = frame_bytes(header, blobs, shm)
        self.send_raw(data, fd, split=split)

    def send_raw(self, data: bytes, fd: Optional[int] = None, split: bool = False) -> None:
        try:
            if fd is not None:
                # The descriptor rides on the frame's first byte.
                self.conn.sendmsg([data[:1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                array.array("i", [fd]))])
                data = data[1:]
            if split:  # in small pieces: the reader must put frames together
                for i in range(0, len(data), 7):
                    self.conn.sendall(data[i:i + 7])
                    time.sleep(0.0005)
            else:
                self.conn.sendall(data)
        finally:
            if fd is not None:
                os.close(fd)

    def call(self, op: str, **fields: Any) -> int:
        cid = next(self._ids)
        self.send({"type": "call", "id": cid, "op": op, **fields})
        return cid

    def rpc(self, op: str, timeout: float = 10.0, **fields: Any) -> Received:
        return self.reply(self.call(op, **fields), timeout)

    def ok(self, op: str, **fields: Any) -> Any:
        """A call that must succeed: its decoded result."""
        r = self.rpc(op, **fields)
        assert r.value["ok"] is True, f"{op} failed: {r.value.get('error')}"
        return r.value["result"]

    # ---- receiving ---------------------------------------------------------------

    def _read_loop(self) -> None:
        buf = bytearray()
        while True:
            try:
                data, anc, flags, _ = self.conn.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 8))
            except OSError:
                break
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                    self._fds.extend(fds)
            if flags & socket.MSG_CTRUNC:
                self.violations.append("control data truncated: more descriptors than frames")
            if not data:
                break
            buf += data
            while len(buf) >= 8:
                hlen, blen = struct.unpack_from(">II", buf)
                if not 1 <= hlen <= MAX_HEADER or blen > MAX_BODY:
                    self.violations.append(f"frame lengths out of range: {hlen}, {blen}")
                    return
                need = 8 + hlen + blen
                if len(buf) < need:
                    break
                try:
                    self._take(bytes(buf[8:8 + hlen]), bytes(buf[8 + hlen:need]))
                except Exception as e:  # a broken frame: keep it as a violation
                    self.violations.append(f"unreadable frame: {e!r}")
                del buf[:need]
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _take(self, text: bytes, body: bytes) -> None:
        header = json.loads(text.decode("utf-8"))
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            self.violations.append(f"a header that is not an object with a type: {text[:100]!r}")
            return
        sizes = [b["size"] for b in header.get("blobs", [])]
        total = sum(sizes)
        shm = header.get("shm", False) is True
        if shm:
            if body:
                self.violations.append("shm frame with a body")
            if not self._fds:
                self.violations.append("shm frame without a descriptor")
                return
            fd = self._fds.popleft()
            try:
                size = os.fstat(fd).st_size
                if size < total:
                    self.violations.append(f"memfd of {size} bytes for {total} bytes of blobs")
                    return
                with mmap.mmap(fd, size, prot=mmap.PROT_READ) if size else _Empty() as m:
                    whole = bytes(m[:total]) if size else b""
            finally:
                os.close(fd)
        else:
            if total != len(body):
                self.violations.append(f"blobs add up to {total}, body is {len(body)}")
                return
            whole = body
        # The sender's rule: shared memory exactly from 64 KiB of blobs on.
        if shm != (total >= SHM_MIN):
            self.violations.append(f"{total} bytes of blobs sent with shm={shm}")
        blobs, off = [], 0
        for n in sizes:
            blobs.append(whole[off:off + n])
            off += n
        rec = Received(header, decode(header, blobs), shm, len(body), time.monotonic())
        with self._cond:
            self.frames.append(rec)
            self._cond.notify_all()

    def wait_for(self, pred, timeout: float = 10.0, what: str = "a frame", start: int = 0) -> Received:
        """The first frame (from index start) that pred accepts; fails after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for rec in self.frames[start:]:
                    if pred(rec):
                        return rec
                left = deadline - time.monotonic()
                if left <= 0 or (self.closed and not any(pred(r) for r in self.frames[start:])
                                 and self.proc.poll() is not None):
                    raise AssertionError(f"no {what} within {timeout} s; got "
                                         f"{[r.value for r in self.frames][-5:]}; stderr: {self.stderr()}")
                self._cond.wait(min(left, 0.1))

    def reply(self, cid: int, timeout: float = 10.0) -> Received:
        return self.wait_for(lambda r: r.value["type"] == "reply" and r.value.get("id") == cid,
                             timeout, f"reply to call {cid}")

    def messages(self, type_: str, count: int, timeout: float = 10.0, **match: Any) -> list:
        """Waits until count messages of a type (and matching fields) have come."""
        def matching() -> list:
            return [r.value for r in self.frames if r.value["type"] == type_
                    and all(r.value.get(k) == v for k, v in match.items())]
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(matching())} of {count} {type_} messages; "
                                         f"stderr: {self.stderr()}")
                self._cond.wait(min(left, 0.1))
            return matching()

    # ---- the process -------------------------------------------------------------

    def wait_exit(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close_connection(self) -> None:
        if self.conn is not None:
            self.conn.shutdown(socket.SHUT_RDWR)
            self.conn.close()

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.listener.close()
        while self._fds:
            os.close(self._fds.popleft())


class _Empty:
    """A stand-in for an mmap of an empty file (mmap cannot map 0 bytes)."""

    def __enter__(self) -> "_Empty":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass
