"""A run whose machine died goes on where it was (#23): queued again, resumed from the state its folder keeps.

Every way a run's process can die without ending it comes here, with the words of how it died:

- its **work horse** died (SIGKILL, the kernel's out-of-memory killer, a crash in native code): the worker that
  forked it saw it (``tasks.on_horse_killed``);
- its **worker** died: its horse saw its parent go (``horse.Heartbeat``);
- **both, or the machine**: the heartbeat stopped, and any reaper sees it ``LOST_AFTER`` later (``reap_lost``).

``resume_or_fail`` then queues the run again (``Execution.objects.requeue_to_resume``: same row, same folder, a
new job id) when its folder keeps a state (``pipeline.resume``) and it was resumed fewer than
``GYMNOS_RESUME_ATTEMPTS`` times; the next free worker trains it on from the epoch that state reached. Otherwise it
fails as before, saying how it died. A run that failed by its own fault (a Python error in training, NaN with
``terminate_on_nan``, over its memory cap) ends through ``finish`` or ``fail`` and never comes here: training it
again would fail again the same way.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from experiments.jobs import launching
from experiments.models import Execution, Status
from experiments.models.lifecycle import LOST_AFTER, WORKER_LOST, announce_lost, resumable

log = logging.getLogger(__name__)


def job_id_for(execution_id: int, attempt: int) -> str:
    """The job of a run's ``attempt`` (from 2): not the first job's id, whose failure callbacks may still come."""
    return f"{launching.job_id_for(execution_id)}-attempt-{attempt}"


def resume_or_fail(pk: int, reason: str) -> bool:
    """The running run ``pk`` lost its process (``reason``): queue it again to resume, if it can; else fail it.

    Returns True when it was queued again. A run no longer running (ended, cancelled, already handled) is left as
    it is.
    """
    row = Execution.objects.filter(pk=pk, status=Status.RUNNING).values_list("attempts", "folder_path").first()
    if row is None:
        return False
    attempts, folder = row
    if resumable(attempts, folder):
        if Execution.objects.requeue_to_resume(pk, attempts, reason, job_id_for(pk, attempts + 2)):
            log.warning("Execution %s: %s; queued again to resume (attempt %s)", pk, reason, attempts + 2)
            transaction.on_commit(lambda: launching.requeue(pk))
            announce_lost(Execution, pk, reason, attempts + 1, resumed=True)
            return True
    if Execution.objects.fail(pk, reason, [Status.RUNNING]):
        announce_lost(Execution, pk, reason, attempts + 1, resumed=False)
    return False


def reap_lost(now: dt.datetime | None = None) -> int:
    """Every running run whose heartbeat stopped ``LOST_AFTER`` ago: resumed if it can be, else failed "worker
    lost"; returns how many. Part of the reaper, and of each horse's heartbeat."""
    now = now or timezone.now()
    stale = Execution.objects.filter(status=Status.RUNNING, heartbeat_at__lt=now - LOST_AFTER)
    count = 0
    for pk in list(stale.values_list("pk", flat=True)):
        resume_or_fail(pk, WORKER_LOST)
        count += 1
    return count
