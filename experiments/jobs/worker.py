"""The RQ worker class Gymnos runs (settings.RQ["WORKER_CLASS"]), for `rqworker` and `up` alike."""

from __future__ import annotations

import logging
import os
from typing import Any

from django.db import connections
from redis.client import Pipeline
from rq import Queue, Worker
from rq.job import Job

from experiments.extensions import LAUNCHING_JOBS, WORKER_HEARTBEAT, WORKER_MODULES, WORKER_READY
from experiments.jobs import database, launching, reaper
from experiments.jobs.deaths import oom_kills
from experiments.jobs.tasks import on_horse_killed
from experiments.pipeline.preload import import_frameworks

# What a job runs, besides the engine (``preload.WARM_UP``): loaded before the first fork.
JOB_MODULES = ("experiments.jobs.tasks", "experiments.jobs.horse", "experiments.index.sync")

log = logging.getLogger(__name__)

# RQ heartbeats every 7 minutes while idle and every 30 s while busy; with the machine's figures on
# each heartbeat (``extensions.WORKER_HEARTBEAT``: system metrics), every this many seconds instead, so they are recent.
MACHINE_SECONDS = 10


def warm_up() -> None:
    """Import the frameworks and the job modules now, so each forked job starts with them loaded.

    Only imports: TensorFlow's runtime is not started here (it is not safe across fork, and CUDA
    initialised before a fork cannot be used after it). What they build is frozen out of the
    garbage collector (``preload``): the horses share those pages instead of copying them.
    """
    import_frameworks(also=(*JOB_MODULES, *WORKER_MODULES))
    for ready in WORKER_READY:
        try:
            ready()
        except Exception:  # logged: a feature's warm-up only saves time; the jobs still run without it
            log.warning("Warm-up step %s failed; the jobs will do it themselves", ready.__qualname__, exc_info=True)


class GymnosWorker(Worker):
    """RQ's forking worker, warmed up: a job pays no TensorFlow import.

    Database connections are closed before each fork, so the work horse opens its own
    instead of sharing (and later closing) the worker's socket.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.oom_kills_at_fork: int | None = None
        self.checker_started = False
        self.reap_due = reaper.Every(reaper.REAP_SECONDS)
        self.pid = os.getpid()  # RQ's work horse runs some of this class's methods too (a heartbeat as it starts)
        self.job_monitoring_interval = min(self.job_monitoring_interval, MACHINE_SECONDS)
        warm_up()

    @property
    def dequeue_timeout(self) -> int:
        """Wake up from waiting for a job every ``MACHINE_SECONDS`` to heartbeat (RQ's default is 405 s)."""
        return min(super().dequeue_timeout, MACHINE_SECONDS)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, with what the features add to it (system metrics: the machine's figures in the
        worker's hash; psutil and NVML answer in well under a millisecond, no TensorFlow is touched)."""
        super().heartbeat(timeout, pipeline)
        for beat in WORKER_HEARTBEAT:
            try:
                beat(pipeline if pipeline is not None else self.connection, self.key)
            except Exception:  # logged: what features add is a courtesy; the heartbeat is what matters
                log.exception("Heartbeat step %s failed", beat.__qualname__)
        # The reaper, every REAP_SECONDS, the first time as the worker is first idle: RQ heartbeats every
        # MACHINE_SECONDS, idle or while a horse trains, where its maintenance runs only between jobs, every 10
        # minutes. In the worker, never in a horse as it starts.
        if os.getpid() == self.pid and self.reap_due():
            reaper.reap()

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        self._start_checker_for(job)
        connections.close_all()
        # Read again when a horse dies: a count that went up meanwhile names the kernel's out-of-memory killer.
        self.oom_kills_at_fork = oom_kills()
        return super().fork_work_horse(job, queue)

    def _start_checker_for(self, job: Job) -> None:
        """Before the first horse that may launch runs (``extensions.LAUNCHING_JOBS``: a sweep's), start the build
        checker's fork server here: every horse after it checks configs through it (a sweep's samples, capped as a
        launch from the web is) instead of starting one of its own, seconds each. A worker that never runs such a
        job keeps none (it holds the frameworks: about 750 MB). Started from this process's only thread, before
        the fork: the horse inherits it whole (``isolated_check``); the first check waits for it to be ready."""
        if self.checker_started:
            return
        try:
            if not any(launches(job) for launches in LAUNCHING_JOBS):
                return
            launching.checker().start_server()
        except Exception:  # logged: without it a horse starts a checker of its own, slower but the same
            log.warning("Could not start the build checker; a horse that checks a config starts one", exc_info=True)
        self.checker_started = True

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        """RQ calls this when the horse died without ending its job (not a stop-job: that is a cancel); the run
        it trained fails now, with how it died (``tasks.on_horse_killed``)."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        try:
            database.step(
                f"fail the run of job {job.id}, whose work horse died",
                lambda: on_horse_killed(job, ret_val, self.oom_kills_at_fork),
            )
        except Exception:  # logged: the reaper fails the run later ("worker lost")
            log.exception("Could not fail the run of job %s, whose work horse died", job.id)
        finally:
            connections.close_all()

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance (at start, then between jobs every 10 minutes); the reaper runs from the heartbeat."""
        super().run_maintenance_tasks()
        connections.close_all()
