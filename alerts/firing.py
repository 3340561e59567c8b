"""Firing: an event a run sent matched against the rules, one delivery row and one RQ job per rule that fires.

``fire(event)`` is the one entry point. The core calls it through its signals after the change is committed
(``execution_ended``, ``epoch_recorded``, both sent on commit), and the reaper through ``fire_stalled``. It never
raises into the caller: a run's end in a work horse must not fail because an alert could not be queued.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import django_rq
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rq import Retry
from rq.job import Job

from experiments.models import Execution, Status
from sweeps.models import Sweep

from .models import Delivery, Progress, Rule
from .rules import Event, Match, kinds_for, match

log = logging.getLogger(__name__)

MAX_ERROR_SHOWN = 500
# A delivery pending or being sent this long without its job in Redis lost that job (Redis flushed or restarted
# without its data, a worker killed while it sent): longer than a delivery job may run (120 s) and its retries wait.
LOST_AFTER = dt.timedelta(minutes=10)
WORKER_LOST = "its worker stopped while sending it; it may have been sent"


def scope_of(execution: Any) -> Q:
    """The rules whose scope holds ``execution``."""
    sweep = execution.sweep_trial.sweep_id if hasattr(execution, "sweep_trial") else None
    scopes = (
        Q(scope=Rule.Scope.RUN, execution_id=execution.pk)
        | Q(scope=Rule.Scope.EXPERIMENT, experiment_id=execution.experiment_id)
        | Q(scope=Rule.Scope.EVERYONE)
    )
    if sweep is not None:
        scopes |= Q(scope=Rule.Scope.SWEEP, sweep_id=sweep)
    if execution.launched_by_id is not None:
        scopes |= Q(scope=Rule.Scope.MINE, owner_id=execution.launched_by_id)
    return scopes


def fire(event: Event) -> list[int]:
    """Match ``event`` against the rules; returns the deliveries it made (each queued, unless suppressed)."""
    kinds = kinds_for(event)
    if not kinds or not Rule.objects.filter(kind__in=kinds).exists():
        return []
    execution = Execution.objects.select_related("experiment", "sweep_trial").filter(pk=event.execution).first()
    if execution is None:
        return []
    made = []
    for rule in Rule.objects.filter(scope_of(execution), kind__in=kinds).select_related("owner"):
        found = match(rule, event)
        if found is not None:
            delivery = _record(rule, execution, found)
            if delivery is not None:
                made.append(delivery)
    return made


def _label(execution: Any) -> str:
    return f"{execution.experiment.name}/{execution.folder_name or f'run {execution.pk}'}"


def _record(rule: Rule, execution: Any, found: Match) -> int | None:
    """The delivery of ``found`` for ``rule`` and ``execution``, made once (its key is unique) and queued."""
    message = f"Gymnos: {_label(execution)}: {found.message}"
    if found.event == Rule.Kind.FAILED and execution.error:
        message += f": {execution.error[:MAX_ERROR_SHOWN]}"
    details = {**found.details, "run": execution.pk, "experiment": execution.experiment.name}
    status, reason = Delivery.State.PENDING, ""
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    recent = rule.deliveries.filter(created_at__gte=hour_ago).exclude(status=Delivery.State.SUPPRESSED).count()
    if recent >= settings.GYMNOS_ALERTS_PER_HOUR:
        status = Delivery.State.SUPPRESSED
        reason = (
            f"rate limited: this rule sent {recent} alerts in the last hour, at most "
            f"{settings.GYMNOS_ALERTS_PER_HOUR} (GYMNOS_ALERTS_PER_HOUR)"
        )
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                rule=rule,
                execution=execution,
                event=found.event,
                key=f"{rule.pk}:{execution.pk}:{found.event}",
                message=message,
                details=details,
                status=status,
                reason=reason,
            )
    except IntegrityError:
        return None  # this rule already fired for this run's event: once only
    if status == Delivery.State.PENDING:
        transaction.on_commit(lambda: _enqueue(delivery.pk, rule.failing))
    return delivery.pk


def _enqueue(pk: int, failing: bool) -> None:
    """Queue the delivery's job, at the front: an alert should not wait behind the trainings queued."""
    intervals = settings.GYMNOS_ALERT_RETRY_INTERVALS
    # A rule already failing gets one try per alert: it is not retried forever.
    retry = None if failing or not intervals else Retry(max=len(intervals), interval=list(intervals))
    try:
        django_rq.get_queue("default").enqueue(
            "alerts.jobs.deliver", pk, retry=retry, job_id=f"alert-{pk}", at_front=True, job_timeout=120
        )
    except Exception as exc:  # noqa: BLE001 - Redis away: said on the delivery, never raised into the run's end
        log.warning("Could not queue alert delivery %s: %s", pk, exc)
        Delivery.objects.filter(pk=pk, status=Delivery.State.PENDING).update(
            status=Delivery.State.FAILED, reason=f"could not be queued: {exc}"[:1000]
        )


def _safely(event: Event) -> None:
    try:
        fire(event)
    except Exception:
        log.exception("Could not fire the alerts of %s", event)


def on_execution_ended(sender: Any, pk: int, status: str, **kwargs: Any) -> None:
    """``execution_ended``: a run finished, failed or was cancelled (sent on commit)."""
    _safely(Event(pk, "ended", status=status))


def on_epoch_recorded(sender: Any, pk: int, epoch: int, metrics: dict[str, float | None], **kwargs: Any) -> None:
    """``epoch_recorded``: note when the run made progress (for stalled rules), then fire thresholds and NaNs."""
    try:
        Progress.objects.bulk_create(
            [Progress(execution_id=pk, epoch=epoch, at=timezone.now())],
            update_conflicts=True,
            unique_fields=["execution"],
            update_fields=["epoch", "at"],
        )
    except Exception:
        log.exception("Could not note run %s's epoch %s for stalled alerts", pk, epoch)
    _safely(Event(pk, "epoch", epoch=epoch, metrics=metrics))


def on_run_lost(sender: Any, pk: int, reason: str, attempt: int, resumed: bool, **kwargs: Any) -> None:
    """``run_lost``: a running run's worker, work horse or machine died (the reaper or a heartbeat saw it)."""
    _safely(Event(pk, "lost", facts={"reason": reason, "attempt": attempt, "resumed": resumed}))


def on_new_best_trial(
    sender: Any, sweep: int, execution: int, number: int, metric: str, value: float, **kwargs: Any
) -> None:
    """``new_best_trial``: a sweep's trial beat every other told one."""
    facts = {"sweep": sweep, "number": number, "metric": metric, "value": value}
    _safely(Event(execution, "best", facts=facts))


def on_sweep_finished(sender: Any, sweep: int, **kwargs: Any) -> None:
    """``sweep_finished``: told about the sweep's best trial's run (else its last trial's: a delivery is of a run)."""
    try:
        _sweep_finished(sweep)
    except Exception:
        log.exception("Could not fire the alerts of sweep %s finishing", sweep)


def _sweep_finished(sweep_id: int) -> None:
    sweep = Sweep.objects.filter(pk=sweep_id).first()
    if sweep is None:
        return
    trials = sweep.trials.filter(execution__isnull=False)
    order = "-value" if sweep.direction == "maximize" else "value"
    best = trials.filter(value__isnull=False).order_by(order).first()
    run = best or trials.order_by("-number").first()
    if run is None or run.execution_id is None:
        log.warning("Sweep %s finished without a trial that ran: no run to tell its alerts about", sweep_id)
        return
    facts = {
        "sweep": sweep_id,
        "trials": sweep.trials.count(),
        "metric": sweep.metric,
        "best": best.value if best is not None else None,
    }
    fire(Event(run.execution_id, "sweep_finished", facts=facts))


def fire_stalled(now: dt.datetime | None = None) -> int:
    """The reaper's step: every running run with no epoch for as long as a stalled rule waits; returns the alerts.

    A run's last progress is its last epoch's end, or its start before its first epoch.
    """
    shortest = (
        Rule.objects.filter(kind=Rule.Kind.STALLED)
        .order_by("stall_minutes")
        .values_list("stall_minutes", flat=True)[:1]
    )
    if not shortest:
        return 0
    now = now or timezone.now()
    since = now - dt.timedelta(minutes=shortest[0] or 0)
    made = 0
    running = Execution.objects.filter(status=Status.RUNNING, started_at__isnull=False).values_list(
        "pk", "started_at", "alert_progress__epoch", "alert_progress__at"
    )
    for pk, started_at, epoch, at in running[:1000]:
        last = at or started_at
        if last is not None and last <= since:
            event = Event(pk, "stalled", epoch=epoch or 0, idle_minutes=(now - last).total_seconds() / 60)
            made += len(fire(event))
    return made


def release_due_retries() -> int:
    """The reaper's step: queue again the alert deliveries whose wait before a retry is over; returns how many.

    RQ keeps a retry that waits in the queue's scheduled registry, which only a worker started with RQ's scheduler
    empties; Gymnos' workers run without it, so the reaper (every 10 s on each worker) does it for the alerts' jobs.
    Each is taken out of the registry first (one process wins it) and then queued at the front.
    """
    queue = django_rq.get_queue("default")
    registry = queue.scheduled_job_registry
    released = 0
    for found in registry.get_jobs_to_schedule(int(time.time())):
        job_id = found.decode() if isinstance(found, bytes) else str(found)
        if not job_id.startswith("alert-") or not registry.remove(job_id):
            continue
        job = Job.fetch(job_id, connection=queue.connection) if Job.exists(job_id, queue.connection) else None
        if job is not None:
            queue._enqueue_job(job, at_front=True)  # as RQ's own scheduler does (rq.scheduler)
            released += 1
    return released


def settle_lost() -> int:
    """The reaper's step: deliveries whose job Redis no longer has, ``LOST_AFTER`` old. A pending one is queued
    again; one that was being sent is failed with that reason (it may have gone out: sending it again could send it
    twice). Returns how many."""
    queue = django_rq.get_queue("default")
    old = timezone.now() - LOST_AFTER
    settled = 0
    waiting = Delivery.objects.filter(
        status__in=[Delivery.State.PENDING, Delivery.State.SENDING], created_at__lt=old
    ).values_list("pk", "status", "rule__failing")
    for pk, status, failing in waiting[:500]:
        if Job.exists(f"alert-{pk}", queue.connection):
            continue
        if status == Delivery.State.PENDING:
            _enqueue(pk, failing)
            settled += 1
        else:
            settled += Delivery.objects.filter(pk=pk, status=Delivery.State.SENDING).update(
                status=Delivery.State.FAILED, reason=WORKER_LOST
            )
    return settled
