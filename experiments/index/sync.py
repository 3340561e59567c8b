"""Keep the database's index current with the execution folders under the trainings root.

    report = sync_trainings("trainings")   # every <experiment>/executions/<folder>/
    report.line()                          # "indexed 12, unchanged 340, errors 1"
    sync_folder(path)                      # one folder (``manage.py train`` when it ends)

Incremental: each folder's file names, sizes and mtimes are hashed (one ``os.scandir`` per
directory, no file read); a folder whose hash matches its row's ``fingerprint`` is skipped
without opening any file. A run that ended and has been still since has a stamp
(``experiments.index.stamps``): its directories are stat'ed, not listed, unless ``full``.
Idempotent: a skipped folder's row is not written at all (but for a stamp it lacked).

Bad input never stops the sweep. What sync could not read is written on that execution's
``error``, one line per problem, each naming its file. Metric fields (summary, histories,
elapsed, hardware) are written only when metrics.json was read, so a run still going keeps
what its worker recorded. Rows are never deleted: a folder that vanished becomes ``missing``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from experiments.index import stamps
from experiments.index.listing import Folder, Listing, find_folders, inside, list_folder, printable
from experiments.index.reader import NEW_EXPERIMENT_HOOKS, Record, is_stale, read_folder, tracked_process_gone
from experiments.index.writing import ROW_FIELDS, Row, Snapshot, SyncReport, rows_by_key, write_batch
from experiments.models import DEFAULT_PROJECT, Execution, Experiment, Project, Status
from experiments.models.lifecycle import ENDED
from experiments.models.projects import PROJECT_NAME_PATTERN, PROJECTS_FOLDER, default_project_id

__all__ = ["BATCH_SIZE", "SyncReport", "index_execution", "sync_folder", "sync_folders", "sync_trainings"]

log = logging.getLogger(__name__)

BATCH_SIZE = 200


# --- the sweep ------------------------------------------------------------------------------
def _snapshot(filters: dict[str, Any]) -> Snapshot:
    # Streamed in chunks (a server-side cursor on PostgreSQL): a million rows are not fetched at once.
    rows = Execution.objects.filter(folder_name__isnull=False, **filters).values_list(*ROW_FIELDS)
    return rows_by_key(rows.iterator(chunk_size=10_000))


def _held(folders: list[Folder], rows: list[Row | None]) -> set[int]:
    """The indexes of the runs that ended whose stamps hold: one stat per directory, no listing (``stamps``)."""
    stamped = [
        (index, folder, row.stamp)
        for index, (folder, row) in enumerate(zip(folders, rows, strict=True))
        if row and row.stamp and row.status in ENDED and row.folder_path == folder.location
    ]
    held = stamps.held([(folder, stamp) for _, folder, stamp in stamped])
    return {index for (index, _, _), found in zip(stamped, held, strict=True) if found}


def _unchanged(row: Row, folder: Folder, listing: Listing, now: dt.datetime, stale_after: dt.timedelta) -> bool:
    """Whether a listed folder is as its row says: the same files, the same place, a run not gone quiet."""
    return (
        row.fingerprint == listing.fingerprint
        and row.folder_path == folder.location
        and row.status != Status.MISSING
        and not (
            row.status == Status.RUNNING
            and not row.worker_alive
            # a script's run (gymnos_track) whose process is gone is read again at once
            and (is_stale(folder, listing, now, stale_after) or tracked_process_gone(folder, listing))
        )
    )


def _read(
    folder: Folder,
    listing: Listing,
    row: Row | None,
    now: dt.datetime,
    stale_after: dt.timedelta,
    quiet_before_ns: int,
    report: SyncReport,
) -> Record:
    """Read a folder that changed (or is new); stamped where its run ended and no live worker vouches for it."""
    known = (row.status, row.worker_alive) if row is not None and row.status != Status.MISSING else (None, False)
    record = read_folder(folder, listing, now, stale_after, *known)
    status = known[0] if record.keep_outcome and known[0] else record.status
    if status in ENDED and not known[1]:
        record.stamp = stamps.seal(folder, listing, quiet_before_ns)
    report.indexed += 1
    if record.problems:
        report.errors += 1
        report.problems += [f"{folder.experiment}/{folder.name}: {problem}" for problem in record.problems]
    return record


def _sync(
    root: str,
    folders: list[Folder],
    existing: Snapshot,
    report: SyncReport,
    progress: Callable[[int, int], object] | None,
    stale_after: dt.timedelta,
    batch_size: int,
    full: bool = False,
) -> None:
    now = timezone.now()
    quiet_before_ns = int((now - stale_after).timestamp() * 1e9)  # a stamp is made only of what was still since
    experiment_ids: dict[str, int] = {}
    pending: list[Record] = []
    restamp: list[tuple[int, str]] = []
    rows = [existing.get(folder[:2]) for folder in folders]  # (experiment, name): the snapshot's key
    held = set() if full else _held(folders, rows)
    report.unchanged += len(held)
    if progress:  # the folders whose stamps held are done: one call for them, then one per folder listed
        progress(len(held), len(folders))
    rest = [index for index in range(len(folders)) if index not in held] if held else range(len(folders))
    for done, index in enumerate(rest, len(held) + 1):
        folder, row = folders[index], rows[index]
        listing = list_folder(folder, root)
        if row is not None and _unchanged(row, folder, listing, now, stale_after):
            report.unchanged += 1
            if row.status in ENDED and (not full or not row.stamp):
                stamp = stamps.seal(folder, listing, quiet_before_ns)
                if stamp != row.stamp:
                    restamp.append((row.pk, stamp))
        else:
            pending.append(_read(folder, listing, row, now, stale_after, quiet_before_ns, report))
            if len(pending) >= batch_size:
                write_batch(pending, experiment_ids, existing, now, report)
                pending = []
        if progress:
            progress(done, len(folders))
    if pending:
        write_batch(pending, experiment_ids, existing, now, report)
    stamps.store(restamp)


def _mark_missing(pks: list[int], report: SyncReport) -> None:
    report.missing += Execution.objects.mark_missing(pks)


def _resolve_root(root: str | Path | None) -> Path:
    root = Path(root if root is not None else settings.GYMNOS_TRAININGS_ROOT).expanduser()
    if not root.is_dir():
        # An unmounted share must not turn every row into "missing".
        raise FileNotFoundError(f"the trainings root {root} is not a directory; check GYMNOS_TRAININGS_ROOT or --root")
    return Path(os.path.realpath(root))


def _stale_after(given: dt.timedelta | None) -> dt.timedelta:
    """``given``, else the ``GYMNOS_SYNC_STALE_MINUTES`` setting."""
    return given if given is not None else dt.timedelta(minutes=settings.GYMNOS_SYNC_STALE_MINUTES)


def sync_trainings(
    root: str | Path | None = None,
    progress: Callable[[int, int], object] | None = None,
    stale_after: dt.timedelta | None = None,
    batch_size: int = BATCH_SIZE,
    full: bool = False,
) -> SyncReport:
    """Index every ``<experiment>/executions/<folder>/`` under ``root`` (default: GYMNOS_TRAININGS_ROOT).

    ``progress(done, total)`` is called after each folder. ``stale_after`` (a timedelta; default
    the ``GYMNOS_SYNC_STALE_MINUTES`` setting) is how long a folder without metrics.json may stay
    unchanged before it counts as a crashed run. ``full`` lists every folder, stamped or not (a folder
    changed in place after its run ended: ``experiments.index.stamps``). Returns a ``SyncReport``.
    """
    root = _resolve_root(root)
    stale_after = _stale_after(stale_after)
    report = SyncReport(root)
    last_experiment = Experiment.objects.aggregate(last=Max("pk"))["last"] or 0
    for project_root, project_id in _project_roots(root, report):
        _sync_project(project_root, project_id, report, progress, stale_after, batch_size, full)
    created = list(Experiment.objects.filter(pk__gt=last_experiment).values_list("pk", flat=True))
    for hook in NEW_EXPERIMENT_HOOKS if created else ():
        hook(created)
    return report


def _project_roots(root: Path, report: SyncReport) -> list[tuple[Path, int]]:
    """``root`` for default's experiments, then ``root/projects/<project>`` for each other project's (a folder
    there makes its project, if its name is one a project may have; otherwise the report says why not)."""
    roots = [(root, default_project_id())]
    holder = root / PROJECTS_FOLDER
    if not holder.is_dir() or holder.is_symlink():
        return roots
    for entry in sorted(os.scandir(holder), key=lambda entry: entry.name):
        if not entry.is_dir(follow_symlinks=False):
            continue
        if not re.fullmatch(PROJECT_NAME_PATTERN, entry.name) or entry.name == DEFAULT_PROJECT:
            report.problems.append(f"{PROJECTS_FOLDER}/{printable(entry.name)}: not a project's name; left out")
            report.errors += 1
            continue
        project, _ = Project.objects.get_or_create(name=entry.name)
        roots.append((Path(entry.path), project.pk))
    return roots


def _sync_project(
    root: Path,
    project_id: int,
    report: SyncReport,
    progress: Callable[[int, int], object] | None,
    stale_after: dt.timedelta,
    batch_size: int,
    full: bool,
) -> None:
    # Rows are read before the folders are listed: a row whose folder appears meanwhile is not "missing".
    existing = _snapshot({"experiment__project_id": project_id})
    folders, problems = find_folders(str(root), project_id)
    report.problems += problems
    report.errors += len(problems)
    _sync(str(root), folders, existing, report, progress, stale_after, batch_size, full)
    seen = {(folder.experiment, folder.name) for folder in folders}
    prefix = str(root).rstrip("/") + "/"
    gone = [
        row.pk
        for key, row in existing.items()
        if key not in seen
        and row.status != Status.MISSING
        and row.folder_path.startswith(prefix)
        and not os.path.lexists(row.folder_path)
    ]
    _mark_missing(gone, report)


def index_execution(execution_id: int) -> None:
    """Index one execution's folder, if it has one (its status is left to whoever owns the run)."""
    path = Execution.objects.filter(pk=execution_id).values_list("folder_path", flat=True).first()
    if not path:
        return
    try:
        sync_folder(path, settings.GYMNOS_TRAININGS_ROOT)
    except Exception:  # logged with its traceback: the run's own outcome matters more than its index
        log.exception("Could not index %s", path)


def sync_folders(
    root: str | Path,
    folders: list[tuple[str, str]],
    stale_after: dt.timedelta | None = None,
    project: str = DEFAULT_PROJECT,
) -> SyncReport:
    """Index the run folders ``(experiment, folder name)`` of ``project`` under the trainings root ``root``
    together, in batches (pushed folders): one snapshot and one transaction per ``BATCH_SIZE`` folders, where
    ``sync_folder`` pays them per folder. Another project's folders are under ``<root>/projects/<project>``."""
    root = _resolve_root(root)
    project_id = None
    if project != DEFAULT_PROJECT:
        project_id = Project.objects.get_or_create(name=project)[0].pk
        root = root / PROJECTS_FOLDER / project
    report = SyncReport(root)
    present = [
        Folder(experiment, name, str(root / experiment / "executions" / name), project_id=project_id)
        for experiment, name in folders
        if (root / experiment / "executions" / name).is_dir()
    ]
    existing = _snapshot(
        {
            "experiment__project__name": project,  # pushed folders are their project's
            "experiment__name__in": {f.experiment for f in present},
            "folder_name__in": {f.name for f in present},
        }
    )
    _sync(str(root), present, existing, report, None, _stale_after(stale_after), BATCH_SIZE, full=True)
    return report


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def sync_folder(
    path: str | Path, root: str | Path | None = None, stale_after: dt.timedelta | None = None
) -> SyncReport:
    """Index one ``<root>/<experiment>/executions/<folder>`` (root: three levels up unless given)."""
    stale_after = _stale_after(stale_after)
    given = Path(path).absolute()
    root = _resolve_root(root if root is not None else given.parent.parent.parent)
    project_id = default_project_id()
    if len(given.parents) > 4 and given.parents[3].name == PROJECTS_FOLDER and _real(given.parents[4]) == root:
        # <root>/projects/<project>/<experiment>/executions/<folder>: that project's root, as the sweep names it.
        project_id = Project.objects.get_or_create(name=given.parent.parent.parent.name)[0].pk
        root = root / PROJECTS_FOLDER / given.parent.parent.parent.name
    # Named as the sweep names it (from the resolved root), so the two agree on folder_path.
    path = root / given.parent.parent.name / "executions" / given.name
    folder = Folder(given.parent.parent.name, given.name, str(path), project_id=project_id)
    report = SyncReport(root)
    existing = _snapshot(
        {"experiment__project_id": project_id, "experiment__name": folder.experiment, "folder_name": folder.name}
    )
    if not path.is_dir():
        _mark_missing([row.pk for row in existing.values() if row.status != Status.MISSING], report)
        return report
    if path.is_symlink() and not inside(path, str(root)):
        folder = Folder(folder.experiment, folder.name, str(path), outside=os.path.realpath(path))
    # Listed even where stamped: a worker calls this when its run ends, which may have written in place.
    _sync(str(root), [folder], existing, report, None, stale_after, 1, full=True)
    return report
