"""The data of the experiment page's "What works" panel: parallel coordinates, a scatter, a group-by.

``/experiments/<name>/explore.json?q=...&cols=params.a,params.b&metric=metrics.val_loss&group=params.a``
answers, for the runs the table's filters select (the newest 10,000 of them when there are more),
each run's value of every chosen param and of the metric, read from the runs' own JSON; and per value of the
``group`` param, the runs and the metric's mean, min and max (``experiments.search.groups``: the runs counted
over every selected run, the metric's figures those of the drawn runs when they are a sample).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import F
from django.db.models.fields.json import KeyTransform
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from experiments.access import get_experiment_for_user
from experiments.models import SearchValue
from experiments.models.summary import is_epoch_metric
from experiments.search.columns import Column, Kind, column, parse_columns
from experiments.search.grammar import QueryError
from experiments.search.groups import groups
from experiments.search.selection import COUNT_LIMIT, filters_from, select

LIMIT = 10_000  # runs on the chart
# Folder names that need no quoting in a URL (the engine's own: 12-56-39__29-11-2026_2).
PLAIN_NAME = re.compile(r"[A-Za-z0-9_.~-]+")
MAX_AXES = 12


def _value_column(name: str | None, fallback: str | None = None) -> Column | None:
    for candidate in (name, fallback):
        if candidate:
            try:
                found = column(candidate)
            except QueryError:
                continue
            if found.key is not None and found.kind is not Kind.TAG:
                return found
    return None


def _default_metric(experiment_id: int) -> str | None:
    keys = SearchValue.objects.filter(experiment_id=experiment_id, state=SearchValue.State.SHOWN)
    for name in ("metrics.val_loss", "metrics.loss"):
        if keys.filter(key=name).exists():
            return name
    return None


def json_value(col: Column) -> Any:
    """The column's value read from the run's own JSON (one row read per run, no join)."""
    name = col.name
    if name == "size":
        return F("size_bytes")
    for prefix, field in (("params.", "params"), ("system.", "system"), ("evaluation.", "evaluation")):
        if name.startswith(prefix):
            return KeyTransform(name.removeprefix(prefix), field)
    if name.startswith("metrics.best."):
        return KeyTransform("best", KeyTransform(name.removeprefix("metrics.best."), "summary"))
    metric = name.removeprefix("metrics.")
    if not is_epoch_metric(metric):
        return KeyTransform(metric, "test_metrics")
    return KeyTransform("last", KeyTransform(metric, "summary"))


def decoded(value: Any) -> Any:
    """A value as the database returned it for a JSON key, decoded as Django's JSONField would decode it.

    That is JSON text on PostgreSQL; on SQLite a number, or a string unquoted. Numbers and plain strings
    (nearly every value) skip ``json.loads``: the chart's 10,000 runs x several axes would otherwise spend
    most of the answer's time decoding them one by one.
    """
    if not isinstance(value, str):
        return value
    if len(value) > 1 and value[0] == value[-1] == '"' and "\\" not in value:
        return value[1:-1]
    if value[:1] in "-0123456789":
        if value.lstrip("-").isdigit():
            return int(value)
        try:
            return float(value)
        except ValueError:
            pass
    try:
        return json.loads(value)
    except ValueError:  # SQLite's unquoted string
        return value


def plain(value: Any) -> float | str | None:
    """A value as the charts take it: a number, a text (true/false and lists as text), or None."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _quoted(name: str) -> str:
    return name if PLAIN_NAME.fullmatch(name) else quote(name)


@login_required
@require_GET
def explore(request: HttpRequest, experiment: str) -> JsonResponse:
    found = get_experiment_for_user(request.user, experiment, request.GET.get("project"))
    chosen = select(found, filters_from(request), probe=False)
    if chosen.error:
        return JsonResponse({"error": chosen.error, "column": chosen.error_column}, status=400)
    axes = [col for col in parse_columns(request.GET.get("cols")) if col.key is not None][:MAX_AXES]
    metric = _value_column(request.GET.get("metric"), _default_metric(found.pk))

    by = _value_column(request.GET.get("group"))
    newest = chosen.runs.order_by(F("started_at").desc(nulls_last=True), "-pk")
    columns = [*axes, *([metric] if metric is not None else [])]
    columns += [by] if by is not None and by.name not in {col.name for col in columns} else []
    query = newest.values_list("pk", "folder_name", *(json_value(col) for col in columns))[: LIMIT + 1]
    sql, params = query.query.sql_with_params()  # the ORM's query, read raw: the values decoded below at once
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    truncated = len(rows) > LIMIT
    rows = rows[:LIMIT]
    values = {col.name: [plain(decoded(row[2 + index])) for row in rows] for index, col in enumerate(columns)}

    base = reverse("experiments:experiment", args=[found.name])
    grouped = None
    if by is not None and metric is not None:
        grouped = groups(chosen, by, metric, values[by.name], values[metric.name], sampled=truncated)
    return JsonResponse(
        {
            "runs": [
                [pk, name or f"queued #{pk}", f"{base}executions/{_quoted(name)}/" if name else f"/executions/{pk}/"]
                for pk, name, *_ in rows
            ],
            "axes": [{"name": col.name, "label": col.label, "values": values[col.name]} for col in axes],
            "metric": {"name": metric.name, "label": metric.label, "values": values[metric.name]} if metric else None,
            "groups": grouped,
            "shown": len(rows),
            "truncated": truncated,
            "limit": LIMIT,
        }
    )


@login_required
@require_GET
def count(request: HttpRequest, experiment: str) -> JsonResponse:
    """How many runs the table's filters select, counted up to ``COUNT_LIMIT`` (the table asks after it loads)."""
    chosen = select(
        get_experiment_for_user(request.user, experiment, request.GET.get("project")), filters_from(request)
    )
    if chosen.error:
        return JsonResponse({"error": chosen.error, "column": chosen.error_column}, status=400)
    total = chosen.total()
    return JsonResponse({"count": min(total, COUNT_LIMIT), "more": chosen.more, "limit": COUNT_LIMIT})
