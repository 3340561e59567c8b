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

A person resumes a cancelled or failed run by hand (``resume_by_hand``: the run page's Resume button and
``POST /api/executions/{id}/resume``), optionally to more epochs; no limit of attempts applies to that, but its
attempts count toward GYMNOS_RESUME_ATTEMPTS for the automatic resumes that may follow.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

import django_rq
from django.db import transaction
from django.utils import timezone

from experiments.jobs import launching
from experiments.jobs.queues import check_redis
from experiments.models import LIVE, Execution, Status
from experiments.models.lifecycle import LOST_AFTER, WORKER_LOST, announce_lost, resumable
from experiments.pipeline import ConfigError, Problem, load_config
from experiments.pipeline.resume import STATE_FOLDER, StateError, read_kept

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


class NotResumable(Exception):
    """Why a run cannot be resumed by hand now (the API answers 409 with it)."""


def resume_by_hand(execution: Execution, epochs: int | None = None) -> Execution:
    """Queue the cancelled or failed ``execution`` again, to go on from its kept state in its own folder and row;
    ``epochs``: train to that many epochs in all (more than it reached). Raises ``NotResumable`` (nothing changed),
    ``ConfigError`` (``epochs`` refused, naming the field) or ``QueueUnavailable``."""
    kept_epoch = _kept_epoch(execution)
    changed: dict[str, Any] = {}
    if epochs is not None:
        changed = _more_epochs(execution, epochs, kept_epoch)
    check_redis(django_rq.get_connection(execution.queue or "default"))
    attempts = execution.attempts
    with transaction.atomic():
        if not Execution.objects.resume_by_hand(
            execution.pk, attempts, job_id_for(execution.pk, attempts + 2), **changed
        ):
            raise NotResumable(
                f"execution {execution.pk} changed meanwhile (it is {Execution.objects.status_of(execution.pk)})"
            )
        transaction.on_commit(lambda: launching.requeue(execution.pk))
    log.info("Execution %s: resumed by hand from epoch %s (attempt %s)", execution.pk, kept_epoch, attempts + 2)
    execution.refresh_from_db()
    return execution


def _kept_epoch(execution: Execution) -> int:
    """The epoch ``execution``'s kept state reached; ``NotResumable`` saying why there is none to go on from."""
    status = execution.status
    if status in LIVE:
        raise NotResumable(f"execution {execution.pk} is {status}; only a cancelled or failed run can be resumed")
    if status == Status.SUCCEEDED:
        raise NotResumable(f"execution {execution.pk} succeeded: it trained to its end, there is nothing to resume")
    if status not in (Status.FAILED, Status.CANCELLED):
        raise NotResumable(f"execution {execution.pk} is {status}; only a cancelled or failed run can be resumed")
    if not execution.folder_path:
        raise NotResumable(f"execution {execution.pk} has no folder: it ended before training, so it keeps no state")
    try:
        kept = read_kept(execution.folder_path)
    except StateError as exc:
        raise NotResumable(f"execution {execution.pk}'s kept state cannot be used: {exc}") from exc
    if kept is None:
        raise NotResumable(
            f"execution {execution.pk} keeps no state to go on from ({STATE_FOLDER}/ in its folder is empty or gone)"
        )
    return kept.epoch


def _more_epochs(execution: Execution, epochs: int, kept_epoch: int) -> dict[str, Any]:
    """The fields of a run resumed to ``epochs`` in all: its config (``training.epochs``), params and total."""
    reached = max(kept_epoch, execution.epochs)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= reached:
        raise ConfigError(
            [Problem("epochs", f"must be a whole number of epochs more than the {reached} it reached, got {epochs!r}")]
        )
    source = copy.deepcopy(execution.config)
    if not isinstance(source, dict):
        raise ConfigError([Problem("", "the run has no config to change")])
    training = source.setdefault("training", {})
    if not isinstance(training, dict):
        raise ConfigError([Problem("training", "the run's config has no training section to change")])
    training["epochs"] = epochs
    config = load_config(source)  # GYMNOS_MAX_EPOCHS and the rest, as a launch checks them
    return {"config": config.source, "params": config.params, "epochs_total": epochs}
