"""A sweep survives its worker being killed mid-trial: that trial fails as "worker lost", the sweep goes on."""

import os
import signal

import pytest

from sweeps.launching import launch_sweep
from sweeps.models import Sweep, Trial
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


def slow(epochs):
    return tiny(epochs=epochs, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])


def trials(sweep):
    return list(Trial.objects.filter(sweep=sweep).select_related("execution").order_by("number"))


@pytest.fixture
def queues(settings, monkeypatch):
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    flush()
    yield
    flush()


def test_a_worker_killed_during_a_trial_fails_that_trial_and_the_sweep_goes_on(tmp_path, queues):
    def worker(name, pause):
        env = worker_env(tmp_path / "trainings", tmp_path / "cache", GYMNOS_TEST_EPOCH_PAUSE=pause)
        return WorkerProcess(env, tmp_path / f"{name}.log")

    doomed = worker("doomed", "0.5").wait_ready()
    survivor = None
    try:
        sweep = launch_sweep(
            {
                "base": slow(epochs=20),
                "parameters": {"model.network[0].units": {"choice": [4, 8]}},
                "method": "grid",
                "parallel": 1,
            }
        )
        first = wait_for(
            lambda: next((t for t in trials(sweep) if t.execution and t.execution.epochs >= 1), None),
            timeout=120,
            message="the first trial training",
        )
        os.kill(doomed.process.pid, signal.SIGKILL)
        survivor = worker("survivor", "0").wait_ready()

        def ended():
            sweep.refresh_from_db()
            return sweep.status != Sweep.State.RUNNING

        wait_for(ended, timeout=240, interval=0.5, message="the sweep ended")
        rows = trials(sweep)
        assert sweep.status == "finished"
        assert len(rows) == 2
        assert rows[0].pk == first.pk
        assert rows[0].execution.status == "failed"
        assert rows[0].execution.error.startswith("worker lost")
        assert rows[1].execution.status == "succeeded"
        assert rows[1].execution.worker == survivor.name
        assert [t.outcome for t in rows] == ["failed", "succeeded"]
    finally:
        doomed.stop()
        if survivor is not None:
            survivor.stop()
