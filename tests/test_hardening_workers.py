"""A worker under a memory cap: a run that needs more fails alone, and the worker goes on with the next job."""

import json
import os
import signal
import time

import keras
import pytest

from experiments.jobs import launching
from experiments.jobs.horse import MemoryWatch
from experiments.models import Execution
from experiments.pipeline import load_config, run_experiment
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


@pytest.fixture
def capped_worker(settings, tmp_path):
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    flush()
    env = worker_env(tmp_path / "trainings", tmp_path / "cache", GYMNOS_JOB_MEMORY_MB="300")
    process = WorkerProcess(env, tmp_path / "worker.log").wait_ready()
    yield process
    process.stop()
    flush()


def ended(pk):
    status = Execution.objects.get(pk=pk).status
    return status if status in {"succeeded", "failed"} else None


def test_a_run_over_the_job_memory_limit_fails_alone_and_the_next_one_trains(capped_worker):
    big = tiny(epochs=2)
    # 26 million weights (104 MB) build fine; Adam's two slots and the gradients need three times more.
    big["model"]["network"] = [{"type": "dense", "units": 2_000_000}, {"type": "dense", "units": 1}]
    hungry = launching.launch(big)
    small = launching.launch(tiny(epochs=2))
    assert wait_for(lambda: ended(hungry.pk), timeout=180, message="the big run ended") == "failed"
    hungry.refresh_from_db()
    assert hungry.error.startswith("out of memory (limit 300 MB)")
    log = (hungry.folder_path and open(f"{hungry.folder_path}/execution.log").read()) or ""
    assert "out of memory (limit 300 MB)" in log
    assert wait_for(lambda: ended(small.pk), timeout=180, message="the next run ended") == "succeeded"
    assert capped_worker.process.poll() is None  # the worker itself is untouched


def test_the_limit_stops_the_run_even_where_the_training_catches_every_error(trainings, cache_dir):
    # The watch interrupts the training wherever it is. Here that is inside a callback that catches every
    # error, as a tracker that must never stop the training does: the run still fails, said as out of memory.
    class CatchesEverything(keras.callbacks.Callback):
        caught: list[Exception] = []

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                try:
                    os.kill(os.getpid(), signal.SIGUSR1)  # what the watch does over the limit
                    time.sleep(5)
                except Exception as exc:  # noqa: BLE001 - the point of the test
                    self.caught.append(exc)

    previous = signal.getsignal(signal.SIGUSR1)
    MemoryWatch(execution_id=0, megabytes=300)  # installs the interrupt in this (the training's) thread
    try:
        result = run_experiment(
            load_config(tiny(epochs=6)), trainings, cache_dir, callbacks=[CatchesEverything()], memory_limit_mb=300
        )
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert CatchesEverything.caught == []
    assert not result.succeeded
    assert result.error == (
        "out of memory (limit 300 MB): MemoryLimitExceeded: the run used more than 300 MB of memory "
        "(GYMNOS_JOB_MEMORY_MB)"
    )
    assert result.path is not None
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert metrics["error"] == result.error
    assert len(metrics["metrics"]["loss"]) < 6
    assert f"Execution failed: {result.error}" in (result.path / "execution.log").read_text()
