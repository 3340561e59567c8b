"""Follow-on runs: a work horse whose run ended trains the next one itself, when that run waits first in
line and a feature says it belongs with the one that ended (a sweep's next trial:
``experiments.extensions.FOLLOW_ON``).

A fresh work horse per run pays the fork, the reap, RQ's hand-over of the next job and TensorFlow's
runtime start again: about 0.15 s, which is most of what a sweep's trial costs beyond its training
(docs/sweeps.md). The horse that trained a sweep's trial has all of that done. Taking the sweep's next
trial there changes nothing else a user sees:

- **Order.** A run is taken only when its job is first in line on its queue and every queue this worker
  reads before that one is empty: the job this worker would have taken next anyway. Other users' jobs
  wait no longer than they would have.
- **Cancel and crashes.** The run is claimed under this horse's job (``Execution.job_id``), so a cancel
  stops this horse (RQ's stop-job names the job), and the job's stop and failure callbacks end the run the
  job is training at that moment (``experiments.jobs.tasks``). Its own job leaves the queue once it is claimed.
- **Memory.** Each run is capped as any other (``GYMNOS_JOB_MEMORY_MB`` counts what the run adds). A horse
  that kept more than ``kept_limit_mb()`` after its runs takes no more: a fresh one starts clean.
- **Time.** RQ times the job, not the run, so a horse takes none once its job has used half of
  ``GYMNOS_JOB_TIMEOUT``: every run still has at least half of it.
- **Stopping.** None is taken once the worker was asked to stop, or the queues are suspended
  (``rq suspend``), and none after ``GYMNOS_FOLLOW_ON_RUNS`` (0: a fresh process for every run).
- **A clean slate.** Keras' global state is cleared between two runs, so a run names its layers as in a
  fresh process (``model.h5`` is the same) and sets its seeds as before.
"""

from __future__ import annotations

import gc
import logging
import os
import time

import psutil
from django.conf import settings
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.suspension import is_suspended
from rq.worker import Worker

from experiments.extensions import FOLLOW_ON
from experiments.models import Execution, Status

log = logging.getLogger(__name__)

# What a horse may keep after its runs with no memory cap, before it takes no more.
KEPT_WITHOUT_CAP_MB = 1024


def private_memory() -> int:
    """This process's own resident memory in bytes: not the pages of the libraries' files it maps, which the
    machine shares and which grow as a run first calls into TensorFlow."""
    info = psutil.Process().memory_info()
    return int(info.rss - getattr(info, "shared", 0))


def kept_limit_mb() -> int:
    """How much more memory than at its start a horse may hold between two runs and still take the next:
    a quarter of ``GYMNOS_JOB_MEMORY_MB``, or ``KEPT_WITHOUT_CAP_MB`` without a cap."""
    cap = settings.GYMNOS_JOB_MEMORY_MB
    return cap // 4 if cap else KEPT_WITHOUT_CAP_MB


class Chain:
    """The runs one work horse trains for its job: its own, then each follow-on it takes (``next_run``)."""

    def __init__(self, job: Job | None) -> None:
        self.job = job
        self.worker = os.environ.get("RQ_WORKER_ID", "")
        self.started = time.monotonic()
        self.baseline = private_memory()
        self.taken = 0
        self.kept_mb = 0.0

    def next_run(self, ended: int) -> int | None:
        """The id of a run claimed for this horse to train next, after run ``ended``; None when there is none
        (or this horse may take no more)."""
        if self.job is None or not self.worker:
            return None
        candidates = [candidate for provider in FOLLOW_ON for candidate in provider(ended)]
        if not candidates or not self._may_continue():
            return None
        for candidate in candidates:
            if self.take(candidate):
                self.taken += 1
                return candidate
        return None

    def _may_continue(self) -> bool:
        job = self.job
        assert job is not None
        if self.taken >= settings.GYMNOS_FOLLOW_ON_RUNS:
            return False
        if job.timeout not in (None, -1) and time.monotonic() - self.started > float(job.timeout) / 2:
            return False
        connection = job.connection
        worker_key = Worker.redis_worker_namespace_prefix + self.worker
        if connection.hget(worker_key, "shutdown_requested_date") or is_suspended(connection):
            return False
        clear_keras_state()
        self.kept_mb = (private_memory() - self.baseline) / 2**20
        if self.kept_mb > kept_limit_mb():
            log.info("This work horse kept %.0f MB after its runs; the next run gets a fresh one", self.kept_mb)
            return False
        return True

    def take(self, execution_id: int) -> bool:
        """Claim queued run ``execution_id`` for this horse, if its job is the one this worker would take next.

        The claim comes first (a conditional update, under this horse's job id), then its own job leaves the
        queue and is deleted: a worker that popped that job in between finds the run claimed and skips it (its
        job is left to it), and a horse that dies in between leaves a running run that stops beating, which is
        failed as any lost run.
        """
        assert self.job is not None
        row = Execution.objects.filter(pk=execution_id, status=Status.QUEUED).values("job_id", "queue").first()
        if row is None or not row["job_id"]:
            return False
        queue = Queue(row["queue"] or "default", connection=self.job.connection)
        if not self._first_in_line(queue, row["job_id"]):
            return False
        if not Execution.objects.claim(execution_id, self.worker, job_id=self.job.id):
            return False
        if queue.remove(row["job_id"]):
            try:
                Job.fetch(row["job_id"], connection=self.job.connection).delete(remove_from_queue=False)
            except NoSuchJobError:
                pass
        log.info(
            "Training run %s in this work horse, after the one before it (it holds %.0f MB more than at its start)",
            execution_id,
            self.kept_mb,
        )
        return True

    def _first_in_line(self, queue: Queue, job_id: str) -> bool:
        """Whether ``job_id`` heads ``queue`` and this worker reads no waiting job before it."""
        assert self.job is not None
        connection = self.job.connection
        listed = connection.hget(Worker.redis_worker_namespace_prefix + self.worker, "queues")
        names = (listed.decode() if isinstance(listed, bytes) else listed or "").split(",")
        if queue.name not in names:
            return False
        for name in names[: names.index(queue.name)]:
            if Queue(name, connection=connection).count:
                return False
        return queue.get_job_ids(0, 1) == [job_id]


def clear_keras_state() -> None:
    """Forget the last run's models: Keras' layer-name counters and graphs, then the garbage they leave.

    TensorFlow keeps some of each run's traced graphs for the life of the process (about 4 MB a run for a
    small dense network, upstream): the kept-memory rule gives the next run a fresh horse once that adds up.
    """
    import keras

    keras.backend.clear_session()
    gc.collect()
    logging.getLogger("tensorflow").addFilter(_expected_retracing)


def _expected_retracing(record: logging.LogRecord) -> bool:
    """TensorFlow warns when a function is traced again and again; in a horse training run after run, each run's
    new model is traced anew, as it should be, so the warning says nothing an operator should act on."""
    return "triggered tf.function retracing" not in record.getMessage()
