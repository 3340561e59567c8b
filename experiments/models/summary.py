"""What a metric's history sums up to: its last and best values, which way is better, and its chart.

Pure functions, shared by the index (``Execution.set_metrics``, ``MetricHistory``'s chart copy), the
tables that sort by a metric, the charts and anything that picks a best run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# The most points a chart draws of one history (MetricHistory.chart keeps that many).
MAX_POINTS = 2000

# Metrics where a larger value is better; every other metric (losses, errors) is minimised.
# Matched as substrings of the name without its val_/test_ prefix, like Keras' "auto" mode.
_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "r2", "iou")


def higher_is_better(metric: str) -> bool:
    """``val_accuracy`` -> True, ``loss`` and ``mean_absolute_error`` -> False."""
    base = metric.removeprefix("val_").removeprefix("test_").lower()
    return any(word in base for word in _HIGHER_IS_BETTER)


def is_epoch_metric(name: str) -> bool:
    """A history with one value per epoch: not ``test_*`` (one value), nor a group's series such as
    ``system/cpu_percent`` (sampled in time, not by epoch)."""
    return not name.startswith("test_") and "/" not in name


def summarise(values: Sequence[float | None], metric: str) -> dict[str, float | int | None]:
    """``{"last": ..., "best": ..., "best_epoch": ...}`` of one history (epochs count from 1).

    Nulls (NaN or Infinity in the folder) are skipped; a history with no number has ``None``s.
    """
    numbers = [(index, value) for index, value in enumerate(values) if value is not None]
    if not numbers:
        return {"last": None, "best": None, "best_epoch": None}
    pick = max if higher_is_better(metric) else min
    best_index, best = pick(numbers, key=lambda pair: pair[1])
    return {"last": numbers[-1][1], "best": best, "best_epoch": best_index + 1}


def finite_or_none(value: object) -> float | None:
    """JSON columns cannot hold NaN or Infinity (PostgreSQL rejects them): they become null."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def downsample(values: Sequence[float | None], max_points: int = MAX_POINTS) -> tuple[list[int], list[float | None]]:
    """``(epochs, values)`` with epochs counted from 1, at most ``max_points`` long.

    >>> downsample([5, 1, 4, 9, 2, 3], max_points=4)  # two buckets of three: each keeps its max and min
    ([1, 2, 4, 5], [5, 1, 9, 2])

    ``None`` (NaN in the run) is kept as a gap when a whole bucket is ``None``.
    """
    count = len(values)
    if count <= max_points:
        return list(range(1, count + 1)), list(values)
    buckets = max(max_points // 2, 1)
    size = math.ceil(count / buckets)
    xs: list[int] = []
    ys: list[float | None] = []
    for start in range(0, count, size):
        chunk = [
            (start + offset, value) for offset, value in enumerate(values[start : start + size]) if value is not None
        ]
        if not chunk:
            xs.append(start + 1)
            ys.append(None)
            continue
        low = min(chunk, key=lambda pair: pair[1])
        high = max(chunk, key=lambda pair: pair[1])
        for index, value in sorted({low, high}):
            xs.append(index + 1)
            ys.append(value)
    return xs, ys
