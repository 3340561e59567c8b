"""Keep the database's index current with the execution folders under the trainings root.

    report = sync_trainings("trainings")   # every <experiment>/executions/<folder>/
    report.line()                          # "indexed 12, unchanged 340, errors 1"
    sync_folder(path)                      # one folder (``manage.py train`` when it ends)

Incremental: each folder's file names, sizes and mtimes are hashed (one ``os.scandir`` per
directory, no file read); a folder whose hash matches its row's ``fingerprint`` is skipped
without opening any file. Idempotent: a skipped folder's row is not written at all.

Bad input never stops the sweep. What sync could not read is written on that execution's
``error``, one line per problem, each naming its file. Metric fields (summary, histories,
elapsed, hardware) are written only when metrics.json was read, so a run still going keeps
what its worker recorded. Rows are never deleted: a folder that vanished becomes ``missing``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, transaction
from django.db.models import Max
from django.utils import timezone

from experiments.index.listing import Folder, find_folders, inside, list_folder, printable
from experiments.index.reader import (
    NEW_EXPERIMENT_HOOKS,
    Record,
    extra_fields,
    is_stale,
    read_folder,
    tracked_process_gone,
)
from experiments.models import DEFAULT_PROJECT, Execution, Experiment, MetricHistory, Project, Status
from experiments.models.lifecycle import FolderOutcome
from experiments.models.projects import PROJECT_NAME_PATTERN, PROJECTS_FOLDER, default_project_id

log = logging.getLogger(__name__)

BATCH_SIZE = 200
# What a folder says of its run, written on every row it has. Its status, error and finish time go
# through Execution.objects.adopt_folder_outcomes: a run a worker owns is the worker's to end.
FOLDER_FIELDS = [
    "folder_path", "title", "tags", "config", "params", "trackers", "artifacts", "started_at", "fingerprint",
    "synced_at", "updated_at",
]  # fmt: skip
# Written only from a metrics.json that was read, so a run still going keeps what its worker recorded.
METRIC_FIELDS = [
    "elapsed", "hardware", "summary", "test_metrics", "epochs",
    "final_loss", "final_val_loss", "best_val_loss", "test_loss",
]  # fmt: skip


@dataclass
class SyncReport:
    """What one sync did. ``problems`` lists ``"<experiment>/<folder>: <file>: <problem>"``."""

    root: Path
    indexed: int = 0
    unchanged: int = 0
    errors: int = 0
    missing: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"indexed {self.indexed}, unchanged {self.unchanged}, errors {self.errors}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "errors": self.errors,
            "missing": self.missing,
            "problems": list(self.problems),
        }


# --- writing --------------------------------------------------------------------------------


def _as_execution(record: Record, experiment_id: int, now: dt.datetime, pk: int | None = None) -> Execution:
    execution = Execution(
        pk=pk,
        experiment_id=experiment_id,
        folder_name=record.folder.name,
        folder_path=str(record.folder.path),
        status=record.status,
        title=record.title[:255],
        tags=record.tags,
        config=record.config,
        trackers=record.trackers,
        artifacts=record.artifacts,
        started_at=record.started_at,
        finished_at=record.finished_at,
        error=printable(record.error),
        fingerprint=record.fingerprint,
        synced_at=now,
        created_at=now,
        updated_at=now,
        elapsed=record.elapsed,
        hardware=record.hardware,
        params=record.params,
        **record.extra,
    )
    execution.set_metrics(record.metrics or {})
    return execution


def _folder_fields() -> list[str]:
    """What every indexed folder writes: the core fields and those of the registered readers."""
    return FOLDER_FIELDS + extra_fields()


def _key(record: Record) -> tuple[str, str]:
    return (record.folder.experiment, record.folder.name)


def _rows_added_since(records: list[Record], existing: _Snapshot, ids: dict[str, int]) -> _Snapshot:
    """Rows made since the snapshot for folders it did not know: a worker claims a name before creating it."""
    unknown = [record for record in records if _key(record) not in existing]
    if not unknown:
        return {}
    rows = Execution.objects.filter(
        experiment_id__in={ids[r.folder.experiment] for r in unknown}, folder_name__in=[r.folder.name for r in unknown]
    ).values_list("pk", "experiment__name", "folder_name", "fingerprint", "status", "folder_path", "heartbeat_at")
    return {
        (experiment, name): _Row(pk, fingerprint, status, path, status == Status.RUNNING and heartbeat is not None)
        for pk, experiment, name, fingerprint, status, path, heartbeat in rows
    }


def _write(
    records: list[Record], experiment_ids: dict[str, int], existing: _Snapshot, now: dt.datetime
) -> dict[str, int]:
    """Write a batch in the caller's transaction; returns experiment ids it created or found.

    A new folder is inserted whole; a folder with a row updates it (by primary key: no upsert, so
    ids stay consecutive), and its outcome is adopted where it is the folder's to say.
    """
    names = sorted({record.folder.experiment for record in records} - experiment_ids.keys())
    found: dict[str, int] = {}
    if names:
        # One pass syncs one project's folders (``sync_trainings``), so a batch is one project's.
        project_id = records[0].folder.project_id or default_project_id()
        experiments = [Experiment(name=name, project_id=project_id) for name in names]
        Experiment.objects.bulk_create(experiments, ignore_conflicts=True)
        found = dict(Experiment.objects.filter(name__in=names, project_id=project_id).values_list("name", "id"))
    ids = {**experiment_ids, **found}
    claimed = _rows_added_since(records, existing, ids)
    existing = {**existing, **claimed}
    new = [record for record in records if _key(record) not in existing]
    known = [record for record in records if _key(record) in existing]
    if new:
        # A worker that claimed the same name meanwhile keeps its row; the next sync updates it.
        Execution.objects.bulk_create(
            [_as_execution(r, ids[r.folder.experiment], now) for r in new], ignore_conflicts=True
        )
    for with_metrics in (True, False):
        group = [record for record in known if (record.metrics is not None) is with_metrics]
        if group:
            objects = [_as_execution(r, ids[r.folder.experiment], now, existing[_key(r)].pk) for r in group]
            Execution.objects.bulk_update(objects, _folder_fields() + (METRIC_FIELDS if with_metrics else []))
    Execution.objects.adopt_folder_outcomes(
        [
            FolderOutcome(existing[_key(r)].pk, r.status, printable(r.error), r.finished_at)
            for r in known
            if not r.keep_outcome
        ]
    )
    _write_histories(records, existing, ids)
    return found


def _write_histories(records: list[Record], existing: dict[tuple[str, str | None], _Row], ids: dict[str, int]) -> None:
    """Every metric history a folder holds (replacing what its metrics.json no longer has), and the extra
    histories its readers found (system samples); a run without metrics.json keeps what its worker wrote."""
    measured = [record for record in records if record.metrics is not None or record.extra_histories]
    if measured:
        pks: dict[tuple[str, str | None], int] = {key: row.pk for key, row in existing.items()}
        unknown = [record for record in measured if _key(record) not in pks]
        if unknown:
            rows = Execution.objects.filter(
                experiment_id__in={ids[r.folder.experiment] for r in unknown},
                folder_name__in=[r.folder.name for r in unknown],
            ).values_list("pk", "experiment__name", "folder_name")
            pks.update({(experiment, name): pk for pk, experiment, name in rows})
        complete = [r for r in measured if _key(r) in pks and r.metrics is not None]
        MetricHistory.objects.store({pks[_key(r)]: {**r.metrics, **r.extra_histories} for r in complete}, replace=True)  # type: ignore[dict-item]
        partial = [r for r in measured if _key(r) in pks and r.metrics is None]
        MetricHistory.objects.store({pks[_key(r)]: r.extra_histories for r in partial})


def _write_batch(
    records: list[Record],
    experiment_ids: dict[str, int],
    existing_ids: _Snapshot,
    now: dt.datetime,
    report: SyncReport,
) -> None:
    """One transaction per batch, retried while the database is busy (SQLite's lock, a PostgreSQL deadlock).

    Anything else the database refuses (PostgreSQL cannot store a NUL character) is narrowed
    down to the folder that holds it, which is recorded as failed with the database's message.
    """
    for attempt in range(6):
        try:
            with transaction.atomic():
                found = _write(records, experiment_ids, existing_ids, now)
            experiment_ids.update(found)  # only once committed: a rolled-back id must not be reused
            return
        except OperationalError:
            if attempt == 5:
                raise
            time.sleep(0.05 * 2**attempt)
        except (DatabaseError, ValueError) as exc:
            if len(records) > 1:
                for record in records:
                    _write_batch([record], experiment_ids, existing_ids, now, report)
            else:
                _write_unstorable(records[0], exc, experiment_ids, existing_ids, now, report)
            return


def _write_unstorable(
    record: Record,
    exc: Exception,
    experiment_ids: dict[str, int],
    existing_ids: _Snapshot,
    now: dt.datetime,
    report: SyncReport,
) -> None:
    """Record the folder as failed with the database's complaint, keeping nothing it held."""
    plain = Record(record.folder, record.fingerprint, status=Status.FAILED)
    plain.problem("folder", f"the database refused what it holds: {str(exc).strip().splitlines()[0]}")
    if not record.problems:
        report.errors += 1
    report.problems.append(f"{record.folder.experiment}/{record.folder.name}: {plain.error}")
    try:
        with transaction.atomic():
            found = _write([plain], experiment_ids, existing_ids, now)
        experiment_ids.update(found)
    except (DatabaseError, ValueError) as again:  # not even its name can be stored: the report says so
        report.problems.append(f"{record.folder.experiment}/{record.folder.name}: not indexed: {again}")


# --- the sweep ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    pk: int
    fingerprint: str
    status: str
    folder_path: str
    worker_alive: bool  # a worker's heartbeat vouches for it while it runs


# The rows sync knows, by (experiment name, folder name); the column is nullable, though these rows all have one.
_Snapshot = dict[tuple[str, str | None], _Row]


def _snapshot(filters: dict[str, Any]) -> _Snapshot:
    rows = Execution.objects.filter(folder_name__isnull=False, **filters)
    fields = ("pk", "experiment__name", "folder_name", "fingerprint", "status", "folder_path", "heartbeat_at")
    return {
        (experiment, name): _Row(pk, fingerprint, status, path, status == Status.RUNNING and heartbeat is not None)
        for pk, experiment, name, fingerprint, status, path, heartbeat in rows.values_list(*fields)
    }


def _sync(
    root: str,
    folders: list[Folder],
    existing: _Snapshot,
    report: SyncReport,
    progress: Callable[[int, int], object] | None,
    stale_after: dt.timedelta,
    batch_size: int,
) -> None:
    now = timezone.now()
    experiment_ids: dict[str, int] = {}
    pending: list[Record] = []
    for done, folder in enumerate(folders, 1):
        listing = list_folder(folder, root)
        row = existing.get((folder.experiment, folder.name))
        if (
            row is not None
            and row.fingerprint == listing.fingerprint
            and row.folder_path == str(folder.path)
            and row.status != Status.MISSING
            and not (
                row.status == Status.RUNNING
                and not row.worker_alive
                # a script's run (gymnos_track) whose process is gone is read again at once
                and (is_stale(folder, listing, now, stale_after) or tracked_process_gone(folder, listing))
            )
        ):
            report.unchanged += 1
        else:
            known = (
                (row.status, row.worker_alive) if row is not None and row.status != Status.MISSING else (None, False)
            )
            record = read_folder(folder, listing, now, stale_after, *known)
            pending.append(record)
            report.indexed += 1
            if record.problems:
                report.errors += 1
                report.problems += [f"{folder.experiment}/{folder.name}: {problem}" for problem in record.problems]
            if len(pending) >= batch_size:
                _write_batch(pending, experiment_ids, existing, now, report)
                pending = []
        if progress:
            progress(done, len(folders))
    if pending:
        _write_batch(pending, experiment_ids, existing, now, report)


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
) -> SyncReport:
    """Index every ``<experiment>/executions/<folder>/`` under ``root`` (default: GYMNOS_TRAININGS_ROOT).

    ``progress(done, total)`` is called after each folder. ``stale_after`` (a timedelta; default
    the ``GYMNOS_SYNC_STALE_MINUTES`` setting) is how long a folder without metrics.json may stay
    unchanged before it counts as a crashed run. Returns a ``SyncReport``.
    """
    root = _resolve_root(root)
    stale_after = _stale_after(stale_after)
    report = SyncReport(root)
    last_experiment = Experiment.objects.aggregate(last=Max("pk"))["last"] or 0
    for project_root, project_id in _project_roots(root, report):
        _sync_project(project_root, project_id, report, progress, stale_after, batch_size)
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
) -> None:
    # Rows are read before the folders are listed: a row whose folder appears meanwhile is not "missing".
    existing = _snapshot({"experiment__project_id": project_id})
    found, problems = find_folders(str(root))
    folders = [dataclasses.replace(folder, project_id=project_id) for folder in found]
    report.problems += problems
    report.errors += len(problems)
    _sync(str(root), folders, existing, report, progress, stale_after, batch_size)
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
        Folder(experiment, name, root / experiment / "executions" / name, project_id=project_id)
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
    _sync(str(root), present, existing, report, None, _stale_after(stale_after), BATCH_SIZE)
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
    folder = Folder(given.parent.parent.name, given.name, path, project_id=project_id)
    report = SyncReport(root)
    existing = _snapshot(
        {"experiment__project_id": project_id, "experiment__name": folder.experiment, "folder_name": folder.name}
    )
    if not path.is_dir():
        _mark_missing([row.pk for row in existing.values() if row.status != Status.MISSING], report)
        return report
    if path.is_symlink() and not inside(path, str(root)):
        folder = Folder(folder.experiment, folder.name, path, outside=os.path.realpath(path))
    _sync(str(root), [folder], existing, report, None, stale_after, 1)
    return report
