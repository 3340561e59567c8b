"""``/api/executions``: launch a run, follow it epoch by epoch, read its log, cancel it, resume it."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.params.functions import Query  # the call (to mypy, ninja.Query is the annotation Query[T])

from audit.models import Entry
from audit.recording import record
from experiments import charts, files, logtail, steps
from experiments.access import get_execution_by_id_for_user
from experiments.api.base import (
    Detail,
    ValidationErrors,
    api,
    forbidden_unless_allowed,
    invalid,
    json_body,
    target_project,
)
from experiments.api.schemas import ExecutionDetail, detail_of, execution_detail
from experiments.jobs import forking, launching, resuming
from experiments.jobs.queues import QueueUnavailable
from experiments.models import DEFAULT_PROJECT, Execution
from experiments.pipeline import ConfigError
from experiments.pipeline import Problem as PipelineProblem
from experiments.pipeline.config import TrainingConfig
from experiments.pipeline.schema import openapi_schema

router = Router(tags=["executions"])


class Metrics(Schema):
    id: int
    metrics: dict[str, list[float | None]] = Field(
        description="Each history: one value per epoch, or for one longer than 2,000 values its chart's "
        "(each stretch's lowest and highest value), at the epochs given in `epochs`."
    )
    epochs: dict[str, list[int]] = Field(
        default_factory=dict, description="For each history that was shortened, the epoch (from 1) of each value."
    )
    points: dict[str, int] = Field(default_factory=dict, description="How many values each whole history holds.")


class StepSeries(Schema):
    step: list[int] = Field(description="The steps (training batches, from 1 over the whole run) of the points.")
    value: list[float | None] = Field(description="The metric at each step (null for NaN or an infinity).")
    epochs: list[int] = Field(description="The step at which each epoch in the range ended.")
    downsampled: bool = Field(
        description="True when the range held more points than asked for: then each of `points / 4` buckets "
        "gives its first, last, lowest and highest point (M4), so no spike is lost."
    )
    count: int = Field(description="How many points the range holds in the file.")


class StepSummary(Schema):
    count: int
    min: float | None
    max: float | None
    last: float | None


class StepMetrics(Schema):
    metrics: dict[str, StepSummary] = Field(
        description="Each per-step metric in the run's steps.h5 (read now, so also while it trains): its points, "
        "lowest, highest and last value; {} for a run without step metrics."
    )


class LogChunk(Schema):
    offset: int
    size: int
    data: str
    cut: bool = Field(False, description="The last line was longer than an answer holds: only its end is in data.")


@router.post(
    "",
    response={201: ExecutionDetail, 400: ValidationErrors, 403: Detail, 404: Detail, 503: Detail},
    summary="Launch a training run",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": api.body_schema(openapi_schema(TrainingConfig))}},
        }
    },
)
def launch(
    request: HttpRequest,
    project: str = Query(DEFAULT_PROJECT, max_length=63, description="The project to launch in (GET /api/projects)."),
) -> Status[Any]:
    """Validate the config (the JSON body) and queue it in ``project``. 400 lists every problem with its JSON
    path; 404 for a project the caller may not see; 403 without the editor role there."""
    target = target_project(request, project)
    if isinstance(target, Status):
        return target
    try:
        execution = launching.launch(json_body(request), user=request.user, project=target)
    except ConfigError as exc:
        return invalid(exc)
    except QueueUnavailable as exc:
        return Status(503, {"detail": str(exc)})
    record(request, Entry.Action.LAUNCH, execution=execution, via="api")
    return Status(201, execution_detail(detail_of(request.user, execution.pk)))


@router.get("/{execution_id}", response=ExecutionDetail, summary="One execution: status, progress, notes, tags, config")
def detail(request: HttpRequest, execution_id: int) -> dict[str, Any]:
    Execution.objects.mark_lost()
    return execution_detail(detail_of(request.user, execution_id))


@router.get("/{execution_id}/metrics", response=Metrics, summary="Every metric's history, at most 2,000 points each")
def metrics(request: HttpRequest, execution_id: int) -> dict[str, Any]:
    """A history of up to 2,000 epochs whole; a longer one as its chart draws it (each stretch's lowest and
    highest value, with their epochs), so the answer stays small however long the run. The full
    resolution is the run's metrics.json (its download) or the compare page's CSV."""
    execution = get_execution_by_id_for_user(request.user, execution_id)
    traces = charts.stored([execution.pk])[execution.pk]
    return {
        "id": execution.pk,
        "metrics": {name: trace["y"] for name, trace in traces.items()},
        "epochs": {name: trace["x"] for name, trace in traces.items() if len(trace["x"]) < trace["points"]},
        "points": {name: trace["points"] for name, trace in traces.items()},
    }


@router.get("/{execution_id}/steps", response=StepMetrics, summary="The run's per-step metrics, each summarised")
def step_list(request: HttpRequest, execution_id: int) -> dict[str, Any]:
    """What ``/metrics/{name}/steps`` can answer for this run, from its steps.h5 as it is now."""
    execution = get_execution_by_id_for_user(request.user, execution_id)
    folder = files.execution_folder(execution)
    return {"metrics": steps.step_summaries(folder) if folder is not None else {}}


@router.get(
    "/{execution_id}/metrics/{name}/steps",
    response={200: StepSeries, 404: Detail},
    summary="A per-step metric by range, downsampled keeping every extreme",
)
def step_metric(
    request: HttpRequest,
    execution_id: int,
    name: str,
    start: int | None = Query(None, alias="from", description="The first step (inclusive); none: the start."),
    end: int | None = Query(None, alias="to", description="The last step (inclusive); none: the end."),
    points: int = Query(2000, ge=steps.MIN_POINTS, le=steps.MAX_POINTS, description="At most about this many."),
) -> Status[Any]:
    """The points of ``name`` from the run's steps.h5 between ``from`` and ``to``: whole when the range holds at
    most ``points``, else M4's (each bucket's first, last, min and max). 404 when the run logs no such metric."""
    execution = get_execution_by_id_for_user(request.user, execution_id)
    folder = files.execution_folder(execution)
    try:
        if folder is None:
            raise FileNotFoundError(name)
        return Status(200, steps.read_steps(folder, name, start, end, points))
    except (KeyError, OSError, ValueError, files.Refused):
        return Status(404, {"detail": f"execution {execution.pk} has no per-step metric {name!r}"})


@router.get("/{execution_id}/log", response={200: LogChunk, 404: Detail}, summary="The log from a byte offset")
def log_tail(request: HttpRequest, execution_id: int, offset: int = 0) -> Status[Any]:
    """The bytes of execution.log after ``offset`` (at most 256 KiB) and the offset to ask from next."""
    execution = get_execution_by_id_for_user(request.user, execution_id)
    try:
        return Status(200, logtail.read_from(execution, offset))
    except Http404:  # no folder yet, or no log that is a file inside it
        return Status(200, {"offset": 0, "size": 0, "data": "", "cut": False})


@router.post(
    "/{execution_id}/cancel",
    response={200: ExecutionDetail, 403: Detail, 409: Detail, 503: Detail},
    summary="Cancel a run",
)
def cancel(request: HttpRequest, execution_id: int) -> Status[Any]:
    """A queued run leaves the queue; a running one is stopped and keeps its partial folder."""
    execution = get_execution_by_id_for_user(request.user, execution_id)
    denied = forbidden_unless_allowed(request, obj=execution)
    if denied:
        return denied
    try:
        cancelled = launching.cancel(execution)
    except QueueUnavailable as exc:
        return Status(503, {"detail": str(exc)})
    if not cancelled:
        execution.refresh_from_db()
        return Status(
            409,
            {"detail": f"execution {execution.pk} is {execution.status}; only queued or running runs can be cancelled"},
        )
    record(request, Entry.Action.CANCEL, execution=execution, via="api")
    return Status(200, execution_detail(detail_of(request.user, execution.pk)))


class ResumeRequest(Schema):
    epochs: int | None = Field(
        None, description="Train to this many epochs in all (more than it reached); none: the epochs it was given."
    )


@router.post(
    "/{execution_id}/resume",
    response={200: ExecutionDetail, 400: ValidationErrors, 403: Detail, 409: Detail, 503: Detail},
    summary="Resume a cancelled or failed run from its last kept state",
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": api.body_schema(ResumeRequest.model_json_schema())}},
        }
    },
)
def resume(request: HttpRequest, execution_id: int) -> Status[Any]:
    """Queue it again, in its own folder and row, to go on from the epoch its kept state reached (the log says
    ``resumed at epoch N (attempt K)``). Optional body ``{"epochs": N}``. 409 with the reason for a run that keeps
    no state, is live (queued or running), or succeeded."""
    execution = get_execution_by_id_for_user(request.user, execution_id)
    denied = forbidden_unless_allowed(request, obj=execution)
    if denied:
        return denied
    try:
        epochs = _epochs_asked(json_body(request) if request.body else None)
        execution = resuming.resume_by_hand(execution, epochs)
    except ConfigError as exc:
        return invalid(exc)
    except resuming.NotResumable as exc:
        return Status(409, {"detail": str(exc)})
    except QueueUnavailable as exc:
        return Status(503, {"detail": str(exc)})
    record(request, Entry.Action.RESUME, execution=execution, via="api", attempt=execution.attempts + 1, epochs=epochs)
    return Status(200, execution_detail(detail_of(request.user, execution.pk)))


def _epochs_asked(body: Any) -> int | None:
    if body is None:
        return None
    if not isinstance(body, dict) or set(body) - {"epochs"}:
        raise ConfigError([PipelineProblem("", 'the body must be {"epochs": N} or empty')])
    epochs = body.get("epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)):
        raise ConfigError([PipelineProblem("epochs", f"must be a whole number of epochs, got {epochs!r}")])
    return epochs


class ForkIn(Schema):
    source: int | str = Field(
        alias="from",
        description='"last" (the state the run keeps, else the model it ended with) or a checkpoint\'s epoch.',
    )
    changes: dict[str, Any] = Field(
        default_factory=dict,
        description='Config paths and their new values, e.g. {"model.compilation.optimizer.learning_rate": 0.0005}.',
    )


@router.post(
    "/{execution_id}/fork",
    response={201: ExecutionDetail, 400: ValidationErrors, 403: Detail, 503: Detail},
    summary="Fork a run: train on from one of its checkpoints or its last state, with changes",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": ForkIn.model_json_schema()}}}
    },
)
def fork(request: HttpRequest, execution_id: int) -> Status[Any]:
    """A new queued run in the same experiment, started from the parent's weights (and its optimizer's state
    unless the changes alter the network or the optimizer type). 400 lists every problem: ``from`` (with the
    checkpoint epochs there are), each change's path, each problem of the config the changes make."""
    parent = get_execution_by_id_for_user(request.user, execution_id)
    denied = forbidden_unless_allowed(request, obj=parent)
    if denied:
        return denied
    try:
        body = json_body(request)
        if not isinstance(body, dict) or "from" not in body:
            raise ConfigError([PipelineProblem("from", 'is required: "last" or a checkpoint\'s epoch')])
        child = forking.fork(parent, body["from"], user=request.user, changes=body.get("changes"))
    except ConfigError as exc:
        return invalid(exc)
    except QueueUnavailable as exc:
        return Status(503, {"detail": str(exc)})
    record(request, Entry.Action.LAUNCH, execution=child, via="api", fork_of=parent.pk, at_epoch=child.forked_at_epoch)
    return Status(201, execution_detail(detail_of(request.user, child.pk)))
