"""RQ jobs: module-level functions that take plain arguments and reload what they need.

The training jobs' work (``experiments.jobs.horse``) imports Keras, so it is imported when a job runs:
the web process enqueues these by name and never imports it.
"""

from __future__ import annotations

from typing import Any

from experiments.index.sync import index_execution, sync_trainings
from experiments.jobs.deaths import how_it_died, oom_kills
from experiments.jobs.resuming import resume_or_fail
from experiments.models import Execution, Status


def sync_trainings_job(root: str | None = None) -> dict[str, Any]:
    """Index every execution folder under ``root`` (default: GYMNOS_TRAININGS_ROOT).

    Returns the counts, which RQ keeps as the job's result::

        {"root": "/srv/trainings", "indexed": 3, "unchanged": 120, "errors": 0, "missing": 0, "problems": []}
    """
    return sync_trainings(root).as_dict()


def run_execution(execution_id: int) -> str:
    """Train a queued execution (claimed once, even if the job is delivered twice), then any follow-on run."""
    from experiments.jobs import horse

    return horse.run_job(execution_id)


def _execution_id(job: Any) -> int | None:
    """The run the job is training now: its own, or a follow-on run claimed under its id (``follow_on``). None for
    a run queued again under another job since (``resuming``): this job's end is no longer its end."""
    running = Execution.objects.filter(job_id=job.id, status=Status.RUNNING).values_list("pk", flat=True).first()
    if running is not None:
        return running
    first = job.args[0] if job.args else None
    if first is None:
        return None
    return first if Execution.objects.filter(pk=first, job_id=job.id).exists() else None


def on_job_failure(job: Any, connection: Any, exc_type: Any, exc_value: Any, traceback: Any) -> None:
    """RQ calls this (in the worker) when the work horse died or raised outside the engine, which
    records its own failures: the run fails with the reason, and its partial folder is indexed."""
    name = exc_type.__name__ if exc_type else "error"
    _fail_its_run(job, f"the job failed outside the training: {name}: {exc_value}")


def on_horse_killed(job: Any, ret_val: int | None, oom_kills_at_fork: int | None = None) -> None:
    """The worker saw the work horse die of a signal (the kernel's out-of-memory killer, a crash in native code,
    a kill): the run it was training fails at once, saying which signal and what it means (``deaths``), rather
    than as "worker lost" once its heartbeat is stale; its partial folder is indexed. ``oom_kills_at_fork``: the
    kernel's count of out-of-memory kills when the horse was forked (``deaths.oom_kills``). A run whose folder keeps
    a state to go on from is queued again instead, up to GYMNOS_RESUME_ATTEMPTS times (``resuming``)."""
    died = how_it_died(ret_val, oom_kills_at_fork, oom_kills())
    execution_id = _execution_id(job)
    if execution_id is not None and not resume_or_fail(execution_id, died):
        index_execution(execution_id)


def _fail_its_run(job: Any, error: str) -> None:
    """The run ``job`` was training fails with ``error`` (if it is still running), and its partial folder is indexed."""
    execution_id = _execution_id(job)
    if execution_id is not None:
        Execution.objects.fail(execution_id, error, [Status.RUNNING])
        index_execution(execution_id)


def on_job_stopped(job: Any, connection: Any) -> None:
    """RQ calls this after a stop-job command killed the work horse (a cancel): keep the partial folder, indexed."""
    execution_id = _execution_id(job)
    if execution_id is not None:
        Execution.objects.cancel(execution_id)
        index_execution(execution_id)
