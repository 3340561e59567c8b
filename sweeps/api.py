"""``/api/sweeps``: launch, follow and cancel sweeps (registered in experiments/api/__init__.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.params.functions import Query  # the call (to mypy, ninja.Query is the annotation Query[T])

from audit.models import Entry
from audit.recording import record
from experiments.api.base import (
    Detail,
    ValidationErrors,
    api,
    forbidden_unless_allowed,
    invalid,
    json_body,
    target_project,
)
from experiments.jobs.queues import QueueUnavailable
from experiments.models import Execution
from experiments.pipeline import ConfigError
from experiments.pipeline.schema import openapi_schema

from .document import SweepDocument
from .launching import cancel_sweep, heal, launch_sweep
from .models import Sweep
from .scope import get_sweep_for_user, project_of_sweep
from .summary import summarise

router = Router(tags=["sweeps"])


class Launched(Schema):
    id: int
    url: str
    status: str


class SweepOut(Schema):
    id: int
    name: str
    status: str
    method: str
    trials_total: int
    parallel: int
    objective: dict[str, Any]
    pruner: dict[str, Any]
    parameters: list[str]
    counts: dict[str, int]
    best: dict[str, Any] | None
    trials: list[dict[str, Any]]
    running_best: list[float | None]
    importance: dict[str, float]
    error: str
    created_at: str
    finished_at: str | None
    url: str
    page: str


def _launched(sweep: Sweep) -> dict[str, Any]:
    return {"id": sweep.pk, "url": f"/api/sweeps/{sweep.pk}", "status": sweep.status}


@router.post(
    "",
    response={201: Launched, 400: ValidationErrors, 403: Detail, 404: Detail, 503: Detail},
    summary="Launch a sweep",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": api.body_schema(openapi_schema(SweepDocument))}},
        }
    },
)
def launch(
    request: HttpRequest,
    project: str | None = Query(
        None, max_length=63, description="The project to launch in (GET /api/projects); its trials train there."
    ),
) -> Status[Any]:
    """Validate the sweep document (the JSON body) and start it in ``project``. 400 lists every problem with its
    path; 404 for a project the caller may not see; 403 without the editor role there. Without ``project``: as
    before sweeps named one (the launch permission in default; the sweep is its base run's project's)."""
    target = None
    if project is None:
        denied = forbidden_unless_allowed(request)
        if denied:
            return denied
    else:
        found = target_project(request, project)
        if isinstance(found, Status):
            return found
        target = found
    try:
        sweep = launch_sweep(json_body(request), user=request.user, project=target)
    except ConfigError as exc:
        return invalid(exc)
    except QueueUnavailable as exc:
        return Status(503, {"detail": str(exc)})
    record(request, Entry.Action.SWEEP_LAUNCH, target=f"sweep {sweep.pk} ({sweep.name})", via="api")
    return Status(201, _launched(sweep))


@router.get("/{sweep_id}", response=SweepOut, summary="One sweep: counts, the best trial, every trial")
def detail(request: HttpRequest, sweep_id: int) -> dict[str, Any]:
    sweep = get_sweep_for_user(request.user, sweep_id)
    Execution.objects.mark_lost()
    heal([sweep])
    return {**summarise(sweep), "url": f"/api/sweeps/{sweep.pk}", "page": f"/sweeps/{sweep.pk}/"}


@router.post(
    "/{sweep_id}/cancel", response={200: Launched, 403: Detail, 409: Detail, 503: Detail}, summary="Cancel a sweep"
)
def cancel(request: HttpRequest, sweep_id: int) -> Status[Any]:
    """No more trials are asked for; queued trials leave the queue and running ones are stopped."""
    sweep = get_sweep_for_user(request.user, sweep_id)
    denied = forbidden_unless_allowed(request, obj=project_of_sweep(sweep))
    if denied:
        return denied
    try:
        cancelled = cancel_sweep(sweep)
    except QueueUnavailable as exc:
        return Status(503, {"detail": str(exc)})
    sweep.refresh_from_db()
    if not cancelled:
        return Status(409, {"detail": f"sweep {sweep.pk} is {sweep.status}; only a running sweep can be cancelled"})
    record(request, Entry.Action.SWEEP_CANCEL, target=f"sweep {sweep.pk} ({sweep.name})", via="api")
    return Status(200, _launched(sweep))
