"""A sweep's study between trials: opened once per advance, asking the same values, importances throttled,
a network its samples already built not built again."""

import datetime as dt
import resource

import django_rq
import optuna
import pytest
import sqlalchemy
from django.db import connection
from django.utils import timezone
from optuna.trial import TrialState

from experiments.pipeline import load_config
from experiments.pipeline.build_check import network_key
from sweeps import advance, study
from sweeps.launching import launch_sweep
from sweeps.models import Sweep, Trial
from tests.helpers import tiny

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("real_queues")]


def sweep_of(seed):
    return launch_sweep(
        {
            "base": tiny(),
            "parameters": {
                "model.network[0].units": {"choice": [4, 8, 16, 32]},
                "model.compilation.optimizer.learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 0.1},
            },
            "method": "random",
            "trials": 6,
            "seed": seed,
        }
    )


def test_a_study_opened_once_asks_for_the_values_it_asks_when_opened_for_each_trial():
    once, each = sweep_of(5), sweep_of(5)
    opened = study.open_study(once)  # created here: the advance job was never run
    assert study.open_study(once)._study_id == opened._study_id  # loaded, not created again
    asked_once = [study.ask(once, number, opened)[1] for number in range(4)]
    asked_each = [study.ask(each, number)[1] for number in range(4)]
    assert asked_once == asked_each
    assert len({row["model.network[0].units"] for row in asked_once}) >= 2  # not one value over and over
    study.tell(once, 0, "succeeded", 3.5, opened)
    assert study.open_study(once).trials[0].value == 3.5


def test_importances_are_recomputed_at_most_every_ten_seconds_and_only_once_two_trials_have_values():
    sweep = sweep_of(1)
    assert not advance.due_for_importance(sweep)  # nothing to rank yet
    for number, value in enumerate((7.0, 9.0)):
        Trial.objects.create(sweep=sweep, number=number, outcome="succeeded", value=value)
    assert advance.due_for_importance(sweep)
    assert not advance.due_for_importance(sweep)  # just done (by this worker or another)
    Sweep.objects.filter(pk=sweep.pk).update(importance_at=timezone.now() - dt.timedelta(seconds=11))
    assert advance.due_for_importance(sweep)


def sample(units, loss="mse", activation="relu"):
    config = tiny()
    config["model"]["network"][0].update(units=units, activation=activation)
    config["model"]["compilation"]["loss"] = loss
    return load_config(config)


# A first layer of 10 million units over Boston's 13 features: 130 million weights, over half a gigabyte.
HUGE = 10_000_000
TOO_BIG = "the model needs more than 256 MB to build (the limit for checking a config, GYMNOS_CHECK_MEMORY_MB)"


def remembered(sweep, config):
    key = advance.BUILT_NETWORKS.format(sweep=sweep.pk)
    return bool(django_rq.get_connection(sweep.queue).sismember(key, network_key(config)))


def test_a_network_a_sample_already_built_is_not_built_again_and_every_sample_is_still_checked(settings):
    settings.GYMNOS_CHECK_MEMORY_MB = 256
    sweep = sweep_of(3)
    check = advance._checker(sweep)
    assert [problem.message for problem in check(sample(HUGE))] == [TOO_BIG]  # built in the capped child
    assert not remembered(sweep, sample(HUGE))
    assert check(sample(8)) == []
    assert remembered(sweep, sample(8))
    # A network remembered as built is not built again: say this sweep built the huge one, and it passes.
    django_rq.get_connection(sweep.queue).sadd(advance.BUILT_NETWORKS.format(sweep=sweep.pk), network_key(sample(HUGE)))
    assert check(sample(HUGE)) == []
    problems = check(sample(8, loss="mean_squared_errr"))  # a network it knows, a loss Keras does not
    assert [problem.path for problem in problems] == ["model.compilation.loss"]
    for _ in range(2):  # a network that does not build is never remembered as one that does
        problems = check(sample(4, activation="relux"))
        assert [problem.path for problem in problems] == ["model.network[0]"]
    assert not remembered(sweep, sample(4, activation="relux"))
    assert not remembered(sweep_of(4), sample(8))  # remembered per sweep


def test_a_sample_the_launch_check_refuses_is_refused_in_the_sweep_and_never_built_in_this_process(settings):
    """A sample was built uncapped in the work horse: one the launch check refuses ran and reached 6.4 GB."""
    settings.GYMNOS_CHECK_MEMORY_MB = 256
    sweep = launch_sweep(
        {"base": tiny(), "parameters": {"model.network[0].units": {"choice": [8, HUGE]}}, "method": "grid"}
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    advance.advance(sweep.pk)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    rows = {trial.params["model.network[0].units"]: trial for trial in Trial.objects.filter(sweep=sweep)}
    assert rows[HUGE].execution is None
    assert rows[HUGE].error == f"model.network: {TOO_BIG}"
    assert rows[HUGE].outcome == "failed"
    assert rows[8].execution is not None
    assert rows[8].execution.status == "queued"
    assert grown_mb < 100


def test_the_study_commits_to_sqlite_as_djangos_own_connections_do():
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL: the setting is SQLite's")
    sweep_of(1)
    with study.storage().engine.connect() as opened:
        # 1 is NORMAL (Django's init_command), where SQLite's default, FULL (2), syncs the disk on every commit.
        assert opened.execute(sqlalchemy.text("PRAGMA synchronous")).scalar() == 1
        assert opened.execute(sqlalchemy.text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_study_read_through_this_process_cache_sees_what_other_workers_told_and_asked():
    sweep = sweep_of(3)
    opened = study.open_study(sweep)
    number, _ = study.ask(sweep, 0, opened)  # this process has seen it running
    # Another worker: its own cache over the same database.
    elsewhere = optuna.Study(sweep.study_name, study.storage())
    elsewhere.tell(number, 4.0)
    asked = elsewhere.ask(study.distributions(study.document_of(sweep)))  # one this process never saw
    elsewhere.tell(asked, 2.5)
    again = study.open_study(sweep)
    assert [(t.number, t.state, t.value) for t in again.get_trials(deepcopy=False)] == [
        (number, TrialState.COMPLETE, 4.0),
        (asked.number, TrialState.COMPLETE, 2.5),
    ]
    assert again.best_value == 2.5
    assert again._storage is opened._storage  # one cache for the process, read again only where it changed


def test_telling_a_grids_last_combination_stores_it_without_a_warning(caplog):
    sweep = launch_sweep(
        {"base": tiny(), "parameters": {"model.network[0].units": {"choice": [4, 8]}}, "method": "grid", "seed": 2}
    )
    opened = study.open_study(sweep)
    numbers = [study.ask(sweep, index, opened)[0] for index in range(2)]
    with caplog.at_level("WARNING", logger="sweeps.study"):
        for number, value in zip(numbers, (3.0, 1.0), strict=True):
            study.tell(sweep, number, "succeeded", value, opened)
    assert caplog.records == []
    assert [(t.state, t.value) for t in study.open_study(sweep).get_trials()] == [
        (TrialState.COMPLETE, 3.0),
        (TrialState.COMPLETE, 1.0),
    ]
