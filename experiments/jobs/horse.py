"""What a worker does with one execution, inside RQ's forked work horse.

``run()`` claims the row (a conditional update, so a job delivered twice runs once), trains
with a Keras callback that records each epoch in the database, then records how the run ended
and indexes its folder in one transaction. A heartbeat thread keeps the row alive, and notices
when the worker that forked this horse dies. RQ's failure and stop callbacks
(``experiments.jobs.tasks``) end the runs whose horse could not. ``run_job()`` then trains the follow-on
runs this horse may take (a sweep's next trials: ``experiments.jobs.follow_on``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import keras
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone
from rq import get_current_job

from experiments import files, live
from experiments.extensions import RUN_CALLBACKS
from experiments.index.sync import index_execution
from experiments.jobs import database, follow_on, launching, resuming
from experiments.jobs.follow_on import private_memory
from experiments.live.logs import LogBatcher
from experiments.models import Execution, Status
from experiments.models.lifecycle import WORKER_LOST
from experiments.models.projects import project_root
from experiments.pipeline import ConfigError, ExecutionResult, run_experiment
from experiments.pipeline.errors import MemoryLimitExceeded
from experiments.pipeline.fork import Start
from experiments.pipeline.resume import Resume

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5
# Where model_checkpoint saves, in the run's folder (the seed's layout).
CHECKPOINTS = Path("callbacks") / "model_checkpoint"


class DatabaseProgress(keras.callbacks.Callback):
    """After every epoch, store each metric's history so far (Keras' own History), the epoch and the total.

    The dashboard and ``GET /api/executions/{id}`` read these while the model trains. It must come
    after the run's ``History`` in the callback list, which the engine sees to.
    """

    def __init__(self, execution_id: int, lines: LogBatcher | None = None) -> None:
        super().__init__()
        self.execution_id = execution_id
        self.lines = lines
        self.checkpoints: frozenset[str] = frozenset()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._say_new_checkpoints()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._say_new_checkpoints()

    def _say_new_checkpoints(self) -> None:
        """A ``files`` event when the checkpoints changed: looked at once the epoch's callbacks all ran (the
        checkpoint callback may come after this one), so as the next epoch begins and as training ends."""
        folder = Execution.objects.filter(pk=self.execution_id).values_list("folder_path", flat=True).first()
        try:
            found = frozenset(os.listdir(Path(folder or "") / CHECKPOINTS)) if folder else frozenset()
        except OSError:
            return
        if found != self.checkpoints:
            self.checkpoints = found
            live.publish(self.execution_id, live.FILES, what="checkpoint")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.lines is not None:
            self.lines.flush()  # the epoch's log lines reach the page with (before) its point on the chart
        history = self.model.history.history
        total = (self.params or {}).get("epochs")
        # Each epoch stores the whole history so far: one the database missed (its connection killed twice in a
        # row) is caught up by the next, and the training goes on.
        database.step("record an epoch", lambda: Execution.objects.record_epoch(self.execution_id, history, total))


def run_job(execution_id: int) -> str:
    """A training job's work: its execution, then each follow-on run this horse takes (``experiments.jobs.follow_on``).

    Returns how each ended, for RQ's job result: ``succeeded`` or ``pruned; then 43: succeeded; then 45: pruned``.
    """
    chain = follow_on.Chain(get_current_job())
    outcomes = [run(execution_id)]
    while (taken := chain.next_run(execution_id)) is not None:
        execution_id = taken
        outcomes.append(f"then {execution_id}: {train(execution_id)}")
    return "; ".join(outcomes)


def run(execution_id: int) -> str:
    """Claim and train one execution; returns its final status (or why it was skipped)."""
    if not Execution.objects.claim(execution_id, os.environ.get("RQ_WORKER_ID", "")):
        status = Execution.objects.status_of(execution_id)
        log.info("Execution %s not run: it is %s, not queued", execution_id, status)
        return f"skipped ({status})"
    return train(execution_id)


def train(execution_id: int) -> str:
    """Train an execution this process claimed; returns its final status."""
    execution = Execution.objects.select_related("experiment__project").get(pk=execution_id)
    heartbeat = Heartbeat(execution_id)
    heartbeat.start()
    lines = LogBatcher(execution_id).start()
    try:
        try:
            config = launching.validated_config(execution)
        except ConfigError as exc:
            return Execution.objects.finish(execution_id, f"the config no longer validates: {exc}") or Status.FAILED
        added = [callback for provider in RUN_CALLBACKS for callback in provider(execution)]
        watch = MemoryWatch(execution_id, settings.GYMNOS_JOB_MEMORY_MB)
        watch.start()
        result = run_experiment(
            config,
            # A project other than default trains under <root>/projects/<project> (its folder says its project).
            trainings_root=project_root(Path(settings.GYMNOS_TRAININGS_ROOT), execution.experiment.project.name),
            cache_dir=settings.GYMNOS_CACHE_DIR,
            callbacks=[DatabaseProgress(execution_id, lines), *added],
            claim_folder=lambda path: Execution.objects.claim_folder(execution_id, path),
            memory_limit_mb=settings.GYMNOS_JOB_MEMORY_MB or None,
            resume=_resume_of(execution),
            start=_start_of(execution),
            on_system_sample=lambda sample: live.publish(execution_id, live.SYSTEM, sample=sample),
        )
    finally:
        lines.stop()
        heartbeat.stop()
        watch.stop()
    pruned = result.succeeded and any(getattr(callback, "pruned", False) for callback in added)
    # Record the outcome and index the folder in one transaction: a reader sees the run running,
    # then ended with everything indexed, and never a status that goes back. On a healthy connection: the
    # one the training used may have been killed since its last epoch.
    database.fresh()
    with transaction.atomic():
        error = "" if result.succeeded else _error_with_traceback(result)
        status = Execution.objects.finish(execution_id, error, pruned=pruned)
        index_execution(execution_id)
    return status or Status.FAILED


def _resume_of(execution: Execution) -> Resume | None:
    """A run queued again after its worker died (``resuming``) goes on in its own folder, from the state it keeps."""
    if not execution.attempts or not execution.folder_path:
        return None
    return Resume(Path(execution.folder_path), execution.attempts + 1)


def _start_of(execution: Execution) -> Start | None:
    """A fork trains from its parent's weights (``experiments.jobs.forking`` said which file, and whether the
    optimizer's state comes too)."""
    start = execution.fork_start or {}
    if not start.get("file") or not start.get("folder") or execution.forked_at_epoch is None:
        return None
    return Start(
        Path(start["folder"]),
        str(start["file"]),
        execution.forked_at_epoch,
        bool(start.get("optimizer")),
        str(start.get("why") or ""),
    )


class MemoryWatch(threading.Thread):
    """Holds this work horse to ``GYMNOS_JOB_MEMORY_MB`` of resident memory beyond what it held when the job
    started (the frameworks, loaded before the fork); 0: no limit.

    Over the limit, the training is interrupted with ``MemoryLimitExceeded`` (a BaseException, so no
    ``except Exception`` on its way swallows or rewords it), which the engine records as
    "out of memory (limit N MB)" in the run's error and log. A run that does not stop (stuck in a long
    TensorFlow op, still growing) is failed from here with the same words and the horse exits: it is
    this job's own process, so the worker and its next job are untouched. Resident memory, not an
    address-space cap: TensorFlow reserves far more address space than it uses.
    """

    INTERVAL = 0.2
    GRACE = 10.0  # seconds the interrupted run has to stop by itself

    def __init__(self, execution_id: int, megabytes: int) -> None:
        super().__init__(name=f"memory-{execution_id}", daemon=True)
        self.execution_id = execution_id
        self.limit = megabytes * 2**20
        self.megabytes = megabytes
        self.done = threading.Event()
        # What the frameworks already hold (the horse shares them with its worker) is not the run's.
        self.baseline = private_memory() if megabytes > 0 else 0
        if megabytes > 0:
            signal.signal(signal.SIGUSR1, self._interrupt)  # in the main thread, which runs the training

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        raise MemoryLimitExceeded(f"the run used more than {self.megabytes} MB of memory (GYMNOS_JOB_MEMORY_MB)")

    def start(self) -> None:
        if self.limit:
            super().start()

    def run(self) -> None:
        tripped_at = None
        while not self.done.wait(self.INTERVAL):
            used = private_memory() - self.baseline
            if used <= self.limit:
                continue
            if tripped_at is None:
                tripped_at = time.monotonic()
                os.kill(os.getpid(), signal.SIGUSR1)
            elif time.monotonic() - tripped_at > self.GRACE or used > 2 * self.limit:
                self._give_up(used)

    def _give_up(self, used: int) -> None:
        error = (
            f"out of memory (limit {self.megabytes} MB): the run used {used // 2**20} MB and did not stop when "
            "interrupted; its work horse was ended"
        )
        folder = Execution.objects.filter(pk=self.execution_id).values_list("folder_path", flat=True).first()
        if folder:
            with contextlib.suppress(OSError), open(os.path.join(folder, "execution.log"), "a") as log_file:
                log_file.write(f"{timezone.now():%Y-%m-%d %H:%M:%S},000 - gymnosd - ERROR - Worker - {error}\n")
        Execution.objects.fail(self.execution_id, error, [Status.RUNNING])
        os._exit(1)

    def stop(self) -> None:
        self.done.set()
        if self.is_alive():
            self.join(timeout=self.INTERVAL + 1)


# The most of a failed run's log read for its traceback (a log of gigabytes is not read whole).
TRACEBACK_BYTES = 256 * 1024


def _error_with_traceback(result: ExecutionResult, lines: int = 30) -> str:
    text = result.error or "failed"
    if result.path is None:
        return text
    try:
        with files.open_file(result.path, "execution.log", limit=TRACEBACK_BYTES) as log:
            log.seek(max(0, log.size - TRACEBACK_BYTES))  # a traceback is the log's end
            log_lines = log.read().decode("utf-8", errors="replace").splitlines()
    except (OSError, files.Refused):
        return text
    start = next(
        (i for i in range(len(log_lines) - 1, -1, -1) if "Traceback (most recent call last)" in log_lines[i]), None
    )
    if start is None:
        return text
    return text + "\n\n" + "\n".join(log_lines[start : start + lines])


class Heartbeat(threading.Thread):
    """Every few seconds: say "still running", and notice when the worker that forked us died.

    RQ runs a job in a forked work horse. If the worker process is killed, the horse would go
    on training unseen; instead it records "worker lost" and exits.
    """

    def __init__(self, execution_id: int, interval: float = HEARTBEAT_SECONDS) -> None:
        super().__init__(name=f"heartbeat-{execution_id}", daemon=True)
        self.execution_id = execution_id
        self.interval = interval
        self.parent = os.getppid()
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.wait(self.interval):
                if os.getppid() != self.parent:
                    lost = partial(resuming.resume_or_fail, self.execution_id, WORKER_LOST)
                    database.step("say the worker was lost (and queue the run again to resume)", lost)
                    os._exit(1)
                # A beat the database refused is logged and the next comes in a few seconds, on a new connection.
                database.step("record a heartbeat", partial(Execution.objects.beat, self.execution_id))
                database.step("check for lost workers", resuming.reap_lost)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=self.interval + 5)
