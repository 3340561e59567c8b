"""Every callback the seed lists, in training: each one's effect on the run and its folder (the checks
before training: ``test_callbacks``). The ``hooks_module`` fixture is in ``conftest``."""

import csv
import json
import math
from urllib.parse import parse_qs

import pytest

from experiments.pipeline import load_config, run_experiment
from tests.helpers import ROOT, tiny

ALL_CALLBACKS_EXAMPLE = ROOT / "examples" / "all_callbacks.json"


def train(config, trainings, cache_dir, **kwargs):
    result = run_experiment(load_config(config), trainings, cache_dir, **kwargs)
    assert result.succeeded, result.error
    return result


def epoch_metrics(result):
    return json.loads((result.path / "metrics.json").read_text())["metrics"]


def execution_log(result):
    return (result.path / "execution.log").read_text()


# --- Their effects, in training ------------------------------------------------------------


@pytest.mark.training
def test_the_all_callbacks_example_trains_and_each_callback_and_tracker_leaves_its_mark(
    trainings, cache_dir, receiver, monkeypatch, capsys
):
    monkeypatch.delenv("GYMNOS_CALLBACK_MODULES", raising=False)
    config = json.loads(ALL_CALLBACKS_EXAMPLE.read_text())
    callbacks = {spec["type"]: spec for spec in config["training"]["callbacks"]}
    callbacks["remote_monitor"]["root"] = receiver.root
    epochs = config["training"]["epochs"]

    result = train(config, trainings, cache_dir)
    metrics, log_text, folder = epoch_metrics(result), execution_log(result), result.path / "callbacks"
    assert len(metrics["loss"]) == epochs

    # learning_rate_scheduler: exponential_decay by 0.5 from the optimizer's 0.01.
    assert metrics["learning_rate"] == pytest.approx([0.01 * 0.5**epoch for epoch in range(epochs)], rel=1e-5)
    assert "Epoch 2: learning rate 0.005 (exponential_decay)" in log_text
    # csv_logger: a header and one row per epoch, under callbacks/csv_logger/.
    with open(folder / "csv_logger" / "training.log", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == list(range(epochs))
    assert [float(row["val_loss"]) for row in rows] == pytest.approx(metrics["val_loss"])
    # model_checkpoint: every 2nd epoch, named by epoch and val_loss.
    saved = sorted(path.name for path in (folder / "model_checkpoint").iterdir())
    assert saved == [f"weights.{epoch:02d}-{metrics['val_loss'][epoch - 1]:.2f}.h5" for epoch in (2, 4)]
    # tensorboard callback: Keras's event files, with the epoch loss for every epoch.
    assert scalar_steps(folder / "tensorboard" / "train", "epoch_loss") == list(range(epochs))
    assert scalar_steps(folder / "tensorboard" / "validation", "epoch_loss") == list(range(epochs))
    # remote_monitor: one POST per epoch at root + path, as Keras sends it (a form field "data").
    assert [post["path"] for post in receiver.received] == ["/publish/epoch/end/"] * epochs
    sent = [json.loads(parse_qs(post["body"])["data"][0]) for post in receiver.received]
    assert [payload["epoch"] for payload in sent] == list(range(epochs))
    assert [payload["loss"] for payload in sent] == pytest.approx(metrics["loss"])
    # lambda_callback: the allowed hook ran after every epoch.
    assert [f"Epoch {epoch} ended: loss=" in log_text for epoch in range(1, epochs + 1)] == [True] * epochs
    # progbar_logger (verbose 2): one line per epoch on stdout.
    out = capsys.readouterr().out
    assert [f"Epoch {epoch}/{epochs}" in out for epoch in range(1, epochs + 1)] == [True] * epochs
    # base_logger and history: accepted, and the log says why they add nothing.
    assert (
        "Callback base_logger: Keras 3 averages the epoch metrics itself (BaseLogger is built into Keras 3); nothing to add"  # noqa: E501
        in log_text
    )
    assert "Callback history: Keras 3 records the History of every fit (History is built into Keras 3" in log_text
    # Both trackers recorded the run, and say where.
    trackers = json.loads((result.path / "trackers.json").read_text())
    assert trackers["tensorboard"] == {"log_dir": "tensorboard"}
    assert trackers["mlflow"]["run_id"]
    assert "error" not in trackers["mlflow"]
    assert scalar_steps(result.path / "tensorboard" / "train", "learning_rate") == list(range(1, epochs + 1))


def scalar_steps(folder, tag):
    """The steps at which the TensorBoard event files in ``folder`` hold the scalar ``tag``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    if tag in tags["tensors"]:
        return [event.step for event in events.Tensors(tag)]
    if tag in tags["scalars"]:
        return [event.step for event in events.Scalars(tag)]
    raise AssertionError(f"no {tag!r} in {folder}: {tags}")


def exploding(epochs, callbacks):
    """Unscaled Boston Housing with SGD at a learning rate of a million: the loss overflows in epoch 1."""
    config = tiny(epochs=epochs, callbacks=callbacks)
    config["dataset"]["transformers"] = []
    config["model"]["compilation"]["optimizer"] = {"type": "sgd", "learning_rate": 1e6}
    return config


@pytest.mark.training
def test_terminate_on_nan_stops_the_run_in_the_epoch_the_loss_blows_up(trainings, cache_dir):
    without = train(exploding(5, []), trainings, cache_dir)
    assert len(epoch_metrics(without)["loss"]) == 5  # Keras alone trains on through NaN

    result = train(exploding(5, [{"type": "terminate_on_nan"}]), trainings, cache_dir)
    losses = epoch_metrics(result)["loss"]
    assert len(losses) == 1
    assert not math.isfinite(losses[0])
    assert "at epoch 1, batch 2: stopping the training (terminate_on_nan)" in execution_log(result)


@pytest.mark.training
def test_terminate_on_nan_with_raise_error_fails_the_run(trainings, cache_dir):
    result = run_experiment(
        load_config(exploding(5, [{"type": "terminate_on_nan", "raise_error": True}])), trainings, cache_dir
    )
    assert not result.succeeded
    assert result.error is not None
    assert "NaN or Inf loss encountered" in result.error


@pytest.mark.training
def test_early_stopping_stops_the_run_when_the_loss_stops_improving(trainings, cache_dir):
    # No improvement can reach a min_delta of 1e9: epoch 1 sets the best, epochs 2 and 3 wait.
    config = tiny(epochs=20, callbacks=[{"type": "early_stopping", "monitor": "loss", "min_delta": 1e9, "patience": 2}])
    assert len(epoch_metrics(train(config, trainings, cache_dir))["loss"]) == 3


@pytest.mark.training
def test_reduce_lr_on_plateau_lowers_the_learning_rate(trainings, cache_dir):
    config = tiny(
        epochs=4,
        callbacks=[{"type": "reduce_lr_on_plateau", "monitor": "loss", "min_delta": 1e9, "patience": 1, "factor": 0.5}],
    )
    config["model"]["compilation"]["optimizer"] = {"type": "adam", "learning_rate": 0.01}
    # Logged at each epoch's end, before that epoch's reduction: every epoch after the first is a plateau.
    assert epoch_metrics(train(config, trainings, cache_dir))["learning_rate"] == pytest.approx(
        [0.01, 0.01, 0.005, 0.0025]
    )


@pytest.mark.training
@pytest.mark.parametrize(
    "schedule, expected",
    [
        ({"schedule": "step_decay", "drop": 0.5, "epochs_drop": 2}, [0.01, 0.01, 0.005, 0.005]),
        (
            {"schedule": "cosine_decay", "initial_learning_rate": 0.1},
            [0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2, 0.05, 0.1 * (1 + math.cos(3 * math.pi / 4)) / 2],
        ),
    ],
)
def test_learning_rate_scheduler_sets_the_optimizers_rate_each_epoch(trainings, cache_dir, schedule, expected):
    config = tiny(epochs=4, callbacks=[{"type": "learning_rate_scheduler", **schedule}])
    config["model"]["compilation"]["optimizer"] = {"type": "adam", "learning_rate": 0.01}
    result = train(config, trainings, cache_dir)
    assert epoch_metrics(result)["learning_rate"] == pytest.approx(expected, rel=1e-5)

    import keras

    # The optimizer itself ends at the last epoch's rate (model.h5 keeps it).
    model = keras.models.load_model(result.path / "model.h5")
    assert float(model.optimizer.learning_rate) == pytest.approx(expected[-1], rel=1e-5)


@pytest.mark.training
def test_csv_logger_writes_the_given_file_name_inside_its_folder(trainings, cache_dir):
    config = tiny(epochs=2, callbacks=[{"type": "csv_logger", "filename": "logs/epochs.csv", "separator": ";"}])
    result = train(config, trainings, cache_dir)
    lines = (result.path / "callbacks" / "csv_logger" / "logs" / "epochs.csv").read_text().splitlines()
    assert lines[0] == "epoch;loss;mean_absolute_error;val_loss;val_mean_absolute_error"
    assert [line.split(";")[0] for line in lines[1:]] == ["0", "1"]


@pytest.mark.training
def test_remote_monitor_can_send_json_with_headers_and_names_the_execution(trainings, cache_dir, receiver):
    callback = {
        "type": "remote_monitor",
        "root": receiver.root,
        "path": "/hooks/epochs/",
        "send_as_json": True,
        "headers": {"X-Token": "s3cret"},
    }
    result = train(tiny(epochs=3, callbacks=[callback]), trainings, cache_dir)
    assert [post["path"] for post in receiver.received] == ["/hooks/epochs/"] * 3
    assert [json.loads(post["body"])["epoch"] for post in receiver.received] == [0, 1, 2]
    headers = receiver.received[0]["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Token"] == "s3cret"
    assert headers["X-Gymnos-Execution"] == f"boston_housing/{result.path.name}"


@pytest.mark.training
def test_remote_monitor_with_no_server_warns_once_and_the_run_goes_on(trainings, cache_dir, receiver):
    root = receiver.root
    receiver.shutdown()
    receiver.server_close()
    result = train(tiny(epochs=3, callbacks=[{"type": "remote_monitor", "root": root}]), trainings, cache_dir)
    warnings = [
        line for line in execution_log(result).splitlines() if " - WARNING - " in line and "remote_monitor" in line
    ]
    assert len(warnings) == 1
    assert "could not post epoch 1" in warnings[0]


@pytest.mark.training
def test_lambda_callback_calls_each_allowed_hook(trainings, cache_dir, hooks_module):
    callback = {
        "type": "lambda_callback",
        "on_train_begin": "gymnos_test_hooks.train_begin",
        "on_epoch_end": "gymnos_test_hooks.epoch_end",
        "on_train_batch_end": "gymnos_test_hooks.batch_end",
    }
    config = tiny(epochs=2, callbacks=[callback])
    config["training"]["batch_size"] = 128  # 303 samples: 3 batches an epoch
    train(config, trainings, cache_dir)
    calls = [json.loads(line) for line in hooks_module.read_text().splitlines()]
    assert [(call["hook"], call.get("epoch", call.get("batch"))) for call in calls] == [
        ("on_train_begin", None),
        *[("on_train_batch_end", batch) for batch in range(3)],
        ("on_epoch_end", 0),
        *[("on_train_batch_end", batch) for batch in range(3)],
        ("on_epoch_end", 1),
    ]
    assert "val_loss" in calls[4]["keys"]


@pytest.mark.training
def test_a_hook_module_dropped_from_the_allowlist_after_validation_fails_the_run_before_any_hook_runs(
    trainings, cache_dir, hooks_module, monkeypatch
):
    # A config validated by the web app, then run by a worker that does not allow the module.
    config = load_config(
        tiny(epochs=2, callbacks=[{"type": "lambda_callback", "on_epoch_end": "gymnos_test_hooks.epoch_end"}])
    )
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "")
    result = run_experiment(config, trainings, cache_dir)
    assert not result.succeeded
    assert result.error is not None
    assert "GYMNOS_CALLBACK_MODULES" in result.error
    assert not hooks_module.exists()


@pytest.mark.training
def test_progbar_logger_prints_a_progress_bar_to_stdout(trainings, cache_dir, capsys):
    train(tiny(epochs=2, callbacks=[{"type": "progbar_logger"}]), trainings, cache_dir)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out
    assert "Epoch 2/2" in out
    assert "loss:" in out


@pytest.mark.training
def test_the_tensorboard_callback_writes_histograms_in_a_folder_inside_its_own(trainings, cache_dir):
    config = tiny(epochs=2, callbacks=[{"type": "tensorboard", "log_dir": "run", "histogram_freq": 1}])
    result = train(config, trainings, cache_dir)
    train_events = result.path / "callbacks" / "tensorboard" / "run" / "train"
    assert scalar_steps(train_events, "epoch_loss") == [0, 1]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(train_events), size_guidance={"tensors": 0})
    events.Reload()
    assert any("kernel" in tag for tag in events.Tags()["tensors"]), events.Tags()
