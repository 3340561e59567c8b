"""Writing what sync read: one transaction per batch of folders, rows updated by primary key.

    write_batch(records, experiment_ids, existing, now, report)   # ``experiments.index.sync``'s batches

``Row`` is what sync knows of a folder's execution before it lists it (its snapshot, ``Snapshot``).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from django.db import DatabaseError, OperationalError, transaction

from experiments.index.listing import printable
from experiments.index.reader import Record, extra_fields
from experiments.models import Execution, Experiment, MetricHistory, Status
from experiments.models.lifecycle import FolderOutcome
from experiments.models.projects import default_project_id

# What a folder says of its run, written on every row it has. Its status, error and finish time go
# through Execution.objects.adopt_folder_outcomes: a run a worker owns is the worker's to end.
FOLDER_FIELDS = [
    "folder_path", "title", "tags", "config", "params", "trackers", "artifacts", "started_at", "fingerprint",
    "folder_stamp", "synced_at", "updated_at",
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


class Row(NamedTuple):
    """One row of the snapshot (a tuple: a sweep makes one per row, a million of them)."""

    pk: int
    fingerprint: str
    status: str
    folder_path: str
    worker_alive: bool  # a worker's heartbeat vouches for it while it runs
    stamp: str = ""


ROW_FIELDS = (
    "pk", "experiment__name", "folder_name", "fingerprint", "status", "folder_path", "heartbeat_at", "folder_stamp"
)  # fmt: skip


# The rows sync knows, by (experiment name, folder name); the column is nullable, though these rows all have one.
Snapshot = dict[tuple[str, str | None], Row]


def rows_by_key(rows: Any) -> Snapshot:
    return {
        (experiment, name): Row(
            pk, fingerprint, status, path, status == Status.RUNNING and heartbeat is not None, stamp
        )
        for pk, experiment, name, fingerprint, status, path, heartbeat, stamp in rows
    }


# --- writing --------------------------------------------------------------------------------


def _as_execution(record: Record, experiment_id: int, now: dt.datetime, pk: int | None = None) -> Execution:
    execution = Execution(
        pk=pk,
        experiment_id=experiment_id,
        folder_name=record.folder.name,
        folder_path=record.folder.location,
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
        folder_stamp=record.stamp,
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


def _rows_added_since(records: list[Record], existing: Snapshot, ids: dict[str, int]) -> Snapshot:
    """Rows made since the snapshot for folders it did not know: a worker claims a name before creating it."""
    unknown = [record for record in records if _key(record) not in existing]
    if not unknown:
        return {}
    rows = Execution.objects.filter(
        experiment_id__in={ids[r.folder.experiment] for r in unknown}, folder_name__in=[r.folder.name for r in unknown]
    ).values_list(*ROW_FIELDS)
    return rows_by_key(rows)


def _write(
    records: list[Record], experiment_ids: dict[str, int], existing: Snapshot, now: dt.datetime
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


def _write_histories(records: list[Record], existing: dict[tuple[str, str | None], Row], ids: dict[str, int]) -> None:
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


def write_batch(
    records: list[Record],
    experiment_ids: dict[str, int],
    existing_ids: Snapshot,
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
                    write_batch([record], experiment_ids, existing_ids, now, report)
            else:
                _write_unstorable(records[0], exc, experiment_ids, existing_ids, now, report)
            return


def _write_unstorable(
    record: Record,
    exc: Exception,
    experiment_ids: dict[str, int],
    existing_ids: Snapshot,
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
