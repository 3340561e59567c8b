"""Runs side by side: every metric overlaid, final and test metrics, the config keys that differ.

The selection lives in the URL (``/compare/?runs=12,15,31``) so it can be pasted to a teammate.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from experiments import charts, live
from experiments.comparison import load_runs, parse_runs, run_names
from experiments.display import execution_url, run_label
from experiments.forms import ShareForm
from experiments.models import LIVE, Execution, MetricHistory
from experiments.models.summary import is_epoch_metric
from experiments.pipeline.params import flatten

MISSING = object()


def config_diff(executions: Iterable[Execution]) -> list[tuple[str, list[dict[str, Any] | None]]]:
    """Rows ``(key, [value per run])`` for the keys whose values are not the same in every run."""
    # The canonical params sync stored ("adam" and {"type": "adam"} alike); a row without any: its config.
    flat = [
        execution.params if isinstance(execution.params, dict) and execution.params else flatten(execution.config or {})
        for execution in executions
    ]
    keys = sorted({key for config in flat for key in config})
    rows: list[tuple[str, list[dict[str, Any] | None]]] = []
    for key in keys:
        values = [config.get(key, MISSING) for config in flat]
        if any(value != values[0] for value in values[1:]):
            rows.append((key, [None if value is MISSING else {"value": value} for value in values]))
    return rows


def compare_data(
    executions: list[Execution], run_url: Callable[[Execution], str] | None = execution_url
) -> dict[str, Any]:
    """The chart data: ``{"runs": [...], "metrics": {name: [{"run": id, "x", "y", "points"}]}}``, from the
    index's chart copies (downsampled, bounded however long the runs)."""
    traces = charts.stored([execution.pk for execution in executions])
    names = run_names(executions)
    metrics: dict[str, list[dict[str, Any]]] = {}
    for execution in executions:
        for name, found in traces[execution.pk].items():
            if is_epoch_metric(name):
                metrics.setdefault(name, []).append({"run": execution.pk, **found})
    order = sorted(
        metrics,
        key=lambda name: (name.removeprefix("val_") != "loss", name.removeprefix("val_"), name.startswith("val_")),
    )
    return {
        "runs": [
            {
                "id": e.pk,
                "label": run_label(e),
                "name": names[e.pk],  # in the charts' legends: the title, or the folder when titles repeat
                "title": e.title,
                "url": run_url(e) if run_url else None,
                # The x of the charts' "wall time" axis (issue 12's chart controls).
                "epoch_seconds": charts.epoch_seconds(e.pk, traces[e.pk], e.elapsed, e.started_at, e.finished_at),
                # A fork's epochs continue its parent's when both are compared (#23): x = forked_at_epoch + epoch.
                "parent": e.parent_id,
                "forked_at_epoch": e.forked_at_epoch,
            }
            for e in executions
        ],
        "metrics": {name: metrics[name] for name in order},
        # A run still queued or training: the page follows the runs' stream (or polls) while this is true.
        "live": any(e.status in LIVE for e in executions),
    }


def compare_context(executions: list[Execution], missing: list[int]) -> dict[str, Any]:
    metric_names = sorted(
        {name for e in executions for name in (e.summary or {})}, key=lambda n: (n.removeprefix("val_") != "loss", n)
    )
    test_names = sorted({name for e in executions for name in (e.test_metrics or {})})
    rows = [
        {
            "execution": e,
            "label": run_label(e),
            "last": [(e.summary or {}).get(name, {}).get("last") for name in metric_names],
            "best": [(e.summary or {}).get(name, {}).get("best") for name in metric_names],
            "tests": [(e.test_metrics or {}).get(name) for name in test_names],
        }
        for e in executions
    ]
    return {
        "executions": executions,
        "missing": missing,
        "rows": rows,
        "metric_names": metric_names,
        "test_names": test_names,
        "diff": config_diff(executions),
        "plotly_bundle": charts.plotly_bundle((e.config, e.evaluation) for e in executions),
        "run_ids": ",".join(str(e.pk) for e in executions),
        "share_form": ShareForm(),
    }


def csv_rows(executions: list[Execution]) -> Iterator[list[Any]]:
    """One line per (run, metric, epoch), full resolution: what a notebook wants.

    Streamed one history at a time, so the memory it takes is one history's, not every run's.
    """
    yield ["run_id", "experiment", "execution", "title", "metric", "epoch", "value"]
    for execution in executions:
        names = MetricHistory.objects.filter(execution=execution).order_by("name").values_list("name", flat=True)
        for name in list(names):
            values = execution.history(name)
            for epoch, value in enumerate(values, start=1):
                yield [
                    execution.pk,
                    execution.experiment.name,
                    execution.folder_name or "",
                    execution.title,
                    name,
                    epoch,
                    "" if value is None else repr(value),
                ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(executions: list[Execution], filename: str = "comparison.csv") -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in csv_rows(executions)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@login_required
@require_GET
def page(request: HttpRequest) -> HttpResponse:
    executions, missing = load_runs(parse_runs(request), request.user)
    context = compare_context(executions, missing)
    context["data_url"] = reverse("experiments:compare-data") + f"?runs={context['run_ids']}"
    context["csv_url"] = reverse("experiments:compare-csv") + f"?runs={context['run_ids']}"
    # The compared runs' events (the runs' stream, only these, each checked against what the user may see).
    context["events_url"] = (
        reverse("experiments:runs-events") + f"?runs={context['run_ids']}" if live.streams_served(request) else ""
    )
    return render(request, "experiments/compare.html", context)


@login_required
@require_GET
def data(request: HttpRequest) -> JsonResponse:
    executions, _ = load_runs(parse_runs(request), request.user)
    return JsonResponse(compare_data(executions))


@login_required
@require_GET
def export(request: HttpRequest) -> StreamingHttpResponse:
    executions, _ = load_runs(parse_runs(request), request.user)
    return csv_response(executions)
