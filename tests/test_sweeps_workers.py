"""Sweeps on real workers (``manage.py rqworker``), a real Redis and the test database.

Each trial is an ordinary execution that a worker trains; the Optuna study lives in the test
database, so the workers (other processes) and this test read the same study.
"""

import itertools
import os

import optuna
import pytest

from sweeps import study
from sweeps.launching import cancel_sweep, launch_sweep
from sweeps.models import Sweep, Trial
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training, pytest.mark.postgres]

ENDED = {"succeeded", "failed", "cancelled", "pruned"}


def document(parameters, config=None, **options):
    return {"name": "test sweep", "base": config or tiny(epochs=2), "parameters": parameters, **options}


def slow(epochs):
    """A tiny config whose epochs pause (GYMNOS_TEST_EPOCH_PAUSE seconds), so a test can act while it trains."""
    return tiny(epochs=epochs, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, django_db_setup):
    """Two workers for the whole module (each imports TensorFlow once, which takes a while on two cores)."""
    root = tmp_path_factory.mktemp("sweeps")
    flush()
    env = worker_env(root / "trainings", root / "cache", GYMNOS_TEST_EPOCH_PAUSE="0.4")
    processes = [WorkerProcess(env, root / f"worker-{index}.log") for index in range(2)]
    yield processes
    for process in processes:
        process.stop()
    flush()
    study.close()  # this process's connections to the study, before the test database is dropped


@pytest.fixture
def workers(fleet, settings, monkeypatch):
    """The module's two workers, ready; this process validates and queues on the same Redis."""
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    for process in fleet:
        process.wait_ready()
    return fleet


def sweep_ended(sweep, timeout=240):
    def ended():
        sweep.refresh_from_db()
        return sweep.status != Sweep.State.RUNNING

    wait_for(ended, timeout=timeout, interval=0.3, message=f"sweep {sweep.pk} ended")
    return sweep


def trials(sweep):
    return list(Trial.objects.filter(sweep=sweep).select_related("execution").order_by("number"))


def study_of(sweep):
    return optuna.load_study(study_name=sweep.study_name, storage=study.storage())


def max_overlap(executions):
    """The most executions queued or running at one moment, from when each was created to when it ended."""
    events = sorted(
        [(e.created_at, 1) for e in executions] + [(e.finished_at, -1) for e in executions],
        key=lambda event: (event[0], event[1]),
    )
    live = peak = 0
    for _, step in events:
        live += step
        peak = max(peak, live)
    return peak


def test_a_grid_sweep_tries_every_combination_once_on_two_workers_sharing_one_study(workers):
    sweep = launch_sweep(
        document(
            {"model.network[0].units": {"choice": [4, 8]}, "training.batch_size": {"choice": [16, 64]}},
            method="grid",
            parallel=2,
        )
    )
    sweep_ended(sweep)
    assert sweep.status == "finished"
    assert sweep.trials_total == 4
    rows = trials(sweep)
    combos = {(t.params["model.network[0].units"], t.params["training.batch_size"]) for t in rows}
    assert combos == set(itertools.product([4, 8], [16, 64]))
    for trial in rows:
        execution = trial.execution
        assert execution.status == "succeeded", execution.error
        # The sampled values are in the run's config, so its params show them.
        assert execution.config["model"]["network"][0]["units"] == trial.params["model.network[0].units"]
        assert execution.params["training.batch_size"] == trial.params["training.batch_size"]
        assert trial.value == min(execution.history("val_loss"))
    # Both workers trained trials of the one study the database holds.
    assert {t.execution.worker for t in rows} == {w.name for w in workers}
    optuna_trials = study_of(sweep).get_trials(deepcopy=False)
    assert sorted(t.number for t in optuna_trials) == sorted(t.optuna_number for t in rows)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in optuna_trials)
    assert max_overlap([t.execution for t in rows]) <= 2
    assert set(sweep.importance) == {"model.network[0].units", "training.batch_size"}


def test_at_most_parallel_trials_are_queued_or_running_at_once(workers):
    sweep = launch_sweep(
        document(
            {"model.compilation.optimizer.learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-1}},
            method="random",
            trials=4,
            parallel=1,
            seed=7,
        )
    )
    sweep_ended(sweep)
    rows = trials(sweep)
    executions = [t.execution for t in rows]
    assert [e.status for e in executions] == ["succeeded"] * 4
    assert max_overlap(executions) == 1  # with two idle workers, still one at a time
    for before, after in itertools.pairwise(executions):
        assert after.created_at >= before.finished_at
    rates = [t.params["model.compilation.optimizer.learning_rate"] for t in rows]
    assert all(1e-4 <= rate <= 1e-1 for rate in rates)
    assert len(set(rates)) == 4
    # The optimizer's short form ("adam") became an object that carries the sampled rate.
    assert executions[0].config["model"]["compilation"]["optimizer"] == {"type": "adam", "learning_rate": rates[0]}


def test_a_tpe_sweep_searches_and_reports_the_best_trial(workers):
    sweep = launch_sweep(
        document(
            {
                "model.network[0].units": {"distribution": "int_uniform", "low": 4, "high": 16, "step": 4},
                "model.compilation.optimizer.learning_rate": {
                    "distribution": "log_uniform",
                    "low": 1e-3,
                    "high": 1e-1,
                },
            },
            method="tpe",
            trials=4,
            parallel=2,
            objective={"metric": "val_loss", "which": "last"},
        )
    )
    sweep_ended(sweep)
    rows = trials(sweep)
    assert all(t.status == "succeeded" for t in rows)
    assert all(t.params["model.network[0].units"] in (4, 8, 12, 16) for t in rows)
    for trial in rows:
        assert trial.value == trial.execution.history("val_loss")[-1]  # which: last
    best = study_of(sweep).best_trial
    assert best.value == min(t.value for t in rows)


def test_a_pruned_trial_stops_early_keeps_its_folder_and_counts_in_the_study(workers):
    # One good learning rate trains in full; a hopeless one is worse than the median from epoch 2.
    config = tiny(epochs=12)
    config["training"]["callbacks"] = [{"type": "model_checkpoint", "filepath": "w.{epoch:02d}.h5", "period": 1}]
    sweep = launch_sweep(
        document(
            {"model.compilation.optimizer.learning_rate": {"choice": [0.02, 1e-7]}},
            config=config,
            method="grid",
            parallel=1,
            pruner={"type": "median", "warmup_epochs": 2, "startup_trials": 1},
            seed=1,  # the grid's order, shuffled by the seed: the good rate first, for the median to compare with
        )
    )
    sweep_ended(sweep)
    rows = {t.params["model.compilation.optimizer.learning_rate"]: t for t in trials(sweep)}
    good, hopeless = rows[0.02].execution, rows[1e-7].execution
    assert rows[0.02].number == 0
    assert good.status == "succeeded"
    assert good.epochs == 12
    assert hopeless.status == "pruned", hopeless.error
    assert 2 <= hopeless.epochs < 12
    log = open(os.path.join(hopeless.folder_path, "execution.log")).read()
    assert "pruned by the sweep's median pruner" in log
    assert os.path.isfile(os.path.join(hopeless.folder_path, "metrics.json"))
    checkpoints = os.listdir(os.path.join(hopeless.folder_path, "callbacks", "model_checkpoint"))
    assert len(checkpoints) == hopeless.epochs
    assert len(hopeless.history("val_loss")) == hopeless.epochs
    states = {t.number: t.state for t in study_of(sweep).get_trials(deepcopy=False)}
    assert states[rows[1e-7].optuna_number] == optuna.trial.TrialState.PRUNED
    assert sweep.status == "finished"


def test_a_bad_sample_fails_its_trial_with_its_error_and_the_sweep_goes_on(workers):
    sweep = launch_sweep(
        document(
            {"model.network[0].activation": {"choice": ["relu", "no_such_activation", "tanh"]}},
            method="grid",
            parallel=1,
        )
    )
    sweep_ended(sweep)
    assert sweep.status == "finished"
    rows = {t.params["model.network[0].activation"]: t for t in trials(sweep)}
    bad = rows["no_such_activation"]
    assert bad.execution is None
    assert bad.status == "failed"
    assert "model.network[0]" in bad.error
    assert "no_such_activation" in bad.error
    assert rows["relu"].status == rows["tanh"].status == "succeeded"
    states = {t.number: t.state for t in study_of(sweep).get_trials(deepcopy=False)}
    assert states[bad.optuna_number] == optuna.trial.TrialState.FAIL


def test_a_parameter_every_sample_gets_wrong_ends_the_sweep_with_its_error(workers):
    # The schema lets any argument through to a layer; Keras names the misspelling at the first trial.
    sweep = launch_sweep(document({"model.network[0].unitz": {"choice": [4, 8]}}, method="grid", parallel=1))
    sweep_ended(sweep, timeout=120)
    assert sweep.status == "failed"
    assert sweep.error.startswith('parameters["model.network[0].unitz"]: unknown argument for dense')
    assert "did you mean 'units'" in sweep.error
    assert Trial.objects.filter(sweep=sweep).count() == 1


def test_cancelling_a_sweep_cancels_its_queued_trial_and_stops_its_running_ones(workers):
    sweep = launch_sweep(
        document(
            {"model.network[0].units": {"choice": [4, 8, 16, 32]}},
            config=slow(epochs=30),
            method="grid",
            parallel=3,
        )
    )

    def two_running_one_queued():
        statuses = sorted(t.execution.status for t in trials(sweep) if t.execution is not None)
        return statuses == ["queued", "running", "running"] and all(
            t.execution.epochs >= 1 for t in trials(sweep) if t.execution.status == "running"
        )

    wait_for(two_running_one_queued, timeout=120, message="two trials training and one queued")
    assert cancel_sweep(sweep)
    sweep.refresh_from_db()
    assert sweep.status == "cancelled"
    assert [t.execution.status for t in trials(sweep)] == ["cancelled"] * 3
    # No trial is asked for any more, and the study hears that the three did not complete.
    wait_for(
        lambda: [t.state for t in study_of(sweep).get_trials()] == [optuna.trial.TrialState.FAIL] * 3,
        timeout=60,
        message="the study told that the three failed",
    )
    # The running ones were stopped: their work horses are gone, so they never saved a model.
    folders = [t.execution.folder_path for t in trials(sweep) if t.execution.folder_path]
    assert len(folders) == 2
    assert not any(os.path.exists(os.path.join(f, "model.h5")) for f in folders)
    assert len(trials(sweep)) == 3
    assert not cancel_sweep(sweep)  # it had ended
