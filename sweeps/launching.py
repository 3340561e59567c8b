"""Launching, cancelling and watching over sweeps (the web side; no Optuna here).

``launch_sweep()`` validates a sweep document, creates the ``Sweep`` and, once it is committed,
queues the job that asks the study for the first trials (``sweeps.tasks.advance_sweep``).
``cancel_sweep()`` ends it and stops its live trials. ``heal()`` is the safety check: it queues
that job again for every running sweep that waits for one, so a signal lost to a crash, or an
advance job lost with Redis' data, never stalls a sweep; ``release_abandoned()`` fails the trials
reserved but never queued. Both are steps of the reaper (``experiments.jobs.reaper``), registered
in ``SweepsConfig.ready``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from experiments.access import visible_executions
from experiments.jobs import launching
from experiments.jobs.queues import QueueUnavailable, check_redis, queue_name_for
from experiments.models import Execution, Project, Status

from .document import SweepPlan, load_sweep
from .models import Sweep, Trial

log = logging.getLogger(__name__)

ADVANCE_TIMEOUT = 600  # seconds: asking, checking and queueing a few trials takes well under one
# How long a sweep that waits for its next step must stay still before the safety check acts.
QUIET = dt.timedelta(seconds=10)


def run_config(execution_id: int) -> dict[str, Any]:
    """The config of run ``execution_id`` (a sweep's ``base`` may name a run); ``LookupError`` saying why a run
    cannot be a base: there is none, it is in the trash, its folder is missing (a config known only to the
    index, which the folder no longer backs), or it has no readable config."""
    found = Execution.objects.filter(pk=execution_id).values("status", "config", "deleted_at").first()
    if found is None:
        raise LookupError(f"there is no run {execution_id}")
    if found["status"] == Status.DELETED:
        when = f" since {found['deleted_at']:%Y-%m-%d %H:%M}" if found["deleted_at"] else ""
        raise LookupError(
            f"run {execution_id} is deleted (in the trash{when}); restore it from the Trash page first, "
            "or give its config as the base"
        )
    if found["status"] == Status.MISSING:
        raise LookupError(
            f"run {execution_id} is missing (its folder was not found at the last sync); sync again once the "
            "folder is back, or give its config as the base"
        )
    if not isinstance(found["config"], dict) or not found["config"]:
        raise LookupError(f"run {execution_id} has no readable config (its training_config.json could not be read)")
    return found["config"]


def plan(data: Any, trusted: bool = False, user: Any = None) -> SweepPlan:
    """Validate a sweep document (``ConfigError`` lists every problem with its path); a base run must be one
    ``user`` may see (none: the operator's command line, any run)."""
    lookup = run_config if user is None else functools.partial(_visible_run_config, user)
    return load_sweep(data, lookup, data_roots=None if trusted else settings.GYMNOS_DATA_ROOTS)


def _visible_run_config(user: Any, execution_id: int) -> dict[str, Any]:
    """``run_config`` of a run ``user`` may see; one of a project they may not see is not there for them."""
    if not visible_executions(user).filter(pk=execution_id).exists():
        raise LookupError(f"there is no run {execution_id}")
    return run_config(execution_id)


def launch_sweep(data: Any, user: Any = None, trusted: bool = False, project: Project | None = None) -> Sweep:
    """Validate ``data`` (a sweep document), create the sweep, and queue its first job on commit.

    The sweep belongs to ``project``, where its trials train (whether the user may launch there is the caller's);
    None: as before sweeps named a project (its base run's project, its trials in default).

    Raises ``ConfigError`` (nothing created) or ``QueueUnavailable`` (nothing created).
    """
    sweep_plan = plan(data, trusted, user)
    queue = queue_name_for(sweep_plan.config)
    check_redis(django_rq.get_connection(queue))
    document = sweep_plan.document
    with transaction.atomic():
        sweep = Sweep.objects.create(
            name=sweep_plan.name,
            document=document.model_dump(mode="json", exclude={"base"}) | {"base": data["base"]},
            base_config=sweep_plan.base,
            base_execution_id=sweep_plan.base_run,
            method=document.method,
            trials_total=sweep_plan.trials,
            parallel=sweep_plan.parallel,
            metric=document.objective.metric,
            which=document.objective.which,
            direction=sweep_plan.direction,
            study_name=f"gymnos-sweep-{secrets.token_hex(8)}",
            seed=document.seed if document.seed is not None else secrets.randbelow(2**31),
            queue=queue,
            trusted=trusted,
            project=project,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        transaction.on_commit(lambda: request_advance(sweep))
    return sweep


def _job_id(sweep_id: int) -> str:
    return f"sweep-{sweep_id}-advance"


def request_advance(sweep: Sweep) -> bool:
    """Queue the sweep's advance job (at the front: trials wait for it), unless one is waiting or running.

    Returns False when Redis could not be reached (the safety check queues it later).
    """
    connection = django_rq.get_connection(sweep.queue)
    try:
        if _advance_pending(connection, sweep):
            return True
        django_rq.get_queue(sweep.queue).enqueue_call(
            "sweeps.tasks.advance_sweep",
            args=(sweep.pk,),
            job_id=_job_id(sweep.pk),
            at_front=True,
            timeout=ADVANCE_TIMEOUT,
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
        )
    except (redis.exceptions.RedisError, OSError) as exc:
        log.warning("Could not queue the next step of %s: %s", sweep, exc)
        return False
    return True


def _advance_pending(connection: redis.Redis, sweep: Sweep) -> bool:
    """Whether the sweep's advance job waits in the queue, or runs (and has not outlived its timeout)."""
    try:
        job = Job.fetch(_job_id(sweep.pk), connection=connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return True
    started = job.started_at
    if status == JobStatus.STARTED and started is not None:
        return timezone.now() - started.replace(tzinfo=dt.UTC) < dt.timedelta(seconds=ADVANCE_TIMEOUT)
    return False


def cancel_sweep(sweep: Sweep) -> bool:
    """End a running sweep: its queued trials leave the queue, its running ones are stopped.

    Returns False if it had already ended. ``QueueUnavailable`` (nothing changed) when Redis is down.
    """
    check_redis(django_rq.get_connection(sweep.queue))
    if not Sweep.objects.cancel(sweep.pk):
        return False
    for execution in Execution.objects.filter(sweep_trial__sweep=sweep, status__in=[Status.QUEUED, Status.RUNNING]):
        try:
            launching.cancel(execution)
        except QueueUnavailable:
            log.exception("Could not cancel trial execution %s of %s", execution.pk, sweep)
    request_advance(sweep)  # tells the study how its trials ended
    return True


def needs_advance(sweep: Sweep, now: dt.datetime | None = None) -> bool:
    """Whether a sweep waits for an advance that nobody is doing: a trial ended untold, a slot stays free,
    or every trial ended and it is not finished.

    Only once nothing happened for ``QUIET``: right after a trial ends, the worker that ran it is
    moving the sweep on, and a second job would only repeat that.
    """
    trials = sweep.trials
    latest = trials.aggregate(asked=Max("created_at"), ended=Max("execution__finished_at"))
    last = max([sweep.created_at, *(moment for moment in latest.values() if moment is not None)])
    if (now or timezone.now()) - last < QUIET:
        return False
    if trials.untold().exists():
        return True
    if not sweep.is_running:
        return False
    total, live = trials.count(), trials.live().count()
    if total < sweep.trials_total:
        return live < sweep.parallel
    return live == 0  # every trial asked for has ended and been told: time to finish


def release_abandoned() -> int:
    """Fail every trial reserved ``ABANDONED_AFTER`` ago and never queued, in any sweep (the reaper's step; the
    sweep's next advance tells the study, ``heal`` queues that advance). Returns how many."""
    return Trial.objects.release_abandoned()


def heal(sweeps: Any = None) -> int:
    """The safety check: queue the advance job of every running sweep that waits for one (by default: every running
    sweep, the reaper's step). Returns how many."""
    count = 0
    for sweep in sweeps if sweeps is not None else Sweep.objects.running():
        if needs_advance(sweep) and request_advance(sweep):
            count += 1
    return count


def trial_of(execution_id: int) -> Trial | None:
    return Trial.objects.select_related("sweep").filter(execution_id=execution_id).first()
