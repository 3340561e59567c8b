"""The experiments list and one experiment's table of executions."""

from __future__ import annotations

import json
import re
from collections.abc import Container
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, F, Max, Min, Q, TextField
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from experiments.access import can_launch
from experiments.models import Execution, ExecutionQuerySet, Experiment, higher_is_better
from experiments.views.helpers import duration, hardware_label, stage_times
from experiments.views.table import rows_html

PER_PAGE = 50
PER_PAGE_CHOICES = (25, 50, 100, 200)
# What a table row shows: the rest (config, artifacts, paths) is not read for a 100-row page.
TABLE_FIELDS = [
    "experiment_id",
    "folder_name",
    "status",
    "title",
    "started_at",
    "finished_at",
    "epochs",
    "epochs_total",
    "best_val_loss",
    "summary",
    "test_metrics",
    "elapsed",
    "hardware",
    "tags",
]
STATUSES = [status for status, _ in Execution.Status.choices]


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    counts = {f"n_{status}": Count("executions", filter=Q(executions__status=status)) for status in STATUSES}
    experiments = Experiment.objects.annotate(
        n_executions=Count("executions"),
        last_run=Max("executions__started_at"),
        best_val_loss=Min("executions__best_val_loss"),
        best_loss=Min("executions__final_loss"),
        **counts,
    ).order_by(F("last_run").desc(nulls_last=True), "name")
    rows: list[dict[str, Any]] = []
    for experiment in experiments:
        statuses = [
            (status, getattr(experiment, f"n_{status}")) for status in STATUSES if getattr(experiment, f"n_{status}")
        ]
        if experiment.best_val_loss is not None:
            best = ("val_loss", experiment.best_val_loss)
        elif experiment.best_loss is not None:
            best = ("loss", experiment.best_loss)
        else:
            best = None
        rows.append({"experiment": experiment, "statuses": statuses, "best": best})
    return render(request, "experiments/experiment_list.html", {"rows": rows, "can_launch": can_launch(request.user)})


def parse_sort(value: str | None) -> tuple[str, str | None, str | None]:
    """``?sort=`` -> ``(kind, metric, which)``: ``started``, ``duration``, ``epochs``, or a metric.

    ``val_loss`` is its last value, ``best.val_loss`` its best, ``test_loss`` the test value.
    """
    value = (value or "").strip()
    if value in {"", "started"}:
        return ("started", None, None)
    if value in {"duration", "epochs"}:
        return (value, None, None)
    if value.startswith("best."):
        return ("metric", value.removeprefix("best."), "best")
    if value.startswith("test_"):
        return ("metric", value, "test")
    return ("metric", value, "last")


def _ordered(executions: ExecutionQuerySet, sort: str, order: str) -> ExecutionQuerySet:
    kind, metric, which = parse_sort(sort)
    expression: CombinedExpression | F
    if kind == "metric":
        assert metric is not None and which is not None  # parse_sort names both for a metric
        descending = None if order not in {"asc", "desc"} else order == "desc"
        return executions.order_by_metric(metric, which, descending=descending)
    if kind == "duration":
        expression = F("finished_at") - F("started_at")
    elif kind == "epochs":
        expression = F("epochs")
    else:
        expression = F("started_at")
    ordered = expression.asc(nulls_last=True) if order == "asc" else expression.desc(nulls_last=True)
    return executions.order_by(ordered, "-pk")


def _with_tag(executions: ExecutionQuerySet, tag: str) -> ExecutionQuerySet:
    if connection.features.supports_json_field_contains:
        return executions.filter(tags__contains=[tag])
    # SQLite has no JSON containment: match the quoted tag inside the stored list's text, with
    # case as PostgreSQL's containment has it (SQLite's LIKE ignores case; its REGEXP does not).
    return executions.annotate(tags_text=Cast("tags", TextField())).filter(tags_text__regex=re.escape(json.dumps(tag)))


def _int(value: Any, default: int, allowed: Container[int] | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if allowed is None or number in allowed else default


@login_required
@require_GET
def detail(request: HttpRequest, experiment: str) -> HttpResponse:
    found = get_object_or_404(Experiment, name=experiment)
    status = request.GET.get("status", "")
    tag = request.GET.get("tag", "").strip()
    sort = request.GET.get("sort", "")
    order = request.GET.get("order", "")
    per_page = _int(request.GET.get("per_page"), PER_PAGE, PER_PAGE_CHOICES)

    executions = found.executions.only(*TABLE_FIELDS)
    if status in STATUSES:
        executions = executions.filter(status=status)
    if tag:
        executions = _with_tag(executions, tag)
    page = Paginator(_ordered(executions, sort, order), per_page).get_page(request.GET.get("page"))

    rows = [_row(execution) for execution in page.object_list]
    for row in rows:
        row["execution"].experiment = found  # one experiment for every row: no join, no query
    kind, sorted_metric, which = parse_sort(sort)
    metrics = _metric_columns(rows, sorted_metric if kind == "metric" and which != "test" else None)
    tests = _test_columns(rows, sorted_metric if kind == "metric" and which == "test" else None)
    for row in rows:
        row["metric_values"] = [row["summary"].get(name, {}).get("last") for name in metrics]
        row["test_values"] = [row["test_metrics"].get(name) for name in tests]
    rows_markup = rows_html(rows, found)
    return render(
        request,
        "experiments/experiment_detail.html",
        {
            "experiment": found,
            "page": page,
            "rows": rows,
            "rows_html": rows_markup,
            "metric_columns": [_column(name, sort, order) for name in metrics],
            "best_column": _column("val_loss", sort, order, which="best"),
            "test_columns": [_column(name, sort, order, which="test") for name in tests],
            "plain_columns": {name: _plain_column(name, sort, order) for name in ("started", "duration", "epochs")},
            "statuses": STATUSES,
            "status": status,
            "tag": tag,
            "sort": sort,
            "order": order,
            "per_page": per_page,
            "per_page_choices": PER_PAGE_CHOICES,
            "page_tags": sorted({t for row in rows for t in row["tags"]}),
            "filtered": bool(status or tag),
            "can_launch": can_launch(request.user),
        },
    )


def _row(execution: Execution) -> dict[str, Any]:
    return {
        "execution": execution,
        "duration": duration(execution),
        "summary": execution.summary or {},
        "test_metrics": execution.test_metrics or {},
        "best_val_loss": execution.best_val_loss,
        "stages": dict(stage_times(execution.elapsed)),
        "hardware": hardware_label(execution.hardware),
        "tags": [t for t in execution.tags or [] if isinstance(t, str)],
    }


def _metric_columns(rows: list[dict[str, Any]], sorted_metric: str | None) -> list[str]:
    """Per-epoch metrics logged by the runs on this page, losses first, then the sorted one if missing."""
    names = {name for row in rows for name in row["summary"]}
    if sorted_metric:
        names.add(sorted_metric)
    return sorted(
        names,
        key=lambda name: (name.removeprefix("val_") != "loss", name.removeprefix("val_"), name.startswith("val_")),
    )


def _test_columns(rows: list[dict[str, Any]], sorted_metric: str | None) -> list[str]:
    names = {name for row in rows for name in row["test_metrics"]}
    if sorted_metric:
        names.add(sorted_metric)
    return sorted(names)


def _column(name: str, sort: str, order: str, which: str = "last") -> dict[str, Any]:
    key = {"last": name, "best": f"best.{name}", "test": name}[which]
    active = sort == key
    natural = "desc" if higher_is_better(name) else "asc"
    current = order if order in {"asc", "desc"} else natural
    next_order = ("asc" if current == "desc" else "desc") if active else natural
    label = f"best {name}" if which == "best" else name
    return {"name": name, "label": label, "key": key, "active": active, "order": current, "next_order": next_order}


def _plain_column(name: str, sort: str, order: str) -> dict[str, Any]:
    active = (sort or "started") == name
    current = order if order in {"asc", "desc"} else "desc"
    return {
        "key": name,
        "active": active,
        "order": current,
        "next_order": ("asc" if current == "desc" else "desc") if active else "desc",
    }
