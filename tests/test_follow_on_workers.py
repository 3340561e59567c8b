"""A sweep's trials trained one after another in one work horse (``experiments.jobs.follow_on``), on a real worker
(``manage.py rqworker``), a real Redis and the test database: what a user sees is what separate horses gave."""

import os
import signal

import django_rq
import h5py
import pytest
from rq.job import Job

from experiments.jobs import launching
from experiments.models import Execution
from sweeps.launching import cancel_sweep, launch_sweep
from sweeps.models import Sweep, Trial
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training, pytest.mark.postgres]


def slow(epochs):
    return tiny(epochs=epochs, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])


def grid(units, config, parallel=1):
    return {
        "name": "follow-on",
        "base": config,
        "parameters": {"model.network[0].units": {"choice": units}},
        "method": "grid",
        "parallel": parallel,
    }


@pytest.fixture(scope="module")
def lone_worker(tmp_path_factory, django_db_setup):
    """One worker for the module, so which horse trains which run is plain to see."""
    root = tmp_path_factory.mktemp("follow-on")
    flush()
    process = WorkerProcess(
        worker_env(root / "trainings", root / "cache", GYMNOS_TEST_EPOCH_PAUSE="0.4"), root / "worker.log"
    )
    yield process
    process.stop()
    flush()


@pytest.fixture
def worker(lone_worker, settings, monkeypatch):
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    return lone_worker.wait_ready()


def trials(sweep):
    return list(Trial.objects.filter(sweep=sweep).select_related("execution").order_by("number"))


def ended(sweep, timeout=180):
    def done():
        sweep.refresh_from_db()
        return sweep.status != Sweep.State.RUNNING

    wait_for(done, timeout=timeout, interval=0.3, message=f"sweep {sweep.pk} ended")
    return trials(sweep)


def second_training(sweep):
    rows = trials(sweep)
    second = rows[1].execution if len(rows) > 1 else None
    return second is not None and second.status == "running" and second.epochs >= 1


def layer_names(folder):
    with h5py.File(os.path.join(folder, "model.h5"), "r") as model:
        return sorted(model["model_weights"].keys())


def test_a_sweeps_next_trials_train_in_the_horse_of_the_first_with_every_artifact_as_before(worker):
    sweep = launch_sweep(grid([4, 8, 16], tiny(epochs=2)))
    rows = ended(sweep)
    assert sweep.status == "finished"
    assert [t.execution.status for t in rows] == ["succeeded"] * 3
    first = rows[0].execution
    # One job trained the three: the trials after the first were claimed under its id.
    assert [t.execution.job_id for t in rows] == [first.job_id] * 3
    # RQ stores the job's result just after the job returns, which may be after the sweep is seen finished.
    job = Job.fetch(first.job_id, connection=django_rq.get_connection("default"))
    result = wait_for(job.return_value, timeout=30, message="the job's result stored")
    assert result == f"succeeded; then {rows[1].execution.pk}: succeeded; then {rows[2].execution.pk}: succeeded"
    for trial in rows:
        folder = trial.execution.folder_path
        assert {"model.h5", "metrics.json", "execution.log", "training_config.json"} <= set(os.listdir(folder))
        # Keras starts afresh for each: its layers are named as the first trial's (not dense_2, dense_3, ...).
        assert layer_names(folder) == layer_names(first.folder_path)
        assert trial.value == min(trial.execution.history("val_loss"))


def test_another_users_run_queued_first_trains_before_the_sweeps_next_trial(worker):
    launching.warm_up(wait=True)  # the build check's fork server, so the run below is queued at once
    sweep = launch_sweep(grid([4, 8], slow(epochs=10)))
    wait_for(
        lambda: any(t.execution and t.execution.epochs >= 1 for t in trials(sweep)),
        timeout=120,
        message="the first trial training",
    )
    other = launching.launch(tiny(epochs=1))
    assert [t.execution.status for t in trials(sweep)] == ["running"], "queued too late to tell"
    rows = ended(sweep)
    other.refresh_from_db()
    second = rows[1].execution
    assert other.status == "succeeded"
    assert second.status == "succeeded"
    # One worker trains one run at a time, so they ended in the order they trained.
    assert rows[0].execution.finished_at < other.finished_at < second.finished_at
    # The trial waited its turn in the queue, and got a job of its own.
    assert second.job_id == launching.job_id_for(second.pk)


def test_cancelling_a_sweep_stops_the_trial_its_horse_took(worker):
    sweep = launch_sweep(grid([4, 8, 16], slow(epochs=30)))
    wait_for(lambda: second_training(sweep), timeout=120, message="the second trial training in the first's horse")
    rows = trials(sweep)
    assert rows[1].execution.job_id == rows[0].execution.job_id
    assert cancel_sweep(sweep)
    second = rows[1].execution
    second.refresh_from_db()
    assert second.status == "cancelled"
    # Its horse was stopped: the run saved no model, and the worker trains the next run it is given.
    after = launching.launch(tiny(epochs=1))
    wait_for(lambda: Execution.objects.get(pk=after.pk).status == "succeeded", timeout=90, message="the next run")
    assert not os.path.exists(os.path.join(second.folder_path, "model.h5"))
    assert [t.execution.status for t in trials(sweep)] == ["succeeded", "cancelled"]


def test_a_horse_killed_during_a_trial_it_took_fails_that_trial_and_the_sweep_goes_on(worker):
    sweep = launch_sweep(grid([4, 8, 16], slow(epochs=8)))
    wait_for(lambda: second_training(sweep), timeout=120, message="the second trial training in the first's horse")
    horse = worker.horse()
    os.kill(horse.pid, signal.SIGKILL)
    rows = ended(sweep)
    assert sweep.status == "finished"
    assert [t.execution.status for t in rows] == ["succeeded", "failed", "succeeded"]
    assert rows[1].execution.error.startswith("its work horse died (signal 9 (SIGKILL))")
    assert [t.outcome for t in rows] == ["succeeded", "failed", "succeeded"]
