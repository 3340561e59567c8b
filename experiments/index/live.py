"""Epochs a tracked script streams while it trains (``gymnos_track.start(..., server=, token=)``), before its folder
is pushed: they go to the row its folder will be synced into, so a push later completes that run, never a second.

The row is found by (experiment, folder), as sync finds a folder's: made queued at the first batch (then running,
as a RemoteMonitor post makes it), and updated by each epoch as RemoteMonitor's posts update theirs. Once the folder
itself has been pushed and synced, the folder is the truth: epochs streamed late are ignored.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from experiments.models import Execution, Experiment, Project, Status
from experiments.pipeline.names import metric_name_problem

from .push import PushRefused, check_names

MAX_EPOCHS_A_BATCH = 1_000


def record_streamed(
    user: Any,
    experiment: str,
    folder: str,
    epochs: list[tuple[int, dict[str, float | None]]],
    project: Project | None = None,
) -> dict[str, Any]:
    """Record ``epochs`` (epoch from 0, its metrics) for the run ``experiment/folder``; ``{"execution", "epochs",
    "ignored"}``, in ``project`` (default: ``default``; where its folder is pushed). ``PushRefused`` for a bad name,
    ``ValueError`` for an epoch the run cannot take (its message)."""
    check_names(experiment, folder)
    if len(epochs) > MAX_EPOCHS_A_BATCH:
        raise PushRefused(f"{len(epochs):,} epochs in one request; at most {MAX_EPOCHS_A_BATCH:,}")
    for epoch, metrics in epochs:
        problem = next(filter(None, map(metric_name_problem, metrics)), None)
        if problem:
            raise PushRefused(f"{experiment}/{folder}, epoch {epoch}: {problem}")
    execution = _row(user, experiment, folder, project or Project.default())
    if execution.synced_at is not None or execution.status not in (Status.QUEUED, Status.RUNNING):
        return {"execution": execution.pk, "epochs": execution.epochs, "ignored": True}  # the folder is the truth
    for epoch, metrics in epochs:
        execution = Execution.objects.record_posted_epoch(execution.pk, epoch, metrics)
    execution.refresh_from_db()
    return {"execution": execution.pk, "epochs": execution.epochs, "ignored": False}


def _row(user: Any, experiment: str, folder: str, project: Project) -> Any:
    # The project the folder is pushed into (README, Track your own script), where names are unique.
    found, _ = Experiment.objects.get_or_create(project=project, name=experiment)
    execution = Execution.objects.filter(experiment=found, folder_name=folder).first()
    if execution is not None:
        return execution
    try:
        with transaction.atomic():
            return Execution.objects.create(
                experiment=found, folder_name=folder, status=Status.QUEUED, title=folder, launched_by=user
            )
    except IntegrityError:  # another batch of the same run made it first
        return Execution.objects.get(experiment=found, folder_name=folder)
