"""Editing a run's title, notes and tags, and archiving runs and experiments.

Each change is written to the run's sidecar first (the folder is the record of truth), then to
its row, then to the audit log (one entry per run and action, only when something changed)::

    edit(run, request=request, notes="Lower *val_loss* than the baseline.")
    add_tags([run_a, run_b], ["baseline"], request=request)
    set_archived(run, True, request=request)

A run without a folder (still queued, missing, or in the trash) cannot be edited: its edits
would have nowhere to live. Changes of one run are serialised by a write on its row, so two
people editing at once cannot lose each other's change to the sidecar.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.models import Entry
from audit.recording import record
from experiments.files import execution_folder
from experiments.models import Execution, Experiment, Status

from . import sidecar

UNSET: Any = object()
NOTES_IN_AUDIT = 300  # characters of the new notes an audit entry keeps


class CurationError(Exception):
    """An action that cannot be done as asked; ``status`` is the HTTP status that says so (409)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def actor_of(request: HttpRequest | None, actor: Any = None) -> Any:
    user = actor if actor is not None else getattr(request, "user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def actor_name(request: HttpRequest | None, actor: Any = None) -> str:
    user = actor_of(request, actor)
    return user.get_username() if user is not None else "the command line"


def label(execution: Execution) -> str:
    return f"{execution.experiment.name}/{execution.folder_name or f'queued #{execution.pk}'}"


def folder_of(execution: Execution) -> str:
    """The run's folder (its real path inside the root), or ``CurationError`` saying why there is none."""
    if execution.status == Status.DELETED:
        raise CurationError(f"{label(execution)} is in the trash; restore it first")
    folder = execution_folder(execution)
    if folder is None:
        if not execution.folder_name:
            raise CurationError(f"{label(execution)} has no folder yet; edit it once a worker has started it")
        raise CurationError(f"the folder of {label(execution)} is missing, so there is nowhere to keep the edit")
    return folder


def config_title(execution: Execution) -> str:
    experiment = (execution.config or {}).get("experiment") if isinstance(execution.config, dict) else None
    return str(experiment.get("name") or "") if isinstance(experiment, dict) else ""


def config_tags(execution: Execution) -> list[str]:
    experiment = (execution.config or {}).get("experiment") if isinstance(execution.config, dict) else None
    tags = experiment.get("tags") if isinstance(experiment, dict) else None
    return [str(tag) for tag in tags if isinstance(tag, (str, int, float))] if isinstance(tags, list) else []


@dataclass
class Change:
    """What one action did to one run: the fields written, for the row and the audit entry."""

    fields: dict[str, Any]
    details: dict[str, Any]


def _locked(pk: int) -> None:
    """Take the run's row for this transaction (a write: SQLite's lock, PostgreSQL's row lock)."""
    Execution.objects.filter(pk=pk).update(updated_at=timezone.now())


def _apply(
    execution: Execution,
    action: str,
    change: Any,
    request: HttpRequest | None,
    actor: Any = None,
    **details: Any,
) -> bool:
    """Read the sidecar, let ``change(sidecar)`` edit it (returning the row's fields, or {} for no
    change), write it and the row; then one audit entry. True if something changed."""
    folder = folder_of(execution)
    with transaction.atomic():
        _locked(execution.pk)
        try:
            current = sidecar.read(folder)
        except sidecar.SidecarError as exc:
            raise CurationError(
                f"{sidecar.FILE} of {label(execution)} cannot be read ({exc}); fix or remove it"
            ) from exc
        fields: dict[str, Any] = change(current)
        if not fields:
            return False
        try:
            sidecar.write(execution.folder_path, current, actor_name(request, actor))
        except OSError as exc:
            raise CurationError(f"{sidecar.FILE} of {label(execution)} cannot be written: {exc}") from exc
        Execution.objects.filter(pk=execution.pk).update(**fields, updated_at=timezone.now())
        for name, value in fields.items():
            setattr(execution, name, value)
        record(request, action, execution=execution, actor=actor_of(request, actor), **details)
    return True


def edit(
    execution: Execution,
    *,
    title: str = UNSET,
    notes: str = UNSET,
    tags: list[str] = UNSET,
    request: HttpRequest | None = None,
    actor: Any = None,
) -> bool:
    """Set any of the title (empty: the config's name again), notes and tags; values already cleaned."""
    changed: dict[str, Any] = {}

    def change(current: sidecar.Sidecar) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if title is not UNSET and title != execution.title:
            current.title = title or None
            fields["title"] = title or config_title(execution)
            changed["title"] = fields["title"]
        if notes is not UNSET and notes != execution.notes:
            current.notes = notes
            fields["notes"] = notes
            changed["notes"] = notes[:NOTES_IN_AUDIT] + ("…" if len(notes) > NOTES_IN_AUDIT else "")
        if tags is not UNSET and list(tags) != list(execution.tags or []):
            current.tags = list(tags)
            fields["tags"] = list(tags)
            changed["tags"] = {"from": list(execution.tags or []), "to": list(tags)}
        return fields

    folder_of(execution)
    return _apply(execution, Entry.Action.EDIT, change, request, actor, changed=changed)


def add_tags(
    executions: Iterable[Execution], tags: list[str], request: HttpRequest | None = None, actor: Any = None
) -> int:
    """Add ``tags`` to each run (those it lacks); returns how many runs changed."""
    count = 0
    for execution in executions:
        current = list(execution.tags or [])
        wanted = sidecar.clean_tags(current + [tag for tag in tags if tag not in current])
        count += edit(execution, tags=wanted, request=request, actor=actor)
    return count


def remove_tags(
    executions: Iterable[Execution], tags: list[str], request: HttpRequest | None = None, actor: Any = None
) -> int:
    """Remove ``tags`` from each run that has them; returns how many runs changed."""
    count = 0
    for execution in executions:
        current = list(execution.tags or [])
        count += edit(execution, tags=[tag for tag in current if tag not in tags], request=request, actor=actor)
    return count


def set_archived(
    execution: Execution,
    archived: bool,
    request: HttpRequest | None = None,
    actor: Any = None,
    with_experiment: bool = False,
) -> bool:
    """Archive (hide from the default tables and charts) or unarchive one run; False if it already was.

    ``with_experiment``: archived because its experiment was (unarchiving the experiment brings back
    only those, not the runs someone archived on their own).
    """

    def change(current: sidecar.Sidecar) -> dict[str, Any]:
        if current.archived == archived and execution.archived == archived:
            return {}
        current.archived = archived
        current.archived_with_experiment = archived and with_experiment
        return {"archived": archived}

    action = Entry.Action.ARCHIVE if archived else Entry.Action.UNARCHIVE
    extra = {"with_experiment": True} if with_experiment else {}
    return _apply(execution, action, change, request, actor, **extra)


def set_experiment_archived(
    experiment: Experiment, archived: bool, request: HttpRequest | None = None, actor: Any = None
) -> tuple[int, list[str]]:
    """Archive a whole experiment (each of its runs with a folder, and the experiment's row), or unarchive it.

    Unarchiving brings back the runs that were archived with it. Returns ``(runs changed, problems)``:
    a run whose folder cannot take the change is named in ``problems`` and left as it was.
    """
    changed, problems = 0, []
    runs = experiment.executions.select_related("experiment").exclude(status=Status.DELETED).exclude(folder_name=None)
    for execution in runs.filter(archived=not archived):
        try:
            if not archived and not _archived_with_experiment(execution):
                continue
            changed += set_archived(execution, archived, request, actor, with_experiment=archived)
        except CurationError as exc:
            problems.append(str(exc))
    Experiment.objects.filter(pk=experiment.pk).update(archived=archived)
    experiment.archived = archived
    return changed, problems


def _archived_with_experiment(execution: Execution) -> bool:
    try:
        return sidecar.read(folder_of(execution)).archived_with_experiment
    except (sidecar.SidecarError, CurationError, OSError):
        return False


def folder_exists(execution: Execution) -> bool:
    return bool(execution.folder_path) and os.path.isdir(execution.folder_path)
