"""The trash: deleting moves a run's folder to ``<trainings root>/.trash/``, keeping its path inside.

    delete(run, request=request)    # trainings/boston/executions/06-16-31__08-04-2019
                                    #   -> trainings/.trash/boston/executions/06-16-31__08-04-2019
    restore(run, request=request)   # and back, byte for byte (a rename: nothing is rewritten)
    empty_trash(timedelta(days=30)) # what was deleted 30 days ago or more, for good

Nothing is lost on the way: the row is marked deleted (``Execution.objects.delete_run``) only once
the folder has moved, and moved back if that fails; a restore refuses, saying why, when something
already sits at the original path. A ``<folder>.gymnos-trash.json`` beside each trashed folder says
when it was deleted and by whom, so the trash can still be emptied after the index was rebuilt.
Sync never reads ``.trash`` (it skips dot-folders).

Every move, removal and manifest write goes through ``experiments.pipeline.fileops``, so none of
them follows a symbolic link: a link on the way (an experiment folder, ``.trash`` or one of its
folders) is refused and named; a link where a run folder should be is refused by ``delete`` and
``restore`` and removed as a link, never its target, by ``empty_trash``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from audit.models import Entry
from audit.recording import record
from experiments.models import DEFAULT_PROJECT, LIVE, Execution, Project, Status
from experiments.models.lifecycle import DELETABLE
from experiments.pipeline import fileops

from .edits import CurationError, actor_name, actor_of, label

TRASH = ".trash"
MANIFEST_SUFFIX = ".gymnos-trash.json"


def root() -> Path:
    return Path(os.path.realpath(settings.GYMNOS_TRAININGS_ROOT))


def trash_root() -> Path:
    return root() / TRASH


def relative_path(execution: Execution) -> Path:
    """``<experiment>/executions/<folder>``: where the run lives under the root, and under the trash."""
    parts = (execution.experiment.name, "executions", execution.folder_name or "")
    if any(part in {"", ".", ".."} or "/" in part or "\x00" in part for part in parts) or parts[0] == TRASH:
        raise CurationError(f"{label(execution)} has no folder name that can be moved")
    return Path(*parts)


def original_path(execution: Execution) -> Path:
    return root() / relative_path(execution)


def trash_path(execution: Execution) -> Path:
    return trash_root() / relative_path(execution)


def _manifest(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


def folder_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of the regular files under ``path`` (in the root; no link followed, one counts for nothing)."""
    try:
        return fileops.size(root(), path)
    except OSError:
        return 0


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)  # a refusal's message says it all; an OS error its reason


def delete(execution: Execution, request: HttpRequest | None = None, actor: Any = None) -> int:
    """Move the run's folder to the trash and mark it deleted; returns the folder's bytes.

    A queued or running run cannot be deleted (cancel it first); a missing one is only marked.
    """
    status = Execution.objects.status_of(execution.pk)
    if status in LIVE:
        raise CurationError(f"{label(execution)} is {status}; cancel it before deleting it")
    if status not in DELETABLE:
        raise CurationError(f"{label(execution)} is {status}; only runs that ended can be deleted")
    user = actor_of(request, actor)
    moved, size = False, 0
    source, target = (original_path(execution), trash_path(execution)) if execution.folder_name else (None, None)
    if source is not None and target is not None and os.path.lexists(source):
        if os.path.lexists(target):
            raise CurationError(f"the trash already holds {target}; empty the trash or move that folder away first")
        try:
            size = fileops.size(root(), source)
            fileops.move(root(), source, target)
        except OSError as exc:
            raise CurationError(f"could not move {source} to the trash: {_why(exc)}") from exc
        moved = True
    elif source is not None and status != Status.MISSING:
        raise CurationError(f"the folder of {label(execution)} is not at {source}; sync to mark it missing first")
    if not Execution.objects.delete_run(execution.pk, user):
        if moved and source is not None and target is not None:
            fileops.move(root(), target, source)
            fileops.remove_empty(root(), target.parent, trash_root())
        raise CurationError(f"{label(execution)} changed meanwhile; nothing was deleted")
    if moved and target is not None:
        _write_manifest(target, execution, status, actor_name(request, actor))
    execution.refresh_from_db()
    moved_to = {"moved_to": str(target)[-200:]} if moved else {}
    record(request, Entry.Action.DELETE, execution=execution, actor=user, bytes=size, **moved_to)
    return size


def _write_manifest(target: Path, execution: Execution, status: str, by: str) -> None:
    document = {
        "experiment": execution.experiment.name,
        "folder": execution.folder_name,
        "deleted_at": timezone.now().isoformat(timespec="seconds"),
        "deleted_by": by,
        "status_before_delete": status,
    }
    try:
        fileops.write(root(), _manifest(target), json.dumps(document, indent=2).encode() + b"\n")
    except OSError:
        pass  # only the rebuilt-index case needs it; the row says the same


def restore(execution: Execution, request: HttpRequest | None = None, actor: Any = None) -> None:
    """Move the run's folder back from the trash to where it was, and give it its status back."""
    execution.refresh_from_db()
    if execution.status != Status.DELETED:
        raise CurationError(f"{label(execution)} is {execution.status}, not in the trash")
    moved = False
    source, target = (trash_path(execution), original_path(execution)) if execution.folder_name else (None, None)
    if source is not None and target is not None and os.path.lexists(source):
        if os.path.lexists(target):
            raise CurationError(f"something already sits at {target}; move it away, then restore again")
        try:
            fileops.move(root(), source, target)
        except OSError as exc:
            raise CurationError(f"could not move {source} back: {_why(exc)}") from exc
        moved = True
    elif source is not None and execution.status_before_delete != Status.MISSING:
        raise CurationError(f"the trash no longer holds {source}; it cannot be restored")
    if not Execution.objects.restore(execution.pk):
        if moved and source is not None and target is not None:
            fileops.move(root(), target, source)
        raise CurationError(f"{label(execution)} changed meanwhile; nothing was restored")
    if moved and source is not None:
        with contextlib.suppress(OSError):  # a manifest left behind is ignored: no folder goes with it
            fileops.remove(root(), _manifest(source), missing_ok=True)
        fileops.remove_empty(root(), source.parent, trash_root())
    execution.refresh_from_db()
    record(request, Entry.Action.RESTORE, execution=execution, actor=actor_of(request, actor))


@dataclass
class Emptied:
    """What ``empty_trash`` removed: ``"<experiment>/<folder>"`` each, and the bytes freed."""

    removed: list[str] = field(default_factory=list)
    bytes: int = 0
    problems: list[str] = field(default_factory=list)


def orphans(problems: list[str] | None = None) -> Iterator[tuple[Path, dt.datetime | None]]:
    """Trashed folders with no row (the index was rebuilt), with when their manifest says they went.

    A folder whose row still exists, whatever its status, is not one: ``delete`` moves the folder
    before it marks the row, and must be able to move it back. A link where a folder of the trash
    should be (``.trash``, ``.trash/<experiment>``, its ``executions``) is not followed: it is
    named in ``problems`` and what it points to is never listed.
    """
    base = trash_root()
    if _a_link(base, problems) or not base.is_dir():
        return
    for experiment in sorted(base.iterdir()):
        executions = experiment / "executions"
        if _a_link(experiment, problems) or _a_link(executions, problems) or not executions.is_dir():
            continue
        folders = [folder for folder in sorted(executions.iterdir()) if not folder.name.endswith(MANIFEST_SUFFIX)]
        known = _indexed(experiment.name, [folder.name for folder in folders])
        for folder in folders:
            if folder.name not in known:
                yield folder, _deleted_at(folder)


def _a_link(path: Path, problems: list[str] | None) -> bool:
    if not path.is_symlink():
        return False
    if problems is not None:
        problems.append(f"{fileops.Refused.link(path)}; it is left as it is")
    return True


def _indexed(experiment: str, names: list[str], chunk: int = 500) -> set[str]:
    """Which of ``names`` (folders of ``experiment`` in the trash) have a row: only those rows are read."""
    found: set[str] = set()
    for start in range(0, len(names), chunk):
        rows = Execution.objects.filter(experiment__name=experiment, folder_name__in=names[start : start + chunk])
        found.update(name for name in rows.values_list("folder_name", flat=True) if name is not None)
    return found


def _stamp(folder: Path) -> None:
    """Give a trashed folder that has no manifest one dated now (when it was first found)."""
    document = {
        "experiment": folder.parent.parent.name,
        "folder": folder.name,
        "deleted_at": timezone.now().isoformat(timespec="seconds"),
        "deleted_by": "",
        "found_without_manifest": True,
    }
    try:
        fileops.write(root(), _manifest(folder), json.dumps(document, indent=2).encode() + b"\n")
    except OSError:
        pass  # left undated: it stays, and the Trash page lists it


def _deleted_at(folder: Path) -> dt.datetime | None:
    try:
        when = json.loads(_manifest(folder).read_text())["deleted_at"]
        return dt.datetime.fromisoformat(when)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove(path: Path) -> int:
    """Remove a trashed folder (a link there: the link alone) and its manifest; the bytes freed."""
    size = fileops.remove(root(), path, missing_ok=True)
    fileops.remove(root(), _manifest(path), missing_ok=True)
    fileops.remove_empty(root(), path.parent, trash_root())
    return size


def empty_trash(
    older_than: dt.timedelta,
    request: HttpRequest | None = None,
    actor: Any = None,
    now: dt.datetime | None = None,
    projects: list[Project] | None = None,
) -> Emptied:
    """Remove for good the runs deleted ``older_than`` ago or more: their folders, then their rows.

    ``projects``: only those projects' runs (the Trash page: where its user is a maintainer), and the folders
    without a row only if default is one of them (None: every project's, the command line's).

    Trashed folders whose row is gone go too when their manifest is that old. One without a manifest
    is given one dated now, so it goes ``older_than`` from now (never in the call that found it).
    One audit entry per run.
    """
    cutoff = (now or timezone.now()) - older_than
    report = Emptied()
    runs = Execution.objects.select_related("experiment").filter(status=Status.DELETED, deleted_at__lte=cutoff)
    if projects is not None:
        runs = runs.filter(experiment__project__in=projects)
    for execution in runs.order_by("deleted_at", "pk"):
        where = label(execution)
        try:
            path = trash_path(execution) if execution.folder_name else None
            size = _remove(path) if path is not None else 0
        except (OSError, CurationError) as exc:
            report.problems.append(f"{where}: could not remove it: {exc}")
            continue
        record(request, Entry.Action.EMPTY_TRASH, execution=execution, actor=actor_of(request, actor), bytes=size)
        Execution.objects.filter(pk=execution.pk, status=Status.DELETED).delete()
        report.removed.append(where)
        report.bytes += size
    with_orphans = projects is None or any(project.name == DEFAULT_PROJECT for project in projects)
    for folder, deleted_at in list(orphans(report.problems)) if with_orphans else []:
        if deleted_at is None:
            _stamp(folder)  # it goes at the first emptying that long after today
            continue
        if deleted_at > cutoff:
            continue
        where = f"{folder.parent.parent.name}/{folder.name}"
        try:
            size = _remove(folder)
        except OSError as exc:
            report.problems.append(f"{where}: could not remove it: {exc}")
            continue
        record(request, Entry.Action.EMPTY_TRASH, target=f"{where} (no longer indexed)", actor=actor_of(request, actor))
        report.removed.append(where)
        report.bytes += size
    return report


def trashed_bytes(execution: Execution) -> int | None:
    """The size of a deleted run's folder in the trash (its indexed size, else measured)."""
    if execution.size_bytes is not None:
        return execution.size_bytes
    path = trash_path(execution)
    return folder_bytes(path) if path.is_dir() else None
