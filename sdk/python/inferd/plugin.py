"""The plugin runtime: connects to the host, says hello, and serves its calls.

``plugin.start(config)`` is the whole of a plugin's main. It runs an asyncio
loop that owns the connection:

- reading: the socket is non-blocking and read on the loop; each frame is
  decoded at once (a frame that breaks the protocol ends the plugin, status 1);
- calls: ``ping`` is answered right there on the loop; every other call is a
  task of its own, so many calls are in flight at once and are answered in
  whatever order they finish. A component's plain methods run on the loop's
  thread pool, its coroutines on the loop;
- writing: one writer task takes whole frames from a queue, so frames never
  interleave; threads (a source's loop, a thread-pool method, logging) hand
  their frames to it through the loop;
- the end: the host closing the socket, or SIGTERM, closes the open
  instances (at most CLOSE_GRACE_S seconds) and exits 0;
- health: a ping is answered with an error when every worker of the pool
  has been running one call for longer than the host's call timeout (the
  host gave up on them all, and every new call would queue behind them):
  the host then restarts the plugin. A call that runs out of memory (the
  daemon's portable.memory_limit_mb) is answered with its error and the
  plugin exits with status 3, to be restarted with its memory back.
"""

from __future__ import annotations

import array
import asyncio
import concurrent.futures
import inspect
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, Optional

from .components import (HTTP_METHODS, BackgroundHandler, BackgroundPlugin, Context, EstimateItem,
                         EstimatorReplacementPlugin, EventPlugin, Function, PluginError, Request,
                         Response, Sink, Source, routes_of)
from .protocol import (PROTOCOL_VERSION, SHM_MIN, FrameReader, ProtocolError, encode_frame,
                       encode_value)
from .values import Image, Rect

SOCKET_UNSET_MESSAGE = ("this is an inferd portable plugin: the daemon starts it "
                        "(INFERD_SOCKET is not set)")
#: How long closing the open instances may take when the plugin is told to end.
CLOSE_GRACE_S = 2.0
_READ_SIZE = 1 << 18
_MAX_FDS = 8  # descriptors one read may bring; a frame carries at most one

# kind -> the method an object of that kind cannot do without
_KINDS = {
    "function": "exec",
    "estimator": "estimate_batch",
    "event": "handle_event",
    "background": None,  # checked as an isinstance: routes live in the base class
    "source": "open",
    "sink": "collect",
}
_BASES = (Function, Source, Sink, EventPlugin, BackgroundPlugin, EstimatorReplacementPlugin)


def _say(text: str) -> None:
    """A line on stderr, if anyone still reads it (the host may be gone)."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class PluginConfig:
    """A plugin's name and its components, by kind: name -> factory or object.

    A factory is called once per ``open`` to make that instance's object (a
    factory that returns the same object every time is fine). ``version`` is
    only reported in the hello.
    """

    def __init__(self, name: str, sources: Optional[dict] = None, sinks: Optional[dict] = None,
                 functions: Optional[dict] = None, events: Optional[dict] = None,
                 backgrounds: Optional[dict] = None, estimators: Optional[dict] = None,
                 *, version: str = "", workers: int = 0) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a plugin needs a name")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise ValueError(f"workers must be an int >= 0, not {workers!r}")
        self.name = name
        self.version = version
        # Threads running the components' plain methods (0: Python's default,
        # min(32, CPUs + 4)).
        self.workers = workers or min(32, (os.cpu_count() or 1) + 4)
        self.components: dict[str, dict] = {
            "function": dict(functions or {}),
            "estimator": dict(estimators or {}),
            "event": dict(events or {}),
            "background": dict(backgrounds or {}),
            "source": dict(sources or {}),
            "sink": dict(sinks or {}),
        }
        for kind, table in self.components.items():
            for comp in table:
                if not isinstance(comp, str) or not comp:
                    raise ValueError(f"a {kind} name must be a non-empty str, not {comp!r}")


def make_instance(factory: Any) -> Any:
    """The object for one instance: the factory's result, or the object itself."""
    if isinstance(factory, _BASES):
        return factory
    if callable(factory):
        return factory()
    return factory


def _check_object(kind: str, name: str, obj: Any) -> None:
    """Refuses a factory result that cannot serve its kind, with a clear message."""
    if kind == "background":
        if not isinstance(obj, BackgroundPlugin):
            raise PluginError(f"background {name!r}: the factory made a {type(obj).__name__}, "
                              "not a BackgroundPlugin")
        return
    need = _KINDS[kind]
    if not callable(getattr(obj, need, None)):
        raise PluginError(f"{kind} {name!r}: a {type(obj).__name__} has no {need}() method")


def _error_of(exc: BaseException) -> tuple[str, str]:
    """(code, message) of an error reply for exc."""
    if isinstance(exc, PluginError):
        return str(exc.code), str(exc.message)
    return "plugin", str(exc) or type(exc).__name__


def _level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class _HostLogHandler(logging.Handler):
    """Sends log records to the host as ``log`` messages, from any thread."""

    def __init__(self, runtime: "_Runtime", base: str) -> None:
        super().__init__(logging.DEBUG)
        self._runtime = runtime
        self._prefix = base + "."

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            # The host logs under the plugin's name; the instance says which one.
            if record.name.startswith(self._prefix):
                message = f"{record.name[len(self._prefix):]}: {message}"
            self._runtime.post({"type": "log", "level": _level_name(record.levelno),
                                "message": message})
        except Exception:
            self.handleError(record)


class _Instance:
    """One open component instance, under the host's id."""

    __slots__ = ("id", "kind", "component", "obj", "ctx", "running", "task", "quick", "inline",
                 "pooled", "plain_exec")

    def __init__(self, iid: str, kind: str, component: str, obj: Any, ctx: Context) -> None:
        self.id = iid
        self.kind = kind
        self.component = component
        self.obj = obj
        self.ctx = ctx
        self.running = False  # source/background: started and not stopped
        self.task: Optional[asyncio.Task] = None  # an async source's open()
        # A plain exec runs on the pool; one that has answered INLINE_AFTER
        # calls in a row within QUICK_S each runs on the loop from then on (no
        # thread hop: the call costs half), until one takes over SLOW_S: then
        # it goes back to the pool for good (pooled).
        self.quick = 0
        self.inline = False
        self.pooled = False
        # A function's exec when it is a plain method (the hot path), else None.
        fn = getattr(obj, "exec", None) if kind == "function" else None
        self.plain_exec = fn if callable(fn) and not inspect.iscoroutinefunction(fn) else None


INLINE_AFTER = 20     # quick pool calls in a row before a plain exec runs on the loop
QUICK_S = 0.0005      # what "quick" is
SLOW_S = 0.002        # an inline call this long sends the function back to the pool


def _field(h: dict, name: str, typ: type, what: str = "") -> Any:
    v = h.get(name)
    if not isinstance(v, typ):
        raise PluginError(f"the call's {name!r} is missing or not a {what or typ.__name__}", "invalid")
    return v


class _Runtime:
    """Serves one connection to the host; ``run`` returns the exit status."""

    def __init__(self, config: PluginConfig, socket_path: str) -> None:
        self.config = config
        self.path = socket_path
        self.instances: dict[str, _Instance] = {}
        self._opening: set[str] = set()
        self._reader = FrameReader()
        self._welcomed = False
        self._closing = False  # ending: nothing more is read
        self._broken = False  # the connection failed: nothing more is written
        self._finished = False  # the loop is gone
        self._tasks: set[asyncio.Task] = set()
        self._busy = 0  # plain methods running on the thread pool
        self._busy_lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread = 0
        self._sock: Optional[socket.socket] = None
        self._outq: Optional[asyncio.Queue] = None
        # Frames go out whole, one after the other. The loop's writer sends
        # what is queued; while it has any (_wbusy), a pool thread queues its
        # reply too, else it sends it itself under _wlock (_send_from_thread):
        # a plain function's answer then needs no turn of the loop.
        self._wlock = threading.Lock()
        self._wbusy = False
        self._exit: Optional[asyncio.Future] = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.workers, thread_name_prefix="inferd-call")
        self._started: dict[int, float] = {}  # a running pool call -> when it began (monotonic)
        self._next_token = 0
        try:
            self._stuck_after = int(os.environ.get("INFERD_CALL_TIMEOUT_MS", "30000")) / 1000
        except ValueError:
            self._stuck_after = 30.0
        self._ops: dict[str, Callable] = {
            "open": self._op_open, "start": self._op_start, "stop": self._op_stop,
            "close": self._op_close, "validate": self._op_validate, "exec": self._op_exec,
            "estimate": self._op_estimate, "events": self._op_events, "route": self._op_route,
            "collect": self._op_collect,
        }
        self.logger = logging.getLogger(f"inferd.{config.name}")
        self._log_handler = _HostLogHandler(self, self.logger.name)

    # ---- life cycle --------------------------------------------------------------

    def run(self) -> int:
        try:
            hello = self._hello()
        except Exception as e:
            print(f"inferd plugin {self.config.name}: cannot describe its components: {e}",
                  file=sys.stderr)
            return 1
        loop = asyncio.new_event_loop()
        loop.set_default_executor(self._executor)
        self.logger.addHandler(self._log_handler)
        self.logger.setLevel(logging.DEBUG)  # the host filters by its own level
        self.logger.propagate = False
        try:
            return loop.run_until_complete(self._main(hello))
        finally:
            self._teardown(loop)
            self.logger.removeHandler(self._log_handler)

    @property
    def busy(self) -> int:
        """Plain methods still running on the thread pool (they would hold up exit)."""
        with self._busy_lock:
            return self._busy

    def _hello(self) -> dict:
        components = []
        for kind, table in self.config.components.items():
            for name, factory in table.items():
                entry: dict[str, Any] = {"kind": kind, "name": name}
                if kind == "function":
                    # The host needs to know before any instance exists.
                    probe = make_instance(factory)
                    is_agg = getattr(probe, "is_aggregate", None)
                    entry["aggregate"] = bool(is_agg()) if callable(is_agg) else False
                components.append(entry)
        return {"type": "hello", "protocol": PROTOCOL_VERSION, "name": self.config.name,
                "version": self.config.version, "components": components}

    async def _main(self, hello: dict) -> int:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._exit = loop.create_future()
        self._outq = asyncio.Queue()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        self._sock = sock
        try:
            await loop.sock_connect(sock, self.path)
        except OSError as e:
            print(f"inferd plugin {self.config.name}: cannot connect to {self.path}: {e}",
                  file=sys.stderr)
            return 1
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._begin_shutdown, 0)
            except (RuntimeError, ValueError):
                pass  # not the main thread: the host's SIGKILL still ends us
        self._spawn(self._writer())
        self._queue_frame(*encode_frame(hello, []), None)
        loop.add_reader(sock.fileno(), self._on_readable)
        code = await self._exit
        self._stop_reading()
        if not self._broken:
            # Let the last replies and log records out (bounded: the host may not read).
            try:
                await asyncio.wait_for(self._outq.join(), 1.0)
            except asyncio.TimeoutError:
                pass
        return code

    def _teardown(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancels what is left, closes the socket and the loop (bounded waits only)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(sig)
            except (RuntimeError, ValueError):
                pass
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
        self._finished = True
        if self._outq is not None:
            while not self._outq.empty():
                _, fd, done = self._outq.get_nowait()
                self._settle(fd, done)
        if self._sock is not None:
            self._sock.close()
        self._reader.close()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coro: Any) -> asyncio.Task:
        """A task the runtime keeps a reference to until it ends."""
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _finish(self, code: int) -> None:
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(code)

    def _stop_reading(self) -> None:
        if self._sock is not None and self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())

    def _begin_shutdown(self, code: int) -> None:
        """The host closed the socket or sent SIGTERM: close instances, then exit."""
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        self._spawn(self._shutdown(code))

    async def _shutdown(self, code: int) -> None:
        insts = list(self.instances.values())
        if insts:
            tasks = [self._loop.create_task(self._close_quietly(i)) for i in insts]
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_GRACE_S)
            if pending:
                print(f"inferd plugin {self.config.name}: {len(pending)} instance(s) did not "
                      f"close within {CLOSE_GRACE_S:g} s", file=sys.stderr)
        self._finish(code)

    async def _close_quietly(self, inst: _Instance) -> None:
        try:
            await self._close_instance(inst)
        except Exception as e:
            inst.ctx.logger.warning("close failed: %s", e)

    def _fail(self, message: str) -> None:
        """The host sent something unusable: say so on stderr and exit 1."""
        self._closing = True
        self._broken = True
        self._stop_reading()
        _say(f"inferd plugin {self.config.name}: protocol error from the host: {message}")
        self._finish(1)

    def _connection_lost(self, why: str) -> None:
        # Stop reading first: when the host died, stderr is a broken pipe too,
        # and a failing print must not leave the reader spinning on the socket.
        self._broken = True
        closing = self._closing
        self._begin_shutdown(0)
        if not closing:
            _say(f"inferd plugin {self.config.name}: {why}; exiting")

    # ---- reading -----------------------------------------------------------------

    def _on_readable(self) -> None:
        if self._closing:
            return
        try:
            data, fds, flags, _ = socket.recv_fds(self._sock, _READ_SIZE, _MAX_FDS,
                                                  socket.MSG_CMSG_CLOEXEC)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._connection_lost(f"reading from the host failed ({e})")
            return
        self._reader.feed(data, fds)
        if flags & socket.MSG_CTRUNC:
            self._fail("more descriptors than a frame carries")
            return
        if not data:
            self._connection_lost("the host closed the connection")
            return
        try:
            while not self._closing:
                header = self._reader.next()
                if header is None:
                    break
                self._dispatch(header)
        except ProtocolError as e:
            self._fail(str(e))

    def _dispatch(self, h: dict) -> None:
        kind = h["type"]
        if not self._welcomed:
            if kind == "welcome":
                if h.get("protocol", PROTOCOL_VERSION) != PROTOCOL_VERSION:
                    raise ProtocolError(f"the host speaks protocol {h.get('protocol')!r}, "
                                        f"this SDK {PROTOCOL_VERSION}")
                self._welcomed = True
            elif kind == "refused":
                print(f"inferd plugin {self.config.name}: the host refused it: "
                      f"{h.get('message', '(no reason given)')}", file=sys.stderr)
                self._closing = True
                self._finish(1)
            else:
                raise ProtocolError(f"a {kind!r} message before the welcome")
            return
        if kind == "call":
            self._on_call(h)
        else:
            print(f"inferd plugin {self.config.name}: ignoring a {kind!r} message from the host",
                  file=sys.stderr)

    def _on_call(self, h: dict) -> None:
        cid = h.get("id")
        if not isinstance(cid, int) or isinstance(cid, bool):
            raise ProtocolError("a call without an integer id")
        op = h.get("op")
        if op == "ping":  # the heartbeat: answered here, never behind other calls
            why = self._stuck()
            if why:
                print(f"inferd plugin {self.config.name}: unhealthy: {why}", file=sys.stderr)
            self._reply(cid, not why, {"code": "busy", "message": why} if why else None)
            return
        handler = self._ops.get(op)
        if handler is None:
            self._reply(cid, False, {"code": "unsupported", "message": f"unknown op {op!r}"})
            return
        if op == "exec":
            iid = h.get("instance")
            inst = self.instances.get(iid) if isinstance(iid, str) else None
            fn = inst.plain_exec if inst is not None else None
            if fn is not None:
                # The hot path: on the loop when it has always been quick, else
                # straight to the pool, answered from there.
                if inst.inline:
                    self._exec_plain(cid, inst, fn, h, True)
                else:
                    self._executor.submit(self._exec_plain, cid, inst, fn, h, False)
                return
        self._spawn(self._serve(cid, str(op), handler, h))

    def _exec_plain(self, cid: int, inst: "_Instance", fn: Callable, h: dict, inline: bool) -> None:
        """A plain exec on a pool thread (its reply sent from there) or on the
        loop (queued for the writer), as _serve would."""
        start = time.monotonic()
        try:
            result = self._counted(fn, (self._args(h), inst.ctx)) if not inline else fn(
                self._args(h), inst.ctx)
        except Exception as exc:
            inst.ctx.logger.debug("exec failed", exc_info=exc)
            code, message = _error_of(exc)
            frame = self._error_frame(cid, code, message)
            self._send_on_loop(frame) if inline else self._send_from_thread(frame)
            if isinstance(exc, MemoryError):
                print(f"inferd plugin {self.config.name}: out of memory in exec (the daemon's "
                      "portable.memory_limit_mb): exiting with status 3 to be restarted",
                      file=sys.stderr)
                self._loop.call_soon_threadsafe(self._begin_shutdown, 3)
            return
        took = time.monotonic() - start
        if inline and took > SLOW_S:
            inst.inline, inst.pooled = False, True
        elif not inline and not inst.pooled:
            inst.quick = inst.quick + 1 if took <= QUICK_S else 0
            inst.inline = inst.quick >= INLINE_AFTER
        if inspect.isawaitable(result):  # a plain function that returned a coroutine
            async def finish() -> None:
                try:
                    value = await result
                except Exception as exc:
                    code, message = _error_of(exc)
                    self._reply(cid, False, {"code": code, "message": message})
                    return
                await self._reply_result(cid, "exec", value)
            if inline:
                self._spawn(finish())
            else:
                self._loop.call_soon_threadsafe(self._spawn, finish())
            return
        blobs: list = []
        try:
            header = {"type": "reply", "id": cid, "ok": True, "result": encode_value(result, blobs)}
            frame = encode_frame(header, blobs)
        except (TypeError, ValueError, OverflowError) as e:
            frame = self._error_frame(cid, "plugin", f"exec returned a value that cannot be sent: {e}")
        except OSError as e:
            frame = self._error_frame(cid, "io", f"shared memory for the reply: {e}")
        self._send_on_loop(frame) if inline else self._send_from_thread(frame)

    @staticmethod
    def _error_frame(cid: int, code: str, message: str) -> tuple[bytes, Optional[int]]:
        header = {"type": "reply", "id": cid, "ok": False, "error": {"code": code, "message": message}}
        try:
            return encode_frame(header, [])
        except ValueError:  # a message that is not valid text (a lone surrogate)
            header["error"]["message"] = ascii(message)
            return encode_frame(header, [])

    def _send_on_loop(self, frame: tuple[bytes, Optional[int]]) -> None:
        """Sends a whole frame from the loop: what one non-blocking send takes
        when the writer has nothing queued, the rest through the writer."""
        data, fd = frame
        if self._wbusy or self._broken or self._finished:
            self._queue_frame(data, fd, None)
            return
        with self._wlock:  # a pool thread may be sending
            busy = self._wbusy
            n = 0
            if not busy:
                try:
                    anc = ([(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
                           if fd is not None else [])
                    n = (self._sock.sendmsg([data], anc, socket.MSG_NOSIGNAL) if anc
                         else self._sock.send(data, socket.MSG_NOSIGNAL))
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError as e:
                    busy = True  # said below, not sent
                    self._connection_lost(f"writing to the host failed ({e})")
                if not busy and n < len(data):
                    self._wbusy = True  # the rest goes first: nothing else is sent meanwhile
        if busy:
            self._queue_frame(data, fd, None)
            return
        if n == len(data) or n > 0:
            if fd is not None:
                os.close(fd)  # sent with the first byte
            fd = None
        if n < len(data):
            self._outq.put_nowait((data[n:], fd, None))

    def _send_from_thread(self, frame: tuple[bytes, Optional[int]]) -> None:
        """Sends a whole frame from a pool thread: itself when the loop's writer
        has nothing queued, else behind what it has (see _wlock)."""
        data, fd = frame
        with self._wlock:
            direct = not self._wbusy and not self._broken and not self._finished
            if direct:
                try:
                    self._send_blocking(data, fd)
                except OSError as e:
                    why = f"writing to the host failed ({e})"
                    self._loop.call_soon_threadsafe(self._connection_lost, why)
        if direct:
            if fd is not None:
                os.close(fd)
            return
        try:
            self._loop.call_soon_threadsafe(self._queue_frame, data, fd, None)
        except (RuntimeError, AttributeError):  # the loop is closed: the plugin is ending
            if fd is not None:
                os.close(fd)

    def _send_blocking(self, data: bytes, fd: Optional[int]) -> None:
        """All of data on the non-blocking socket, waiting for room when it is
        full (a pool thread may wait; _wlock keeps the frame whole)."""
        view = memoryview(data)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))] if fd is not None else []
        while view:
            try:
                n = (self._sock.sendmsg([view], anc, socket.MSG_NOSIGNAL) if anc
                     else self._sock.send(view, socket.MSG_NOSIGNAL))
            except (BlockingIOError, InterruptedError):
                select.select([], [self._sock], [], 1.0)
                continue
            anc = []
            view = view[n:]

    # ---- calling the plugin's code ---------------------------------------------

    def _counted(self, fn: Callable, args: tuple) -> Any:
        with self._busy_lock:
            self._busy += 1
            token = self._next_token
            self._next_token += 1
            self._started[token] = time.monotonic()
        try:
            return fn(*args)
        finally:
            with self._busy_lock:
                self._busy -= 1
                del self._started[token]

    def _stuck(self) -> str:
        """Why the pool cannot serve another call ("" when it can)."""
        with self._busy_lock:
            if len(self._started) < self.config.workers:
                return ""
            newest = max(self._started.values())
        held = time.monotonic() - newest
        if held <= self._stuck_after:
            return ""
        return (f"all {self.config.workers} call workers have been running one call each for "
                f"over {held:.1f} s (the host's call timeout is {self._stuck_after:g} s): every "
                "new call would wait behind them")

    async def _call(self, fn: Callable, *args: Any) -> Any:
        """Runs a plugin method: a coroutine on the loop, a plain function on the pool."""
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        result = await self._loop.run_in_executor(None, self._counted, fn, args)
        if inspect.isawaitable(result):  # a plain function that returned a coroutine
            result = await result
        return result

    async def _call_opt(self, obj: Any, name: str, *args: Any) -> Any:
        """Calls obj.name(*args) when obj has that method (duck-typed components)."""
        fn = getattr(obj, name, None)
        return await self._call(fn, *args) if callable(fn) else None

    async def _serve(self, cid: int, op: str, handler: Callable, h: dict) -> None:
        try:
            result = await handler(h)
        except Exception as exc:
            inst = self.instances.get(h.get("instance")) if isinstance(h.get("instance"), str) else None
            (inst.ctx.logger if inst else self.logger).debug("%s failed", op, exc_info=exc)
            code, message = _error_of(exc)
            self._reply(cid, False, {"code": code, "message": message})
            if isinstance(exc, MemoryError):
                # Its memory limit: what is left may be in any state. Out,
                # to be restarted with its memory back.
                print(f"inferd plugin {self.config.name}: out of memory in {op} (the daemon's "
                      "portable.memory_limit_mb): exiting with status 3 to be restarted",
                      file=sys.stderr)
                self._begin_shutdown(3)
            return
        await self._reply_result(cid, op, result)

    # ---- writing -----------------------------------------------------------------

    def _reply(self, cid: int, ok: bool, payload: Any) -> None:
        """A small reply (null or an error), queued on the loop."""
        header = {"type": "reply", "id": cid, "ok": ok}
        header["result" if ok else "error"] = payload
        try:
            frame = encode_frame(header, [])
        except ValueError:  # an error message that is not valid text (a lone surrogate)
            header["error"] = {"code": payload["code"], "message": ascii(payload["message"])}
            frame = encode_frame(header, [])
        self._queue_frame(*frame, None)

    async def _reply_result(self, cid: int, op: str, result: Any) -> None:
        blobs: list = []
        try:
            header = {"type": "reply", "id": cid, "ok": True, "result": encode_value(result, blobs)}
            if sum(memoryview(b).nbytes for b in blobs) >= SHM_MIN:
                # Copying into shared memory takes a while: not on the loop.
                data, fd = await self._loop.run_in_executor(None, encode_frame, header, blobs)
            else:
                data, fd = encode_frame(header, blobs)
        except (TypeError, ValueError, OverflowError) as e:
            self._reply(cid, False, {"code": "plugin",
                                     "message": f"{op} returned a value that cannot be sent: {e}"})
            return
        except OSError as e:
            self._reply(cid, False, {"code": "io", "message": f"shared memory for the reply: {e}"})
            return
        self._queue_frame(data, fd, None)

    def _settle(self, fd: Optional[int], done: Optional[concurrent.futures.Future]) -> None:
        if fd is not None:
            os.close(fd)
        if done is not None and not done.done():
            done.set_result(None)

    def _queue_frame(self, data: bytes, fd: Optional[int], done: Optional[concurrent.futures.Future]) -> None:
        """On the loop: hands one encoded frame to the writer."""
        if self._broken or self._finished:
            self._settle(fd, done)
            return
        with self._wlock:  # a pool thread's frame is out whole first
            self._wbusy = True
        self._outq.put_nowait((data, fd, done))

    def _submit(self, header: dict, wait: bool) -> None:
        """Sends a message from any thread; from a thread, waits for it if asked.

        Values are encoded here, so that a value that cannot be sent raises in
        the caller (ctx.emit, ctx.publish) rather than somewhere else.
        """
        blobs: list = []
        data, fd = encode_frame(encode_value(header, blobs), blobs)
        if threading.get_ident() == self._loop_thread:
            self._queue_frame(data, fd, None)
            return
        done: Optional[concurrent.futures.Future] = concurrent.futures.Future() if wait else None
        try:
            self._loop.call_soon_threadsafe(self._queue_frame, data, fd, done)
        except (RuntimeError, AttributeError):  # the loop is closed: the plugin is ending
            self._settle(fd, None)
            return
        while done is not None and not self._finished:
            try:
                done.result(timeout=0.5)
                return
            except concurrent.futures.TimeoutError:
                continue

    def post(self, header: dict) -> None:
        """Sends a message without waiting (logging uses this)."""
        if not self._finished and self._loop is not None:
            self._submit(header, wait=False)

    def emit(self, instance_id: str, message: Any) -> None:
        self._submit({"type": "emit", "instance": instance_id, "message": message}, wait=True)

    def publish(self, event: str, payload: Any) -> None:
        self._submit({"type": "publish", "event": event, "payload": payload}, wait=True)

    def count(self, instance_id: str, name: str, delta: int) -> None:
        # Counting never waits for the host.
        self._submit({"type": "count", "instance": instance_id, "name": name, "delta": delta},
                     wait=False)

    def metric(self, fields: dict) -> None:
        # Nor do metrics.
        self._submit(dict(fields, type="metric"), wait=False)

    async def _writer(self) -> None:
        """The only writer of the socket: whole frames, one after the other."""
        while True:
            data, fd, done = await self._outq.get()
            try:
                if not self._broken:
                    await self._write(data, fd)
            except OSError as e:
                self._connection_lost(f"writing to the host failed ({e})")
            finally:
                self._settle(fd, done)
                self._outq.task_done()
                if self._outq.empty():
                    with self._wlock:
                        self._wbusy = not self._outq.empty()

    async def _write(self, data: bytes, fd: Optional[int]) -> None:
        view = memoryview(data)
        # The descriptor goes with the frame's first byte (SCM_RIGHTS).
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))] if fd is not None else []
        while view:
            try:
                if anc:
                    n = self._sock.sendmsg([view], anc, socket.MSG_NOSIGNAL)
                else:
                    n = self._sock.send(view, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                await self._writable()
                continue
            anc = []
            view = view[n:]

    async def _writable(self) -> None:
        fut = self._loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        fileno = self._sock.fileno()
        self._loop.add_writer(fileno, ready)
        try:
            await fut
        finally:
            self._loop.remove_writer(fileno)

    # ---- the operations ------------------------------------------------------------

    def _instance(self, h: dict, op: str, kind: Optional[str] = None) -> _Instance:
        iid = _field(h, "instance", str, "string")
        inst = self.instances.get(iid)
        if inst is None:
            raise PluginError(f"no open instance {iid!r}", "not_found")
        if kind is not None and inst.kind != kind:
            raise PluginError(f"{op} is not an operation of a {inst.kind} (instance {iid!r})",
                              "unsupported")
        return inst

    @staticmethod
    def _args(h: dict) -> list:
        return _field(h, "args", list, "array")

    async def _op_open(self, h: dict) -> None:
        iid = _field(h, "instance", str, "string")
        kind = _field(h, "kind", str, "string")
        name = _field(h, "component", str, "string")
        props = h.get("props")
        if props is None:
            props = {}
        if not isinstance(props, dict):
            raise PluginError("open: props is not an object", "invalid")
        table = self.config.components.get(kind)
        if table is None:
            raise PluginError(f"unknown component kind {kind!r}", "invalid")
        if name not in table:
            raise PluginError(f"this plugin has no {kind} named {name!r}", "not_found")
        if iid in self.instances or iid in self._opening:
            raise PluginError(f"instance {iid!r} is open already", "exists")
        self._opening.add(iid)
        try:
            obj = await self._call(make_instance, table[name])
            _check_object(kind, name, obj)
            ctx = Context(self.config.name, iid, name, kind, props,
                          logging.getLogger(f"{self.logger.name}.{iid}"), self)
            if kind == "source":
                await self._call_opt(obj, "configure", props.get("datasource", ""), props)
            elif kind == "sink":
                await self._call_opt(obj, "configure", props)
                await self._call_opt(obj, "connect", ctx)
            elif kind in ("event", "background", "estimator"):
                await self._call_opt(obj, "initialize", ctx)
            self.instances[iid] = _Instance(iid, kind, name, obj, ctx)
        finally:
            self._opening.discard(iid)

    async def _op_start(self, h: dict) -> None:
        inst = self._instance(h, "start")
        if inst.kind not in ("source", "background"):
            return
        if inst.running:
            raise PluginError(f"instance {inst.id!r} is started already", "state")
        inst.ctx._stopped = False
        if inst.kind == "background":
            await self._call_opt(inst.obj, "start", inst.ctx)
        else:
            self._launch_source(inst)
        inst.running = True

    def _launch_source(self, inst: _Instance) -> None:
        """Starts a source's open(): the host's start does not wait for it to end."""
        fn = inst.obj.open
        if inspect.iscoroutinefunction(fn):
            inst.task = self._spawn(self._run_source(inst))
        else:
            threading.Thread(target=self._run_source_thread, args=(inst,), daemon=True,
                             name=f"inferd-source-{inst.id}").start()

    async def _run_source(self, inst: _Instance) -> None:
        try:
            await inst.obj.open(inst.ctx)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if not inst.ctx.stopped:
                inst.ctx.logger.error("source open failed: %s", e, exc_info=e)

    def _run_source_thread(self, inst: _Instance) -> None:
        try:
            inst.obj.open(inst.ctx)
        except Exception as e:
            if not inst.ctx.stopped and not self._finished:
                inst.ctx.logger.error("source open failed: %s", e, exc_info=e)

    async def _stop(self, inst: _Instance) -> None:
        """Source/background: close once, at stop (or at close when never stopped)."""
        if not inst.running:
            return
        inst.running = False
        inst.ctx._stopped = True
        try:
            await self._call_opt(inst.obj, "close", inst.ctx)
        finally:
            if inst.task is not None and not inst.task.done():
                inst.task.cancel()
            inst.task = None

    async def _op_stop(self, h: dict) -> None:
        inst = self._instance(h, "stop")
        if inst.kind in ("source", "background"):
            await self._stop(inst)

    async def _close_instance(self, inst: _Instance) -> None:
        # The host forgets the instance whatever happens: so do we, first.
        self.instances.pop(inst.id, None)
        if inst.kind in ("source", "background"):
            await self._stop(inst)
        elif inst.kind in ("sink", "event", "estimator"):
            inst.ctx._stopped = True
            await self._call_opt(inst.obj, "close", inst.ctx)
        inst.ctx._stopped = True

    async def _op_close(self, h: dict) -> None:
        await self._close_instance(self._instance(h, "close"))

    async def _op_validate(self, h: dict) -> None:
        inst = self._instance(h, "validate", "function")
        message = await self._call_opt(inst.obj, "validate", self._args(h))
        if message:
            raise PluginError(str(message), "invalid")

    async def _op_exec(self, h: dict) -> Any:
        inst = self._instance(h, "exec", "function")
        return await self._call(inst.obj.exec, self._args(h), inst.ctx)

    @staticmethod
    def _estimate_item(i: int, raw: Any) -> EstimateItem:
        if not isinstance(raw, dict):
            raise PluginError(f"items[{i}] is not an object", "invalid")
        image = raw.get("image")
        if not isinstance(image, Image):
            raise PluginError(f"items[{i}] has no image", "invalid")
        area = raw.get("area")
        if area is not None:
            try:
                area = Rect.from_json(area)
            except ValueError as e:
                raise PluginError(f"items[{i}]: {e}", "invalid") from None
            if (area.x < 0 or area.y < 0 or area.width <= 0 or area.height <= 0
                    or area.x + area.width > image.width or area.y + area.height > image.height):
                raise PluginError(f"items[{i}]: the area {area.to_json()} is not inside the "
                                  f"{image.width}x{image.height} image", "invalid")
        options = raw.get("options")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise PluginError(f"items[{i}]: options is not an object", "invalid")
        return EstimateItem(image, area, options)

    async def _op_estimate(self, h: dict) -> list:
        inst = self._instance(h, "estimate", "estimator")
        raw = _field(h, "items", list, "array")
        items = [self._estimate_item(i, r) for i, r in enumerate(raw)]
        results = await self._call(inst.obj.estimate_batch, items, inst.ctx)
        if not isinstance(results, (list, tuple)) or len(results) != len(items):
            what = f"{len(results)} results" if isinstance(results, (list, tuple)) else f"a {type(results).__name__}"
            raise PluginError(f"estimate_batch returned {what} for {len(items)} items "
                              "(it must return a list with one result per item)")
        out = []
        for r in results:
            if isinstance(r, BaseException):
                code, message = _error_of(r)
                out.append({"ok": False, "error": {"code": code, "message": message}})
            else:
                out.append({"ok": True, "value": r})
        return out

    async def _op_events(self, h: dict) -> None:
        inst = self._instance(h, "events", "event")
        await self._call(inst.obj.handle_event, _field(h, "events", list, "array"), inst.ctx)

    async def _op_collect(self, h: dict) -> None:
        inst = self._instance(h, "collect", "sink")
        await self._call(inst.obj.collect, inst.ctx, h.get("item"))

    async def _op_route(self, h: dict) -> dict:
        inst = self._instance(h, "route", "background")
        method = _field(h, "method", str, "string").upper()
        path = _field(h, "path", str, "string")
        query = h.get("query") or {}
        headers = h.get("headers") or {}
        if not isinstance(query, dict) or not isinstance(headers, dict):
            raise PluginError("route: query and headers must be objects", "invalid")
        body = h.get("body")
        if body is None:
            body = b""
        elif isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):
            raise PluginError("route: the body is not bytes", "invalid")
        request = Request(method, path, {str(k): str(v) for k, v in query.items()},
                          {str(k).lower(): str(v) for k, v in headers.items()}, body)
        response = await self._route(inst, request)
        return _response_json(response)

    async def _route(self, inst: _Instance, request: Request) -> Response:
        entry = routes_of(inst.obj).get(request.path)
        if entry is None:
            return Response(404, {"error": f"no route for {request.path}"})
        handler, allowed = entry
        m = request.method.lower()
        if isinstance(handler, BackgroundHandler) or (
                isinstance(handler, type) and issubclass(handler, BackgroundHandler)):
            obj = await self._call(handler) if isinstance(handler, type) else handler
            answers = sorted(x for x in HTTP_METHODS if callable(getattr(obj, x, None)))
            if m not in answers:
                return _not_allowed(request, answers)
            fn = getattr(obj, m)
        else:
            if allowed is not None and m not in allowed:
                return _not_allowed(request, sorted(allowed))
            fn = handler
        return _as_response(await self._call(fn, request))


def _not_allowed(request: Request, methods: list) -> Response:
    allow = ", ".join(x.upper() for x in methods)
    return Response(405, {"error": f"{request.method} is not allowed on {request.path}"},
                    {"allow": allow})


def _as_response(result: Any) -> Response:
    """A handler's return value as a Response (None: 204, no content)."""
    if result is None:
        return Response(204, b"")
    if isinstance(result, Response):
        return result
    if isinstance(result, (dict, list, str, bytes, bytearray, memoryview)):
        return Response(200, result)
    raise PluginError(f"a route handler returned a {type(result).__name__}: return a Response, "
                      "a dict or list (JSON), a str or bytes")


def _response_json(r: Response) -> dict:
    """The route reply's result: status, headers and the body as bytes."""
    status = r.status
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise PluginError(f"a route handler answered HTTP status {status!r} (100..599)")
    headers = {str(k): str(v) for k, v in (r.headers or {}).items()}
    body = r.body
    content_type = None
    if body is None:
        data = b""
    elif isinstance(body, (dict, list)):
        try:
            data = json.dumps(body, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise PluginError(f"a route handler's body is not JSON: {e}") from None
        content_type = "application/json"
    elif isinstance(body, str):
        data = body.encode("utf-8")
        content_type = "text/plain; charset=utf-8"
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        raise PluginError(f"a route handler's body is a {type(body).__name__} "
                          "(bytes, str, dict or list)")
    if content_type and not any(k.lower() == "content-type" for k in headers):
        headers["content-type"] = content_type
    return {"status": status, "headers": headers, "body": data}


def start(config: PluginConfig) -> None:
    """Runs the plugin until the host stops it; exits the process (0 on a normal end).

    Exits 2 when INFERD_SOCKET is not set (the plugin was not started by the
    daemon), 1 when the connection could not be made or the host sent
    garbage. Exit skips waiting for plain methods still running on the thread
    pool (os._exit): the host is gone or has asked us to stop.
    """
    path = os.environ.get("INFERD_SOCKET")
    if not path:
        print(SOCKET_UNSET_MESSAGE, file=sys.stderr)
        sys.exit(2)
    runtime = _Runtime(config, path)
    code = runtime.run()
    sys.stdout.flush()
    sys.stderr.flush()
    if runtime.busy:
        os._exit(code)
    sys.exit(code)
