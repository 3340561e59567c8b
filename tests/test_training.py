"""End to end: a config trains and leaves exactly the seed's execution folder."""

import datetime as dt
import json
import re

import keras
import numpy as np
import pytest

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.execution import create_execution_dir
from experiments.pipeline.processing import split_indices
from experiments.pipeline.trainer import STAGES, Trainer
from tests.helpers import seed_config, tiny

pytestmark = pytest.mark.training

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - gymnosd - (DEBUG|INFO|WARNING|ERROR) - (\w+) - (.*)$")
SEED_STEPS = [
    ("Main", "Starting gymnos environment ..."),
    ("Model", "Building Keras model from network specification"),
    ("Model", "Compiling Keras model"),
    ("Trainer", "Running experiment: "),
    ("Trainer", "Creating directory to save training results ("),
    ("Trainer", "Loading dataset: boston_housing ..."),
    ("BostonHousing", "Downloading dataset ..."),
    ("BostonHousing", "Retrieving dataset from library ..."),
    ("BostonHousing", "Reading dataset ..."),
    ("BostonHousing", "Saving dataset to cache ..."),
    ("HDFManager", "Saving Numpy dataset to HDF5 X key ("),
    ("HDFManager", "Saving Numpy dataset to HDF5 y key ("),
    ("Trainer", "Loading data took "),
    ("Trainer", "Splitting dataset -> Fit: 0.6 | Test: 0.2 | Val: 0.2 ..."),
    ("Trainer", "Applying 0 preprocessors ..."),
    ("Trainer", "Preprocessing took "),
    ("Trainer", "Applying 1 transformers ..."),
    ("Trainer", "Fitting transformers to train dataset took "),
    ("Trainer", "Transforming datasets took "),
    ("Trainer", "Fitting model with 303 samples ..."),
    ("Trainer", "Fitting model took "),
    ("Trainer", "Logging train metrics"),
    ("Trainer", "Evaluating model with 101 samples"),
    ("Trainer", "Evaluating model took "),
    ("Trainer", "Logging test metrics"),
    ("Trainer", "Saving model"),
]


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """The seed's config with its callbacks and both trackers, shortened to 4 epochs (checkpoints every 2)."""
    root = tmp_path_factory.mktemp("seed_run")
    config = seed_config()
    config["training"]["epochs"] = 4
    config["training"]["callbacks"][1]["period"] = 2
    config["tracking"]["trackers"][1]["tracking_uri"] = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GYMNOS_SYSTEM_INTERVAL", "1")  # shorter than the run, so it has system_metrics.jsonl
        result = run_experiment(load_config(config), trainings_root=root / "trainings", cache_dir=root / "cache")
    assert result.succeeded, result.error
    return config, result


def test_the_folder_has_exactly_the_seed_layout(seed_run):
    _, result = seed_run
    path = result.path
    assert path.parent.name == "executions"
    assert path.parent.parent.name == "boston_housing"
    assert dt.datetime.strptime(path.name, "%H-%M-%S__%d-%m-%Y")
    names = sorted(p.name for p in path.iterdir())
    assert names == [
        "callbacks",
        "evaluation.json",  # the evaluation report, beside the seed's files
        "execution.log",
        "metrics.json",
        "model.h5",
        "system_metrics.jsonl",  # what the run cost the machine, beside the seed's files
        "tensorboard",
        "trackers.json",
        "training_config.json",
    ]


def test_the_log_follows_the_seed_format_and_steps(seed_run):
    _, result = seed_run
    lines = (result.path / "execution.log").read_text().splitlines()
    parsed = [LOG_LINE.match(line) for line in lines]
    assert all(parsed), [line for line, match in zip(lines, parsed, strict=False) if not match]
    matches = [m for m in parsed if m is not None]
    steps = [(m.group(2), m.group(3)) for m in matches]
    position = 0
    for component, start in SEED_STEPS:  # the seed's steps, in the seed's order
        while position < len(steps) and not (steps[position][0] == component and steps[position][1].startswith(start)):
            position += 1
        assert position < len(steps), f"missing or out of order: {component} - {start}"
    assert any(m.group(1) == "DEBUG" and m.group(3).startswith("Fitting model took") for m in matches)


def test_metrics_json_has_elapsed_per_epoch_test_and_hardware(seed_run):
    _, result = seed_run
    document = json.loads((result.path / "metrics.json").read_text())
    assert set(document["elapsed"]) == set(STAGES)
    assert all(v >= 0 for v in document["elapsed"].values())
    assert document["elapsed"]["fit_model"] > 0
    metrics = document["metrics"]
    assert set(metrics) == {
        "loss",
        "mean_absolute_error",
        "val_loss",
        "val_mean_absolute_error",
        "test_loss",
        "test_mean_absolute_error",
    }
    assert all(len(metrics[key]) == 4 for key in ("loss", "val_loss", "mean_absolute_error"))
    assert len(metrics["test_loss"]) == 1
    hardware = document["hardware"]
    assert {"platform", "python", "tensorflow", "cpu", "memory_bytes", "gpus"} <= set(hardware)
    assert hardware["cpu"]["logical_cores"] >= 1


def test_training_config_json_is_the_config_as_given(seed_run):
    config, result = seed_run
    assert json.loads((result.path / "training_config.json").read_text()) == config


def test_model_h5_loads_and_reproduces_the_test_loss(seed_run, tmp_path):
    config, result = seed_run
    model = keras.models.load_model(result.path / "model.h5")
    assert model.output_shape == (None, 1)
    # Rebuild the test split the same way (same seed) and check the saved model scores as recorded.
    from experiments.pipeline.datasets import HDFManager

    X, y = HDFManager(result.path.parents[3] / "cache" / "datasets" / "BostonHousing.h5").load()
    split = split_indices(len(X), 0.6, 0.2, 0.2, seed=0)
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X[split.fit])
    predictions = model.predict(scaler.transform(X[split.test]), verbose=0)[:, 0]
    recorded = json.loads((result.path / "metrics.json").read_text())["metrics"]["test_loss"][0]
    assert float(np.mean((predictions - y[split.test]) ** 2)) == pytest.approx(recorded, rel=1e-3)


def test_checkpoints_follow_the_template_every_period_and_load(seed_run):
    _, result = seed_run
    val_loss = json.loads((result.path / "metrics.json").read_text())["metrics"]["val_loss"]
    folder = result.path / "callbacks" / "model_checkpoint"
    expected = sorted(f"weights.{epoch:02d}-{val_loss[epoch - 1]:.2f}.h5" for epoch in (2, 4))
    assert sorted(p.name for p in folder.iterdir()) == expected
    for name in expected:
        assert keras.models.load_model(folder / name).output_shape == (None, 1)


def test_tensorboard_events_hold_the_same_values_as_metrics_json(seed_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, result = seed_run
    metrics = json.loads((result.path / "metrics.json").read_text())["metrics"]

    from tensorboard.util import tensor_util

    def values(part, tag):
        events = EventAccumulator(str(result.path / "tensorboard" / part), size_guidance={"tensors": 0}).Reload()
        return [(event.step, float(tensor_util.make_ndarray(event.tensor_proto))) for event in events.Tensors(tag)]

    assert values("train", "loss") == [(step, pytest.approx(v, rel=1e-6)) for step, v in enumerate(metrics["loss"], 1)]
    assert values("validation", "mean_absolute_error") == [
        (s, pytest.approx(v, rel=1e-6)) for s, v in enumerate(metrics["val_mean_absolute_error"], 1)
    ]
    assert values("test", "loss") == [(4, pytest.approx(metrics["test_loss"][0], rel=1e-6))]


def test_the_mlflow_run_holds_every_metric_history_params_and_artifacts(seed_run):
    from mlflow.tracking import MlflowClient

    config, result = seed_run
    metrics = json.loads((result.path / "metrics.json").read_text())["metrics"]
    location = json.loads((result.path / "trackers.json").read_text())["mlflow"]
    client = MlflowClient(location["tracking_uri"])
    run = client.get_run(location["run_id"])
    assert run.info.run_name == result.path.name
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "Boston Housing"
    for key, values in metrics.items():
        history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        assert [m.value for m in history] == pytest.approx(values, rel=1e-6), key
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3, 4]
    assert run.data.params["training.batch_size"] == "32"
    assert run.data.params["tracking.params.device"] == "cpu"
    assert run.data.params["model.network.0.units"] == "512"
    # The canonical params: "adam" spelt out as its type, the schema's defaults filled in.
    assert run.data.params["model.compilation.optimizer.type"] == "adam"
    assert "model.compilation.optimizer" not in run.data.params
    assert run.data.params["training.shuffle"] == "True"
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"model.h5", "training_config.json"} <= artifacts


def test_a_failing_tracker_is_a_warning_and_the_training_completes(trainings, cache_dir, tmp_path):
    (tmp_path / "a-file").write_text("")  # a store "inside" a plain file can never be opened
    unreachable = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"
    config = tiny(trackers=[{"type": "mlflow", "tracking_uri": unreachable}, {"type": "tensorboard"}])
    result = run_experiment(load_config(config), trainings, cache_dir)
    assert result.succeeded
    assert result.path is not None
    log = (result.path / "execution.log").read_text()
    assert re.search(r" - WARNING - Trackers - Tracker mlflow failed", log)
    summary = json.loads((result.path / "trackers.json").read_text())
    assert "error" in summary["mlflow"]
    assert "error" not in summary["tensorboard"]
    assert (result.path / "model.h5").is_file()


def test_a_failed_run_keeps_its_log_config_and_what_was_measured(trainings, cache_dir):
    config = tiny()
    config["model"]["input_shape"] = [12]  # Boston has 13 features: fails after loading the data
    config["model"]["network"][0]["units"] = 4
    result = run_experiment(load_config(config), trainings, cache_dir)
    assert not result.succeeded
    assert result.error is not None
    assert "model.input_shape is [12], but the samples have shape [13]" in result.error
    assert result.path is not None
    document = json.loads((result.path / "metrics.json").read_text())
    assert document["error"] == result.error
    assert document["elapsed"]["load_data"] > 0
    log = (result.path / "execution.log").read_text()
    assert " - ERROR - Trainer - Execution failed" in log
    assert "Traceback (most recent call last)" in log
    assert json.loads((result.path / "training_config.json").read_text()) == config
    assert not (result.path / "model.h5").exists()


def test_early_stopping_stops_and_the_partial_history_is_kept(trainings, cache_dir):
    config = tiny(epochs=30, callbacks=[{"type": "early_stopping", "monitor": "loss", "patience": 0, "min_delta": 1e9}])
    result = run_experiment(load_config(config), trainings, cache_dir)
    # The first epoch sets the baseline; the second cannot improve by 1e9, so training stops there.
    assert result.succeeded
    assert len(result.metrics["metrics"]["loss"]) == 2


def test_no_statistic_leaks_from_val_or_test_into_the_transformers(trainings, cache_dir):
    trainer = Trainer(load_config(tiny(epochs=1)), trainings, cache_dir)
    assert trainer.run().succeeded
    from experiments.pipeline.datasets import HDFManager

    X, _ = HDFManager(cache_dir / "datasets" / "BostonHousing.h5").load()
    split = split_indices(len(X), 0.6, 0.2, 0.2, seed=0)
    scaler = trainer.transformers.transformers[0]
    assert np.allclose(scaler.mean_, X[split.fit].mean(axis=0), rtol=1e-5)
    assert not np.allclose(scaler.mean_, X.mean(axis=0), rtol=1e-3)


def test_file_datasets_train_and_are_filed_under_their_name(tmp_path, trainings, cache_dir):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    rows = "\n".join(f"{a},{b},{c},{a + 2 * b - c}" for a, b, c in X)
    data = tmp_path / "Linear Data.csv"
    data.write_text("a,b,c,y\n" + rows + "\n")
    config = tiny()
    config["model"]["input_shape"] = [3]
    config["dataset"] = {"path": str(data), "target": "y", "transformers": [{"type": "min_max_scaler"}]}
    result = run_experiment(load_config(config), trainings, cache_dir)
    assert result.succeeded, result.error
    assert result.path is not None
    assert result.path.parent.parent.name == "linear_data"


def test_two_runs_in_the_same_second_get_separate_folders(trainings):
    moment = dt.datetime(2026, 11, 27, 6, 16, 31)
    first = create_execution_dir(trainings, "iris", now=moment)
    second = create_execution_dir(trainings, "iris", now=moment)
    assert first.name == "06-16-31__27-11-2026"
    assert second.name == "06-16-31__27-11-2026_2"


def test_progress_reaches_the_callers_keras_callbacks(trainings, cache_dir):
    seen = []

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, round(logs["loss"], 6)))

    result = run_experiment(load_config(tiny(epochs=3)), trainings, cache_dir, callbacks=[Progress()])
    assert [epoch for epoch, _ in seen] == [0, 1, 2]
    assert [loss for _, loss in seen] == [round(v, 6) for v in result.metrics["metrics"]["loss"]]


def test_running_out_of_memory_inside_code_that_wraps_errors_is_still_said_as_out_of_memory(trainings, cache_dir):
    # The memory watch interrupts the training wherever it is: here, inside code that wraps what it
    # catches (as an optimizer rejecting its arguments does). The run's error names the memory, not the wrapper.
    class WrapsWhatItCatches(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            try:
                raise MemoryError("the run used more than 300 MB of memory (GYMNOS_JOB_MEMORY_MB)")
            except MemoryError as exc:
                raise ValueError("adam rejected its arguments") from exc

    result = run_experiment(
        load_config(tiny(epochs=3)), trainings, cache_dir, callbacks=[WrapsWhatItCatches()], memory_limit_mb=300
    )
    assert not result.succeeded
    assert result.error == (
        "out of memory (limit 300 MB): MemoryError: the run used more than 300 MB of memory (GYMNOS_JOB_MEMORY_MB)"
    )
    assert result.path is not None
    assert json.loads((result.path / "metrics.json").read_text())["error"] == result.error
    assert f"Execution failed: {result.error}" in (result.path / "execution.log").read_text()


def test_ctrl_c_stops_the_run_and_reaches_the_caller_even_while_an_error_is_handled(trainings, cache_dir):
    class CtrlC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            try:
                raise MemoryError("a refused allocation, being handled")
            except MemoryError:
                raise KeyboardInterrupt from None

    with pytest.raises(KeyboardInterrupt):
        run_experiment(load_config(tiny(epochs=3)), trainings, cache_dir, callbacks=[CtrlC()], memory_limit_mb=300)
    (folder,) = (trainings / "boston_housing" / "executions").iterdir()
    assert json.loads((folder / "metrics.json").read_text())["error"] == "interrupted"
    assert "Execution failed: interrupted" in (folder / "execution.log").read_text()
