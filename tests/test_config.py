"""The config schema: the seed's example validates, and every kind of mistake is named precisely."""

import json
import subprocess
import sys

import pytest

from experiments.pipeline import ConfigError, check_build, load_config
from experiments.pipeline import trackers as trackers_module
from tests.helpers import ROOT, seed_config, tiny


def problems(config):
    """Both steps, as a launch or ``train`` runs them: the schema, then (if it passed) the build check."""
    with pytest.raises(ConfigError) as caught:
        check_build(load_config(config))
    return [str(problem) for problem in caught.value.problems]


def structural_problems(config):
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    return [str(problem) for problem in caught.value.problems]


def test_the_seed_example_validates_unchanged():
    config = load_config(seed_config())
    assert config.experiment.name == "Boston Housing"
    assert config.training.samples.fit == 0.6
    assert [spec.type for spec in config.training.callbacks] == ["early_stopping", "model_checkpoint"]
    assert config.source == seed_config()


def test_defaults_are_the_original_gymnos_ones():
    config = seed_config()
    del config["training"]
    training = load_config(config).training
    assert (training.batch_size, training.epochs, training.shuffle, training.seed) == (32, 10, True, 0)
    assert (training.samples.fit, training.samples.val, training.samples.test) == (1.0, 0.0, 0.0)


def test_fit_defaults_to_what_val_and_test_leave():
    config = tiny()
    config["training"]["samples"] = {"val": 0.25, "test": 0.25}
    assert load_config(config).training.samples.fit == 0.5


def test_it_names_a_negative_layer_argument_at_its_path():
    config = seed_config()
    config["model"]["network"][1]["units"] = -5
    assert problems(config) == ["model.network[1].units: must be a positive integer, got -5"]


def test_unknown_keys_get_a_did_you_mean():
    config = seed_config()
    config["training"]["epoch"] = 3
    [problem] = problems(config)
    assert problem.startswith("training.epoch: unknown key; did you mean 'epochs'?")


def test_it_reports_every_problem_at_once():
    config = seed_config()
    config["model"]["network"][0]["units"] = 0
    config["training"]["batch_size"] = "32"
    config["dataset"]["name"] = "boston_housng"
    config["tracking"]["trackers"][0]["type"] = "tensorbord"
    found = problems(config)
    assert len(found) == 4
    assert 'training.batch_size: must be an integer, got "32"' in found
    assert any(
        p.startswith("dataset.name: unknown dataset 'boston_housng'; did you mean 'boston_housing'?") for p in found
    )
    assert any(
        p.startswith("tracking.trackers[0].type: unknown tracker type 'tensorbord'; did you mean 'tensorboard'?")
        for p in found
    )


@pytest.mark.parametrize(
    "samples, total",
    [({"fit": 0.6, "val": 0.3, "test": 0.2}, "1.1"), ({"fit": 1.0, "val": 0.5}, "1.5")],
)
def test_fractions_that_sum_past_one_are_rejected(samples, total):
    config = tiny()
    config["training"]["samples"] = samples
    [problem] = problems(config)
    assert problem.startswith(f"training.samples: fractions add up to {total}")


def test_a_fraction_outside_zero_and_one_is_rejected():
    config = tiny()
    config["training"]["samples"] = {"fit": 0.5, "val": -0.1}
    assert problems(config) == ["training.samples.val: must be at least 0, got -0.1"]


def test_missing_sections_are_reported_as_required():
    assert sorted(problems({"experiment": {"name": "x"}})) == ["dataset: is required", "model: is required"]


def test_invalid_json_text_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config('{"experiment": ')


@pytest.mark.parametrize("spelling", ["conv_2d", "conv2d", "Conv2D"])
def test_layer_types_are_keras_layers_by_snake_case_name(spelling):
    config = tiny()
    config["model"]["input_shape"] = [8, 8, 1]
    config["model"]["network"] = [
        {"type": spelling, "filters": 2, "kernel_size": 3},
        {"type": "max_pooling_2d", "pool_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 1},
    ]
    load_config(config)


def test_a_misspelt_layer_type_gets_a_did_you_mean():
    config = tiny()
    config["model"]["network"][0]["type"] = "dnse"
    [problem] = problems(config)
    assert problem.startswith("model.network[0].type: unknown layer type 'dnse'; did you mean 'dense'?")


def test_a_misspelt_layer_argument_gets_a_did_you_mean():
    config = tiny()
    config["model"]["network"][0]["activaton"] = "relu"
    [problem] = problems(config)
    assert problem.startswith("model.network[0].activaton: unknown argument for dense; did you mean 'activation'?")


def test_a_bad_layer_argument_value_points_at_that_layer():
    config = tiny()
    config["model"]["network"][0]["activation"] = "relux"
    [problem] = problems(config)
    assert problem.startswith("model.network[0]")
    assert "relux" in problem


def test_a_layer_that_cannot_take_its_input_shape_is_named():
    config = tiny()
    config["model"]["network"].insert(1, {"type": "conv_2d", "filters": 2, "kernel_size": 3})
    [problem] = problems(config)
    assert problem.startswith("model.network[1]: cannot take its input of shape (None, 8)")


def test_optimizer_as_name_or_object():
    config = tiny()
    config["model"]["compilation"]["optimizer"] = {"type": "sgd", "learning_rate": 0.01, "momentum": 0.9}
    load_config(config)
    config["model"]["compilation"]["optimizer"] = {"type": "adam", "learning_rat": 0.1}
    [problem] = problems(config)
    assert problem.startswith(
        "model.compilation.optimizer.learning_rat: unknown argument for adam; did you mean 'learning_rate'?"
    )


def test_unknown_loss_and_metric_are_named():
    config = tiny()
    config["model"]["compilation"]["loss"] = "msee"
    config["model"]["compilation"]["metrics"] = ["mae", "accuracyy"]
    found = problems(config)
    assert any(p.startswith("model.compilation.loss: unknown loss 'msee'") for p in found)


def test_dataset_needs_exactly_one_of_name_or_path():
    config = tiny()
    config["dataset"]["path"] = "data.csv"
    [problem] = problems(config)
    assert problem.startswith("dataset: give exactly one of name")


def test_a_csv_without_the_target_column_is_named(tmp_path):
    data = tmp_path / "houses.csv"
    data.write_text("rooms,area,price\n1,2,3\n")
    config = tiny()
    config["dataset"] = {"path": str(data), "target": "value"}
    [problem] = problems(config)
    assert problem == "dataset.target: column 'value' is not in houses.csv; its columns are: rooms, area, price"


def test_a_missing_data_file_is_named(tmp_path):
    config = tiny()
    config["dataset"] = {"path": str(tmp_path / "nope.npz")}
    [problem] = problems(config)
    assert problem.startswith("dataset.path: no such file")


def test_unknown_preprocessor_and_transformer_arguments_are_named():
    config = tiny()
    config["dataset"]["preprocessors"] = [{"type": "divide", "factr": 2}]
    config["dataset"]["transformers"] = [{"type": "pca", "n_component": 2}, {"type": "standard_scalar"}]
    found = problems(config)
    assert (
        "dataset.preprocessors[0].factr: unknown argument for divide; did you mean 'factor'? (it accepts: factor)"
        in found
    )
    assert any(
        p.startswith("dataset.transformers[0].n_component: unknown argument for pca; did you mean 'n_components'?")
        for p in found
    )
    assert any(
        p.startswith(
            "dataset.transformers[1].type: unknown transformer type 'standard_scalar'; did you mean 'standard_scaler'?"
        )
        for p in found
    )


def test_transformer_argument_values_are_checked_before_training():
    config = tiny()
    config["dataset"]["transformers"] = [{"type": "pca", "n_components": "lots"}]
    [problem] = problems(config)
    assert problem.startswith("dataset.transformers[0].n_components:")


def test_an_unknown_callback_type_is_an_error_not_ignored():
    config = tiny(callbacks=[{"type": "early_stoping"}])
    [problem] = problems(config)
    assert problem.startswith(
        "training.callbacks[0].type: unknown callback type 'early_stoping'; did you mean 'early_stopping'?"
    )


def test_a_callback_watching_val_loss_without_a_val_split_is_rejected():
    config = tiny(callbacks=[{"type": "early_stopping", "monitor": "val_loss"}])
    config["training"]["samples"] = {"fit": 0.8, "test": 0.2}
    [problem] = problems(config)
    assert problem.startswith(
        "training.callbacks[0].monitor: refers to 'val_loss', which this run will not log (the val fraction is 0"
    )


@pytest.mark.parametrize("filepath", ["/tmp/weights.h5", "../weights.h5", "sub/../../weights.h5"])
def test_checkpoint_paths_must_stay_in_the_execution_folder(filepath):
    config = tiny(callbacks=[{"type": "model_checkpoint", "filepath": filepath}])
    [problem] = problems(config)
    assert problem.startswith("training.callbacks[0].filepath: must")


def test_checkpoint_template_names_must_be_logged_metrics():
    config = tiny(callbacks=[{"type": "model_checkpoint", "filepath": "w.{epoch:02d}-{val_los:.2f}.h5"}])
    [problem] = problems(config)
    assert problem.startswith("training.callbacks[0].filepath: refers to 'val_los', which this run will not log")


def test_checkpoint_period_must_be_a_positive_integer():
    config = tiny(callbacks=[{"type": "model_checkpoint", "period": 0}])
    [problem] = problems(config)
    assert problem == "training.callbacks[0].period: must be a positive integer (save every N epochs), got 0"


def test_the_mlflow_tracker_without_mlflow_installed_says_how_to_install_it(monkeypatch):
    real_find_spec = trackers_module.importlib.util.find_spec
    monkeypatch.setattr(
        trackers_module.importlib.util, "find_spec", lambda name: None if name == "mlflow" else real_find_spec(name)
    )
    [problem] = problems(tiny(trackers=[{"type": "mlflow"}]))
    assert problem.startswith("tracking.trackers[0].type: the mlflow tracker needs MLflow")
    assert "pip install" in problem


def test_problems_serialise_for_the_api():
    config = seed_config()
    config["training"]["epochs"] = -1
    with pytest.raises(ConfigError) as caught:
        load_config(json.dumps(config))
    assert [p.as_dict() for p in caught.value.problems] == [
        {"path": "training.epochs", "message": "must be a positive integer, got -1"}
    ]


def test_the_schema_alone_imports_no_keras_and_builds_nothing():
    code = (
        "import sys, json; from experiments.pipeline import load_config; from tests.helpers import seed_config; "
        "load_config(seed_config()); "
        "print(json.dumps(sorted(m for m in ('keras', 'tensorflow', 'sklearn') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []


def test_the_schema_names_structural_mistakes_and_the_build_check_what_only_keras_knows():
    config = tiny()
    config["model"]["network"][0]["units"] = 0
    config["model"]["network"][1]["activaton"] = "relu"
    config["training"]["epochs"] = "3"
    assert structural_problems(config) == [
        "model.network[0].units: must be a positive integer, got 0",
        'training.epochs: must be an integer, got "3"',
    ]
    # Only Keras knows what a dense layer accepts, and that a convolution cannot follow a dense layer.
    config = tiny()
    config["model"]["network"][0]["activaton"] = "relu"
    config["model"]["compilation"]["optimizer"] = {"type": "adm"}
    load_config(config)
    found = problems(config)
    assert any(p.startswith("model.network[0].activaton: unknown argument for dense") for p in found)
    assert any(
        p.startswith("model.compilation.optimizer.type: unknown optimizer type 'adm'; did you mean 'adam'?")
        for p in found
    )
    shape_error = tiny()
    shape_error["model"]["network"].insert(1, {"type": "conv_2d", "filters": 2, "kernel_size": 3})
    load_config(shape_error)
    assert problems(shape_error)[0].startswith("model.network[1]: cannot take its input of shape")
