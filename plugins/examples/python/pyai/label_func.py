"""labelImage as an inferd function: the business logic (label.py) wrapped
in the SDK's Function interface, as the seed's label_func.py."""

import time
from typing import Any, List

from inferd import Context, Function

from label import label


class LabelImageFunc(Function):
    """labelImage(image bytes) -> [{"confidence", "label"}], best first."""

    def validate(self, args: List[Any]) -> str:
        if len(args) != 1:
            return "invalid arg length: labelImage takes one argument, the image's bytes"
        return ""

    def exec(self, args: List[Any], ctx: Context) -> Any:
        # A plain method: the SDK runs it on its thread pool, so decoding a
        # large image never delays the daemon's heartbeat.
        start = time.monotonic()
        labels = label(args[0])
        # Its own counter: /metrics shows it as inferd_plugin_count.
        ctx.count("labelled")
        # Its own metrics, as inferd_plugin_pyai_<name>{instance=...}: the
        # best label's count (a counter with a label) and the time it took
        # (a histogram).
        best = labels[0]["label"] if labels else "none"
        ctx.metric_add("labels_total", 1, {"label": best})
        ctx.metric_observe("label_seconds", time.monotonic() - start)
        return labels

    def is_aggregate(self) -> bool:
        return False


# One instance, handed out for every open (it keeps no state).
labelIns = LabelImageFunc()
