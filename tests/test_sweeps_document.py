"""The sweep document is validated like a config: every problem at once, each with its path."""

from typing import Any

import pytest

from experiments.models import Execution, Experiment
from experiments.pipeline import ConfigError
from sweeps import paths
from sweeps.document import load_sweep
from sweeps.launching import plan
from tests.helpers import seed_config, tiny


def no_runs(run_id):
    raise LookupError(f"there is no run {run_id}")


def problems(data, resolve=no_runs):
    with pytest.raises(ConfigError) as caught:
        load_sweep(data, resolve)
    return {problem.path: problem.message for problem in caught.value.problems}


def sweep(parameters, **options):
    return {"base": tiny(), "parameters": parameters, **options}


def test_the_issues_example_is_valid_and_its_defaults_follow_from_it():
    plan = load_sweep(
        {
            "name": "boston lr and width",
            "base": seed_config(),
            "parameters": {
                "model.compilation.optimizer.learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 0.1},
                "model.network[0].units": {"choice": [16, 32, 64, 128]},
                "training.batch_size": {"distribution": "int_uniform", "low": 16, "high": 128, "step": 16},
            },
            "method": "tpe",
            "trials": 30,
            "parallel": 4,
            "objective": {"metric": "val_loss", "direction": "minimize", "which": "best"},
            "pruner": {"type": "median", "warmup_epochs": 5},
        },
        no_runs,
    )
    assert (plan.name, plan.trials, plan.parallel, plan.direction) == ("boston lr and width", 30, 4, "minimize")
    assert plan.document.pruner.type == "median"
    assert plan.document.pruner.startup_trials == 5


def test_a_grid_runs_every_combination_unless_told_fewer_and_parallel_never_exceeds_the_trials():
    plan = load_sweep(
        sweep({"model.network[0].units": {"choice": [4, 8, 16]}, "training.shuffle": {"choice": [True, False]}},
              method="grid", parallel=10),
        no_runs,
    )  # fmt: skip
    assert plan.trials == 6
    assert plan.parallel == 6
    assert load_sweep(sweep({"training.epochs": {"choice": [1, 2]}}, method="grid", trials=1), no_runs).trials == 1


def test_the_direction_follows_the_metric_unless_given():
    config = tiny()
    config["model"]["compilation"]["metrics"] = ["accuracy"]
    plan = load_sweep(
        {"base": config, "parameters": {"training.epochs": {"choice": [1, 2]}}, "method": "grid",
         "objective": {"metric": "val_accuracy"}},
        no_runs,
    )  # fmt: skip
    assert plan.direction == "maximize"


def test_every_problem_of_the_document_is_reported_at_once_with_its_path():
    found = problems(
        {
            "base": tiny(),
            "parameters": {
                "training.seed": {"distribution": "uniformm", "low": 1},
                "training.shuffle": {"choice": [True, True]},
                "model.compilation.optimizer.learning_rate": {"distribution": "log_uniform", "low": 0, "high": 1},
                "training.batch_size": {"distribution": "int_uniform", "low": 64, "high": 16},
                "training.epochs": {"low": 1, "high": 3},
            },
            "method": "annealing",
            "parallel": 0,
            "pruner": {"type": "medain"},
            "objective": {"which": "median"},
            "trails": 3,
        }
    )
    assert found == {
        'parameters["training.seed"].distribution': "unknown distribution 'uniformm'; did you mean 'uniform'?",
        'parameters["training.shuffle"].choice[1]': "repeats choice[0] (true); list each value once",
        'parameters["model.compilation.optimizer.learning_rate"].low': "must be a number above 0, got 0",
        'parameters["training.batch_size"].high': "must be above low (64), got 16",
        'parameters["training.epochs"].distribution': (
            "is required: name a distribution, one of uniform, log_uniform, int_uniform, choice"
        ),
        "method": "must be 'grid', 'random' or 'tpe', got \"annealing\"",
        "parallel": "must be a positive integer, got 0",
        "pruner.type": "unknown type 'medain'; did you mean 'median'?",
        "objective.which": "must be 'best' or 'last', got \"median\"",
        "trails": found["trails"],
    }
    assert found["trails"].startswith("unknown key; did you mean 'trials'?")


def test_a_bad_base_config_is_reported_under_base():
    config = tiny()
    config["training"]["epoch"] = 3
    config["model"]["network"][0]["units"] = -5
    found = problems(sweep({"training.epochs": {"choice": [1]}}, method="grid") | {"base": config})
    assert set(found) == {"base.training.epoch", "base.model.network[0].units"}
    assert found["base.model.network[0].units"] == "must be a positive integer, got -5"


def test_base_may_be_a_runs_id_and_an_unknown_run_is_an_error_at_base():
    config = tiny()
    chosen = load_sweep(
        {"base": 7, "parameters": {"training.epochs": {"choice": [1, 2]}}, "method": "grid"},
        lambda run: config if run == 7 else no_runs(run),
    )
    assert chosen.base == config
    assert chosen.base_run == 7
    assert problems({"base": 8, "parameters": {"training.epochs": {"choice": [1]}}, "method": "grid"}) == {
        "base": "there is no run 8"
    }
    assert problems({"base": "run 7", "parameters": {"training.epochs": {"choice": [1]}}}) == {
        "base": 'must be a training config (an object) or the id of a run to start from, got "run 7"'
    }


def test_each_path_must_be_in_the_base_config_or_a_key_its_section_accepts():
    found = problems(
        sweep(
            {
                "training.epoch": {"choice": [3]},
                "model.network[5].units": {"choice": [4]},
                "model.network[0].units.size": {"choice": [4]},
                "training..epochs": {"choice": [4]},
                "training.samples.val": {"distribution": "uniform", "low": 0.1, "high": 0.2},
                "model.compilation.optimizer.learning_rate": {"choice": [0.1]},
            },
            method="random",
            trials=2,
        )
    )
    assert found == {
        'parameters["training.epoch"]': found['parameters["training.epoch"]'],
        'parameters["model.network[5].units"]': (
            "cannot be written into the base config: model.network has 2 items, so [5] is past its end"
        ),
        'parameters["model.network[0].units.size"]': (
            "cannot be written into the base config: model.network[0].units is a number (8), not an object, "
            "so it has no key 'size'"
        ),
        'parameters["training..epochs"]': found['parameters["training..epochs"]'],
    }
    assert found['parameters["training.epoch"]'].startswith("unknown key; did you mean 'epochs'?")
    assert found['parameters["training..epochs"]'].startswith("the key is not a config path")


def test_each_end_of_a_range_and_each_choice_must_make_a_valid_config():
    found = problems(
        sweep(
            {
                "training.batch_size": {"distribution": "int_uniform", "low": 0, "high": 64},
                "dataset.name": {"choice": ["boston_housing", "irs"]},
            },
            method="random",
            trials=3,
        )
    )
    assert found['parameters["training.batch_size"].low'] == (
        "0 makes the config invalid: training.batch_size: must be a positive integer, got 0"
    )
    assert found['parameters["dataset.name"].choice[1]'].startswith(
        "\"irs\" makes the config invalid: dataset.name: unknown dataset 'irs'; did you mean 'iris'?"
    )


def test_how_the_search_is_asked_for_is_checked_against_the_method_and_the_base():
    config = tiny()
    config["training"]["samples"] = {"fit": 0.8, "test": 0.2}
    found = problems(
        {
            "base": config,
            "parameters": {"training.batch_size": {"distribution": "int_uniform", "low": 8, "high": 64}},
            "method": "grid",
            "objective": {"metric": "val_loss"},
        }
    )
    assert found == {
        'parameters["training.batch_size"]': (
            "method 'grid' tries every combination of choices; give this parameter as {\"choice\": [...]}, "
            "or use method random or tpe"
        ),
        "objective.metric": "'val_loss' is not logged: the base config has no validation split "
        "(training.samples.val is 0)",
    }
    assert problems(sweep({"training.epochs": {"choice": [1, 2]}}, method="grid", trials=3)) == {
        "trials": "the grid has 2 combinations; ask for at most 2, or leave trials out"
    }
    assert set(problems(sweep({"training.epochs": {"choice": [1, 2]}}, objective={"metric": "test_loss"}))) == {
        "trials",
        "objective.metric",
    }


def test_the_document_and_the_base_are_bounded():
    deep: dict[str, Any] = {"a": None}
    for _ in range(80):
        deep = {"a": deep}
    assert problems({"base": tiny(), "parameters": {"tracking.params.x": {"choice": [1]}}, "deep": deep}) == {
        "": "the document is nested more than 64 deep; at most 64 levels are accepted"
    }
    many = {f"training.callbacks[{i}].x": {"choice": [1]} for i in range(33)}
    assert problems(sweep(many, method="grid"))["parameters"] == "must have at most 32 item(s), got 33"
    assert problems(sweep({"training.epochs": {"choice": list(range(1, 102))}}, method="grid")) == {
        'parameters["training.epochs"].choice': "must have at most 100 item(s), got 101"
    }


def test_a_float_step_too_fine_for_its_range_is_a_problem_not_a_crash():
    """A step of 5e-324 over a range of 1.8e308 made ``(high - low) / step`` infinite: a 500 (found by the fuzzer)."""
    wide = {"distribution": "uniform", "low": 0.4, "high": 1.7976931348623157e308, "step": 5e-324}
    assert problems(sweep({"training.samples.val": wide})) == {
        'parameters["training.samples.val"].step': "must divide the range into at most 1e+15 steps, got 4.94066e-324"
    }


@pytest.mark.django_db
def test_a_web_launch_reads_dataset_paths_only_inside_the_data_roots(tmp_path, settings):
    settings.GYMNOS_DATA_ROOTS = [tmp_path / "data"]
    config = tiny()
    config["dataset"] = {"path": "/etc/passwd"}
    with pytest.raises(ConfigError) as caught:
        plan(sweep({"training.epochs": {"choice": [1]}}, method="grid") | {"base": config})
    [problem] = caught.value.problems
    assert problem.path == "base.dataset.path"
    assert "GYMNOS_DATA_ROOTS" in problem.message


@pytest.mark.django_db
def test_a_deleted_a_missing_and_an_unknown_run_are_each_refused_as_a_base_saying_why():
    experiment = Experiment.objects.create(name="boston_housing")
    kept = Execution.objects.create(experiment=experiment, status="succeeded", config=tiny())
    deleted = Execution.objects.create(experiment=experiment, status="succeeded", config=tiny())
    Execution.objects.delete_run(deleted.pk, by=None)
    missing = Execution.objects.create(experiment=experiment, status="missing", config=tiny())
    unread = Execution.objects.create(experiment=experiment, status="failed", config={})

    def refusal(run):
        with pytest.raises(ConfigError) as caught:
            plan(sweep({"training.epochs": {"choice": [1]}}, method="grid") | {"base": run})
        [problem] = caught.value.problems
        assert problem.path == "base"
        return problem.message

    assert plan(sweep({"training.epochs": {"choice": [1]}}, method="grid") | {"base": kept.pk}).base == tiny()
    assert refusal(deleted.pk).startswith(f"run {deleted.pk} is deleted (in the trash since ")
    assert refusal(deleted.pk).endswith("restore it from the Trash page first, or give its config as the base")
    assert refusal(missing.pk) == (
        f"run {missing.pk} is missing (its folder was not found at the last sync); sync again once the folder "
        "is back, or give its config as the base"
    )
    assert refusal(unread.pk).startswith(f"run {unread.pk} has no readable config")
    assert refusal(unread.pk + 100) == f"there is no run {unread.pk + 100}"


def test_paths_are_parsed_and_written_as_the_params_columns_name_them():
    assert paths.parse("model.network[0].units") == ["model", "network", 0, "units"]
    assert paths.render(["model", "network", 0, "units"]) == "model.network[0].units"
    config = {"model": {"compilation": {"optimizer": "adam"}}, "training": {}}
    written = paths.write(config, "model.compilation.optimizer.learning_rate", 0.01)
    assert written["model"]["compilation"]["optimizer"] == {"type": "adam", "learning_rate": 0.01}
    assert config["model"]["compilation"]["optimizer"] == "adam"  # a copy: the base is untouched
    assert paths.write(config, "training.samples.val", 0.2)["training"] == {"samples": {"val": 0.2}}
    for bad in ("", "[0].x", "a..b", "a.b[x]", "a b", "x" * 201):
        with pytest.raises(paths.PathError):
            paths.parse(bad)
