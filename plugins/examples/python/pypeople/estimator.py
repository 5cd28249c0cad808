"""numpyPeopleCount: the seed's people-count estimator replacement, portable.

It replaces the daemon's built-in peopleCountEstimator (broker_name), so
requests, options and answers stay the same: per image {"count", "points"}
for targets T1 (the default), {"count"} for T2, looking only inside the
request's detect area when there is one (points in whole-image pixels).
"""

from typing import Any

from inferd import Context, EstimateItem, EstimatorReplacementPlugin

from count import count_people


class NumpyPeopleCount(EstimatorReplacementPlugin):
    """Counts bright dots with numpy (count.py) in place of the density network."""

    broker_name = "peopleCountEstimator"

    def initialize(self, ctx: Context) -> None:
        # The seed loads its ONNX model here; this "model" is a threshold.
        ctx.logger.info("numpyPeopleCount replaces %s", self.broker_name)

    def estimate_batch(self, items: list[EstimateItem], ctx: Context) -> list[Any]:
        """One result per item; a failing item gets its exception, the others
        still get their results. A plain method: it runs on the SDK's thread pool."""
        results: list[Any] = []
        for item in items:
            try:
                area = item.area
                results.append(count_people(
                    item.image.array(),
                    None if area is None else (area.x, area.y, area.width, area.height),
                    str(item.options.get("targets", "T1"))))
            except Exception as exc:
                results.append(exc)
        return results
