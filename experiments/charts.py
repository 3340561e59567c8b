"""Chart data: metric histories shaped for Plotly, long ones downsampled on the server.

Downsampling keeps each bucket's minimum and maximum (in epoch order), so spikes and the
best value survive: a 100,000-epoch history becomes at most ``MAX_POINTS`` points that look
the same on a chart. Exports (CSV, metrics.json) always use the full histories.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from csp.constants import UNSAFE_EVAL
from csp.decorators import csp_update

from experiments.files import is_checkpoint
from experiments.models.summary import is_epoch_metric
from experiments.pipeline.execution import STAGES

MAX_POINTS = 2000
View = TypeVar("View", bound=Callable[..., Any])


# For the views of the pages that draw parallel coordinates (the experiment page, a sweep's page):
# Plotly draws them with WebGL through regl, which compiles its draw calls with ``Function``, so those
# pages, and no other, allow eval. Inline script and handlers stay blocked there too, so markup from
# data still cannot run; every other chart is SVG (``scatter``, not ``scattergl``) and needs nothing.
# Plotly's strict bundle would need none of it, but the plotly package ships only plotly.min.js.
def webgl_charts(view: View) -> View:
    """Decorate the view of a page that draws parallel coordinates: its policy allows eval (see above)."""
    return cast(View, csp_update({"script-src": [UNSAFE_EVAL]})(view))


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


# The system sampler's record of when each epoch ended (seconds from the run's start), when it ran.
EPOCH_ENDS = "system/epoch_end"


def epoch_seconds(
    histories: Mapping[str, Sequence[float | None]],
    elapsed: Mapping[str, Any] | None,
    started_at: dt.datetime | None,
    finished_at: dt.datetime | None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """When each epoch ended, in seconds from the run's start: the x of the charts' "wall time" axis.

    ``{"seconds": [...], "measured": True}`` from the system sampler's epoch ends when the run has
    them; otherwise estimated (``measured`` False): the fit stage's time (from ``metrics.json``, or
    the time since the run started while it trains) spread evenly over its epochs, after the stages
    before it. Epochs of one Keras fit take about the same time, so the estimate lines runs up by
    how long they took; a run with nothing to go by has ``seconds`` empty.
    """
    epochs = max((len(values) for name, values in histories.items() if is_epoch_metric(name)), default=0)
    ends = [value for value in histories.get(EPOCH_ENDS, []) if isinstance(value, (int, float))]
    if epochs and len(ends) >= epochs:
        return {"seconds": [round(float(value), 3) for value in ends[:epochs]], "measured": True}
    stages = {key: value for key, value in (elapsed or {}).items() if isinstance(value, (int, float))}
    if epochs and stages.get("fit_model"):
        before = sum(stages.get(stage, 0.0) for stage in STAGES[: STAGES.index("fit_model")])
        step = float(stages["fit_model"]) / epochs
    elif epochs and started_at is not None:
        end = finished_at or now or dt.datetime.now(dt.UTC)
        before, step = 0.0, max(0.0, (end - started_at).total_seconds()) / epochs
    else:
        return {"seconds": [], "measured": False}
    return {"seconds": [round(before + step * (index + 1), 3) for index in range(epochs)], "measured": False}
