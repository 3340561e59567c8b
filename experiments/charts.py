"""Chart data: metric histories shaped for Plotly, long ones downsampled on the server.

Downsampling keeps each bucket's minimum and maximum (in epoch order), so spikes and the
best value survive: a 100,000-epoch history becomes at most ``MAX_POINTS`` points that look
the same on a chart. Exports (CSV, metrics.json) always use the full histories.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from experiments.files import is_checkpoint
from experiments.models.summary import is_epoch_metric

MAX_POINTS = 2000


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


def trace(values: Sequence[float | None], max_points: int = MAX_POINTS) -> dict[str, Any]:
    xs, ys = downsample(values, max_points)
    return {"x": xs, "y": ys, "points": len(values)}


def base_names(names: Iterable[str]) -> list[str]:
    """Chart names of per-epoch metrics: ``val_loss`` and ``loss`` share the ``loss`` chart; ``test_*`` has none."""
    bases = []
    for name in names:
        if not is_epoch_metric(name):
            continue
        base = name.removeprefix("val_")
        if base not in bases:
            bases.append(base)
    return sorted(bases, key=lambda base: (base != "loss", base))


def execution_charts(
    histories: Mapping[str, Sequence[float | None]], max_points: int = MAX_POINTS
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"loss": {"train": trace, "val": trace}, ...}`` from ``{name: values}``."""
    charts: dict[str, dict[str, dict[str, Any]]] = {}
    for base in base_names(histories):
        chart: dict[str, dict[str, Any]] = {}
        if base in histories:
            chart["train"] = trace(histories[base], max_points)
        if f"val_{base}" in histories:
            chart["val"] = trace(histories[f"val_{base}"], max_points)
        charts[base] = chart
    return charts


_EPOCH = re.compile(r"(\d+)")


def checkpoint_epoch(path: str) -> int | None:
    """The epoch in a checkpoint's file name: ``weights.05-27.07.h5`` -> 5 (None if it names none)."""
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]  # not the 5 of ".h5"
    match = _EPOCH.search(stem)
    return int(match.group(1)) if match else None


def checkpoints(artifacts: Iterable[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Checkpoint files with the epoch each was saved at.

    A checkpoint is a file under ``callbacks/`` ending ``.h5``, ``.keras`` or ``.hdf5``.
    """
    found: list[dict[str, Any]] = []
    for artifact in artifacts or []:
        path = artifact.get("path", "")
        if is_checkpoint(path):
            found.append({"path": path, "bytes": artifact.get("bytes"), "epoch": checkpoint_epoch(path)})
    return found


def checkpoint_markers(
    artifacts: Iterable[dict[str, Any]] | None, val_loss: Sequence[float | None], url_for: Callable[[str], str | None]
) -> list[dict[str, Any]]:
    """Points to draw on the val_loss chart: ``{"x": epoch, "y": val_loss there, "url": download, "name": file}``."""
    markers: list[dict[str, Any]] = []
    for checkpoint in checkpoints(artifacts):
        epoch = checkpoint["epoch"]
        if epoch is None or not 1 <= epoch <= len(val_loss) or val_loss[epoch - 1] is None:
            continue
        markers.append(
            {
                "x": epoch,
                "y": val_loss[epoch - 1],
                "url": url_for(checkpoint["path"]),
                "name": checkpoint["path"].rsplit("/", 1)[-1],
            }
        )
    return markers
