"""Launching, running and stopping executions through the RQ queue.

The web side calls ``launch()`` (validate, create the queued row, enqueue on commit) and
``cancel()``. A worker's job (``experiments.tasks.run_execution``) calls ``run()``: it claims
the row with a conditional update, trains with a callback that writes each epoch to the
database, syncs the finished folder, and records how it ended.

A running execution sends a heartbeat every few seconds. If its worker dies (SIGKILL, a lost
machine), the run is marked failed with "worker lost": by the work horse itself when it sees
its parent gone, or by ``reap_lost_executions()`` when the heartbeat stops.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from experiments.models import Execution, Experiment, MetricHistory, finite_or_none
from experiments.queueing import QueueUnavailable, check_redis, queue_name_for

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5
LOST_AFTER = timedelta(seconds=30)
WORKER_LOST = (
    "worker lost: the worker running this execution stopped sending heartbeats (killed, or its machine went away)"
)


def job_id_for(execution_id):
    return f"execution-{execution_id}"


# --- launching --------------------------------------------------------------------------------


def launch(data, user=None):
    """Validate ``data`` (a config dict), create a queued Execution and enqueue its job on commit.

    Raises ``ConfigError`` (nothing created) or ``QueueUnavailable`` (nothing left queued).
    """
    import django_rq

    from experiments.pipeline import load_config

    config = load_config(data)
    queue_name = queue_name_for(config)
    check_redis(django_rq.get_connection(queue_name))
    with transaction.atomic():
        experiment, _ = Experiment.objects.get_or_create(name=config.dataset.folder_name)
        execution = Execution.objects.create(
            experiment=experiment,
            status=Execution.Status.QUEUED,
            title=config.experiment.name,
            tags=list(config.experiment.tags),
            config=config.source,
            epochs_total=config.training.epochs,
            queue=queue_name,
            launched_by=user if user is not None and user.is_authenticated else None,
        )
        execution.job_id = job_id_for(execution.pk)
        execution.save(update_fields=["job_id"])
        transaction.on_commit(lambda: _enqueue(execution))
    return execution


def _enqueue(execution):
    import django_rq
    from rq import Callback

    try:
        django_rq.get_queue(execution.queue).enqueue_call(
            "experiments.tasks.run_execution",
            args=(execution.pk,),
            job_id=execution.job_id,
            timeout=settings.GYMNOS_JOB_TIMEOUT,
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
            # Both sync the run's folder, which can take a while on shared storage.
            on_failure=Callback("experiments.tasks.on_job_failure", timeout=300),
            on_stopped=Callback("experiments.tasks.on_job_stopped", timeout=300),
        )
    except Exception as exc:  # Redis went away between the check and the commit
        Execution.objects.filter(pk=execution.pk, status=Execution.Status.QUEUED).update(
            status=Execution.Status.FAILED, error=f"could not be queued: {exc}", finished_at=timezone.now()
        )
        raise QueueUnavailable(f"the job queue is unavailable: {exc}") from exc


# --- cancelling -------------------------------------------------------------------------------


def cancel(execution):
    """Stop a queued or running execution; returns True if it was still going.

    A queued run leaves the queue; a running one is stopped (RQ's stop-job command kills its
    work horse) and keeps its partial folder, which is synced.
    """
    import django_rq
    from rq.command import send_stop_job_command
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job

    connection = django_rq.get_connection(execution.queue or "default")
    now = timezone.now()
    reason = "cancelled by a user"
    was_queued = Execution.objects.filter(pk=execution.pk, status=Execution.Status.QUEUED).update(
        status=Execution.Status.CANCELLED, error=reason, finished_at=now
    )
    if was_queued:
        try:
            Job.fetch(execution.job_id, connection=connection).cancel()
        except NoSuchJobError:
            pass
        return True
    was_running = Execution.objects.filter(pk=execution.pk, status=Execution.Status.RUNNING).update(
        status=Execution.Status.CANCELLED, error=reason, finished_at=now
    )
    if was_running:
        try:
            send_stop_job_command(connection, execution.job_id)
        except (InvalidJobOperation, NoSuchJobError):
            pass  # it finished or died in between; the row already says cancelled
        return True
    return False


# --- running (inside the work horse) -----------------------------------------------------------


def run(execution_id):
    """Claim and train one execution; returns its final status (or why it was skipped)."""
    from experiments.pipeline import ConfigError, load_config, run_experiment
    from experiments.progress import DatabaseProgress

    now = timezone.now()
    claimed = Execution.objects.filter(pk=execution_id, status=Execution.Status.QUEUED).update(
        status=Execution.Status.RUNNING, started_at=now, heartbeat_at=now, worker=os.environ.get("RQ_WORKER_ID", "")
    )
    if not claimed:  # delivered twice, or cancelled while it waited
        status = Execution.objects.filter(pk=execution_id).values_list("status", flat=True).first()
        log.info("Execution %s not run: it is %s, not queued", execution_id, status)
        return f"skipped ({status})"

    execution = Execution.objects.get(pk=execution_id)
    heartbeat = Heartbeat(execution_id)
    heartbeat.start()
    try:
        try:
            # Fully checked (models built) at launch; the engine builds it again right away.
            config = load_config(execution.config, build=False)
        except ConfigError as exc:
            _finish(execution_id, Execution.Status.FAILED, f"the config no longer validates: {exc}")
            return Execution.Status.FAILED
        result = run_experiment(
            config,
            trainings_root=settings.GYMNOS_TRAININGS_ROOT,
            cache_dir=settings.GYMNOS_CACHE_DIR,
            callbacks=[DatabaseProgress(execution_id)],
            on_folder=lambda path: claim_folder(execution_id, path),
        )
    finally:
        heartbeat.stop()
    # Index the folder and record the outcome in one transaction: a reader sees the run
    # running, then finished with everything synced, and never a status that goes back.
    error = "" if result.succeeded else _error_with_traceback(result)
    with transaction.atomic():
        sync_own_folder(execution_id)
        return _finish(execution_id, Execution.Status.SUCCEEDED if result.succeeded else Execution.Status.FAILED, error)


def _error_with_traceback(result, lines=30):
    text = result.error or "failed"
    try:
        log_lines = (result.path / "execution.log").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return text
    start = next(
        (i for i in range(len(log_lines) - 1, -1, -1) if "Traceback (most recent call last)" in log_lines[i]), None
    )
    if start is None:
        return text
    return text + "\n\n" + "\n".join(log_lines[start : start + lines])


def _finish(execution_id, status, error):
    """Record the end, unless someone cancelled the run meanwhile (their word stands)."""
    Execution.objects.filter(pk=execution_id, status=Execution.Status.RUNNING).update(
        status=status, error=error, finished_at=timezone.now(), heartbeat_at=None
    )
    return Execution.objects.filter(pk=execution_id).values_list("status", flat=True).first()


def claim_folder(execution_id, path):
    """Record the folder the engine just created, so sync updates this row instead of adding one."""
    execution = Execution.objects.select_related("experiment").get(pk=execution_id)
    if path.parent.parent.name != execution.experiment.name:
        experiment, _ = Experiment.objects.get_or_create(name=path.parent.parent.name)
        execution.experiment = experiment
    execution.folder_name, execution.folder_path = path.name, str(path)
    try:
        with transaction.atomic():
            execution.save(update_fields=["experiment", "folder_name", "folder_path"])
    except IntegrityError:
        # A sync indexed the brand-new folder first; that row knows nothing this one does not.
        Execution.objects.filter(experiment=execution.experiment, folder_name=path.name).exclude(
            pk=execution_id
        ).delete()
        execution.save(update_fields=["experiment", "folder_name", "folder_path"])


def sync_own_folder(execution_id):
    """Index the execution's folder, keeping the status this module decided (call it after deciding)."""
    from experiments.sync import sync_folder

    execution = Execution.objects.get(pk=execution_id)
    if not execution.folder_path:
        return
    status = execution.status
    try:
        sync_folder(execution.folder_path, settings.GYMNOS_TRAININGS_ROOT)
    except Exception:  # noqa: BLE001 - the run's own outcome matters more than its index
        log.exception("Could not sync %s", execution.folder_path)
    Execution.objects.filter(pk=execution_id).update(status=status)


def stopped(execution_id):
    """The work horse was stopped on purpose (cancel): keep the partial folder, indexed."""
    Execution.objects.filter(pk=execution_id, status=Execution.Status.RUNNING).update(
        status=Execution.Status.CANCELLED, error="cancelled by a user", finished_at=timezone.now(), heartbeat_at=None
    )
    sync_own_folder(execution_id)


def horse_died(execution_id, description):
    """The work horse ended without recording an outcome (killed, out of memory, timed out)."""
    Execution.objects.filter(pk=execution_id, status=Execution.Status.RUNNING).update(
        status=Execution.Status.FAILED, error=description, finished_at=timezone.now(), heartbeat_at=None
    )
    sync_own_folder(execution_id)


# --- liveness ----------------------------------------------------------------------------------


class Heartbeat(threading.Thread):
    """Every few seconds: say "still running", and notice when the worker that forked us died.

    RQ runs a job in a forked work horse. If the worker process is killed, the horse would go
    on training unseen; instead it records "worker lost" and exits.
    """

    def __init__(self, execution_id, interval=HEARTBEAT_SECONDS):
        super().__init__(name=f"heartbeat-{execution_id}", daemon=True)
        self.execution_id = execution_id
        self.interval = interval
        self.parent = os.getppid()
        self.done = threading.Event()

    def run(self):
        try:
            while not self.done.wait(self.interval):
                if os.getppid() != self.parent:
                    Execution.objects.filter(pk=self.execution_id, status=Execution.Status.RUNNING).update(
                        status=Execution.Status.FAILED, error=WORKER_LOST, finished_at=timezone.now(), heartbeat_at=None
                    )
                    os._exit(1)
                Execution.objects.filter(pk=self.execution_id, status=Execution.Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
                reap_lost_executions()
        finally:
            connections.close_all()

    def stop(self):
        self.done.set()
        self.join(timeout=self.interval + 5)


def reap_lost_executions(now=None):
    """Mark running executions whose heartbeat stopped as failed ("worker lost"); returns how many."""
    now = now or timezone.now()
    return Execution.objects.filter(status=Execution.Status.RUNNING, heartbeat_at__lt=now - LOST_AFTER).update(
        status=Execution.Status.FAILED, error=WORKER_LOST, finished_at=now, heartbeat_at=None
    )


def write_epoch(execution_id, history, epochs_total=None):
    """Store every metric's history so far and the epoch count, in one transaction."""
    clean = {name: [finite_or_none(value) for value in values] for name, values in history.items()}
    with transaction.atomic():
        MetricHistory.objects.bulk_create(
            [MetricHistory(execution_id=execution_id, name=name, values=values) for name, values in clean.items()],
            update_conflicts=True,
            unique_fields=["execution", "name"],
            update_fields=["values"],
        )
        execution = Execution.objects.get(pk=execution_id)
        execution.set_metrics(clean)
        fields = [
            "summary",
            "test_metrics",
            "epochs",
            "final_loss",
            "final_val_loss",
            "best_val_loss",
            "test_loss",
            "heartbeat_at",
        ]
        execution.heartbeat_at = timezone.now()
        if epochs_total is not None:
            execution.epochs_total = epochs_total
            fields.append("epochs_total")
        execution.save(update_fields=fields)
