"""Runs survive their machine (#23): a run whose process died goes on from the state its folder keeps."""

import datetime as dt
import json
import os
import signal
from pathlib import Path
from typing import Any

import django_rq
import h5py
import keras
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rq.job import Job

from experiments.jobs import launching, resuming
from experiments.models import Execution, Experiment
from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.resume import PREVIOUS_FILE, STATE_FILE, STATE_FOLDER, Resume, has_kept_state
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.training]

FIVE_MINUTES = dt.timedelta(minutes=5)


class DiesAt(keras.callbacks.Callback):
    """Stands for a process killed at an epoch's end, after its state was kept (a Python error does the same)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == self.epoch:
            raise RuntimeError("the machine went away")


def _metrics(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "metrics.json").read_text())
    return document


def test_a_run_started_again_on_its_folder_goes_on_from_the_epoch_it_reached(tmp_path):
    config = load_config(tiny(epochs=6))
    first = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", callbacks=[DiesAt(2)])
    assert not first.succeeded
    assert first.path is not None
    assert has_kept_state(first.path)
    kept = json.loads((first.path / STATE_FOLDER / STATE_FILE).read_text())
    assert kept["epoch"] == 3
    assert len(kept["history"]["loss"]) == 3

    again = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", resume=Resume(first.path, attempt=2))
    assert again.succeeded, again.error
    assert again.path == first.path
    metrics = _metrics(first.path)["metrics"]
    assert len(metrics["loss"]) == 6
    assert len(metrics["val_loss"]) == 6
    assert metrics["loss"][:3] == kept["history"]["loss"]  # the epochs before the crash, once each
    log = (first.path / "execution.log").read_text()
    assert "resumed at epoch 3 (attempt 2)" in log
    assert "the machine went away" in log  # the first attempt's lines are kept: the log is appended to
    assert not (first.path / STATE_FOLDER).exists()  # trained to its end: the state is no longer kept


def test_a_state_that_cannot_be_read_fails_the_run_saying_why(tmp_path):
    config = load_config(tiny(epochs=4))
    first = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", callbacks=[DiesAt(1)])
    assert first.path is not None
    (first.path / STATE_FOLDER / STATE_FILE).write_text('{"epoch": 2, "weights": "../../x.weights.h5"}')
    (first.path / STATE_FOLDER / PREVIOUS_FILE).unlink(missing_ok=True)  # nothing to fall back to
    assert not has_kept_state(first.path)
    again = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", resume=Resume(first.path))
    assert not again.succeeded
    assert again.error is not None
    assert "weights must name a .weights.safetensors file" in again.error


# --- with real workers on a real Redis --------------------------------------------------------------------------


@pytest.fixture
def workers(settings, tmp_path, monkeypatch):
    """Start workers that resume (GYMNOS_RESUME_ATTEMPTS=3): ``workers(name=...)``; all stopped at the end."""
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    flush()
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        environment = worker_env(tmp_path / "trainings", tmp_path / "cache", GYMNOS_RESUME_ATTEMPTS="3", **env)
        process = WorkerProcess(environment, tmp_path / f"worker-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    flush()


def _slow(epochs: int, hook: str = "tests.hooks.pause") -> dict[str, Any]:
    return tiny(epochs=epochs, callbacks=[{"type": "lambda_callback", "on_epoch_end": hook}])


def _row(pk: int) -> Execution:
    return Execution.objects.get(pk=pk)


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_is_killed_is_resumed_by_the_next_worker_with_each_epoch_once(workers):
    doomed = workers(GYMNOS_TEST_EPOCH_PAUSE="1").wait_ready()
    execution = launching.launch(_slow(epochs=30))
    wait_for(lambda: _row(execution.pk).status == "running", timeout=30, message="the first worker took it")
    next_worker = workers(GYMNOS_TEST_EPOCH_PAUSE="0").wait_ready()  # idle, while the first one trains slowly
    wait_for(lambda: _row(execution.pk).epochs >= 3, timeout=60, message="three epochs trained")
    folder = _row(execution.pk).folder_path
    assert _row(execution.pk).epochs < 30
    os.kill(doomed.process.pid, signal.SIGKILL)  # no goodbye: its horse sees it gone and queues the run again
    wait_for(lambda: _row(execution.pk).status in {"succeeded", "failed"}, timeout=90, message="run ended")

    run = _row(execution.pk)
    assert run.status == "succeeded", run.error
    assert run.attempts == 1
    assert run.folder_path == folder  # the same row and the same folder
    assert run.worker == next_worker.name
    assert run.epochs == 30
    assert len(run.history("loss")) == 30
    assert len(run.history("val_loss")) == 30
    metrics = _metrics(Path(folder))["metrics"]
    assert len(metrics["loss"]) == 30
    assert len(metrics["val_loss"]) == 30
    log = (Path(folder) / "execution.log").read_text()
    assert "resumed at epoch " in log
    assert "(attempt 2)" in log
    assert len(os.listdir(Path(folder).parent)) == 1  # trained on in its folder, not a new one
    assert not (Path(folder) / STATE_FOLDER).exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_work_horse_is_killed_is_resumed_by_its_worker(workers):
    worker = workers(GYMNOS_TEST_EPOCH_PAUSE="0.5").wait_ready()
    execution = launching.launch(_slow(epochs=12))
    wait_for(lambda: _row(execution.pk).epochs >= 3, timeout=90, message="three epochs trained")
    worker.horse().kill()  # as the kernel's out-of-memory killer would
    wait_for(lambda: _row(execution.pk).status in {"succeeded", "failed"}, timeout=90, message="run ended")
    run = _row(execution.pk)
    assert run.status == "succeeded", run.error
    assert run.attempts == 1
    assert len(run.history("loss")) == 12
    assert len(_metrics(Path(run.folder_path))["metrics"]["loss"]) == 12
    assert "resumed at epoch " in (Path(run.folder_path) / "execution.log").read_text()


@pytest.mark.django_db(transaction=True)
def test_a_run_that_fails_by_its_own_fault_is_not_retried(workers):
    workers().wait_ready()
    execution = launching.launch(_slow(epochs=4, hook="tests.hooks.breaks"))
    wait_for(lambda: _row(execution.pk).status in {"succeeded", "failed"}, timeout=90, message="run ended")
    run = _row(execution.pk)
    assert run.status == "failed"
    assert "a bug in the run's own code" in run.error
    assert run.attempts == 0


def _running_with_kept_state(tmp_path: Path) -> Execution:
    """A running row whose folder keeps a state (as a killed run leaves it), its heartbeat 5 minutes old."""
    folder = tmp_path / "boston_housing" / "executions" / "run"
    (folder / STATE_FOLDER).mkdir(parents=True)
    with h5py.File(folder / STATE_FOLDER / "epoch-3.weights.h5", "w"):
        pass  # a whole HDF5 file (read_kept opens it); these tests never load it
    (folder / STATE_FOLDER / STATE_FILE).write_text('{"epoch": 3, "weights": "epoch-3.weights.h5", "history": {}}')
    experiment = Experiment.objects.create(name="boston_housing")
    old = timezone.now() - FIVE_MINUTES
    return Execution.objects.create(
        experiment=experiment,
        folder_name="run",
        folder_path=str(folder),
        status="running",
        job_id="execution-x",
        queue="default",
        heartbeat_at=old,
        started_at=old,
    )


@pytest.mark.django_db(transaction=True)
def test_with_no_resume_attempts_a_lost_worker_fails_its_run_as_before(settings, tmp_path):
    settings.GYMNOS_RESUME_ATTEMPTS = 0
    settings.RQ_QUEUES = queues_at()
    run = _running_with_kept_state(tmp_path)
    assert resuming.reap_lost() == 1
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith("worker lost")
    assert run.attempts == 0


@pytest.mark.django_db(transaction=True)
def test_a_lost_run_is_queued_again_until_its_attempts_are_spent(settings, tmp_path):
    settings.GYMNOS_RESUME_ATTEMPTS = 1
    settings.RQ_QUEUES = queues_at()
    flush()
    run = _running_with_kept_state(tmp_path)
    assert Execution.objects.mark_lost() == 0  # a page's check leaves a run that can resume to the reaper
    assert resuming.reap_lost() == 1
    run.refresh_from_db()
    assert run.status == "queued"
    assert run.attempts == 1
    assert run.error.startswith("attempt 1 ended: worker lost")
    assert "(attempt 2)" in run.error
    assert Job.exists(run.job_id, connection=django_rq.get_connection("default"))
    client = Client()
    client.force_login(User.objects.create_user("watcher"))
    shown = client.get(f"/api/executions/{run.pk}").json()  # what a person sees between attempts
    assert (shown["status"], shown["attempts"]) == ("queued", 1)
    assert shown["error"].startswith("attempt 1 ended: worker lost")
    # Its second attempt's machine dies too: no attempt is left, so it fails, saying how.
    Execution.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now() - FIVE_MINUTES)
    assert resuming.reap_lost() == 1
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith("worker lost")
    flush()
