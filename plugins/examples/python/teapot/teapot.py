"""The teapot: the seed's background plugin, portable.

Routes, added at initialize:
  GET /teapot              418 "I am teapot"     (a handler class)
  GET /teapot/version      200 "T800"            (a plain function)
  GET /teapot/temperature  200 {"temperature": n} (a bound method: to watch the work)
and background work: start() launches an asyncio task that warms the water
one degree every intervalMs (default 1000) up to 100, saying so in the log;
close() cancels it.
"""

import asyncio
from typing import Optional

from inferd import BackgroundHandler, BackgroundPlugin, Context, Request, Response


class TeapotHandler(BackgroundHandler):
    """Handler example: one method per HTTP method it answers (others get 405)."""

    async def get(self, request: Request) -> Response:
        return self.response(body="I am teapot", headers={"Content-Type": "text/plain"},
                             status_code=418)


def version_handler(request: Request) -> Response:
    """Standalone handler example: a plain function (run on the SDK's thread pool)."""
    return Response(status=200, body="T800", headers={"Content-Type": "text/plain"})


class Teapot(BackgroundPlugin):
    """Background plugin example: a background task and three routes."""

    def __init__(self) -> None:
        self.task: Optional[asyncio.Task] = None
        self.temperature = 0
        self.interval_s = 1.0

    async def initialize(self, ctx: Context) -> None:
        interval = ctx.props.get("intervalMs", 1000)
        try:
            self.interval_s = float(interval) / 1000.0
        except (TypeError, ValueError):
            self.interval_s = 0.0
        if not self.interval_s > 0:
            raise ValueError("intervalMs must be a positive number of milliseconds, "
                             f"not {interval!r}")
        self.add_route("/teapot", TeapotHandler)
        self.add_route("/teapot/version", version_handler, methods={"get"})
        self.add_route("/teapot/temperature", self.get_temperature, methods={"get"})

    def get_temperature(self, request: Request) -> dict:
        return {"temperature": self.temperature}

    async def useful_job(self, ctx: Context) -> None:
        """Some useful async work: boil the water."""
        while True:
            await asyncio.sleep(self.interval_s)
            self.temperature = min(100, self.temperature + 1)
            if self.temperature < 100:
                ctx.logger.info("I boil water, temperature: %d", self.temperature)
            else:
                ctx.logger.info("boiling water is ready, would you care for a cup of tea?")
                return  # nothing more to do (the seed kept saying so every second)

    async def start(self, ctx: Context) -> None:
        # async def: runs on the SDK's event loop, so the task lives there.
        # Start the work and return at once: the host waits for start().
        self.task = asyncio.create_task(self.useful_job(ctx))

    async def close(self, ctx: Context) -> None:
        if self.task:
            self.task.cancel()
            self.task = None
