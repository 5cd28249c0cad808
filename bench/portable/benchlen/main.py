#!/usr/bin/env python3
"""bench/portable's plugin: benchLen returns the length of its payload's bytes.

The work is as small as the payload allows, so that bench/portable measures
what a call costs to carry, not what it does: bytes (memfd or inline blob)
and a JSON string are only measured; a base64 string is decoded first, as a
plugin receiving images the eKuiper way (base64 in the JSON) must do before
it can touch a pixel. A plain method, so it runs on the SDK's thread pool like
most plugins' code.
"""
import base64
from typing import Any

from inferd import Context, Function, PluginConfig, plugin


class BenchLen(Function):
    def validate(self, args: list) -> str:
        if len(args) != 2 or args[1] not in ("raw", "base64"):
            return 'benchLen takes [payload, "raw" | "base64"]'
        return ""

    def exec(self, args: list, ctx: Context) -> Any:
        payload, encoding = args
        if encoding == "base64":
            return len(base64.b64decode(payload))
        return len(payload)


if __name__ == "__main__":
    plugin.start(PluginConfig("benchlen", functions={"benchLen": BenchLen}))
