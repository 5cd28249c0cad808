"""The classes a plugin subclasses, and what its methods are handed.

Every method may be a plain function or an ``async def`` coroutine: the
runtime (plugin.py) runs coroutines on its event loop and plain functions on
a thread pool, so a slow method never stops the plugin from answering the
host's heartbeat. An exception becomes an error reply and the plugin goes on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Union

from .values import Image, Rect


class PluginError(Exception):
    """An error with a code the host understands ("plugin" unless said otherwise).

    Codes are the names of inferd_status values: "invalid", "not_found",
    "unsupported", "state", "timeout", "plugin", ...
    """

    def __init__(self, message: str, code: str = "plugin") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Sender(Protocol):
    """What a Context needs from the runtime (plugin.py) to talk to the host."""

    def emit(self, instance_id: str, message: Any) -> None: ...

    def publish(self, event: str, payload: Any) -> None: ...

    def count(self, instance_id: str, name: str, delta: int) -> None: ...

    def metric(self, fields: dict) -> None: ...


class Context:
    """What a component instance knows about itself, and its ways to the host.

    One Context per instance (per ``open``). ``logger`` records go to the host
    as ``log`` messages, logged there under the plugin's name.
    """

    def __init__(self, plugin_name: str, instance_id: str, component: str, kind: str,
                 props: dict, logger: logging.Logger, sender: _Sender) -> None:
        self.plugin_name = plugin_name
        self.instance_id = instance_id
        self.component = component
        self.kind = kind
        self.props = props
        self.logger = logger
        self._sender = sender
        self._stopped = False

    @property
    def stopped(self) -> bool:
        """True once the host stopped (or closed) the instance: a source loop ends when it is."""
        return self._stopped

    def emit(self, message: Any) -> None:
        """Sends a source's message to the host (dropped once the source is stopped).

        From a thread this waits until the message is written, so a fast loop
        cannot pile up messages; on the event loop it only queues it.
        """
        if self._stopped:
            return
        self._sender.emit(self.instance_id, message)

    def publish(self, event: str, payload: Any) -> None:
        """Publishes an event on the daemon's bus."""
        if not isinstance(event, str) or not event:
            raise ValueError("publish needs an event name")
        self._sender.publish(event, payload)

    def count(self, name: str, delta: int = 1) -> None:
        """Adds delta to this instance's own counter ``name`` (at most 8 names
        an instance, 31 bytes each): on ``/metrics`` as ``inferd_plugin_count``
        and with a pipeline element's counters."""
        if not isinstance(name, str) or not name or len(name.encode()) > 31:
            raise ValueError("count needs a name of 1 to 31 bytes")
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise ValueError("count's delta is an integer")
        self._sender.count(self.instance_id, name, delta)

    # ---- its own metrics on /metrics (inferd_metric_* in C) -----------------------
    # As inferd_plugin_<plugin>_<name>{instance="...", labels...}. The host
    # checks names, labels and limits; a refusal is logged there once.

    def metric_describe(self, name: str, kind: str, help: str = "",
                        buckets: "list[float] | None" = None) -> None:
        """Gives metric ``name`` its kind (``counter``, ``gauge``,
        ``histogram``), help text and, for a histogram, its bucket bounds
        (ascending; default Prometheus's 0.005 .. 10), before its first use."""
        if kind not in ("counter", "gauge", "histogram"):
            raise ValueError("a metric's kind is counter, gauge or histogram")
        fields = {"op": "describe", "name": name, "kind": kind, "help": str(help)}
        if buckets is not None:
            fields["buckets"] = [float(b) for b in buckets]
        self._metric(fields)

    def metric_add(self, name: str, value: float = 1, labels: "dict | None" = None) -> None:
        """Adds value to a counter (made as one at its first use) or a gauge."""
        self._metric({"op": "add", "name": name, "value": value}, labels)

    def metric_set(self, name: str, value: float, labels: "dict | None" = None) -> None:
        """Sets a gauge."""
        self._metric({"op": "set", "name": name, "value": value}, labels)

    def metric_observe(self, name: str, value: float, labels: "dict | None" = None) -> None:
        """One observation of a histogram."""
        self._metric({"op": "observe", "name": name, "value": value}, labels)

    def _metric(self, fields: dict, labels: "dict | None" = None) -> None:
        if not isinstance(fields["name"], str) or not fields["name"]:
            raise ValueError("a metric needs a name")
        if "value" in fields and (isinstance(fields["value"], bool) or
                                  not isinstance(fields["value"], (int, float))):
            raise ValueError("a metric's value is a number")
        if labels is not None:
            if not isinstance(labels, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
                raise ValueError("labels are a dict of str to str")
            fields["labels"] = dict(labels)
        fields["instance"] = self.instance_id
        self._sender.metric(fields)

    def __repr__(self) -> str:
        return f"Context({self.plugin_name}/{self.component}, instance {self.instance_id})"


class Function:
    """A function: ``exec`` is called with the arguments of each call."""

    def validate(self, args: list) -> str:
        """"" when args are acceptable, else a message saying what is wrong."""
        return ""

    def exec(self, args: list, ctx: Context) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement exec")

    def is_aggregate(self) -> bool:
        return False


class Source:
    """A source of messages: ``open`` (at start) emits them with ``ctx.emit``.

    ``open`` may loop until ``ctx.stopped``; the runtime does not wait for it.
    """

    def configure(self, datasource: str, conf: dict) -> None:
        pass

    def open(self, ctx: Context) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement open")

    def close(self, ctx: Context) -> None:
        pass


class Sink:
    """A sink: ``collect`` takes each item the host sends."""

    def configure(self, conf: dict) -> None:
        pass

    def connect(self, ctx: Context) -> None:
        pass

    def collect(self, ctx: Context, data: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement collect")

    def close(self, ctx: Context) -> None:
        pass


class EventPlugin:
    """Receives the events named ``event_name`` from the daemon's bus, in batches."""

    event_name = "monitoring_event"

    def initialize(self, ctx: Context) -> None:
        pass

    def handle_event(self, events: list, ctx: Context) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement handle_event")

    def close(self, ctx: Context) -> None:
        pass


class EstimateItem:
    """One image of an estimate batch; look only inside ``area`` when it is set."""

    __slots__ = ("image", "area", "options")

    def __init__(self, image: Image, area: Optional[Rect] = None, options: Optional[dict] = None) -> None:
        self.image = image
        self.area = area
        self.options = options if options is not None else {}

    def __repr__(self) -> str:
        return f"EstimateItem({self.image!r}, area={self.area!r}, options={self.options!r})"


class EstimatorReplacementPlugin:
    """Stands in for a built-in estimator (``broker_name``): one result per item."""

    broker_name = "peopleCountEstimator"

    def initialize(self, ctx: Context) -> None:
        pass

    def estimate_batch(self, items: list, ctx: Context) -> list:
        raise NotImplementedError(f"{type(self).__name__} does not implement estimate_batch")

    def close(self, ctx: Context) -> None:
        pass


# ---- background plugins and HTTP ----------------------------------------------

#: The HTTP methods a handler class may answer (as lower-case method names).
HTTP_METHODS = frozenset({"get", "post", "put", "delete", "patch", "head", "options"})


class Request:
    """An HTTP request for one of a background plugin's routes."""

    __slots__ = ("method", "path", "query", "headers", "body")

    def __init__(self, method: str, path: str, query: dict, headers: dict, body: bytes) -> None:
        self.method = method  # upper-case
        self.path = path
        self.query = query  # str -> str
        self.headers = headers  # lower-case names
        self.body = body

    def json(self) -> Any:
        """The body parsed as JSON (a ValueError when it is not JSON)."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"


@dataclass
class Response:
    """An HTTP answer: body bytes, str (text) or a dict/list (sent as JSON)."""

    status: int = 200
    body: Union[bytes, str, dict, list, None] = b""
    headers: Optional[dict] = field(default=None)


class BackgroundHandler:
    """A route's handler "class": define get/post/put/delete/patch(self, request).

    A method the class does not define is answered 405 by the runtime.
    """

    def response(self, body: Any = b"", headers: Optional[dict] = None,
                 status_code: int = 200, **kwargs: Any) -> Response:
        """Builds a Response; ``statusCode=`` (the seeds' spelling) works too."""
        if "statusCode" in kwargs:
            status_code = kwargs.pop("statusCode")
        if kwargs:
            raise TypeError(f"response() got unexpected arguments {sorted(kwargs)}")
        return Response(status=status_code, body=body, headers=headers)


RouteHandler = Union[type, BackgroundHandler, Callable[[Request], Any]]


class BackgroundPlugin:
    """Runs alongside the daemon: periodic work (``start``) and HTTP routes.

    Routes are added in ``initialize`` with ``add_route``; the runtime answers
    404 for a path with no route.
    """

    def initialize(self, ctx: Context) -> None:
        pass

    def start(self, ctx: Context) -> None:
        pass

    def close(self, ctx: Context) -> None:
        pass

    def add_route(self, path: str, handler: RouteHandler, methods: Optional[set] = None) -> None:
        """Serves path (exact) with a BackgroundHandler class or instance, or a
        function ``fn(request)``; ``methods`` (lower-case names) limits a function."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"a route path must start with '/': {path!r}")
        is_class = isinstance(handler, type) and issubclass(handler, BackgroundHandler)
        if not is_class and not isinstance(handler, BackgroundHandler) and not callable(handler):
            raise TypeError(f"a route handler must be a BackgroundHandler or a function, "
                            f"not {type(handler).__name__}")
        allowed = None
        if methods is not None:
            if isinstance(methods, str):
                methods = {methods}
            allowed = frozenset(m.lower() for m in methods)
            unknown = allowed - HTTP_METHODS
            if unknown:
                raise ValueError(f"unknown HTTP methods {sorted(unknown)}")
        # Kept under a private name so that a subclass's own attributes never clash.
        routes = self.__dict__.setdefault("_inferd_routes", {})
        routes[path] = (handler, allowed)


def routes_of(plugin: Any) -> dict:
    """A background plugin's routes: path -> (handler, allowed methods or None)."""
    return getattr(plugin, "__dict__", {}).get("_inferd_routes", {})
