"""A portable source and sink for the streams and rules tests
(tests/integration/test_rules_api.sh)."""
import json
import time

from inferd import Context, Function, PluginConfig, Sink, Source, plugin


class Ticker(Source):
    """Emits props["count"] messages, numbered from 0, then nothing."""

    def configure(self, datasource: str, conf: dict) -> None:
        self.datasource = datasource
        self.count = int(conf.get("count", 3))

    def open(self, ctx: Context) -> None:
        for i in range(self.count):
            ctx.emit({"i": i, "datasource": self.datasource})


class JsonFile(Sink):
    """Appends what it collects to props["path"], one JSON document a line."""

    def configure(self, conf: dict) -> None:
        self.path = conf["path"]

    def collect(self, ctx: Context, data) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(data, sort_keys=True) + "\n")


class Scale(Function):
    """scale(x, k) = x * k. Its validate sees the rule's literals (other
    arguments come as None) and refuses a k that is not a number."""

    def validate(self, args: list) -> str:
        k = args[1]
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, float))):
            return f"scale: k must be a number, got {k!r}"
        return ""

    def exec(self, args: list, ctx: Context):
        return args[0] * args[1]


class SleepMs(Function):
    """sleep_ms(ms): a slow function, to show that a rule stopping during a
    call holds nothing else."""

    def exec(self, args: list, ctx: Context):
        time.sleep(args[0] / 1000)
        return args[0]


class SlowCheck(Function):
    """slow_check(x, ms) = x. Its validate takes ms milliseconds (a literal):
    a plugin slow to check one rule holds no other call into the rules
    API."""

    def validate(self, args: list) -> str:
        if isinstance(args[1], (int, float)):
            time.sleep(args[1] / 1000)
        return ""

    def exec(self, args: list, ctx: Context):
        return args[0]


plugin.start(PluginConfig("streamkit", sources={"ticker": Ticker}, sinks={"jsonfile": JsonFile},
                          functions={"scale": Scale, "sleep_ms": SleepMs,
                                     "slow_check": SlowCheck}))
