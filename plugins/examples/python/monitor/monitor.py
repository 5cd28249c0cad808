"""The request monitoring event plugin of the seed, portable.

It receives the monitoring_event the daemon publishes for every finished
request, a point {"series": "request", "tags": {...}, "fields": {...},
"time": epoch seconds}, and posts each one as JSON to a monitoring service:
POST {url}/{bucket}/objects. At initialize it creates the bucket with
POST {url}?bucket={bucket} (201 created, or 409 already there).

It runs in its own process, fed in batches by the daemon's event bus: a slow
or absent monitoring service slows no request. Properties (the plugin's
settings): url, bucket, timeoutMs.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

from inferd import Context, EventPlugin

DEFAULT_URL = "http://127.0.0.1:5020/1/buckets"
DEFAULT_BUCKET = "plugin_test_bucket"
REPLY_MAX = 512  # what is kept of an answer, for messages


class RequestMonitoringPlugin(EventPlugin):
    """Sends request monitoring data (one POST per point) to a third-party service."""

    event_name = "monitoring_event"

    def __init__(self) -> None:
        self.url = DEFAULT_URL
        self.bucket = DEFAULT_BUCKET
        self.timeout_s = 5.0

    def post(self, url: str, body: Optional[Any]) -> tuple[int, str]:
        """POSTs body (JSON, or nothing when None); (status, start of the answer).

        An HTTP error status is an answer like any other; only a failure to
        get an answer at all (refused, timed out) raises."""
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        headers = {} if body is None else {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                return resp.status, resp.read(REPLY_MAX).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(REPLY_MAX).decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RuntimeError(f"POST {url}: {reason}") from None

    def initialize(self, ctx: Context) -> None:
        """Creates the bucket (a plain method: the SDK runs it on its thread pool)."""
        self.url = str(ctx.props.get("url", DEFAULT_URL)).rstrip("/")
        self.bucket = str(ctx.props.get("bucket", DEFAULT_BUCKET))
        try:
            self.timeout_s = float(ctx.props.get("timeoutMs", 5000)) / 1000.0
        except (TypeError, ValueError):
            raise ValueError(f"timeoutMs must be a number of milliseconds, "
                             f"not {ctx.props.get('timeoutMs')!r}") from None
        bucket_url = f"{self.url}?bucket={urllib.parse.quote(self.bucket)}"
        status, answer = self.post(bucket_url, None)
        if status not in (201, 409):
            raise RuntimeError(f"failed to create bucket {self.bucket}: POST {bucket_url} "
                               f"answered {status}, response: {answer}")

    def handle_event(self, points: list, ctx: Context) -> None:
        """A batch: every point in order; the first that fails fails the batch
        (the rest would most likely meet the same dead service, one timeout each)."""
        for i, point in enumerate(points, 1):
            try:
                self.flush_point(point, ctx)
            except Exception as exc:
                raise RuntimeError(f"point {i} of {len(points)}: {exc}") from None

    def flush_point(self, point: Any, ctx: Context) -> None:
        """Callback for sending one request's monitoring data."""
        if not isinstance(point, dict):
            raise TypeError(f"a point is a JSON object, not {type(point).__name__}")
        ctx.logger.debug("point series %s, time %s", point.get("series"), point.get("time"))
        # The seed's {"tags", "fields"}, with the series and time when there.
        msg = {k: point[k] for k in ("tags", "fields", "series", "time") if k in point}
        url = f"{self.url}/{urllib.parse.quote(self.bucket)}/objects"
        status, answer = self.post(url, msg)
        if not 200 <= status <= 299:
            raise RuntimeError(f"POST {url} answered {status}: {answer}")
        ctx.logger.debug("%d %s", status, answer)
