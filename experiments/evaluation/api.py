"""This feature's API operations, attached to the routers of experiments/api (which imports this module).

``GET /api/executions/{id}/evaluation``: the run's evaluation.json as the engine wrote it (NaN as null).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Schema, Status
from pydantic import ValidationError

from experiments.access import visible_executions
from experiments.api.base import Detail
from experiments.api.executions import router

from . import report


class NotComputed(Schema):
    what: str
    why: str


class EvaluationOut(Schema):
    id: int
    format: int | None = None
    task: str | None = None
    task_from: str | None = None
    split: str | None = None
    split_note: str | None = None
    samples: int | None = None
    evaluated: int | None = None
    rows: str | None = None
    headline: dict[str, float | None] = {}
    classification: dict[str, Any] | None = None
    regression: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    not_computed: list[NotComputed] = []
    seconds: float | None = None


@router.get(
    "/{execution_id}/evaluation",
    response={200: EvaluationOut, 404: Detail},
    summary="The evaluation report: per-class figures and curves, or regression errors; and the model",
)
def evaluation(request: HttpRequest, execution_id: int) -> Status[Any]:
    """What the run's model gets right and wrong on its test split (else its validation split).

    404 when the execution does not exist, or has no readable ``evaluation.json`` yet (a queued or running
    run, a run made before the report existed, a file that is not a report); ``detail`` says which.
    """
    execution = visible_executions(request.user).filter(pk=execution_id).first()
    if execution is None:
        return Status(404, {"detail": f"there is no execution {execution_id}"})
    try:
        document = report.load(execution)
        body = EvaluationOut.model_validate({**document, "id": execution.pk})
    except report.Unavailable as exc:
        return Status(404, {"detail": str(exc)})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        return Status(404, {"detail": f"evaluation.json is not a report Gymnos can read: {where}: {problem['msg']}"})
    return Status(200, body)
