"""Editing a run's title, notes and tags, and archiving runs and experiments.

Each change is written to the run's sidecar first (the folder is the record of truth), then to
its row, then to the audit log (one entry per run and action, only when something changed)::

    edit(run, request=request, notes="Lower *val_loss* than the baseline.")
    add_tags([run_a, run_b], ["baseline"], request=request)
    set_archived(run, True, request=request)

A run without a folder (still queued, missing, or in the trash) cannot be edited: its edits
would have nowhere to live. Each change reads the run's row and sidecar under the row's lock and
builds on what it read there, so eight people pressing "Add tag" at once keep all eight tags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.models import Entry
from audit.recording import record
from experiments.files import execution_folder
from experiments.models import Execution, Experiment, Status
from experiments.pipeline.config import experiment_section

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
    """The title a run has until someone sets one: its config's ``experiment.name``."""
    experiment = experiment_section(execution.config)
    return experiment.name if experiment is not None else ""


def _locked(execution: Execution) -> Execution:
    """The run's row, read again under its lock for the rest of the transaction.

    PostgreSQL: ``SELECT ... FOR UPDATE``, so a second edit of the run waits here, then reads what
    the first one wrote. SQLite: the transaction began with the database's write lock (settings:
    ``transaction_mode`` IMMEDIATE), which does the same for every row.
    """
    return Execution.objects.select_for_update(of=("self",)).select_related("experiment").get(pk=execution.pk)


def _apply(
    execution: Execution,
    action: str,
    change: Callable[[Execution, sidecar.Sidecar], dict[str, Any]],
    request: HttpRequest | None,
    actor: Any = None,
    **details: Any,
) -> bool:
    """Under the run's lock, read its row and sidecar and let ``change(row, sidecar)`` edit the sidecar
    (returning the row's fields, or {} for no change); write both, then one audit entry. True if
    something changed. Everything ``change`` decides from is read under the lock, so two people editing
    at once each build on the other's change (read-modify-write under the lock)."""
    with transaction.atomic():
        row = _locked(execution)
        folder = folder_of(row)
        try:
            current = sidecar.read(folder)
        except sidecar.SidecarError as exc:
            raise CurationError(
                f"{sidecar.FILE} of {label(execution)} cannot be read ({exc}); fix or remove it"
            ) from exc
        fields = change(row, current)
        if not fields:
            return False
        try:
            sidecar.write(row.folder_path, current, actor_name(request, actor))
        except OSError as exc:
            raise CurationError(f"{sidecar.FILE} of {label(execution)} cannot be written: {exc}") from exc
        Execution.objects.filter(pk=row.pk).update(**fields, updated_at=timezone.now())
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
    whole_list = None if tags is UNSET else (lambda current: list(tags))
    return _edit(execution, title, notes, whole_list, request, actor)


def add_tags(
    executions: Iterable[Execution], tags: list[str], request: HttpRequest | None = None, actor: Any = None
) -> int:
    """Add ``tags`` to each run (those it lacks); returns how many runs changed."""

    def more(current: list[str]) -> list[str]:
        try:
            return sidecar.clean_tags(current + [tag for tag in tags if tag not in current])
        except sidecar.SidecarError as exc:
            raise CurationError(f"{exc}, so no more tags can be added") from exc

    return sum(_edit(execution, UNSET, UNSET, more, request, actor) for execution in executions)


def remove_tags(
    executions: Iterable[Execution], tags: list[str], request: HttpRequest | None = None, actor: Any = None
) -> int:
    """Remove ``tags`` from each run that has them; returns how many runs changed."""

    def fewer(current: list[str]) -> list[str]:
        return [tag for tag in current if tag not in tags]

    return sum(_edit(execution, UNSET, UNSET, fewer, request, actor) for execution in executions)


def _edit(
    execution: Execution,
    title: str,
    notes: str,
    tags: Callable[[list[str]], list[str]] | None,
    request: HttpRequest | None,
    actor: Any,
) -> bool:
    """``edit``, with the new tags computed from the run's tags as they are under the lock."""
    changed: dict[str, Any] = {}

    def change(row: Execution, current: sidecar.Sidecar) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if title is not UNSET and title != row.title:
            current.title = title or None
            fields["title"] = changed["title"] = title or config_title(row)
        if notes is not UNSET and notes != row.notes:
            current.notes = fields["notes"] = notes
            changed["notes"] = notes[:NOTES_IN_AUDIT] + ("…" if len(notes) > NOTES_IN_AUDIT else "")
        before = list(row.tags or [])
        after = tags(before) if tags is not None else before
        if after != before:
            current.tags = fields["tags"] = after
            changed["tags"] = {"from": before, "to": after}
        return fields

    return _apply(execution, Entry.Action.EDIT, change, request, actor, changed=changed)


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

    def change(row: Execution, current: sidecar.Sidecar) -> dict[str, Any]:
        if current.archived == archived and row.archived == archived:
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
