"""An execution as the API answers it: one shape, whichever operation answers.

The search's items are ``ExecutionOut``; the detail, launch, cancel and curation's operations
(edit, archive, delete, restore) answer ``ExecutionDetail``, the same keys plus those that can be
large (the config, the notes, the hardware). A key means the same thing everywhere: ``epochs`` is
the epochs run (as the query language's ``epochs`` column and the experiment table count them),
``epochs_total`` those the config asks for::

    {"id": 12, "experiment": "boston_housing", "folder_name": "06-16-31__08-04-2019",
     "status": "running", "epochs": 7, "epochs_total": 50, "tags": ["baseline"], ...}

Rows read for it come with ``RELATED`` joined (the names of the launcher and the deleter), so a
page of 500 items is one query.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404
from ninja import Schema
from pydantic import Field

from experiments.access import get_execution_by_id_for_user, visible_executions
from experiments.display import execution_url
from experiments.models import Execution

# The foreign keys the shape names (experiment, launched_by, deleted_by): select_related them.
RELATED = ("experiment", "launched_by", "deleted_by")
# The detail's own keys: a list of runs leaves them unread (defer them).
DETAIL_ONLY = ("notes", "config", "hardware")


def _deprecated(description: str) -> Any:
    return Field(description=description, json_schema_extra={"deprecated": True})


class ExecutionOut(Schema):
    id: int
    experiment: str = Field(description="The experiment's name (its folder under the trainings root).")
    folder_name: str | None = Field(description="The run's folder in <experiment>/executions/; null while queued.")
    name: str | None = _deprecated("The same as folder_name (the search API's first name for it).")
    title: str
    status: str
    tags: list[str]
    archived: bool
    epochs: int = Field(description="Epochs run so far.")
    epochs_total: int | None = Field(description="Epochs the config asks for (null for a run indexed from a folder).")
    epoch: int = _deprecated("The same as epochs (the detail's first name for it).")
    attempts: int = Field(
        description="Times it was queued again to go on from its kept state after its worker died (0: never)."
    )
    parent: int | None = Field(description="The id of the run it was forked from (its weights); null for none.")
    forked_at_epoch: int | None = Field(
        description="The parent's epoch it started from: its epoch N is the parent's forked_at_epoch + N."
    )
    queue: str
    launched_by: str | None
    started_at: str | None = Field(description="ISO 8601, e.g. 2026-11-29T10:31:02.123456+00:00.")
    finished_at: str | None
    elapsed: dict[str, Any] = Field(description="Seconds per stage (load_data, fit_model, ...).")
    summary: dict[str, Any] = Field(description="Each metric's last value.")
    test_metrics: dict[str, Any]
    params: dict[str, Any] = Field(description="The config flattened by path (training.batch_size: 32, ...).")
    system: dict[str, Any] = Field(description="The machine's figures while it trained (docs/system.md).")
    evaluation: dict[str, Any] = Field(description="The evaluation report's summary (docs/evaluation.md).")
    error: str
    size_bytes: int | None
    checkpoint_bytes: int | None
    deleted_at: str | None
    deleted_by: str | None
    url: str = Field(description="This run in the API.")
    html_url: str = Field(description="The run's page.")


class ExecutionDetail(ExecutionOut):
    notes: str = Field(description="Free text, Markdown.")
    config: dict[str, Any] | None = Field(description="The config as given (training_config.json).")
    hardware: dict[str, Any]


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def execution_out(execution: Execution) -> dict[str, Any]:
    """``execution`` in the shape of ``ExecutionOut`` (it reads none of ``DETAIL_ONLY``)."""
    return {
        "id": execution.pk,
        "experiment": execution.experiment.name,
        "folder_name": execution.folder_name,
        "name": execution.folder_name,
        "title": execution.title,
        "status": execution.status,
        "tags": list(execution.tags or []),
        "archived": execution.archived,
        "epochs": execution.epochs,
        "epochs_total": execution.epochs_total,
        "epoch": execution.epochs,
        "attempts": execution.attempts,
        "parent": execution.parent_id,
        "forked_at_epoch": execution.forked_at_epoch,
        "queue": execution.queue,
        "launched_by": _username(execution.launched_by),
        "started_at": _iso(execution.started_at),
        "finished_at": _iso(execution.finished_at),
        "elapsed": execution.elapsed or {},
        "summary": execution.summary or {},
        "test_metrics": execution.test_metrics or {},
        "params": execution.params or {},
        "system": execution.system or {},
        "evaluation": execution.evaluation or {},
        "error": execution.error,
        "size_bytes": execution.size_bytes,
        "checkpoint_bytes": execution.checkpoint_bytes,
        "deleted_at": _iso(execution.deleted_at),
        "deleted_by": _username(execution.deleted_by),
        "url": f"/api/executions/{execution.pk}",
        "html_url": execution_url(execution),
    }


def execution_detail(execution: Execution) -> dict[str, Any]:
    """``execution`` in the shape of ``ExecutionDetail``."""
    return {
        **execution_out(execution),
        "notes": execution.notes,
        "config": execution.config,
        "hardware": execution.hardware or {},
    }


def detail_of(user: Any, execution_id: int) -> Execution:
    """The run with what ``execution_detail`` reads joined, or 404 (also if ``user`` may not see its project)."""
    found = visible_executions(user).select_related(*RELATED).filter(pk=execution_id).first()
    if found is None:
        get_execution_by_id_for_user(user, execution_id)  # its 404, auditing an attempt at another project's run
        raise Http404("No such execution.")
    return found
