"""A run's lineage on its page (#23): its parent (link, epoch), its forks, where it can be trained on from, and its
parent's curves for the charts to continue (x = forked_at_epoch + the child's own epoch).

    lineage_context(execution, may_fork=True)
    # {"parent": <Execution>, "forked_at_epoch": 6, "children": [<Execution>, ...],
    #  "fork_points": [{"label": "checkpoint at epoch 3", "url": "/runs/new/?from=7&fork=3"}, ...]}
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from experiments import charts
from experiments.display import execution_url, run_label
from experiments.jobs.forking import last_source
from experiments.models import Execution

# The most forks a run's page lists (newest first); the query `parent = <id>` lists them all.
CHILDREN_SHOWN = 50


def fork_url(execution: Execution, source: int | str) -> str:
    """The run form, prefilled with ``execution``'s config, to fork it from ``source`` (an epoch, or "last")."""
    return reverse("experiments:new-run") + "?" + urlencode({"from": execution.pk, "fork": source})


def fork_points(execution: Execution, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where ``execution`` can be trained on from: each checkpoint among its files ``found``, and its last state."""
    saved = sorted({item["epoch"] for item in charts.checkpoints(found) if item["epoch"]})
    points = [{"label": f"checkpoint at epoch {epoch}", "url": fork_url(execution, epoch)} for epoch in saved]
    last = last_source(execution)
    if last is not None:
        what = "the state it kept" if last.file.startswith(".") else "the model it ended with"
        points.append({"label": f"{what} (epoch {last.epoch})", "url": fork_url(execution, "last")})
    return points


def lineage_context(execution: Execution, found: list[dict[str, Any]], may_fork: bool) -> dict[str, Any]:
    children = list(execution.children.select_related("experiment").order_by("-created_at")[:CHILDREN_SHOWN])
    return {
        "lineage_parent": execution.parent,
        "lineage_children": [{"execution": child, "url": _url(child), "label": run_label(child)} for child in children],
        "lineage_parent_url": _url(execution.parent) if execution.parent is not None else "",
        "fork_points": fork_points(execution, found) if may_fork and execution.config else [],
    }


def _url(execution: Execution) -> str:
    if execution.folder_name:
        return execution_url(execution)
    return reverse("experiments:execution-by-id", args=[execution.pk])


def parent_curves(execution: Execution) -> dict[str, Any] | None:
    """The parent's charts, for the child's to continue: ``{"id", "label", "forked_at_epoch", "charts"}``."""
    parent = execution.parent
    if parent is None or execution.forked_at_epoch is None:
        return None
    traces = charts.stored([parent.pk])[parent.pk]
    return {
        "id": parent.pk,
        "label": run_label(parent),
        "forked_at_epoch": execution.forked_at_epoch,
        "charts": charts.execution_charts(traces),
    }
