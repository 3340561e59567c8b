"""Trackers are called from two threads (the training's and the system sampler's); a tracker that fails there,
in both at once, is dropped once and never reaches the training."""

import json
import subprocess
import sys
import threading
import time

import pytest

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.trackers import TensorBoardTracker, Tracker, TrackerSet
from tests.helpers import ROOT, tiny

# What a module two threads imported at once said (the failure this guards against).
HALF_IMPORTED = "partially initialized module 'tensorboard.summary' has no attribute 'writer'"


class FailingInBothThreads(Tracker):
    """Fails on an epoch and on a system sample, only once both threads are inside it."""

    name = "failing"

    def __init__(self):
        self.inside = threading.Barrier(2)

    def log_epoch(self, step, logs):
        self._fail()

    def log_system(self, sample):
        self._fail()

    def _fail(self):
        self.inside.wait(timeout=5)
        raise RuntimeError(HALF_IMPORTED)


class Recording(Tracker):
    name = "recording"

    def __init__(self):
        self.calls = []

    def log_epoch(self, step, logs):
        self.calls.append("epoch")

    def log_system(self, sample):
        self.calls.append("system")


def test_a_tracker_failing_in_two_threads_at_once_is_dropped_once_and_raises_in_neither():
    for _ in range(50):
        failing, recording = FailingInBothThreads(), Recording()
        trackers = TrackerSet([failing, recording])
        raised: list[BaseException] = []

        def call(method, *args, trackers=trackers, raised=raised):
            try:
                getattr(trackers, method)(*args)
            except Exception as exc:  # noqa: BLE001 - what reached the caller is what the test looks for
                raised.append(exc)

        threads = [
            threading.Thread(target=call, args=("log_epoch", 1, {"loss": 0.5})),
            threading.Thread(target=call, args=("log_system", {"time": 1.0, "cpu_percent": 50.0})),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert raised == []
        assert trackers.active == [recording]
        assert trackers.failed == {"failing": f"RuntimeError: {HALF_IMPORTED}"}
        assert sorted(recording.calls) == ["epoch", "system"]


def test_a_tracker_whose_error_cannot_be_told_is_still_dropped_quietly():
    class Unprintable(Exception):
        def __str__(self):
            raise ValueError("no text")

    class Failing(Tracker):
        name = "failing"

        def log_epoch(self, step, logs):
            raise Unprintable()

    trackers = TrackerSet([Failing()])
    trackers.log_epoch(1, {"loss": 0.5})
    assert trackers.active == []
    assert trackers.failed == {"failing": "Unprintable"}


@pytest.mark.training
def test_a_run_whose_tracker_fails_in_the_sampler_and_the_training_at_once_keeps_training(
    trainings, cache_dir, monkeypatch
):
    """The failure the issue saw: both threads drop TensorBoard, and the second drop failed the run (a sweep trial)."""
    monkeypatch.setenv("GYMNOS_SYSTEM_INTERVAL", "0.1")
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    monkeypatch.setenv("GYMNOS_TEST_EPOCH_PAUSE", "0.2")
    both_inside = threading.Barrier(2)

    def sampler_fails(self, sample):
        both_inside.wait(timeout=10)
        raise RuntimeError(HALF_IMPORTED)

    def training_fails(self, step, logs):
        both_inside.wait(timeout=10)
        time.sleep(0.2)  # the sampler's thread drops the tracker first; the training's drop comes second
        raise RuntimeError(HALF_IMPORTED)

    monkeypatch.setattr(TensorBoardTracker, "log_system", sampler_fails)
    monkeypatch.setattr(TensorBoardTracker, "log_epoch", training_fails)
    config = tiny(
        epochs=3,
        trackers=[{"type": "tensorboard"}],
        callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}],
    )
    result = run_experiment(load_config(config), trainings, cache_dir)
    assert result.error is None
    assert result.succeeded
    assert len(result.metrics["metrics"]["loss"]) == 3
    assert result.path is not None
    summary = json.loads((result.path / "trackers.json").read_text())
    assert summary["tensorboard"]["error"] == f"RuntimeError: {HALF_IMPORTED}"


@pytest.mark.training
def test_the_tensorboard_tracker_imports_its_libraries_when_it_is_made_before_any_thread_starts():
    code = (
        "import sys\n"
        "from experiments.pipeline.trackers import TensorBoardSpec, TrackerSet\n"
        "assert 'tensorboard.summary.writer.event_file_writer' not in sys.modules\n"
        "TrackerSet.for_specs([TensorBoardSpec(type='tensorboard')])\n"
        "print(sorted(name for name in ('tensorflow', 'tensorboard.compat.proto.event_pb2',\n"
        "    'tensorboard.compat.proto.summary_pb2', 'tensorboard.summary.writer.event_file_writer')\n"
        "    if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(
        sorted(
            [
                "tensorflow",
                "tensorboard.compat.proto.event_pb2",
                "tensorboard.compat.proto.summary_pb2",
                "tensorboard.summary.writer.event_file_writer",
            ]
        )
    )
