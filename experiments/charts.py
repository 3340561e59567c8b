"""Chart data: metric histories shaped for Plotly, long ones downsampled, read in bounded size.

Downsampling keeps each bucket's minimum and maximum (in epoch order), so spikes and the
best value survive: a 100,000-epoch history becomes at most ``MAX_POINTS`` points that look
the same on a chart. The index keeps that chart copy beside each history (``MetricHistory.chart``,
written with it), and the pages and the API read only the copy (``stored``) and single values
by epoch (``MetricHistory.objects.values_at``): a page of a run with millions of epochs reads a
few thousand numbers. Exports (the compare CSV, metrics.json) use the full histories, streamed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from experiments.files import is_checkpoint
from experiments.models import MetricHistory
from experiments.models.summary import MAX_POINTS, downsample, is_epoch_metric
from experiments.pipeline.evaluation.task import task_for
from experiments.pipeline.execution import STAGES

TASKS = ("classification", "regression")


# ``{"x": [epochs from 1], "y": [values], "points": how many values the whole history holds}``
Trace = dict[str, Any]


def trace(values: Sequence[float | None], max_points: int = MAX_POINTS) -> Trace:
    xs, ys = downsample(values, max_points)
    return {"x": xs, "y": ys, "points": len(values)}


def stored(execution_ids: Iterable[int], names: Iterable[str] | None = None) -> dict[int, dict[str, Trace]]:
    """Each run's histories as the index keeps them for charts (``MetricHistory.chart``): ``{id: {name: Trace}}``.

    The full ``values`` are not read: a run of three million epochs costs what one of two thousand does.
    """
    ids = list(execution_ids)
    found: dict[int, dict[str, Trace]] = {pk: {} for pk in ids}
    rows = MetricHistory.objects.filter(execution_id__in=ids)
    if names is not None:
        rows = rows.filter(name__in=list(names))
    for execution_id, name, length, chart in rows.values_list("execution_id", "name", "length", "chart"):
        found[execution_id][name] = {"x": chart.get("x", []), "y": chart.get("y", []), "points": length}
    return found


def shown_epochs(traces: Mapping[str, Trace]) -> set[int]:
    """The epochs the charts of these traces draw a point at."""
    return {epoch for name, found in traces.items() if is_epoch_metric(name) for epoch in found["x"]}


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


def execution_charts(traces: Mapping[str, Trace]) -> dict[str, dict[str, Trace]]:
    """``{"loss": {"train": trace, "val": trace}, ...}`` from ``{name: trace}``."""
    charts: dict[str, dict[str, Trace]] = {}
    for base in base_names(traces):
        chart: dict[str, Trace] = {}
        if base in traces:
            chart["train"] = traces[base]
        if f"val_{base}" in traces:
            chart["val"] = traces[f"val_{base}"]
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
    artifacts: Iterable[dict[str, Any]] | None, execution_id: int, url_for: Callable[[str], str | None]
) -> list[dict[str, Any]]:
    """Points to draw on the val_loss chart: ``{"x": epoch, "y": val_loss there, "url": download, "name": file}``.

    Each y is val_loss at the checkpoint's epoch, read by epoch (the history is not read whole).
    """
    found = [checkpoint for checkpoint in checkpoints(artifacts) if checkpoint["epoch"] is not None]
    if not found:
        return []
    at = MetricHistory.objects.values_at(execution_id, "val_loss", [checkpoint["epoch"] for checkpoint in found])
    return [
        {
            "x": checkpoint["epoch"],
            "y": at[checkpoint["epoch"]],
            "url": url_for(checkpoint["path"]),
            "name": checkpoint["path"].rsplit("/", 1)[-1],
        }
        for checkpoint in found
        if at.get(checkpoint["epoch"]) is not None
    ]


# The system sampler's record of when each epoch ended (seconds from the run's start), when it ran.
EPOCH_ENDS = "system/epoch_end"


def epoch_seconds(
    execution_id: int,
    traces: Mapping[str, Trace],
    elapsed: Mapping[str, Any] | None,
    started_at: dt.datetime | None,
    finished_at: dt.datetime | None,
    now: dt.datetime | None = None,
    also: Iterable[int] = (),
) -> dict[str, Any]:
    """When each epoch ended, in seconds from the run's start: the x of the charts' "wall time" axis.

    ``{"seconds": [...], "measured": True}`` from the system sampler's epoch ends when the run has
    them; otherwise estimated (``measured`` False): the fit stage's time (from ``metrics.json``, or
    the time since the run started while it trains) spread evenly over its epochs, after the stages
    before it. Epochs of one Keras fit take about the same time, so the estimate lines runs up by
    how long they took; a run with nothing to go by has ``seconds`` empty.

    A run of more than ``MAX_POINTS`` epochs gets only the epochs its charts draw (and ``also``, its
    checkpoints), as ``{"<epoch - 1>": seconds}``: the pages look up ``seconds[epoch - 1]``, which
    reads a list and such an object alike.
    """
    epochs = max((found["points"] for name, found in traces.items() if is_epoch_metric(name)), default=0)
    wanted = range(1, epochs + 1) if epochs <= MAX_POINTS else sorted(shown_epochs(traces) | set(also))
    ends = MetricHistory.objects.values_at(execution_id, EPOCH_ENDS, wanted) if epochs else {}
    measured = {epoch: round(float(end), 3) for epoch, end in ends.items() if isinstance(end, (int, float))}
    if epochs and len(measured) == len(wanted):
        return {"seconds": _by_epoch(measured, epochs), "measured": True}
    stages = {key: value for key, value in (elapsed or {}).items() if isinstance(value, (int, float))}
    if epochs and stages.get("fit_model"):
        before = sum(stages.get(stage, 0.0) for stage in STAGES[: STAGES.index("fit_model")])
        step = float(stages["fit_model"]) / epochs
    elif epochs and started_at is not None:
        end = finished_at or now or dt.datetime.now(dt.UTC)
        before, step = 0.0, max(0.0, (end - started_at).total_seconds()) / epochs
    else:
        return {"seconds": [], "measured": False}
    estimated = {epoch: round(before + step * epoch, 3) for epoch in wanted}
    return {"seconds": _by_epoch(estimated, epochs), "measured": False}


def _by_epoch(seconds: dict[int, float], epochs: int) -> list[float] | dict[str, float]:
    if epochs <= MAX_POINTS:
        return [seconds[epoch] for epoch in range(1, epochs + 1)]
    return {str(epoch - 1): value for epoch, value in seconds.items()}


# What a classifier's evaluation indexes (a confusion matrix comes with it), and a regressor's.
CLASSIFIER_HEADLINE = ("accuracy", "macro_f1", "roc_auc")
REGRESSOR_HEADLINE = ("r2", "rmse")


def plotly_bundle(configs_and_evaluations: Iterable[tuple[Any, dict[str, Any] | None]]) -> str:
    """Which of Plotly's bundles a page of these runs needs (static/vendor/plotly/README.md): ``"cartesian"``
    when one may show a confusion matrix (a heatmap), else ``"basic"`` (lines and bars, a fifth lighter).

    Each run is ``(config, evaluation)``: its evaluation's headline says what it was; before it has one, its
    config does (``experiment.task``, the loss, the last layer's activation). A config that says nothing
    readable gets the cartesian bundle, which draws everything a run's page may show.
    """
    for config, evaluation in configs_and_evaluations:
        if any(key in (evaluation or {}) for key in CLASSIFIER_HEADLINE):
            return "cartesian"
        if any(key in (evaluation or {}) for key in REGRESSOR_HEADLINE):
            continue
        if _may_classify(config):
            return "cartesian"
    return "basic"


def _may_classify(config: Any) -> bool:
    try:
        task = config.get("experiment", {}).get("task")
        model = config["model"]
        loss = model["compilation"]["loss"]
        activation = model["network"][-1].get("activation") or ""
        if not isinstance(loss, str) or not isinstance(activation, str) or task not in (None, *TASKS):
            return True
    except (AttributeError, KeyError, IndexError, TypeError):
        return True
    return task_for(task, loss, activation)[0] == "classification"
