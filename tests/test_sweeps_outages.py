"""Sweeps on a real worker through what goes wrong around them: a sample too big to build, checked in the worker's
capped child as any launch is; Redis losing its data mid-sweep, which the worker's reaper gets over."""

import pytest

from sweeps.launching import launch_sweep
from sweeps.models import Sweep, Trial
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]

# A first layer of 10 million units over Boston's 13 features: 130 million weights, over half a gigabyte.
HUGE = 10_000_000
TOO_BIG = "the model needs more than 256 MB to build (the limit for checking a config, GYMNOS_CHECK_MEMORY_MB)"


@pytest.fixture(scope="module")
def worker_root(tmp_path_factory):
    return tmp_path_factory.mktemp("outages")


@pytest.fixture(scope="module")
def worker(worker_root, django_db_setup):
    """One worker for the module (it imports TensorFlow once), its build checks capped at 256 MB, its logs apart."""
    flush()
    env = worker_env(
        worker_root / "trainings",
        worker_root / "cache",
        GYMNOS_VAR_DIR=str(worker_root / "var"),
        GYMNOS_CHECK_MEMORY_MB="256",
        GYMNOS_TEST_EPOCH_PAUSE="0.5",
    )
    process = WorkerProcess(env, worker_root / "worker.log")
    yield process
    process.stop()
    flush()


@pytest.fixture
def ready(worker, settings, monkeypatch):
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    return worker.wait_ready()


def trials(sweep):
    return {trial.params.get("model.network[0].units"): trial for trial in Trial.objects.filter(sweep=sweep)}


def ended(sweep, timeout=180):
    def done():
        sweep.refresh_from_db()
        return sweep.status != Sweep.State.RUNNING

    wait_for(done, timeout=timeout, interval=0.3, message=f"sweep {sweep.pk} ended")
    return sweep


def test_a_sample_too_big_to_build_fails_its_trial_in_the_workers_capped_check_and_the_sweep_goes_on(
    ready, worker_root
):
    checks = worker_root / "var" / "log" / "checks.log"
    assert "Gymnos build checker" not in (checks.read_text() if checks.exists() else "")  # none before a sweep's job
    sweep = launch_sweep(
        {
            "base": tiny(epochs=1),
            "parameters": {"model.network[0].units": {"choice": [HUGE, 8, 4]}},
            "method": "grid",
            "parallel": 1,
        }
    )
    assert ended(sweep).status == "finished"
    rows = trials(sweep)
    assert rows[HUGE].execution is None
    assert rows[HUGE].error == f"model.network: {TOO_BIG}"
    assert rows[8].execution.status == "succeeded"
    assert rows[4].execution.status == "succeeded"
    # Every horse checked its samples through the fork server its worker started for them: one started, ever.
    started = checks.read_text().count("Gymnos build checker ")
    assert started == 1


def slow(epochs):
    return tiny(epochs=epochs, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])


def test_a_sweep_whose_redis_lost_its_data_mid_sweep_finishes_once_the_reaper_queues_its_lost_trial_again(ready):
    """Last in this module: the flush also forgets the worker's own registration."""
    sweep = launch_sweep(
        {
            "base": slow(epochs=8),
            "parameters": {"model.network[0].units": {"choice": [4, 8, 16]}},
            "method": "grid",
            "parallel": 2,
        }
    )

    def one_training_one_waiting():
        statuses = sorted(t.execution.status for t in Trial.objects.filter(sweep=sweep) if t.execution is not None)
        return statuses == ["queued", "running"]

    wait_for(one_training_one_waiting, timeout=120, interval=0.2, message="a trial training and one queued")
    flush()  # Redis restarted without its data: the queued trial's job is gone
    # The trial that trained moves the sweep on (its last trial queued afresh); the one whose job was lost stayed
    # queued forever, and its sweep running, until the reaper queued its job again.
    assert ended(sweep, timeout=240).status == "finished"
    rows = Trial.objects.filter(sweep=sweep).select_related("execution")
    assert sorted(trial.execution.status for trial in rows if trial.execution is not None) == [
        "succeeded",
        "succeeded",
        "succeeded",
    ]
