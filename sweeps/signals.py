"""What a sweep does when one of its trials ends: ask for the next (connected in ``SweepsConfig.ready``), which
the work horse that trained the trial may then train itself (``queued_trials``)."""

from __future__ import annotations

import logging
from typing import Any

from rq import get_current_job

from experiments.models import Execution, Status

from .launching import request_advance, trial_of
from .models import Sweep, Trial

log = logging.getLogger(__name__)


def on_execution_ended(sender: Any, pk: int, status: str, **kwargs: Any) -> None:
    """A run ended: if it is a sweep's trial, tell the study and ask for the next trial.

    Inside a work horse (the trial's own job ends, or a worker marks a lost run) this happens
    right here, on that worker: it already holds the frameworks and the study, so the next trial
    is queued without another job's start-up. Anywhere else (a cancel in a request, ``up``
    stopping) it is the sweep's advance job, queued at the front.
    """
    trial = trial_of(pk)
    if trial is None:
        return
    if get_current_job() is not None:
        try:
            from sweeps import advance

            advance.advance(trial.sweep_id)
            return
        except Exception:  # logged: the advance job below does it again, elsewhere
            log.exception("Could not move %s on after its trial %s ended; queueing it", trial.sweep, trial.number)
    request_advance(trial.sweep)


def queued_trials(ended: int) -> list[int]:
    """The queued trials of the running sweep whose trial run ``ended`` just ended, oldest first: the runs its work
    horse may train next itself (``experiments.jobs.follow_on``, which takes one only when it is first in line)."""
    trial = trial_of(ended)
    if trial is None or trial.sweep.status != Sweep.State.RUNNING:
        return []
    queued = Execution.objects.filter(sweep_trial__sweep_id=trial.sweep_id, status=Status.QUEUED).order_by("pk")
    return list(queued.values_list("pk", flat=True)[:4])


def launches_trials(job: Any) -> bool:
    """Whether ``job``'s work horse may queue a sweep's trials (and so check their configs): the sweep's advance job,
    or a trial's run, whose end moves its sweep on in that horse (``on_execution_ended``)."""
    if job.func_name == "sweeps.tasks.advance_sweep":
        return True
    if job.func_name == "experiments.jobs.tasks.run_execution" and job.args:
        return Trial.objects.filter(execution_id=job.args[0]).exists()
    return False
