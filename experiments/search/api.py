"""``GET /api/experiments`` and ``GET /api/executions``: the experiments, and runs found by a query.

    GET /api/executions?experiment=boston_housing&q=params.training.batch_size = 64&order_by=metrics.val_loss&limit=20
    GET /api/executions?...&cursor=<next_cursor of the previous page>

Pages by cursor (a page is the rows after the last one a client saw, so rows arriving meanwhile
never shift it); ``order_by`` takes any column the query language names (attributes, params,
metrics, system, evaluation); a query that cannot run is a 400 whose ``detail`` is the message the
experiment page shows (``col 27: expected a value after '<'``) and ``column`` its column.
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from django.utils.http import urlencode
from ninja import Router, Schema, Status
from ninja.params.functions import Query  # the call: to mypy, ninja.Query is the alias Query[T] (an annotation)
from pydantic import Field

from experiments.access import visible_executions, visible_experiments
from experiments.api.base import Detail
from experiments.api.executions import router
from experiments.api.schemas import DETAIL_ONLY, RELATED, ExecutionOut, execution_out
from experiments.search import counts
from experiments.search.columns import Kind, column
from experiments.search.grammar import MAX_LENGTH, QueryError
from experiments.search.paging import BadCursor, Sort, after
from experiments.search.selection import STATUSES, Filters, select

experiments_router = Router(tags=["experiments"])

MAX_LIMIT = 500


class QueryProblem(Schema):
    detail: str
    column: int | None = None


class ValidationDetail(Schema):
    """What django-ninja answers (422) for a parameter that is not of its type: each problem's place and message."""

    detail: list[dict[str, Any]]


class ExperimentOut(Schema):
    name: str
    project: str = Field(description="The project it belongs to (two projects may each have an experiment of a name).")
    archived: bool
    runs: int
    statuses: dict[str, int]
    url: str
    html_url: str


class ExecutionPage(Schema):
    items: list[ExecutionOut]
    next_cursor: str | None = Field(description="Pass it as cursor for the next page; null on the last page.")
    next: str | None = Field(description="The next page's URL; null on the last page.")


ERRORS: dict[int, Any] = {401: Detail, 422: ValidationDetail}
Q_HELP = 'The query language, e.g. metrics.val_loss < 20 and status = "succeeded" (docs/search.md).'
ORDER_BY_HELP = "Any column: started, metrics.val_loss, metrics.best.val_loss, params.training.batch_size..."
ORDER_HELP = "Default: the column's natural order (newest first, best first)."


@experiments_router.get(
    "", response={200: list[ExperimentOut], **ERRORS}, summary="Every experiment, with how many runs it has"
)
def list_experiments(request: HttpRequest, archived: bool = False) -> list[dict[str, Any]]:
    """Experiments by name, with their runs counted by status (archived ones too with ``archived=true``)."""
    visible = visible_experiments(request.user)
    found = list((visible if archived else visible.filter(archived=False)).order_by("name", "project__name"))
    by_status = counts.by_status([experiment.pk for experiment in found], archived=archived)
    return [
        {
            "name": experiment.name,
            "project": experiment.project.name,
            "archived": experiment.archived,
            "runs": sum(by_status.get(experiment.pk, {}).values()),
            "statuses": by_status.get(experiment.pk, {}),
            "url": "/api/executions?" + urlencode({"experiment": experiment.name}),
            "html_url": f"/experiments/{experiment.name}/",
        }
        for experiment in found
    ]


@router.get(
    "",
    response={200: ExecutionPage, 400: QueryProblem, 404: Detail, **ERRORS},
    summary="Find runs: a query, any order, a page at a time",
)
def search(
    request: HttpRequest,
    experiment: str | None = Query(None, description="Only this experiment's runs (default: every experiment's)."),
    project: str | None = Query(None, max_length=63, description="Of this project's experiment (with experiment)."),
    q: str = Query("", max_length=MAX_LENGTH, description=Q_HELP),
    order_by: str = Query("started", max_length=300, description=ORDER_BY_HELP),
    order: Literal["asc", "desc"] | None = Query(None, description=ORDER_HELP),
    limit: int = Query(50, ge=1, le=MAX_LIMIT, description=f"Runs per page, 1 to {MAX_LIMIT}."),
    cursor: str | None = Query(
        None, min_length=1, max_length=2000, description="The next_cursor of the previous page."
    ),
    status: str | None = Query(None, description=f"Only runs with this status ({', '.join(STATUSES)})."),
    archived: bool = Query(False, description="Archived runs too (deleted runs are never listed)."),
) -> Status[Any]:
    """Runs of every experiment (or of ``experiment``) that the query ``q`` selects, ordered by ``order_by``.

    Deleted runs are never listed; archived ones only with ``archived=true`` or a query naming ``archived``.
    """
    found = None
    if experiment is not None:
        candidates = visible_experiments(request.user).filter(name=experiment)
        found = (candidates.filter(project__name=project) if project else candidates).order_by("project_id").first()
        if found is None:
            return Status(404, {"detail": f"no experiment named {experiment!r}; GET /api/experiments lists them"})
    if status is not None and status not in STATUSES:
        return Status(400, {"detail": f"status must be one of {', '.join(STATUSES)}, got {status!r}"})
    try:
        sorted_by = column(order_by)
    except QueryError as exc:
        return Status(400, {"detail": f"order_by: {exc.message}"})
    if sorted_by.kind is Kind.TAG:
        return Status(400, {"detail": f"order_by: {sorted_by.name} is a tag; tags filter (q=tags.x), not sort"})
    chosen = select(
        found,
        Filters(q=q, status=status or "", archived=archived),
        base=visible_executions(request.user).select_related(*RELATED).defer(*DETAIL_ONLY, "artifacts", "trackers"),
    )
    if chosen.error:
        return Status(400, {"detail": chosen.error, "column": chosen.error_column})
    try:
        rows, next_cursor = after(chosen.segments(Sort.natural(sorted_by, order)), cursor, limit)
    except BadCursor as exc:
        return Status(400, {"detail": f"cursor: {exc}"})
    following = None
    if next_cursor is not None:
        asked = request.GET.copy()
        asked["cursor"] = next_cursor
        following = f"/api/executions?{asked.urlencode()}"
    return Status(200, {"items": [execution_out(row) for row in rows], "next_cursor": next_cursor, "next": following})
