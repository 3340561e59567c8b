"""Curating runs through the API, on ``/api/executions`` (attached to its router; gymnos_web/api.py imports this).

- ``PATCH /api/executions/{id}`` with any of ``title``, ``notes``, ``tags``: the run's edits.
- ``POST /api/executions/{id}/archive``, ``/unarchive``: hide it from the default tables, or not.
- ``DELETE /api/executions/{id}``: move it to the trash; ``POST /api/executions/{id}/restore``: back.

Editing and archiving need ``experiments.change_execution``; deleting and restoring
``experiments.delete_execution``. 409 says why an action cannot be done (a running run, a run with
no folder, something already at the path a restore would use).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Status
from pydantic import Field

from experiments.access import DELETE_PERMISSION, EDIT_PERMISSION
from experiments.api.base import Detail, ValidationErrors, api, forbidden_unless_allowed, invalid, json_body
from experiments.api.executions import router
from experiments.api.schemas import ExecutionDetail, detail_of, execution_detail
from experiments.models import Execution
from experiments.pipeline import ConfigError
from experiments.pipeline.schema import Section, openapi_schema, validate

from . import edits, sidecar, trash
from .edits import UNSET, CurationError


class CurationEdit(Section):
    """What ``PATCH`` may change; a key left out is left as it is."""

    title: Annotated[str, Field(max_length=sidecar.MAX_TITLE)] | None = Field(
        None, description="The run's title; an empty string gives back the config's experiment.name."
    )
    notes: Annotated[str, Field(max_length=sidecar.MAX_NOTES)] | None = Field(
        None, description="Free text, Markdown (rendered without raw HTML)."
    )
    tags: Annotated[list[str], Field(max_length=sidecar.MAX_TAGS)] | None = Field(
        None, description="The run's whole tag list (it replaces the config's experiment.tags)."
    )


def _problem(path: str, message: str) -> Status[Any]:
    return Status(400, {"errors": [{"path": path, "message": message}]})


def _cleaned(request: HttpRequest) -> dict[str, Any] | Status[Any]:
    """The body as the edit's cleaned values, or a 400 listing every problem with its path."""
    try:
        edit = validate(CurationEdit, json_body(request, max_bytes=sidecar.MAX_BYTES))
    except ConfigError as exc:
        return invalid(exc)
    values: dict[str, Any] = {}
    for name, clean in (("title", sidecar.clean_title), ("notes", sidecar.clean_notes), ("tags", sidecar.clean_tags)):
        value = getattr(edit, name)
        if value is None:
            continue
        try:
            values[name] = clean(value)
        except sidecar.SidecarError as exc:
            return _problem(name, str(exc))
    return values


RESPONSES = {200: ExecutionDetail, 400: ValidationErrors, 403: Detail, 404: Detail, 409: Detail}


def _curate(
    request: HttpRequest, execution_id: int, permission: str, action: Callable[[Execution], Status[Any] | object]
) -> Status[Any]:
    """The permission (403), the run (404), ``action(run)`` (a ``Status`` it returns is the answer; a
    ``CurationError``, 409 saying why), then the run as it is now."""
    execution = detail_of(request.user, execution_id)
    denied = forbidden_unless_allowed(request, permission, obj=execution)
    if denied:
        return denied
    try:
        refused = action(execution)
    except CurationError as exc:
        return Status(exc.status, {"detail": str(exc)})
    if isinstance(refused, Status):
        return refused
    return Status(200, execution_detail(detail_of(request.user, execution_id)))


@router.patch(
    "/{execution_id}",
    response=RESPONSES,
    summary="Edit a run's title, notes or tags",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": api.body_schema(openapi_schema(CurationEdit))}},
        }
    },
)
def curation_edit(request: HttpRequest, execution_id: int) -> Status[Any]:
    """Any of ``title``, ``notes`` (Markdown) and ``tags`` (the whole list); written to the run's folder
    (``curation.json``) and the index. 409 when the run has no folder to keep them (queued, missing, deleted)."""

    def save(execution: Execution) -> Status[Any] | bool:
        values = _cleaned(request)
        if isinstance(values, Status):
            return values
        edited = {name: values.get(name, UNSET) for name in ("title", "notes", "tags")}
        return edits.edit(execution, **edited, request=request)

    return _curate(request, execution_id, EDIT_PERMISSION, save)


@router.post("/{execution_id}/archive", response=RESPONSES, summary="Archive a run")
def curation_archive(request: HttpRequest, execution_id: int) -> Status[Any]:
    """Hide the run from the default tables and charts (a filter still shows it). Archiving an archived run
    changes nothing."""
    return _curate(request, execution_id, EDIT_PERMISSION, lambda run: edits.set_archived(run, True, request))


@router.post("/{execution_id}/unarchive", response=RESPONSES, summary="Unarchive a run")
def curation_unarchive(request: HttpRequest, execution_id: int) -> Status[Any]:
    """Show the run in the default tables and charts again."""
    return _curate(request, execution_id, EDIT_PERMISSION, lambda run: edits.set_archived(run, False, request))


@router.delete("/{execution_id}", response=RESPONSES, summary="Move a run to the trash")
def curation_delete(request: HttpRequest, execution_id: int) -> Status[Any]:
    """Move the run's folder to ``<trainings root>/.trash/`` (same path inside) and mark it ``deleted``.
    409 for a queued or running run (cancel it first) or one already deleted."""
    return _curate(request, execution_id, DELETE_PERMISSION, lambda run: trash.delete(run, request=request))


@router.post("/{execution_id}/restore", response=RESPONSES, summary="Restore a run from the trash")
def curation_restore(request: HttpRequest, execution_id: int) -> Status[Any]:
    """Move the run's folder back where it was and give it back the status it had. 409 when it is not in the
    trash, or something already sits at its original path (the answer names it)."""
    return _curate(request, execution_id, DELETE_PERMISSION, lambda run: trash.restore(run, request=request))
