"""Per-step metrics: ``steps.h5`` beside the seed's files, written while the run trains, read by range.

``training.log_every_steps: N`` (N > 0) has the engine append ``(step, value)`` every N training steps
(batches, counted from 1 over the whole run) for each metric Keras logs per batch. The file (HDF5, through
h5py)::

    metrics/<name>/step      int64,   appendable, chunked
    metrics/<name>/value     float64, appendable, chunked
    metrics/<name>/summary   float64 [count, min, max, last] (NaN ignored), rewritten at each flush
    epochs                   int64: the step at which each epoch ended

Points are kept in memory and written every ``flush_points`` points or every ``flush_seconds``, and at
each epoch's end: a reader sees the run while it trains, and a crash loses at most what was not yet
flushed. The file is written in HDF5's single-writer/multiple-reader mode (SWMR), which orders its writes
so that a reader opening it at any moment sees a consistent file; and since nothing is written between
flushes, a process killed there leaves the file as of its last flush.

What Keras 3 logs at a batch's end is the epoch's running mean so far (as TensorBoard's ``update_freq``
records it): the last step of an epoch holds the epoch's value in metrics.json.

``m4_indices`` is the downsampling the charts use (M4: first, last, min and max of each bucket), so that
every extreme a pixel column can show is kept; ``read_series`` reads a range of a series through it,
in blocks, never the whole series at once.
"""

from __future__ import annotations

import math
from typing import Any

import h5py
import numpy as np

from gymnos_track.steps import STEPS_FILE, Points, StepWriter

__all__ = ["STEPS_FILE", "Points", "StepWriter", "read_series", "summaries", "m4_indices", "thinned"]  # one writer

BLOCK = 1 << 20  # points read at a time when downsampling: bounds the reader's memory (~16 MiB)
MAX_EPOCH_MARKS = 10_000  # epoch boundaries returned with a series at most


# --- reading ---------------------------------------------------------------------------------


def bucket_edges(count: int, buckets: int) -> np.ndarray:
    """The ``buckets + 1`` edges splitting ``count`` points into near-equal buckets (by index)."""
    return (np.arange(buckets + 1, dtype=np.int64) * count) // buckets


def m4_indices(values: np.ndarray, buckets: int) -> np.ndarray:
    """The sorted indices M4 keeps of ``values``: each bucket's first, last, lowest and highest point.

    NaN is skipped for min and max (a bucket all NaN keeps its first and last). With ``buckets`` at least
    a quarter of the points, every point is kept::

        m4_indices(np.array([0.0, 5.0, 1.0, 2.0, -3.0, 0.0]), 1)   # array([0, 1, 4, 5])
    """
    count = len(values)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    edges = bucket_edges(count, max(1, min(buckets, count)))
    chosen: list[int] = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        if high <= low:
            continue
        part = values[low:high]
        chosen += [int(low), int(high) - 1]
        if not np.isnan(part).all():
            chosen += [int(low + np.nanargmin(part)), int(low + np.nanargmax(part))]
    return np.unique(np.asarray(chosen, dtype=np.int64))


def thinned(points: Points, per_metric: int) -> Points:
    """At most about ``per_metric`` of each metric's points, chosen by M4 (each stretch's first, last, lowest and
    highest), so a spike survives: what the trackers get of a flush (``TrackerSet.log_steps``)."""
    found: Points = {}
    for name, (steps, values) in points.items():
        if len(steps) <= per_metric:
            found[name] = (steps, values)
            continue
        kept = m4_indices(np.asarray(values, dtype=np.float64), max(1, per_metric // 4))
        found[name] = ([steps[i] for i in kept], [values[i] for i in kept])
    return found


def _first_at_least(steps: h5py.Dataset, step: int) -> int:
    """The index of the first point whose step is >= ``step`` (steps only grow): a binary search on the file."""
    low, high = 0, steps.shape[0]
    while low < high:
        middle = (low + high) // 2
        if int(steps[middle]) < step:
            low = middle + 1
        else:
            high = middle
    return low


def read_series(
    file: h5py.File, metric: str, start: int | None = None, end: int | None = None, points: int = 2000
) -> dict[str, Any]:
    """The points of ``metric`` with ``start <= step <= end`` (None: open), at most about ``points`` of them.

    A range of at most ``points`` points comes whole; a longer one as M4 keeps it (``points // 4`` buckets).
    Raises KeyError for a metric the file does not hold. Returns ``{"step", "value", "epochs",
    "downsampled", "count"}`` (``count``: the points in the range; NaN and infinities as None).
    """
    group = file["metrics"][metric] if "/" not in metric and metric not in {"", ".", ".."} else None
    if not isinstance(group, h5py.Group) or not isinstance(group.get("step"), h5py.Dataset):
        raise KeyError(metric)
    steps, values = group["step"], group["value"]
    length = min(steps.shape[0], values.shape[0])  # a reader may see one resized before the other
    first = 0 if start is None else _first_at_least(steps, start)
    last = length if end is None else _first_at_least(steps, end + 1)
    first, last = min(first, length), min(max(last, first), length)
    count = last - first
    if count <= points:
        chosen_steps, chosen_values = steps[first:last], values[first:last]
    else:
        chosen_steps, chosen_values = _downsampled(steps, values, first, last, max(1, points // 4))
    return {
        "step": [int(step) for step in chosen_steps],
        "value": [float(value) if math.isfinite(value) else None for value in chosen_values],
        "epochs": _epochs(file, start, end),
        "downsampled": count > points,
        "count": count,
    }


def _downsampled(
    steps: h5py.Dataset, values: h5py.Dataset, first: int, last: int, buckets: int
) -> tuple[np.ndarray, np.ndarray]:
    """M4 over ``[first, last)``, read a group of whole buckets at a time (about ``BLOCK`` points)."""
    edges = bucket_edges(last - first, buckets) + first
    per_read = max(1, buckets * BLOCK // (last - first))
    kept_steps, kept_values = [], []
    for group_start in range(0, buckets, per_read):
        group_edges = edges[group_start : group_start + per_read + 1]
        low, high = int(group_edges[0]), int(group_edges[-1])
        block = values[low:high]
        bounds = zip(group_edges[:-1] - low, group_edges[1:] - low, strict=True)
        indices = np.concatenate([m4_indices(block[a:b], 1) + a for a, b in bounds])
        kept_values.append(block[indices])
        kept_steps.append(steps[low:high][indices])
    return np.concatenate(kept_steps), np.concatenate(kept_values)


def _epochs(file: h5py.File, start: int | None, end: int | None) -> list[int]:
    marks = file["epochs"][:] if "epochs" in file else np.zeros(0, dtype=np.int64)
    if start is not None:
        marks = marks[marks >= start]
    if end is not None:
        marks = marks[marks <= end]
    return [int(mark) for mark in marks[:MAX_EPOCH_MARKS]]


def summaries(file: h5py.File) -> dict[str, dict[str, float | int | None]]:
    """Per metric ``{"count", "min", "max", "last"}`` from the summaries the writer keeps (nothing else read)."""
    found: dict[str, dict[str, float | int | None]] = {}
    for name, group in file.get("metrics", {}).items():
        if not isinstance(group, h5py.Group) or "summary" not in group:
            continue
        count, low, high, last = (float(value) for value in group["summary"][:4])
        found[name] = {
            "count": int(count),
            "min": low if math.isfinite(low) else None,
            "max": high if math.isfinite(high) else None,
            "last": last if math.isfinite(last) else None,
        }
    return found
