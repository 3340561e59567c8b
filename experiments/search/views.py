"""The data of the experiment page's "What works" panel: parallel coordinates, a scatter, a group-by.

``/experiments/<name>/explore.json?q=...&cols=params.a,params.b&metric=metrics.val_loss&group=params.a``
answers, for the runs the table's filters select (the newest 10,000 of them when there are more),
each run's value of every chosen param and of the metric, read from the value index; and for all
the selected runs, the metric's count, mean, min and max per value of the ``group`` param.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.db.models import Avg, Count, F, FilteredRelation, Max, Min, Q
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET

from experiments.models import Experiment, SearchValue
from experiments.search.columns import Column, Kind, column, parse_columns
from experiments.search.grammar import QueryError
from experiments.search.selection import Selection, filters_from, select

LIMIT = 10_000  # runs on the chart
MAX_AXES = 12
MAX_GROUPS = 50


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


def _plain(number: float | None, text: str | None) -> float | str | None:
    return number if number is not None else text


def groups(chosen: Selection, by: Column, metric: Column) -> dict[str, Any]:
    """Per value of ``by`` (numbers first, then text, then runs without it): runs, and the metric's mean/min/max."""
    joined = chosen.runs.annotate(
        g=FilteredRelation("search_values", condition=Q(search_values__key=by.key)),
        m=FilteredRelation("search_values", condition=Q(search_values__key=metric.key)),
    )
    rows = list(
        joined.values("g__number", "g__text")
        .annotate(runs=Count("pk"), mean=Avg("m__number"), low=Min("m__number"), high=Max("m__number"))
        .order_by(F("runs").desc(), F("g__number").asc(nulls_last=True), F("g__text").asc(nulls_last=True))[
            : MAX_GROUPS + 1
        ]
    )
    shown = sorted(
        rows[:MAX_GROUPS],
        key=lambda row: (row["g__number"] is None, row["g__number"] or 0, row["g__text"] is None, row["g__text"] or ""),
    )
    return {
        "name": by.name,
        "metric": metric.name,
        "more": len(rows) > MAX_GROUPS,
        "rows": [
            {
                "value": _plain(row["g__number"], row["g__text"]),
                "runs": row["runs"],
                "mean": row["mean"],
                "min": row["low"],
                "max": row["high"],
            }
            for row in shown
        ],
    }


@login_required
@require_GET
def explore(request: HttpRequest, experiment: str) -> JsonResponse:
    found = get_object_or_404(Experiment, name=experiment)
    chosen = select(found, filters_from(request))
    if chosen.error:
        return JsonResponse({"error": chosen.error, "column": chosen.error_column}, status=400)
    axes = [col for col in parse_columns(request.GET.get("cols")) if col.key is not None][:MAX_AXES]
    metric = _value_column(request.GET.get("metric"), _default_metric(found.pk))
    keys = [col.key for col in axes if col.key] + ([metric.key] if metric is not None and metric.key else [])

    newest = chosen.runs.order_by(F("started_at").desc(nulls_last=True), "-pk")
    runs = list(newest.values_list("pk", "folder_name")[: LIMIT + 1])
    truncated = len(runs) > LIMIT
    runs = runs[:LIMIT]
    position = {pk: index for index, (pk, _) in enumerate(runs)}
    values: dict[str, list[Any]] = defaultdict(lambda: [None] * len(runs))
    if keys and runs:
        found_values = SearchValue.objects.filter(
            execution_id__in=newest.values("pk")[:LIMIT], key__in=keys
        ).values_list("execution_id", "key", "number", "text")
        for execution_id, key, number, text in found_values:
            index = position.get(execution_id)
            if index is not None:
                values[key][index] = _plain(number, text)

    base = reverse("experiments:experiment", args=[found.name])
    by = _value_column(request.GET.get("group"))
    return JsonResponse(
        {
            "runs": [
                [pk, name or f"queued #{pk}", f"{base}executions/{quote(name)}/" if name else f"/executions/{pk}/"]
                for pk, name in runs
            ],
            "axes": [{"name": col.name, "label": col.label, "values": values[col.name]} for col in axes],
            "metric": {"name": metric.name, "label": metric.label, "values": values[metric.name]} if metric else None,
            "groups": groups(chosen, by, metric) if by is not None and metric is not None else None,
            "shown": len(runs),
            "truncated": truncated,
            "limit": LIMIT,
        }
    )
