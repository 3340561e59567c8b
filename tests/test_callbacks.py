"""Every callback the seed lists, configured by name, checked before training (their effects in training:
``test_callbacks_training``)."""

import json
import sys

import pytest

from experiments.pipeline import ConfigError, check_build, load_config
from experiments.pipeline.callbacks import CALLBACK_TYPES
from experiments.pipeline.schedules import CosineDecay, ExponentialDecay, StepDecay
from tests.helpers import ROOT, tiny

ALL_CALLBACKS_EXAMPLE = ROOT / "examples" / "all_callbacks.json"
SEED_CALLBACKS = {
    "base_logger",
    "terminate_on_nan",
    "progbar_logger",
    "history",
    "model_checkpoint",
    "early_stopping",
    "remote_monitor",
    "learning_rate_scheduler",
    "tensorboard",
    "reduce_lr_on_plateau",
    "csv_logger",
    "lambda_callback",
}


def problems(config):
    with pytest.raises(ConfigError) as caught:
        check_build(load_config(config))
    return [str(problem) for problem in caught.value.problems]


def only_problem(callback, **tiny_kwargs):
    """The one problem a tiny config with ``callback`` at ``training.callbacks[0]`` has."""
    found = problems(tiny(callbacks=[callback], **tiny_kwargs))
    assert len(found) == 1, found
    return found[0]


# --- Checked before training --------------------------------------------------------------


def test_every_callback_the_seed_lists_is_configurable_by_name():
    assert set(CALLBACK_TYPES) == SEED_CALLBACKS


def test_the_all_callbacks_example_uses_every_callback_and_both_trackers():
    example = json.loads(ALL_CALLBACKS_EXAMPLE.read_text())
    assert {spec["type"] for spec in example["training"]["callbacks"]} == SEED_CALLBACKS
    assert {spec["type"] for spec in example["tracking"]["trackers"]} == {"tensorboard", "mlflow"}


def test_the_all_callbacks_example_validates_with_the_default_allowlists(monkeypatch):
    monkeypatch.delenv("GYMNOS_CALLBACK_MODULES", raising=False)
    monkeypatch.delenv("GYMNOS_REMOTE_MONITOR_HOSTS", raising=False)
    config = load_config(ALL_CALLBACKS_EXAMPLE.read_text())
    assert len(config.training.callbacks) == len(SEED_CALLBACKS)


def test_a_misspelt_callback_type_gets_a_did_you_mean():
    assert (
        only_problem({"type": "csv_loger"})
        == "training.callbacks[0].type: unknown callback type 'csv_loger'; did you mean 'csv_logger'?"
    )


@pytest.mark.parametrize(
    "callback, path, suggestion",
    [
        ({"type": "early_stopping", "patiance": 3}, "patiance", "patience"),
        ({"type": "reduce_lr_on_plateau", "monitor": "loss", "factr": 0.5}, "factr", "factor"),
        ({"type": "csv_logger", "separater": ";"}, "separater", "separator"),
        ({"type": "tensorboard", "write_grap": False}, "write_grap", "write_graph"),
        ({"type": "remote_monitor", "rot": "http://localhost:8000"}, "rot", "root"),
        ({"type": "terminate_on_nan", "raise_eror": True}, "raise_eror", "raise_error"),
        ({"type": "progbar_logger", "verbos": 2}, "verbos", "verbose"),
        (
            {"type": "learning_rate_scheduler", "schedule": "exponential_decay", "decay_rate": 0.9, "decay_epoch": 2},
            "decay_epoch",
            "decay_epochs",
        ),
        ({"type": "lambda_callback", "on_epoch_ends": "team_hooks.notify"}, "on_epoch_ends", "on_epoch_end"),
        ({"type": "model_checkpoint", "periode": 2}, "periode", "period"),
    ],
)
def test_a_misspelt_argument_is_named_at_its_path_with_a_did_you_mean(callback, path, suggestion):
    problem = only_problem(callback)
    assert problem.startswith(f"training.callbacks[0].{path}: unknown ")
    assert f"did you mean '{suggestion}'?" in problem


@pytest.mark.parametrize(
    "callback, path, expected",
    [
        (
            {"type": "early_stopping", "monitor": "loss", "patience": "ten"},
            "patience",
            'must be an integer, got "ten"',
        ),
        (
            {"type": "early_stopping", "monitor": "loss", "mode": "minimum"},
            "mode",
            "must be 'auto', 'min' or 'max', got \"minimum\"",
        ),
        (
            {"type": "reduce_lr_on_plateau", "monitor": "loss", "factor": 2},
            "factor",
            "must be a number between 0 and 1 (exclusive), got 2",
        ),
        (
            {"type": "reduce_lr_on_plateau", "monitor": "loss", "min_lr": -1},
            "min_lr",
            "must be at least 0, got -1",
        ),
        ({"type": "terminate_on_nan", "raise_error": "yes"}, "raise_error", 'must be true or false, got "yes"'),
        ({"type": "progbar_logger", "verbose": 0}, "verbose", "must be 1 or 2, got 0"),
        ({"type": "csv_logger", "separator": ";;"}, "separator", "must be a single character"),
        (
            {"type": "tensorboard", "histogram_freq": -1},
            "histogram_freq",
            "must be at least 0, got -1",
        ),
        (
            {"type": "tensorboard", "update_freq": "sometimes"},
            "update_freq",
            'must be "epoch", "batch" or a positive whole number',
        ),
        (
            {"type": "remote_monitor", "root": "localhost:8000"},
            "root",
            "must be an http:// or https:// URL with a host",
        ),
        ({"type": "remote_monitor", "path": "publish/epoch/end/"}, "path", 'must be a path starting with "/"'),
        (
            {"type": "remote_monitor", "headers": {"X-Token": 5}},
            "headers.X-Token",
            "must be a string, got 5",
        ),
        ({"type": "remote_monitor", "timeout": 0}, "timeout", "must be a number above 0, got 0"),
        ({"type": "base_logger", "verbose": 1}, "verbose", "unknown argument for base_logger (it takes no arguments)"),
        ({"type": "history", "verbose": 1}, "verbose", "unknown argument for history (it takes no arguments)"),
    ],
)
def test_a_wrong_value_is_named_at_its_path_before_training(callback, path, expected):
    assert only_problem(callback).startswith(f"training.callbacks[0].{path}: {expected}")


def test_a_callback_watching_val_loss_in_a_run_without_validation_is_rejected():
    config = tiny(callbacks=[{"type": "reduce_lr_on_plateau"}])
    config["training"]["samples"] = {"fit": 0.8, "test": 0.2}
    (problem,) = problems(config)
    assert problem.startswith(
        "training.callbacks[0].monitor: refers to 'val_loss', which this run will not log (the val fraction is 0"
    )


@pytest.mark.parametrize(
    "callback, key",
    [
        ({"type": "csv_logger", "filename": "../../escape.log"}, "filename"),
        ({"type": "csv_logger", "filename": "/etc/gymnos.log"}, "filename"),
        ({"type": "csv_logger", "filename": "C:\\logs\\training.log"}, "filename"),
        ({"type": "tensorboard", "log_dir": "../elsewhere"}, "log_dir"),
        ({"type": "tensorboard", "log_dir": "/tmp/tensorboard"}, "log_dir"),
        ({"type": "model_checkpoint", "filepath": "../weights.{epoch:02d}.h5"}, "filepath"),
    ],
)
def test_a_file_path_that_leaves_the_execution_folder_is_rejected_at_its_config_path(callback, key):
    # Third in the list, so the path in the message is the callback's own.
    config = tiny(callbacks=[{"type": "terminate_on_nan"}, {"type": "history"}, callback])
    (problem,) = problems(config)
    assert problem.startswith(f"training.callbacks[2].{key}: must ")
    assert "execution folder" in problem


@pytest.mark.parametrize(
    "callback, expected",
    [
        (
            {"type": "learning_rate_scheduler"},
            "training.callbacks[0].schedule: is required: name a schedule, one of step_decay, exponential_decay, cosine_decay",  # noqa: E501
        ),
        (
            {"type": "learning_rate_scheduler", "schedule": "cosine"},
            "training.callbacks[0].schedule: unknown schedule 'cosine'; did you mean 'cosine_decay'?",
        ),
        (
            {"type": "learning_rate_scheduler", "schedule": "exponential_decay"},
            "training.callbacks[0].decay_rate: is required",
        ),
        (
            {"type": "learning_rate_scheduler", "schedule": "step_decay", "drop": 2},
            "training.callbacks[0].drop: must be a number above 0 and at most 1",
        ),
        (
            {"type": "learning_rate_scheduler", "schedule": "cosine_decay", "decay_epochs": 1.5},
            "training.callbacks[0].decay_epochs: must be an integer, got 1.5",
        ),
        (
            {"type": "learning_rate_scheduler", "schedule": "step_decay", "verbos": 1},
            "training.callbacks[0].verbos: unknown argument for the step_decay schedule; did you mean 'verbose'?",
        ),
    ],
)
def test_a_schedule_is_named_and_its_parameters_checked(callback, expected):
    assert only_problem(callback).startswith(expected)


def test_the_schedules_follow_their_formulas():
    step = StepDecay(schedule="step_decay", drop=0.5, epochs_drop=2)
    assert [step.rate(epoch, 0.1, None) for epoch in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    exponential = ExponentialDecay(schedule="exponential_decay", decay_rate=0.9)
    assert [exponential.rate(epoch, 1.0, None) for epoch in range(3)] == pytest.approx([1.0, 0.9, 0.81])
    staircase = ExponentialDecay(schedule="exponential_decay", decay_rate=0.5, decay_epochs=2, staircase=True)
    assert [staircase.rate(epoch, 1.0, None) for epoch in range(4)] == pytest.approx([1.0, 1.0, 0.5, 0.5])
    cosine = CosineDecay(schedule="cosine_decay", decay_epochs=4, alpha=0.1)
    assert [cosine.rate(epoch, 1.0, None) for epoch in (0, 2, 4, 9)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    assert CosineDecay(schedule="cosine_decay").rate(5, 1.0, 10) == pytest.approx(0.5)


def test_a_hook_outside_the_allowed_modules_is_rejected_and_never_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "gymnos_untrusted.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef run(epoch, logs): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("GYMNOS_CALLBACK_MODULES", raising=False)
    problem = only_problem({"type": "lambda_callback", "on_epoch_end": "gymnos_untrusted.run"})
    assert problem.startswith("training.callbacks[0].on_epoch_end: cannot use 'gymnos_untrusted.run'")
    assert "GYMNOS_CALLBACK_MODULES environment variable (it lists: experiments.pipeline.hooks)" in problem
    assert not marker.exists()
    assert "gymnos_untrusted" not in sys.modules


def test_a_hook_from_a_module_beside_an_allowed_one_is_still_rejected(hooks_module):
    problem = only_problem({"type": "lambda_callback", "on_epoch_end": "os.system"})
    assert "it lists: gymnos_test_hooks" in problem


def test_a_hook_naming_a_missing_function_of_an_allowed_module_gets_a_did_you_mean(hooks_module):
    problem = only_problem({"type": "lambda_callback", "on_epoch_end": "gymnos_test_hooks.epoch_ends"})
    assert (
        problem
        == "training.callbacks[0].on_epoch_end: module 'gymnos_test_hooks' has no function 'epoch_ends'; did you mean 'epoch_end'?"  # noqa: E501
    )


def test_a_hook_that_cannot_take_the_hooks_arguments_is_rejected(hooks_module):
    problem = only_problem({"type": "lambda_callback", "on_epoch_end": "gymnos_test_hooks.needs_three"})
    assert (
        problem
        == "training.callbacks[0].on_epoch_end: 'gymnos_test_hooks.needs_three' must take (epoch, logs) to be used as on_epoch_end"  # noqa: E501
    )


def test_a_hook_that_is_not_a_dotted_path_is_rejected(hooks_module):
    problem = only_problem({"type": "lambda_callback", "on_epoch_end": "print('hi')"})
    assert problem.startswith("training.callbacks[0].on_epoch_end: must be a dotted path to a function")
