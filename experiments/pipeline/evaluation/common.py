"""What the classification and regression reports share: the notes on what could not be computed,
JSON-safe numbers, and curves kept at a bounded resolution.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_CURVE_POINTS = 1_000  # per curve, in evaluation.json


class Notes:
    """What the report could not compute, and why: ``[{"what": "roc", "why": "..."}]`` in evaluation.json."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, what: str, why: str) -> None:
        self.items.append({"what": what, "why": why})


def number(value: Any) -> float | None:
    """A float JSON can hold: NaN and infinities become None (evaluation.json stays strict JSON)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def numbers(values: Any) -> list[float | None]:
    return [number(value) for value in np.asarray(values, dtype="float64").ravel()]


def downsample(*series: np.ndarray, limit: int = MAX_CURVE_POINTS) -> list[list[float | None]]:
    """Parallel arrays cut to at most ``limit`` points, evenly spaced, the first and last always kept.

    A curve from scikit-learn is ordered (by threshold), so keeping every k-th point keeps its shape.

    >>> downsample(np.arange(5.0), np.arange(5.0) * 2, limit=3)
    [[0.0, 2.0, 4.0], [0.0, 4.0, 8.0]]
    """
    length = len(series[0])
    if length > limit:
        keep = np.unique(np.linspace(0, length - 1, limit).round().astype(int))
        series = tuple(np.asarray(values)[keep] for values in series)
    return [numbers(values) for values in series]


def label_list(names: list[str], limit: int = 5) -> str:
    """``'a', 'b' and 3 more``: a few names for a message."""
    shown = ", ".join(f"'{name}'" for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
