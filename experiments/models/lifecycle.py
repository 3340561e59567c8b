"""Where an execution stands, and the only code that moves it.

Every change of ``Execution.status`` is one of the transitions below, each a conditional
update (``filter(pk=..., status__in=<from>).update(status=<to>, ...)``), so two processes
racing cannot both move a run, and a run that ended never moves back::

    queued ──claim──> running ──finish──> succeeded | failed | pruned
       │     ^           │ ──fail / mark_lost──> failed
       │     └───────────┘ requeue_to_resume: its worker died, its folder keeps a state to go on from
       │<──resume_by_hand── failed | cancelled (a person asked; its folder keeps a state to go on from)
       └──cancel──> cancelled <──cancel──┘
    ended ──delete_run──> deleted ──restore──> the status it had
    any but a worker's live run ──mark_missing──> missing ──adopt_folder_outcomes──> the status it had

Sync indexes folders nobody launched through the queue (``manage.py train``, copied trees); for
those rows the folder says how the run ended (``adopt_folder_outcomes``), and an ended run never
goes back to a live status. A row a worker owns (it has a ``job_id``) is the worker's to end, and is
not marked missing while it is live. A missing run remembers the status it had and comes back to it
when its folder does, never to a live one (``returning_status``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.db.models.fields.json import KeyTransform
from django.dispatch import Signal
from django.utils import timezone

from experiments import live
from experiments.pipeline.names import metric_name_problem
from experiments.pipeline.resume import has_kept_state

from .summary import MAX_POINTS, finite_or_none

# The rows are Executions (``executions.ExecutionQuerySet`` is this class for them); this module sits below the
# model, which uses it, so it names them by this type variable and reads their fields through ``Any``.
_Row = TypeVar("_Row", bound=models.Model)


class Status(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PRUNED = "pruned"
    MISSING = "missing"
    DELETED = "deleted"


# The status groups, defined once: a run still going, and a run that ended.
LIVE = frozenset({Status.QUEUED, Status.RUNNING})
ENDED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.PRUNED})
# What a person may delete: a run that ended, or one whose folder is gone (a live run is cancelled first).
DELETABLE = ENDED | {Status.MISSING}

# Sent once a transition has ended a run (``pk``, ``status``): a sweep asks for its next trial on it.
# Not sent for rows sync indexes from folders, which ended before Gymnos saw them.
execution_ended = Signal()
# Sent once a run's epoch is stored and committed (``pk``, ``epoch``: its number from 1, ``metrics``: each metric's
# value at that epoch as it was logged, NaN and infinity included, which the index keeps as null): alerts on a
# metric's threshold or a NaN listen to it.
epoch_recorded = Signal()
# A running run's process died without ending it (its work horse, its worker or its machine): sent on commit with
# pk, reason (how it died), attempt (the attempt that was lost, from 1) and resumed (queued again, or failed).
run_lost = Signal()

LOST_AFTER = dt.timedelta(seconds=30)
WORKER_LOST = (
    "worker lost: the worker running this execution stopped sending heartbeats (killed, or its machine went away)"
)
CANCELLED_BY_USER = "cancelled by a user"
# A RemoteMonitor post may skip this many epochs at most (the skipped ones are stored as gaps), and a
# run followed that way may log this many metrics: bounds on what one stranger's post can make us store.
POSTED_EPOCH_GAP = 1_000
POSTED_METRICS = 200
# Rows a worker owns: launched through the queue, so the worker (not the folder) says how they end.
OWNED_BY_WORKER = ~Q(job_id="")


@dataclass(frozen=True)
class FolderOutcome:
    """How a folder says its run ended (or that it runs), for ``adopt_folder_outcomes``."""

    pk: int
    status: str
    error: str
    finished_at: dt.datetime | None


def resumable(attempts: int, folder: str) -> bool:
    """Whether a run whose process died can be queued again to go on: its folder keeps a state
    (``pipeline.resume``), and it was resumed fewer than GYMNOS_RESUME_ATTEMPTS times."""
    return attempts < settings.GYMNOS_RESUME_ATTEMPTS and bool(folder) and has_kept_state(folder)


def returning_status(before: str, folder_says: str) -> str:
    """The status of a missing run whose folder is back: the one it had (``before``) if it had ended; for a run
    that went missing while live (never a worker's), what the folder says if that is an end, else failed."""
    if before in ENDED:
        return before
    return folder_says if folder_says in ENDED else Status.FAILED


FOLDER_CAME_BACK_LIVE = "its folder went missing while it ran, and came back without metrics.json"


class ExecutionTransitions(models.QuerySet[_Row]):
    """Executions' transitions (``Execution.objects.claim(pk, worker)``), and the status groups."""

    def live(self) -> ExecutionTransitions[_Row]:
        return self.filter(status__in=LIVE)

    def ended(self) -> ExecutionTransitions[_Row]:
        return self.filter(status__in=ENDED)

    def status_of(self, pk: int) -> str | None:
        return self.filter(pk=pk).values_list("status", flat=True).first()

    def _move(self, pk: int, sources: Iterable[str], target: str, **fields: Any) -> bool:
        """The one way a status changes: only from ``sources``, and only for the one row."""
        sources = list(sources)
        moved = self.filter(pk=pk, status__in=sources).update(status=target, **fields) == 1
        if moved and target in ENDED and LIVE.issuperset(sources):
            transaction.on_commit(lambda: execution_ended.send(sender=self.model, pk=pk, status=target))
        if moved:
            _announce_status(pk, target, str(fields.get("error", "")))
        return moved

    # --- the worker's transitions ---------------------------------------------------------------

    def claim(self, pk: int, worker: str, job_id: str | None = None) -> bool:
        """queued -> running, for the worker that won the row (a job delivered twice runs once).

        ``job_id``: the job that trains it, when that is not its own (a follow-on run, ``experiments.jobs.follow_on``):
        a cancel then stops that job.
        """
        now = timezone.now()
        fields: dict[str, Any] = {"started_at": now, "heartbeat_at": now, "worker": worker}
        if job_id is not None:
            fields["job_id"] = job_id
        return self._move(pk, [Status.QUEUED], Status.RUNNING, **fields)

    def finish(self, pk: int, error: str = "", pruned: bool = False) -> str | None:
        """running -> succeeded (no ``error``), failed, or pruned (a sweep's pruner stopped it early);
        returns how the run ended (a cancel meanwhile stands)."""
        target = Status.FAILED if error else Status.PRUNED if pruned else Status.SUCCEEDED
        self._move(pk, [Status.RUNNING], target, error=error, finished_at=timezone.now(), heartbeat_at=None)
        return self.status_of(pk)

    def fail(self, pk: int, error: str, sources: Iterable[str] = LIVE) -> bool:
        """queued or running -> failed: it could not be queued, or its work horse died."""
        return self._move(pk, sources, Status.FAILED, error=error, finished_at=timezone.now(), heartbeat_at=None)

    def cancel(self, pk: int, reason: str = CANCELLED_BY_USER) -> str | None:
        """queued or running -> cancelled; returns the status it was cancelled from, or None if it had ended."""
        now = timezone.now()
        for source in (Status.QUEUED, Status.RUNNING):
            if self._move(pk, [source], Status.CANCELLED, error=reason, finished_at=now, heartbeat_at=None):
                return source
        return None

    def beat(self, pk: int) -> None:
        """A running run's sign of life (not a transition)."""
        self.filter(pk=pk, status=Status.RUNNING).update(heartbeat_at=timezone.now())

    def requeue_to_resume(self, pk: int, attempts: int, reason: str, job_id: str) -> bool:
        """running -> queued, again: its work horse or worker died (``reason``) and its folder keeps a state to go on
        from (``experiments.jobs.resuming``). Only from ``attempts`` resumes so far (two processes that saw the death
        move it once); the job ``job_id`` trains it next, in the same folder and row."""
        done = attempts + 1  # attempts are counted from 1: the first run is attempt 1
        error = f"attempt {done} ended: {reason}; queued again to go on from its last kept state (attempt {done + 1})"
        return self.filter(attempts=attempts)._move(
            pk,
            [Status.RUNNING],
            Status.QUEUED,
            attempts=F("attempts") + 1,
            error=error,
            job_id=job_id,
            worker="",
            heartbeat_at=None,
        )

    def resume_by_hand(self, pk: int, attempts: int, job_id: str, **changed: Any) -> bool:
        """failed or cancelled -> queued: a person resumes it (``experiments.jobs.resuming.resume_by_hand``), in the
        same folder and row, from its kept state, under the job ``job_id``. Only from ``attempts`` resumes so far
        (two people asking at once queue it once). ``changed``: fields set too (the config of more epochs)."""
        return self.filter(attempts=attempts)._move(
            pk,
            [Status.FAILED, Status.CANCELLED],
            Status.QUEUED,
            attempts=F("attempts") + 1,
            error="",
            job_id=job_id,
            worker="",
            heartbeat_at=None,
            finished_at=None,
            folder_stamp="",  # it trains again: sync lists its files until it has ended and settled once more
            **changed,
        )

    def mark_worker_lost(self, pk: int) -> bool:
        """running -> failed, said by the work horse that saw its worker die."""
        return self.fail(pk, WORKER_LOST, [Status.RUNNING])

    def mark_lost(self, now: dt.datetime | None = None) -> int:
        """running -> failed for every run whose heartbeat stopped ``LOST_AFTER`` ago; returns how many.

        Not a run that can be resumed (``resumable``): the reaper queues it again (``experiments.jobs.resuming``).
        """
        now = now or timezone.now()
        stale = self.filter(status=Status.RUNNING, heartbeat_at__lt=now - LOST_AFTER)
        return sum(
            self._move(pk, [Status.RUNNING], Status.FAILED, error=WORKER_LOST, finished_at=now, heartbeat_at=None)
            and announce_lost(self.model, pk, WORKER_LOST, attempts + 1, resumed=False)
            for pk, attempts, folder in list(stale.values_list("pk", "attempts", "folder_path"))
            if not resumable(attempts, folder)
        )

    def record_epoch(self, pk: int, histories: dict[str, Sequence[float]], epochs_total: int | None = None) -> None:
        """A worker's run ended an epoch: every metric's history so far, its summary, the total, a heartbeat.

        A name the metric rule refuses (a custom callback may log any key) is left out here, as sync leaves
        it out of the index; the run's metrics.json keeps it, and sync names it in the run's error.
        """
        clean = {
            name: [finite_or_none(value) for value in values]
            for name, values in histories.items()
            if metric_name_problem(name) is None
        }
        with transaction.atomic():
            self._store(pk, clean, epochs_total, heartbeat=True)
            epoch = max((len(values) for values in histories.values()), default=0)
            _announce_epoch(
                self.model, pk, epoch, {n: v[-1] for n, v in histories.items() if epoch and len(v) == epoch}
            )

    def record_posted_epoch(self, pk: int, epoch: int, metrics: dict[str, float | None]) -> _Row:
        """A RemoteMonitor post: one epoch (from 0) of a run training elsewhere, padding skipped epochs.

        Its posts are all Gymnos knows of such a run: the first makes it running, the last (when it
        was given an epoch count) succeeded.
        """
        with transaction.atomic():
            row = self.select_for_update().get(pk=pk)
            execution: Any = row
            histories = {name: list(values) for name, values in execution.histories.values_list("name", "values")}
            last = max((len(values) for values in histories.values()), default=0)
            if epoch > last + POSTED_EPOCH_GAP:
                raise ValueError(
                    f"epoch {epoch} is more than {POSTED_EPOCH_GAP:,} epochs after the last one posted ({last - 1}); "
                    "epochs are counted from 0, one post each"
                )
            if len(histories.keys() | metrics.keys()) > POSTED_METRICS:
                raise ValueError(f"a run followed this way may log at most {POSTED_METRICS} metrics")
            for name, value in metrics.items():
                values = histories.setdefault(name, [])
                values.extend([None] * (epoch + 1 - len(values)))
                values[epoch] = finite_or_none(value)
            self._store(pk, histories, None, heartbeat=False)
            _announce_epoch(self.model, pk, epoch + 1, metrics)
            execution.refresh_from_db()
            if not execution.job_id:
                now = timezone.now()
                self._move(pk, [Status.QUEUED], Status.RUNNING, started_at=execution.started_at or now)
                total = execution.epochs_total
                if total and execution.epochs >= total:
                    self._move(pk, [Status.RUNNING], Status.SUCCEEDED, finished_at=now)
            execution.refresh_from_db()
        return row

    def _store(
        self, pk: int, histories: dict[str, list[float | None]], epochs_total: int | None, heartbeat: bool
    ) -> None:
        execution: Any = self.get(pk=pk)
        execution.histories.model.objects.store({pk: histories})
        execution.set_metrics(histories)
        fields = [*SUMMARY_FIELDS]
        if heartbeat and execution.status == Status.RUNNING:
            execution.heartbeat_at = timezone.now()
            fields.append("heartbeat_at")
        if epochs_total is not None:
            execution.epochs_total = epochs_total
            fields.append("epochs_total")
        execution.save(update_fields=fields)

    def claim_folder(self, pk: int, path: Path) -> bool:
        """Record the folder a worker's run is about to create, before it exists (not a transition).

        The unique (experiment, folder) constraint reserves the name: a sync that finds the new folder
        finds this row too, so it never indexes the run a second time. False when a row already holds
        the name; the engine then tries the next one.
        """
        experiment_model: Any = self.model._meta.get_field("experiment").related_model
        # The run stays in the project it was launched in (its folder is under that project's root).
        project_id = self.filter(pk=pk).values_list("experiment__project_id", flat=True).first()
        experiment, _ = experiment_model.objects.get_or_create(project_id=project_id, name=path.parent.parent.name)
        try:
            with transaction.atomic():
                self.filter(pk=pk).update(experiment=experiment, folder_name=path.name, folder_path=str(path))
        except IntegrityError:
            return False
        return True

    # --- shutdown and sync -------------------------------------------------------------------------

    def cancel_running(self, reason: str, worker_prefix: str) -> list[int]:
        """running -> cancelled for the runs of workers named ``worker_prefix...`` (``up`` stopping)."""
        pks = list(self.filter(status=Status.RUNNING, worker__startswith=worker_prefix).values_list("pk", flat=True))
        return [pk for pk in pks if self.cancel(pk, reason) == Status.RUNNING]

    def finishing(self, worker_prefix: str) -> bool:
        """Whether a run of workers named ``worker_prefix...`` has trained its last epoch and is ending
        (saving the model, evaluating, indexing): ``up`` stopping gives it time to end as it would."""
        return self.filter(
            status=Status.RUNNING, worker__startswith=worker_prefix, epochs_total__gt=0, epochs__gte=F("epochs_total")
        ).exists()

    def delete_run(self, pk: int, by: Any) -> bool:
        """ended or missing -> deleted (its folder is in the trash); the status it had is kept for ``restore``.

        A queued or running run cannot be deleted: cancel it first. ``by`` is the user who deleted it.
        """
        current = self.status_of(pk)
        if current not in DELETABLE:
            return False
        return self._move(
            pk, [current], Status.DELETED, status_before_delete=current, deleted_at=timezone.now(), deleted_by=by
        )

    def restore(self, pk: int) -> bool:
        """deleted -> the status it had before (its folder is back where it was)."""
        before = self.filter(pk=pk, status=Status.DELETED).values_list("status_before_delete", flat=True).first()
        if not before:
            return False
        return self._move(pk, [Status.DELETED], before, status_before_delete="", deleted_at=None, deleted_by=None)

    def visible(self, archived: bool = False) -> ExecutionTransitions[_Row]:
        """What tables and charts show by default: not deleted, and not archived (unless ``archived``)."""
        shown = self.exclude(status=Status.DELETED)
        return shown if archived else shown.filter(archived=False)

    def mark_missing(self, pks: Sequence[int]) -> int:
        """any -> missing: their folders are gone; each remembers the status it had (``status_before_missing``).

        A conditional update per status left, so a row that moved meanwhile keeps its move. Not a deleted run
        (its folder is in the trash) nor a live run a worker owns (the worker ends it; the reaper if it died).
        The fingerprint is cleared so a folder that comes back is read.
        """
        now, count = timezone.now(), 0
        sources = [status for status in Status if status not in (Status.MISSING, Status.DELETED)]
        for start in range(0, len(pks), 500):
            chunk = self.filter(pk__in=pks[start : start + 500]).exclude(OWNED_BY_WORKER & Q(status__in=LIVE))
            for source in sources:
                gone = list(chunk.filter(status=source).values_list("pk", flat=True))
                count += chunk.filter(status=source).update(
                    status=Status.MISSING, status_before_missing=source, fingerprint="", updated_at=now
                )
                for pk in gone:
                    _announce_status(pk, Status.MISSING, "its folder is gone")
        return count

    def adopt_folder_outcomes(self, outcomes: Sequence[FolderOutcome]) -> None:
        """What folders say of how their runs went, for the rows that are the folder's to say.

        Those are rows no worker owns, and rows whose folder had gone missing, which come back to the status
        they had (``returning_status``). An ended run never goes back to queued or running. The rows are read
        under their lock and written in one statement, so each move is checked against the status it leaves.
        """
        if not outcomes:
            return
        rows = {
            row[0]: row[1:]
            for row in self.filter(pk__in=[outcome.pk for outcome in outcomes])
            .filter(~OWNED_BY_WORKER | Q(status=Status.MISSING))
            .exclude(status=Status.DELETED)
            .select_for_update()
            .values_list("pk", "status", "status_before_missing", "error", "finished_at")
        }
        moved = []
        for outcome in outcomes:
            if outcome.pk not in rows:
                continue
            status, before, error, finished_at = rows[outcome.pk]
            if status == Status.MISSING and before in ENDED:
                target = before  # as it was, with the error and end it had
            elif status == Status.MISSING:
                target = returning_status(before, outcome.status)
                error = outcome.error or (FOLDER_CAME_BACK_LIVE if target != outcome.status else "")
                finished_at = outcome.finished_at or (timezone.now() if target != outcome.status else None)
            elif status in ENDED and outcome.status in LIVE:
                continue
            else:
                target, error, finished_at = outcome.status, outcome.error, outcome.finished_at
            moved.append(
                self.model(pk=outcome.pk, status=target, error=error, finished_at=finished_at, status_before_missing="")
            )
        self.model._default_manager.bulk_update(moved, ["status", "error", "finished_at", "status_before_missing"])
        for row in moved:
            changed: Any = row
            _announce_status(changed.pk, changed.status, changed.error)


def _announce_status(pk: int, status: str, reason: str) -> None:
    """Publish a status change as a live event once it is committed (``experiments.live``)."""
    transaction.on_commit(lambda: live.publish(pk, live.STATUS, status=str(status), reason=reason))


def announce_lost(sender: type[models.Model], pk: int, reason: str, attempt: int, resumed: bool) -> bool:
    """Send ``run_lost`` on commit (alerts listen: a worker or its machine gone); returns True, for counting."""
    transaction.on_commit(lambda: run_lost.send(sender=sender, pk=pk, reason=reason, attempt=attempt, resumed=resumed))
    return True


def _announce_epoch(sender: type[models.Model], pk: int, epoch: int, logged: dict[str, Any]) -> None:
    """Send ``epoch_recorded`` on commit: ``logged`` is each metric's value at ``epoch`` (from 1) as it was logged."""
    metrics: dict[str, float | None] = {}
    for name, value in logged.items():
        try:
            metrics[name] = None if value is None else float(value)
        except (TypeError, ValueError):
            metrics[name] = None
    if metrics:
        transaction.on_commit(lambda: epoch_recorded.send(sender=sender, pk=pk, epoch=epoch, metrics=metrics))


# The fields ``Execution.set_metrics`` fills.
SUMMARY_FIELDS = ("summary", "test_metrics", "epochs", "final_loss", "final_val_loss", "best_val_loss", "test_loss")


# How many values of a long history one query picks (a query's columns are bounded: SQLite's default is 2,000).
VALUES_PER_QUERY = 200


class MetricHistoryQuerySet(models.QuerySet[Any]):  # MetricHistory's (executions.py, which imports this module)
    def store(self, histories: dict[int, dict[str, list[float | None]]], replace: bool = False) -> None:
        """Write each execution's histories, one row per metric (values already finite or None).

        The one writer of metric histories: the worker each epoch, sync for each folder it reads,
        the RemoteMonitor receiver for each post. ``replace`` also drops the metrics an execution
        no longer has (a rewritten metrics.json).
        """
        rows: list[Any] = [
            self.model(execution_id=pk, name=name, values=values)
            for pk, metrics in histories.items()
            for name, values in metrics.items()
        ]
        for row in rows:
            row.fill_chart()
        if rows:
            self.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["execution", "name"],
                update_fields=["values", "length", "chart"],
            )
        if replace:
            stale = [
                pk
                for pk, execution_id, name in self.filter(execution_id__in=histories).values_list(
                    "pk", "execution_id", "name"
                )
                if name not in histories[execution_id]
            ]
            if stale:
                self.filter(pk__in=stale).delete()

    def values_at(self, execution_id: int, name: str, epochs: Iterable[int]) -> dict[int, float | None]:
        """One history's value at each of ``epochs`` (from 1; those it has), without reading the rest of it.

        A history no longer than a chart is read whole (that costs no more); a longer one by index, in
        the database (``values -> 41`` on PostgreSQL, ``json_extract(values, '$[41]')`` on SQLite).
        """
        short = models.Case(
            models.When(length__lte=MAX_POINTS, then=F("values")), default=None, output_field=models.JSONField()
        )  # read with its length, in one round trip, when it is short
        row = self.filter(execution_id=execution_id, name=name).values_list("pk", "length", short).first()
        if row is None:
            return {}
        pk, length, values = row
        wanted = sorted({epoch for epoch in epochs if 1 <= epoch <= length})
        if length <= MAX_POINTS:
            values = values or []
            return {epoch: values[epoch - 1] for epoch in wanted if epoch <= len(values)}
        found: dict[int, float | None] = {}
        for start in range(0, len(wanted), VALUES_PER_QUERY):
            part = wanted[start : start + VALUES_PER_QUERY]
            picked = self.filter(pk=pk).values(
                **{f"e{epoch}": KeyTransform(str(epoch - 1), "values") for epoch in part}
            )
            found.update({int(key[1:]): value for key, value in picked.get().items()})
        return found
