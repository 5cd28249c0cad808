#!/usr/bin/env python3
"""A test plugin for the supervisor: slow calls, its pid, an echo, a failure."""
import asyncio
import os

from inferd import Function, PluginConfig, plugin


class Sleepy(Function):
    async def exec(self, args, ctx):
        await asyncio.sleep(args[0] / 1000)
        return args[0]


class WhoAmI(Function):
    def exec(self, args, ctx):
        return os.getpid()


class Echo(Function):
    def exec(self, args, ctx):
        return args[0]


class Fails(Function):
    def exec(self, args, ctx):
        raise RuntimeError(str(args[0]))


if __name__ == "__main__":
    plugin.start(PluginConfig("slow", functions={
        "sleepy": Sleepy, "whoami": WhoAmI, "echo": Echo, "fails": Fails}))
