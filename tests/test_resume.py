"""Runs survive their machine (#23): a run whose process died goes on from the state its folder keeps."""

import json
from pathlib import Path
from typing import Any

import keras
import pytest

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.resume import STATE_FILE, STATE_FOLDER, Resume, has_kept_state
from tests.helpers import tiny

pytestmark = [pytest.mark.training]


class DiesAt(keras.callbacks.Callback):
    """Stands for a process killed at an epoch's end, after its state was kept (a Python error does the same)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == self.epoch:
            raise RuntimeError("the machine went away")


def _metrics(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "metrics.json").read_text())
    return document


def test_a_run_started_again_on_its_folder_goes_on_from_the_epoch_it_reached(tmp_path):
    config = load_config(tiny(epochs=6))
    first = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", callbacks=[DiesAt(2)])
    assert not first.succeeded
    assert first.path is not None
    assert has_kept_state(first.path)
    kept = json.loads((first.path / STATE_FOLDER / STATE_FILE).read_text())
    assert kept["epoch"] == 3
    assert len(kept["history"]["loss"]) == 3

    again = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", resume=Resume(first.path, attempt=2))
    assert again.succeeded, again.error
    assert again.path == first.path
    metrics = _metrics(first.path)["metrics"]
    assert len(metrics["loss"]) == 6
    assert len(metrics["val_loss"]) == 6
    assert metrics["loss"][:3] == kept["history"]["loss"]  # the epochs before the crash, once each
    log = (first.path / "execution.log").read_text()
    assert "resumed at epoch 3 (attempt 2)" in log
    assert "the machine went away" in log  # the first attempt's lines are kept: the log is appended to
    assert not (first.path / STATE_FOLDER).exists()  # trained to its end: the state is no longer kept


def test_a_state_that_cannot_be_read_fails_the_run_saying_why(tmp_path):
    config = load_config(tiny(epochs=4))
    first = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", callbacks=[DiesAt(1)])
    assert first.path is not None
    (first.path / STATE_FOLDER / STATE_FILE).write_text('{"epoch": 2, "weights": "../../x.weights.h5"}')
    assert not has_kept_state(first.path)
    again = run_experiment(config, tmp_path / "trainings", tmp_path / "cache", resume=Resume(first.path))
    assert not again.succeeded
    assert again.error is not None
    assert "weights must name a .weights.h5 file" in again.error
