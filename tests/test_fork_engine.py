"""The engine's side of a fork (#23): a run that starts from weights another run saved, in its own folder, counting
its own epochs from 0; the optimizer's state kept or dropped as the changes allow; a file it cannot use fails it
saying why (never a run trained from scratch in its place)."""

import copy
import os
from pathlib import Path
from typing import Any

import keras
import pytest

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.fork import FORK_FOLDER, Start, optimizer_dropped
from experiments.pipeline.resume import STATE_FOLDER, read_kept
from tests.helpers import tiny

pytestmark = [pytest.mark.training]


class DiesAt(keras.callbacks.Callback):
    """Stands for a run that fails at an epoch's end, after its state was kept."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == self.epoch:
            raise RuntimeError("the machine went away")


def fast(epochs):
    config = tiny(epochs=epochs)
    config["model"]["compilation"]["optimizer"] = {"type": "adam", "learning_rate": 0.05}
    return config


def train(tmp_path, config, **kwargs):
    return run_experiment(load_config(config), tmp_path / "trainings", tmp_path / "cache", **kwargs)


@pytest.fixture
def died(tmp_path):
    """A run that failed at the end of its epoch 4, its state kept (.resume/)."""
    result = train(tmp_path, fast(8), callbacks=[DiesAt(3)])
    assert not result.succeeded
    assert result.path is not None
    return result


def test_a_fork_from_a_kept_state_trains_on_from_it_in_its_own_folder(tmp_path, died):
    kept = read_kept(died.path)
    assert kept is not None
    assert kept.epoch == 4
    child_config = copy.deepcopy(fast(3))
    child_config["model"]["compilation"]["optimizer"]["learning_rate"] = 0.01
    start = Start(died.path, f"{STATE_FOLDER}/{kept.weights.name}", kept.epoch, optimizer=True)
    child = train(tmp_path, child_config, start=start)
    assert child.succeeded, child.error
    assert child.path != died.path
    assert (child.path / FORK_FOLDER / kept.weights.name).is_file()  # the parent's file, copied first
    losses = child.metrics["metrics"]["loss"]
    assert len(losses) == 3  # its own epochs, from 0
    fresh_first = train(tmp_path, child_config).metrics["metrics"]["loss"][0]
    at_kept = kept.history["loss"][-1]
    assert abs(losses[0] - at_kept) < 0.1 * (fresh_first - at_kept), (losses[0], at_kept, fresh_first)
    assert "the optimizer's state kept" in (child.path / "execution.log").read_text()


def test_a_changed_optimizer_type_keeps_the_weights_and_starts_a_fresh_optimizer(tmp_path, died):
    kept = read_kept(died.path)
    assert kept is not None
    sgd = fast(2)
    sgd["model"]["compilation"]["optimizer"] = {"type": "sgd", "learning_rate": 0.0001}
    why = optimizer_dropped(fast(8), sgd)
    assert why is not None
    start = Start(died.path, f"{STATE_FOLDER}/{kept.weights.name}", kept.epoch, optimizer=False, why=why)
    child = train(tmp_path, sgd, start=start)
    assert child.succeeded, child.error
    assert abs(child.metrics["metrics"]["loss"][0] - kept.history["loss"][-1]) < 0.1 * kept.history["loss"][0]
    assert "not kept: the optimizer type changed (adam -> sgd)" in (child.path / "execution.log").read_text()


def test_weights_that_do_not_fit_the_changed_network_fail_the_fork_saying_why(tmp_path, died):
    kept = read_kept(died.path)
    assert kept is not None
    wider = fast(2)
    wider["model"]["network"][0]["units"] = 16
    start = Start(died.path, f"{STATE_FOLDER}/{kept.weights.name}", kept.epoch, optimizer=False, why="network")
    child = train(tmp_path, wider, start=start)
    assert not child.succeeded
    assert "do not load into this run's model" in str(child.error)
    assert child.metrics["metrics"] == {}  # not one epoch trained from scratch in its place


def test_a_parents_file_that_is_a_link_is_not_followed(tmp_path, died):
    outside = tmp_path / "elsewhere.weights.h5"
    outside.write_bytes(b"not weights")
    os.symlink(outside, died.path / "planted.weights.h5")
    child = train(tmp_path, fast(1), start=Start(died.path, "planted.weights.h5", 4))
    assert not child.succeeded
    assert "cannot be copied" in str(child.error)
    assert "symbolic link" in str(child.error)
    assert not (Path(str(child.path)) / FORK_FOLDER / "planted.weights.h5").exists()
