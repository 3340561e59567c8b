"""Launching and cancelling executions through the RQ queue (the web side).

``launch()`` validates a config, creates the queued row and enqueues its job when the
transaction commits; ``cancel()`` takes a run off the queue or stops its work horse. What a
worker does with the job is ``experiments.jobs.horse``.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rq import Callback
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job

from experiments.jobs.queues import QueueUnavailable, check_redis, queue_name_for
from experiments.models import Execution, Experiment, Project, Status
from experiments.pipeline import ConfigError, Problem, TrainingConfig, load_config
from experiments.pipeline.isolated_check import IsolatedChecker

log = logging.getLogger(__name__)

# How long a queued run may be without its job before it is an orphan: its job is enqueued when the transaction
# that created the run commits, a moment after the row is there.
SETTLE = dt.timedelta(seconds=10)


def job_id_for(execution_id: int) -> str:
    return f"execution-{execution_id}"


def launch(
    data: Any,
    user: Any = None,
    trusted: bool = False,
    check: Callable[[TrainingConfig], list[Problem]] | None = None,
    lineage: dict[str, Any] | None = None,
    project: Project | None = None,
) -> Execution:
    """Validate ``data`` (a config dict), create a queued Execution and enqueue its job on commit.

    The model is built to check it in a capped child process (``isolated_problems``), never here. A
    config from the web reads ``dataset.path`` only inside GYMNOS_DATA_ROOTS; ``trusted`` (the
    operator's own command line) lifts that. ``check`` replaces the plain capped check (a sweep's
    samples: the same capped child, except for a network the sweep already built there; ``up
    --enqueue``: none, the operator's own config is built by the worker). Raises ``ConfigError``
    (nothing created, every problem of the config listed) or ``QueueUnavailable`` (nothing left queued).
    ``lineage``: a fork's ``parent``, ``forked_at_epoch`` and ``fork_start`` (``experiments.jobs.forking``).
    The run goes into ``project`` (default: ``default``); whether the user may launch there is the caller's.
    """
    config, problems = config_problems(data, trusted, check)
    if config is None or problems:
        raise ConfigError(problems)
    queue_name = queue_name_for(config)
    check_redis(django_rq.get_connection(queue_name))
    with transaction.atomic():
        experiment, _ = Experiment.objects.get_or_create(
            project=project or Project.default(), name=config.dataset.folder_name
        )
        execution = Execution.objects.create(
            experiment=experiment,
            status=Status.QUEUED,
            title=config.experiment.name,
            tags=list(config.experiment.tags),
            config=config.source,
            params=config.params,
            epochs_total=config.training.epochs,
            queue=queue_name,
            launched_by=user if user is not None and user.is_authenticated else None,
            **(lineage or {}),
        )
        execution.job_id = job_id_for(execution.pk)
        execution.save(update_fields=["job_id"])
        transaction.on_commit(lambda: _enqueue(execution))
    _remember(execution.pk, config)
    return execution


# The configs this process validated as it queued them, by execution id, the latest few: a work horse that queues
# a sweep's next trial and then trains it itself (a follow-on run) does not validate it a second time.
_validated: collections.OrderedDict[int, TrainingConfig] = collections.OrderedDict()
VALIDATED_KEPT = 16


def _remember(execution_id: int, config: TrainingConfig) -> None:
    _validated[execution_id] = config
    while len(_validated) > VALIDATED_KEPT:
        _validated.popitem(last=False)


def validated_config(execution: Execution) -> TrainingConfig:
    """``execution``'s config as a ``TrainingConfig``: the one this process validated when it queued the run (if
    the row still holds that config), else validated now (``ConfigError`` if it no longer validates)."""
    kept = _validated.pop(execution.pk, None)
    if kept is not None and kept.source == execution.config:
        return kept
    return load_config(execution.config)


def config_problems(
    data: Any, trusted: bool = False, check: Callable[[TrainingConfig], list[Problem]] | None = None
) -> tuple[TrainingConfig | None, list[Problem]]:
    """Every problem of ``data`` in one list, and the config (None when the schema refused it); nothing created.

    The schema's problems and the libraries' together: a config the schema refuses still has each of its
    components that validates on its own built (in the capped child), so a misspelt layer argument is
    told beside ``training.epochs: must be a positive integer`` rather than after it is fixed.
    """
    try:
        config = load_config(data, data_roots=None if trusted else settings.GYMNOS_DATA_ROOTS)
    except ConfigError as exc:
        if check is not None or not isinstance(data, dict) or any(not problem.path for problem in exc.problems):
            # Not a config at all (not an object, nested too deep); or a caller with a check of its own (a
            # sweep's sample, an operator's --enqueue), whose configs come from one the schema accepted.
            return None, exc.problems
        found = isolated_problems(data)
        return None, [*exc.problems, *found]
    if check is not None:
        return config, check(config)
    return config, isolated_problems(config)


@functools.cache
def checker() -> IsolatedChecker:
    """This process's build checker (its fork server starts on first use, or at start-up: ``warm_up``; a work
    horse uses its worker's)."""
    return IsolatedChecker(log_path=settings.LOG_DIR / "checks.log")


def isolated_problems(config: TrainingConfig | dict[str, Any]) -> list[Problem]:
    """What building ``config`` finds, in a child capped at GYMNOS_CHECK_MEMORY_MB and GYMNOS_CHECK_SECONDS: the
    one build check of a launch, from the web or a sweep's sample alike."""
    return checker().problems(config, settings.GYMNOS_CHECK_MEMORY_MB, settings.GYMNOS_CHECK_SECONDS)


def warm_up(wait: bool = False) -> None:
    """Start the build checker's fork server now (in the background unless ``wait``), so the first launch
    finds it ready."""
    checker().warm_up(wait)


def _enqueue(execution: Execution) -> None:
    try:
        django_rq.get_queue(execution.queue).enqueue_call(
            "experiments.jobs.tasks.run_execution",
            args=(execution.pk,),
            job_id=execution.job_id,
            timeout=settings.GYMNOS_JOB_TIMEOUT,
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
            # Both sync the run's folder, which can take a while on shared storage.
            on_failure=Callback("experiments.jobs.tasks.on_job_failure", timeout=300),
            on_stopped=Callback("experiments.jobs.tasks.on_job_stopped", timeout=300),
        )
    except Exception as exc:  # Redis went away between the check and the commit
        Execution.objects.fail(execution.pk, f"could not be queued: {exc}", [Status.QUEUED])
        raise QueueUnavailable(f"the job queue is unavailable: {exc}") from exc


def requeue(execution_id: int) -> None:
    """Enqueue the job of a run queued again (``experiments.jobs.resuming``), under the job id its row now holds."""
    _enqueue(Execution.objects.get(pk=execution_id))


def requeue_orphans(now: dt.datetime | None = None) -> int:
    """Enqueue again the queued runs whose job Redis no longer has (a Redis restarted without its data, or
    flushed); returns how many. Only runs queued ``SETTLE`` ago or more: a run just committed has its job
    enqueued right after the commit. Safe to run anywhere, any time: a job delivered twice still runs once
    (claim). Part of the reaper (``experiments.jobs.reaper``)."""
    settled = (now or timezone.now()) - SETTLE
    queued = Execution.objects.filter(status=Status.QUEUED, created_at__lt=settled).exclude(job_id="")
    requeued = 0
    for execution in queued.order_by("created_at", "pk"):
        connection = django_rq.get_connection(execution.queue or "default")
        if Job.exists(execution.job_id, connection=connection):
            continue
        log.warning("Execution %s was queued but its job was gone from Redis: queued again", execution.pk)
        _enqueue(execution)
        requeued += 1
    return requeued


def cancel(execution: Execution) -> bool:
    """Stop a queued or running execution; returns True if it was still going.

    The queue is told first, so with Redis down nothing changes (``QueueUnavailable``). A queued
    run leaves the queue; a running one is stopped (RQ's stop-job command kills its work horse)
    and keeps its partial folder, which is synced.
    """
    connection = django_rq.get_connection(execution.queue or "default")
    check_redis(connection)
    seen = Execution.objects.status_of(execution.pk)
    try:
        if seen == Status.QUEUED:
            _remove_from_queue(execution.job_id, connection)
        elif seen == Status.RUNNING:
            _stop(execution.job_id, connection)
    except (redis.exceptions.RedisError, OSError) as exc:
        raise QueueUnavailable(f"the job queue is unavailable: {exc}; nothing was cancelled") from exc
    cancelled_from = Execution.objects.cancel(execution.pk)
    if cancelled_from == Status.RUNNING and seen == Status.QUEUED:  # a worker claimed it meanwhile
        try:
            _stop(execution.job_id, connection)
        except (redis.exceptions.RedisError, OSError):
            log.exception("Could not stop the work horse of execution %s", execution.pk)
    return cancelled_from is not None


def _remove_from_queue(job_id: str, connection: redis.Redis) -> None:
    try:
        Job.fetch(job_id, connection=connection).cancel()
    except NoSuchJobError:
        pass


def _stop(job_id: str, connection: redis.Redis) -> None:
    try:
        send_stop_job_command(connection, job_id)
    except (InvalidJobOperation, NoSuchJobError):
        pass  # it finished or died in between; its own outcome stands
