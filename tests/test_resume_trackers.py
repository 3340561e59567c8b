"""A resumed run's trackers go on with the same run (#23): one MLflow run, one TensorBoard log, each epoch once."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.resume import STATE_FILE, STATE_FOLDER, Resume
from tests.helpers import tiny

pytestmark = [pytest.mark.training]

ROOT = Path(__file__).resolve().parent.parent

# Trains in a process of its own and SIGKILLs it at the end of its third epoch (after the state was kept at the
# second: resume_every 2), as the out-of-memory killer would: nothing of the run gets to end anything.
KILLED_AT_THIRD_EPOCH = """
import json, os, signal, sys
import keras
from experiments.pipeline import load_config, run_experiment

class KillAt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)

config = load_config(json.loads(sys.argv[1]))
run_experiment(config, sys.argv[2], sys.argv[3], callbacks=[KillAt()])
"""

# The same, SIGKILLed just after the trackers were given the second epoch (its state written): before anything of
# the run could note that they had it.
KILLED_ONCE_THE_TRACKERS_HAVE_THE_SECOND_EPOCH = """
import json, os, signal, sys
from experiments.pipeline import load_config, run_experiment, trackers

give = trackers.TrackerSet.log_epoch
def killed_after(self, step, logs):
    give(self, step, logs)
    if step == 2:
        os.kill(os.getpid(), signal.SIGKILL)
trackers.TrackerSet.log_epoch = killed_after

config = load_config(json.loads(sys.argv[1]))
run_experiment(config, sys.argv[2], sys.argv[3])
"""


def _config(tmp_path: Path) -> dict[str, Any]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tiny(epochs=6, trackers=[{"type": "tensorboard"}, {"type": "mlflow", "tracking_uri": uri}])
    config["training"]["resume_every"] = 2
    return config


def _tensorboard_points(folder: Path) -> Counter[tuple[str, int]]:
    """Every scalar point in ``folder``'s event files, read raw (no reader's purging): (tag, step) -> times."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    points: Counter[tuple[str, int]] = Counter()
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in LegacyEventFileLoader(str(path)).Load():
            for value in event.summary.value:
                points[(value.tag, event.step)] += 1
    return points


def _killed(script: str, config: dict[str, Any], trainings: Path, cache: Path) -> Path:
    """The run's folder, once ``script`` trained ``config`` in a process of its own and was SIGKILLed, and the
    killed run's MLflow client, orphaned, has written what it was sent and marked its run killed (its pipe closed).
    Its state was kept at the second epoch."""
    killed = subprocess.run(
        [sys.executable, "-c", script, json.dumps(config), str(trainings), str(cache)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=trainings.parent,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    (folder,) = [path for path in trainings.glob("*/executions/*") if path.is_dir()]
    assert json.loads((folder / STATE_FOLDER / STATE_FILE).read_text())["epoch"] == 2
    uri = config["tracking"]["trackers"][1]["tracking_uri"]
    for process in psutil.process_iter(["cmdline"]):  # the only one with this test's store in its command line
        if uri in (process.info["cmdline"] or []):
            process.wait(timeout=120)
    return folder


def _mlflow_status(uri: str, experiment: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


def test_a_run_killed_and_resumed_goes_on_with_the_same_mlflow_run_and_tensorboard_log_each_epoch_once(
    tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow's artifacts go to ./mlruns with a tracking URI given

    source = _config(tmp_path)
    uri = source["tracking"]["trackers"][1]["tracking_uri"]
    trainings, cache = tmp_path / "trainings", tmp_path / "cache"
    folder = _killed(KILLED_AT_THIRD_EPOCH, source, trainings, cache)
    experiment = source["experiment"]["name"]
    (first,) = _mlflow_status(uri, experiment)
    assert first.info.status == "KILLED"
    client = MlflowClient(uri)
    # The third epoch was trained but not kept: it was held back from the trackers, as it is trained again.
    assert [metric.step for metric in client.get_metric_history(first.info.run_id, "loss")] == [1, 2]

    again = run_experiment(load_config(source), trainings, cache, resume=Resume(folder, attempt=2))
    assert again.succeeded, again.error
    assert "resumed at epoch 2 (attempt 2)" in (folder / "execution.log").read_text()

    (run,) = _mlflow_status(uri, experiment)  # the same run, not a second one
    assert run.info.run_id == first.info.run_id
    assert run.info.status == "FINISHED"
    metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
    for name in ("loss", "val_loss"):
        history = client.get_metric_history(run.info.run_id, name)
        assert sorted(metric.step for metric in history) == [1, 2, 3, 4, 5, 6]
        by_step = {metric.step: metric.value for metric in history}
        assert [by_step[step] for step in range(1, 7)] == pytest.approx(metrics[name])
    assert json.loads((folder / "trackers.json").read_text())["mlflow"]["run_id"] == run.info.run_id

    for part, tag in (("train", "loss"), ("validation", "loss")):
        points = _tensorboard_points(folder / "tensorboard" / part)
        assert {step: count for (name, step), count in points.items() if name == tag} == {s: 1 for s in range(1, 7)}


def test_a_run_resumed_from_an_older_state_drops_the_tensorboard_points_trained_again(tmp_path):
    """A damaged newest state: the run goes on from the one before it, and the epoch after that one, logged before
    the crash, is in TensorBoard once: as trained again."""
    from tests.test_resume import DiesAt

    source = tiny(epochs=5, trackers=[{"type": "tensorboard"}])
    source["training"]["resume_every"] = 1
    config = load_config(source)
    first = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", callbacks=[DiesAt(2)])
    assert first.path is not None
    folder = first.path
    before = _tensorboard_points(folder / "tensorboard" / "train")
    assert sorted(step for name, step in before if name == "loss") == [1, 2, 3]
    (folder / STATE_FOLDER / STATE_FILE).write_text("not json")  # back to previous.json: epoch 2

    again = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", resume=Resume(folder, attempt=2))
    assert again.succeeded, again.error
    assert "resumed at epoch 2 (attempt 2)" in (folder / "execution.log").read_text()
    points = _tensorboard_points(folder / "tensorboard" / "train")
    assert {step: count for (name, step), count in points.items() if name == "loss"} == {s: 1 for s in range(1, 6)}


def test_resume_every_auto_keeps_the_first_epoch_then_once_the_training_since_outweighs_a_state(tmp_path):
    """The default: a state kept at the first epoch's end (what a snapshot costs the training thread, and its
    write's CPU the writer thread, are measured there), then at the end of the first epoch that ends 1/BUDGET
    states' cost after the last, so keeping costs the training at most BUDGET of it; and at least every MOST_APART
    epochs, so a crash trains at most one whole epoch again."""
    import time as clock

    import keras

    from experiments.pipeline.kept_state import BUDGET, MOST_APART, KeptState

    assert load_config(tiny() | {"training": {}}).training.resume_every == "auto"
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    history = keras.callbacks.History()
    history.history = {"loss": []}
    keep = KeptState(tmp_path, history, every="auto")
    keep.set_model(model)
    keep.set_params({"epochs": 100})

    def epoch_end(epoch: int) -> int:
        history.history["loss"].append(1.0)
        keep.on_epoch_end(epoch - 1)
        keep.flush()  # the write in the background is done: kept_epoch is what is on disk
        return keep.kept_epoch

    assert epoch_end(1) == 1  # the first
    assert len(keep.writer.write_cpu) == 1  # its write's CPU, measured on the writer's thread
    # Snapshots as slow as a second and writes taking a second of CPU (the medians): the next is due 2/BUDGET
    # seconds after the last ended.
    keep.snapshot_seconds.extend([1.0, 1.0, 1.0])
    keep.writer.write_cpu.extend([1.0, 1.0, 1.0])
    keep.snapshot_at = clock.perf_counter() - 2.0 / BUDGET
    assert epoch_end(2) == 2
    keep.snapshot_at = clock.perf_counter() - 1.5 / BUDGET  # the snapshot's cost alone would be due
    assert epoch_end(3) == 2
    assert MOST_APART == 2
    keep.snapshot_at = clock.perf_counter()  # not due by the cost, but two epochs since the last
    assert epoch_end(4) == 4
    assert json.loads((tmp_path / STATE_FOLDER / STATE_FILE).read_text())["epoch"] == 4


def test_an_epoch_the_trackers_got_just_before_the_kill_is_not_given_to_them_again(tmp_path, monkeypatch):
    """The resumed run gives every epoch of its kept state again: each tracker records only those it lacks."""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    source = _config(tmp_path)
    uri = source["tracking"]["trackers"][1]["tracking_uri"]
    trainings, cache = tmp_path / "trainings", tmp_path / "cache"
    folder = _killed(KILLED_ONCE_THE_TRACKERS_HAVE_THE_SECOND_EPOCH, source, trainings, cache)
    client = MlflowClient(uri)
    (first,) = _mlflow_status(uri, source["experiment"]["name"])
    assert [metric.step for metric in client.get_metric_history(first.info.run_id, "loss")] == [1, 2]
    assert sorted(step for name, step in _tensorboard_points(folder / "tensorboard" / "train") if name == "loss") == [
        1,
        2,
    ]

    again = run_experiment(load_config(source), trainings, cache, resume=Resume(folder, attempt=2))
    assert again.succeeded, again.error
    assert "resumed at epoch 2 (attempt 2)" in (folder / "execution.log").read_text()
    for name in ("loss", "val_loss"):
        history = client.get_metric_history(first.info.run_id, name)
        assert sorted(metric.step for metric in history) == [1, 2, 3, 4, 5, 6]
    for part in ("train", "validation"):
        points = _tensorboard_points(folder / "tensorboard" / part)
        assert {step: count for (name, step), count in points.items() if name == "loss"} == {s: 1 for s in range(1, 7)}
