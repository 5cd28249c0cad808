"""A plugin with one component of every kind (and a few functions), for the tests.

Each component reports what it saw back to the host (results, ``publish``,
``log``) or on stdout, so that the tests can check the SDK from the outside.
"""

import asyncio
import hashlib
import time

import numpy as np

from inferd import (BackgroundHandler, BackgroundPlugin, EstimatorReplacementPlugin, EventPlugin,
                    Function, PluginConfig, PluginError, Response, Sink, Source, plugin)


class Echo(Function):
    def validate(self, args):
        return "" if args else "echo needs at least one argument"

    def exec(self, args, ctx):
        return args


class AsyncEcho(Function):
    async def exec(self, args, ctx):
        await asyncio.sleep(0)
        return {"async": True, "args": args}


class Describe(Function):
    """What each argument arrived as, and a digest of bytes."""

    def exec(self, args, ctx):
        out = []
        for a in args:
            d = {"type": type(a).__name__}
            if isinstance(a, bytes):
                d["len"] = len(a)
                d["sha256"] = hashlib.sha256(a).hexdigest()
            elif isinstance(a, str):
                d["len"] = len(a)
            out.append(d)
        return out


class Reverse(Function):
    def exec(self, args, ctx):
        return args[0][::-1]


class Fail(Function):
    def exec(self, args, ctx):
        if args and args[0] == "code":
            raise PluginError("you chose this code", code="unsupported")
        raise ValueError("boom 42")


class Sleep(Function):
    def exec(self, args, ctx):
        time.sleep(args[0])
        return f"slept {args[0]}"


class AsyncSleep(Function):
    async def exec(self, args, ctx):
        await asyncio.sleep(args[0])
        return f"aslept {args[0]}"


class Aggregate(Function):
    def exec(self, args, ctx):
        return sum(args[0])

    def is_aggregate(self):
        return True


class Numpy(Function):
    def exec(self, args, ctx):
        return {"array": np.arange(6, dtype=np.int32).reshape(2, 3), "scalar": np.float32(1.5),
                "flag": np.bool_(True)}


class NotJson(Function):
    def exec(self, args, ctx):
        return {"nan": float("nan")} if args and args[0] == "nan" else {"set": {1, 2}}


class Log(Function):
    def exec(self, args, ctx):
        ctx.logger.warning("hello %s", args[0])
        ctx.logger.debug("details")
        return None


class Publish(Function):
    async def exec(self, args, ctx):
        ctx.publish("test_published", {"x": args[0]})
        return None


class Metrics(Function):
    """Its own metrics; returns what the Context refused before sending."""

    def exec(self, args, ctx):
        ctx.metric_describe("lat", "histogram", "how long", [0.1, 1])
        ctx.metric_add("calls_total", 2, {"route": "/a"})
        ctx.metric_set("temp", 21.5)
        ctx.metric_observe("lat", 0.5)
        refused = []
        for bad in (lambda: ctx.metric_add("x", 1, {"k": 1}),
                    lambda: ctx.metric_add("x", "1"),
                    lambda: ctx.metric_add("", 1),
                    lambda: ctx.metric_describe("x", "summary")):
            try:
                bad()
            except ValueError as e:
                refused.append(str(e))
        return refused


class Sum(EstimatorReplacementPlugin):
    """Per item: the sum of the pixels inside the area, read through numpy."""

    broker_name = "peopleCountEstimator"

    def initialize(self, ctx):
        self.ready = True

    def estimate_batch(self, items, ctx):
        out = []
        for item in items:
            if item.options.get("fail"):
                out.append(RuntimeError("item failed"))
                continue
            arr = item.image.array()
            if item.area is not None:
                a = item.area
                arr = arr[a.y:a.y + a.height, a.x:a.x + a.width]
            out.append({"sum": int(arr.sum(dtype=np.int64)), "width": item.image.width,
                        "height": item.image.height, "readonly": not arr.flags.writeable,
                        "area": item.area, "ready": self.ready})
        return out


class Monitor(EventPlugin):
    event_name = "test_event"

    def handle_event(self, events, ctx):
        ctx.publish("seen", {"events": events})

    def close(self, ctx):
        print(f"event closed {ctx.instance_id}", flush=True)


class Teapot(BackgroundHandler):
    def get(self, request):
        return self.response(body="I'm a teapot", headers={"x-pot": "1"}, statusCode=418)

    def post(self, request):
        return {"echo": request.json(), "query": request.query}


def by_function(request):
    return {"method": request.method, "query": request.query, "x-test": request.headers.get("x-test")}


async def async_route(request):
    return Response(201, b"\x00\x01" + request.body, {"x-a": "1"})


class Background(BackgroundPlugin):
    def initialize(self, ctx):
        self.add_route("/teapot", Teapot)
        self.add_route("/fn", by_function, methods={"get"})
        self.add_route("/async", async_route)

    async def start(self, ctx):
        ctx.logger.info("background started")

    def close(self, ctx):
        print(f"background closed {ctx.instance_id}", flush=True)


class Counter(Source):
    """Emits count messages, one every 20 ms, until stopped."""

    def configure(self, datasource, conf):
        self.datasource = datasource
        self.count = conf.get("count", 3)

    def open(self, ctx):
        for n in range(self.count):
            if ctx.stopped:
                return
            ctx.emit({"n": n, "ds": self.datasource})
            time.sleep(0.02)

    def close(self, ctx):
        print(f"source closed {ctx.instance_id}", flush=True)


class AsyncBytes(Source):
    """An async source: 70 000-byte payloads (shared memory) until stopped."""

    async def open(self, ctx):
        n = 0
        while True:
            ctx.emit({"n": n, "payload": bytes([n]) * 70000})
            n += 1
            await asyncio.sleep(0.02)


class Collector(Sink):
    def configure(self, conf):
        self.tag = conf.get("tag", "")

    def connect(self, ctx):
        self.connected = True

    def collect(self, ctx, data):
        ctx.publish("collected", {"tag": self.tag, "data": data, "connected": self.connected})

    def close(self, ctx):
        print(f"sink closed {ctx.instance_id}", flush=True)


if __name__ == "__main__":
    plugin.start(PluginConfig(
        "testplugin",
        sources={"counter": Counter, "abytes": AsyncBytes},
        sinks={"collector": Collector},
        functions={"echo": Echo, "aecho": AsyncEcho(), "describe": Describe, "reverse": Reverse,
                   "fail": Fail, "sleep": Sleep, "asleep": AsyncSleep, "agg": Aggregate,
                   "numpy": Numpy, "notjson": NotJson, "log": Log, "publish": Publish,
                   "metrics": Metrics},
        events={"monitor": Monitor},
        backgrounds={"bg": Background},
        estimators={"sum": Sum},
        version="v1.2.3"))
