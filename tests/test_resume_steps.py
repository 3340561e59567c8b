"""A resumed run's step metrics (#27): steps.h5 is cut back to the epoch it resumes from, so the epochs trained
again are written once, with their own points, and each summary is made again from what the file holds."""

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.resume import STATE_FILE, STATE_FOLDER, Resume
from experiments.pipeline.steps import STEPS_FILE, StepWriter
from tests.helpers import tiny
from tests.test_resume import DiesAt
from tests.test_resume_trackers import _tensorboard_points


def _file(path: Path) -> tuple[list[int], dict[str, tuple[list[int], list[float], list[float]]]]:
    """``(epoch marks, {metric: (steps, values, summary)})`` as stored."""
    with h5py.File(path, "r") as file:
        metrics = {
            name: (group["step"][:].tolist(), group["value"][:].tolist(), group["summary"][:].tolist())
            for name, group in file["metrics"].items()
        }
        return file["epochs"][:].tolist(), metrics


def _summary_of(values: list[float]) -> list[float]:
    finite = [value for value in values if not math.isnan(value)]
    return [len(values), min(finite), max(finite), values[-1]]


@pytest.mark.training
def test_a_run_killed_past_its_kept_state_is_resumed_with_each_step_and_each_epoch_mark_once(trainings, cache_dir):
    config = tiny(epochs=6, trackers=[{"type": "tensorboard"}])
    config["training"]["resume_every"] = 3  # a state kept at epoch 3 (and 6): killed in epoch 5, it goes on from 3
    config["training"]["log_every_steps"] = 1
    first = run_experiment(load_config(config), trainings, cache_dir, callbacks=[DiesAt(4)])
    assert not first.succeeded
    assert first.path is not None
    assert json.loads((first.path / STATE_FOLDER / STATE_FILE).read_text())["epoch"] == 3
    marks, metrics = _file(first.path / STEPS_FILE)
    per_epoch = marks[0]
    assert marks == [per_epoch * epoch for epoch in (1, 2, 3, 4)]  # epoch 4 ended, but was not kept
    assert metrics["loss"][0][-1] == 5 * per_epoch  # and epoch 5's points were flushed as the run failed
    before = metrics["loss"][1][: 3 * per_epoch]

    again = run_experiment(load_config(config), trainings, cache_dir, resume=Resume(first.path, attempt=2))
    assert again.succeeded, again.error
    marks, metrics = _file(first.path / STEPS_FILE)
    assert marks == [per_epoch * epoch for epoch in range(1, 7)]  # each epoch marked once
    history = json.loads((first.path / "metrics.json").read_text())["metrics"]
    for name, (steps, values, summary) in metrics.items():
        assert steps == list(range(1, 6 * per_epoch + 1)), name  # each step once, none missing
        assert summary == pytest.approx(_summary_of(values)), name
    steps, values, _ = metrics["loss"]
    assert values[: 3 * per_epoch] == before  # the kept epochs' points are the first attempt's
    # each epoch's last point is that epoch's loss in metrics.json: epochs 4 and 5 are the second attempt's
    assert [values[mark - 1] for mark in marks] == pytest.approx(history["loss"])
    # TensorBoard had the first attempt's points up to its last flush (epoch 5's): not given them again, each step
    # is there once (the first attempt's up to that step: a tracker cannot take a point back), none missing.
    points = _tensorboard_points(first.path / "tensorboard" / "steps")
    assert {step: count for (tag, step), count in points.items() if tag == "steps/loss"} == {
        step: 1 for step in range(1, 6 * per_epoch + 1)
    }


def _written(path: Path, epochs: list[list[float]]) -> None:
    writer = StepWriter(path, flush_points=7)
    step = 0
    for values in epochs:
        for value in values:
            step += 1
            writer.append(step, {"loss": value, "acc": -value})
        writer.epoch_end(step)
    writer.close()


def test_resuming_at_an_epoch_cuts_the_points_and_marks_after_it_and_remakes_the_summaries(tmp_path):
    path = tmp_path / STEPS_FILE
    _written(path, [[5.0, math.nan, 4.0], [3.0, 2.5, 2.0], [1000.0, 1.0, 0.5]])  # a spike in epoch 3

    writer = StepWriter(path)
    assert writer.resume_at(2) == 6
    marks, metrics = _file(path)
    assert marks == [3, 6]
    steps, values, summary = metrics["loss"]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert summary[0] == 6
    assert summary[1:] == [2.0, 5.0, 2.0]  # the spike of the epoch cut is no longer its maximum
    assert metrics["acc"][2][1:] == [-5.0, -2.0, -2.0]

    for step, value in ((7, 1.5), (8, 1.25)):  # going on from there, as the resumed run does
        writer.append(step, {"loss": value, "acc": -value})
    writer.epoch_end(8)
    writer.close()
    marks, metrics = _file(path)
    assert marks == [3, 6, 8]
    steps, values, summary = metrics["loss"]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]
    assert summary[0] == 8
    assert summary[1:] == [1.25, 5.0, 1.25]


def test_resuming_from_no_kept_epoch_empties_the_file_and_a_file_short_of_marks_is_kept_whole(tmp_path):
    path = tmp_path / STEPS_FILE
    _written(path, [[3.0, 2.0], [1.0, 0.5]])
    assert StepWriter(path).resume_at(5) == 4  # fewer marks than the epoch: continued from its last, as before
    marks, metrics = _file(path)
    assert marks == [2, 4]
    assert metrics["loss"][0] == [1, 2, 3, 4]

    assert StepWriter(path).resume_at(0) == 0  # trained again from its start
    marks, metrics = _file(path)
    assert marks == []
    steps, values, summary = metrics["loss"]
    assert steps == []
    assert values == []
    assert summary[0] == 0
    assert np.isnan(summary[1:]).all()
    assert StepWriter(tmp_path / "none.h5").resume_at(3) == 0
