"""A run's system metrics as the pages and the API serve them: from its folder while it trains, from the index after.

While a run is queued or running the index does not have its samples yet (sync reads the file when
the run ends), so they are read from ``system_metrics.jsonl`` through the one bounded reader (``files``), and a page
polling for more asks from the byte ``offset`` it was last given: it gets only what was appended.
Once the run ended, the index's ``system/...`` histories answer (the folder may be gone by then),
and the file only if the index has none yet.
"""

from __future__ import annotations

from typing import Any

from experiments import charts, files
from experiments.models import LIVE, Execution, MetricHistory
from experiments.system.reading import Series, read_file

PREFIX = "system/"
# The field a comparison shows first: what most often decides whether a run fits on a machine.
DEFAULT_METRIC = "memory_mb"


def from_index(histories: dict[str, list[float | None]], summary: dict[str, Any] | None = None) -> Series | None:
    """A Series from the index's ``system/...`` histories (None when there are none)."""
    times = histories.get(PREFIX + "time")
    if times is None:
        return None
    kept = [index for index, value in enumerate(times) if value is not None]  # sync writes none; stay aligned anyway
    series = Series(
        time=[float(value) for value in times if value is not None],
        epoch_ends=[float(value) for value in histories.get(PREFIX + "epoch_end", []) if value is not None],
    )
    series.fields = {
        name.removeprefix(PREFIX): [values[index] if index < len(values) else None for index in kept]
        for name, values in histories.items()
        if name.startswith(PREFIX) and name not in (PREFIX + "time", PREFIX + "epoch_end")
    }
    summary = summary or {}
    series.samples = int(summary.get("samples") or len(series.time))
    series.interval = summary.get("interval_s")
    return series


def _index_histories(execution_ids: list[int], names: list[str] | None = None) -> dict[int, dict[str, Any]]:
    rows = MetricHistory.objects.filter(execution_id__in=execution_ids)
    rows = rows.filter(name__in=names) if names is not None else rows.filter(name__startswith=PREFIX)
    found: dict[int, dict[str, Any]] = {pk: {} for pk in execution_ids}
    for execution_id, name, values in rows.values_list("execution_id", "name", "values"):
        found[execution_id][name] = values
    return found


def from_file(execution: Execution, offset: int = 0) -> Series | None:
    """The run's file read from ``offset`` (None when it has none that may be read)."""
    folder = files.execution_folder(execution)
    if folder is None:
        return None
    try:
        return read_file(folder, offset)
    except (OSError, files.Refused):
        return None


def load(execution: Execution, offset: int = 0) -> tuple[Series | None, str]:
    """``(series, source)``: source is ``"file"``, ``"index"`` or ``"none"``."""
    if execution.status not in LIVE:
        series = from_index(_index_histories([execution.pk])[execution.pk], execution.system)
        if series is not None:
            return series, "index"
    series = from_file(execution, offset)
    return (series, "file") if series is not None else (None, "none")


def summary_of(execution: Execution, series: Series | None, source: str) -> dict[str, Any]:
    if source == "index":
        return dict(execution.system or {})
    return series.summary() if series is not None else {}


def _chart_trace(times: list[float], values: list[float | None], downsample: bool) -> dict[str, Any]:
    if not downsample:
        return {"x": times, "y": values}
    indexes, ys = charts.downsample(values)
    return {"x": [times[index - 1] for index in indexes], "y": ys}


def page_payload(execution: Execution, offset: int | None = None) -> dict[str, Any]:
    """What the System panel polls: each field's trace (downsampled to charts.MAX_POINTS for a first load),
    the epoch ends, the summary; ``append`` when only what follows ``offset`` was read."""
    live = execution.status in LIVE
    series, source = load(execution, (offset or 0) if live else 0)
    append = source == "file" and series is not None and series.start > 0
    if series is None:
        return {
            "live": live,
            "source": source,
            "append": False,
            "offset": None,
            "interval": None,
            "series": {},
            "epoch_ends": [],
            "summary": {},
        }
    return {
        "live": live,
        "source": source,
        "append": append,
        "offset": series.offset if source == "file" else None,
        "interval": series.interval,
        "series": {
            name: _chart_trace(series.time, values, downsample=not append) for name, values in series.fields.items()
        },
        "epoch_ends": series.epoch_ends,
        "summary": summary_of(execution, series, source) if not append else {},
    }


def api_payload(execution: Execution) -> dict[str, Any]:
    """Every kept sample (at most reading.MAX_POINTS, evenly thinned beyond), aligned on ``time``."""
    series, source = load(execution)
    return {
        "id": execution.pk,
        "source": source,
        "interval": series.interval if series else None,
        "samples": series.samples if series else 0,
        "time": series.time if series else [],
        "series": series.fields if series else {},
        "epoch_ends": series.epoch_ends if series else [],
        "summary": summary_of(execution, series, source),
    }


def compare_payload(executions: list[Execution], metric: str | None, labels: dict[int, str]) -> dict[str, Any]:
    """One system metric of every run, for the compare page's overlay: ``{"metrics": [...], "metric": ...,
    "runs": [{"id", "label", "order", "x", "y"}]}``. ``metrics`` lists what any of the runs recorded."""
    ended = [execution.pk for execution in executions if execution.status not in LIVE]
    names: dict[int, set[str]] = {pk: set() for pk in ended}
    for execution_id, name in MetricHistory.objects.filter(execution_id__in=ended, name__startswith=PREFIX).values_list(
        "execution_id", "name"
    ):
        names[execution_id].add(name.removeprefix(PREFIX))
    from_folders: dict[int, Series] = {}
    for execution in executions:
        if "time" not in names.get(execution.pk, set()):
            series = from_file(execution)
            if series is not None:
                from_folders[execution.pk] = series
                names[execution.pk] = set(series.fields) | {"time"}
    available = sorted({name for found in names.values() for name in found} - {"time", "epoch_end"})
    chosen = metric if metric in available else (DEFAULT_METRIC if DEFAULT_METRIC in available else None)
    if chosen is None and available:
        chosen = available[0]
    runs: list[dict[str, Any]] = []
    if chosen is not None:
        indexed = _index_histories([pk for pk in ended if pk not in from_folders], [PREFIX + "time", PREFIX + chosen])
        for order, execution in enumerate(executions):  # order: the run's colour on the compare page
            series = from_folders.get(execution.pk)
            if series is None:
                histories = indexed.get(execution.pk) or {}
                series = from_index(histories) if PREFIX + chosen in histories else None
            if series is None or chosen not in series.fields:
                continue
            runs.append(
                {
                    "id": execution.pk,
                    "label": labels[execution.pk],
                    "order": order,
                    **_chart_trace(series.time, series.fields[chosen], downsample=True),
                }
            )
    return {"metrics": available, "metric": chosen, "runs": runs}
