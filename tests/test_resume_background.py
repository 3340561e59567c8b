"""The kept state written off the training thread (#23): a kill trains again at most one epoch with the default
setting, a kill mid-write leaves the state before it whole, the fit's end waits for the write, writes coalesce."""

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.resume import PREVIOUS_FILE, STATE_FILE, STATE_FOLDER, Resume, kept_states
from experiments.pipeline.state_writer import Snapshot, StateWriter
from tests.helpers import tiny
from tests.test_resume import DiesAt
from tests.test_resume_trackers import _tensorboard_points

pytestmark = [pytest.mark.training]

ROOT = Path(__file__).resolve().parent.parent

# Trains in a process of its own, the default resume_every ("auto"), and is SIGKILLed half a second into its sixth
# epoch (after its first batch), as the out-of-memory killer would.
KILLED_IN_SIXTH_EPOCH = """
import json, os, signal, sys, time
import keras
from experiments.pipeline import load_config, run_experiment

class KillIn(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 5:
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGKILL)
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

config = load_config(json.loads(sys.argv[1]))
run_experiment(config, sys.argv[2], sys.argv[3], callbacks=[KillIn()])
"""

# Trains in a process of its own with a state every epoch, and is SIGKILLed by its state writer in the middle of
# writing the first state from epoch 4 on (writes coalesce: epoch 4's may be replaced by a newer one): in its weights
# file (half of it in the temporary file) or in its state.json (after the state before it was moved to previous.json).
KILLED_WRITING_A_STATE = """
import json, os, re, signal, sys
from experiments.pipeline import fileops, load_config, run_experiment

write = fileops.write
def killed_midway(root, path, data, **options):
    weights = re.fullmatch(r"epoch-([0-9]+)\\.weights\\.safetensors", str(path))
    if sys.argv[4] == "weights" and weights and int(weights.group(1)) >= 4 or (
        sys.argv[4] == "state" and str(path) == "state.json" and json.loads(data)["epoch"] >= 4
    ):
        with open(os.path.join(root, "." + str(path) + ".0123456789ab.tmp"), "wb") as handle:
            handle.write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    write(root, path, data, **options)
fileops.write = killed_midway

config = load_config(json.loads(sys.argv[1]))
run_experiment(config, sys.argv[2], sys.argv[3])
"""


# Trains in a process of its own with a state every epoch, and is SIGKILLed at its fourth epoch's end once that
# epoch's state is on disk: the trackers were given the epochs of the state written before it only (an epoch is
# given once a written state holds it), so the fourth is in the kept state but was never given.
KILLED_ONCE_THE_FOURTH_STATE_IS_WRITTEN = """
import json, os, signal, sys, time
from pathlib import Path
import keras
from experiments.pipeline import load_config, run_experiment

class KillOnceWritten(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 3:
            (folder,) = Path(sys.argv[2]).glob("*/executions/*/.resume")
            while kept(folder / "state.json") != 4:  # moved to previous.json for a moment while the next is written
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)

def kept(state):
    try:
        return json.loads(state.read_text())["epoch"]
    except (FileNotFoundError, ValueError):
        return None

config = load_config(json.loads(sys.argv[1]))
run_experiment(config, sys.argv[2], sys.argv[3], callbacks=[KillOnceWritten()])
"""


def _in_a_process(script: str, config: dict[str, Any], tmp_path: Path, *extra: str) -> Path:
    trainings, cache = tmp_path / "trainings", tmp_path / "cache"
    killed = subprocess.run(
        [sys.executable, "-c", script, json.dumps(config), str(trainings), str(cache), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
    )
    (folder,) = [path for path in trainings.glob("*/executions/*") if path.is_dir()]
    assert killed.returncode == -9, (folder / "execution.log").read_text()[-3000:]
    return folder


def _resume(tmp_path: Path, config: dict[str, Any], folder: Path) -> Any:
    again = run_experiment(
        load_config(config), tmp_path / "trainings", tmp_path / "cache", resume=Resume(folder, attempt=2)
    )
    assert again.succeeded, again.error
    return again


def _losses(folder: Path) -> list[float]:
    losses: list[float] = json.loads((folder / "metrics.json").read_text())["metrics"]["loss"]
    return losses


def _default(epochs: int, **options: Any) -> dict[str, Any]:
    config = tiny(epochs=epochs, **options)
    del config["training"]["resume_every"]  # tiny() keeps a state every epoch; this is the default's
    return config


def test_a_run_killed_mid_epoch_with_the_default_setting_trains_at_most_one_epoch_again_each_epoch_once(tmp_path):
    config = _default(8, trackers=[{"type": "tensorboard"}])
    assert load_config(config).training.resume_every == "auto"
    folder = _in_a_process(KILLED_IN_SIXTH_EPOCH, config, tmp_path)
    kept = json.loads((folder / STATE_FOLDER / STATE_FILE).read_text())["epoch"]
    assert kept >= 4  # five epochs trained before the kill: at most one of them to train again

    _resume(tmp_path, config, folder)
    assert f"resumed at epoch {kept} (attempt 2)" in (folder / "execution.log").read_text()
    assert len(_losses(folder)) == 8
    for part in ("train", "validation"):
        points = _tensorboard_points(folder / "tensorboard" / part)
        assert {step: count for (name, step), count in points.items() if name == "loss"} == {s: 1 for s in range(1, 9)}
    assert not (folder / STATE_FOLDER).exists()


@pytest.mark.parametrize("during", ["weights", "state"])
def test_a_kill_while_a_state_is_written_leaves_the_state_before_it_whole(tmp_path, during):
    config = tiny(epochs=8, trackers=[{"type": "tensorboard"}])
    folder = _in_a_process(KILLED_WRITING_A_STATE, config, tmp_path, during)
    state = folder / STATE_FOLDER
    (left,) = state.glob(".*.tmp")  # what the kill cut short
    assert left.name.startswith(".epoch-" if during == "weights" else f".{STATE_FILE}.")
    (newest, *_) = kept_states(folder)  # no reader takes the half-written file
    assert 1 <= newest.epoch < 8
    assert newest.source is not None
    # Killed in state.json's write: the state before it is previous.json, whole.
    assert newest.source.name == (STATE_FILE if during == "weights" else PREVIOUS_FILE)
    assert not (state / STATE_FILE).exists() or during == "weights"

    _resume(tmp_path, config, folder)
    assert f"resumed at epoch {newest.epoch} (attempt 2)" in (folder / "execution.log").read_text()
    assert len(_losses(folder)) == 8
    points = _tensorboard_points(folder / "tensorboard" / "train")
    assert {step: count for (name, step), count in points.items() if name == "loss"} == {s: 1 for s in range(1, 9)}
    assert not state.exists()  # trained to the end: the temporary file went with the rest


def test_a_resumed_runs_first_write_removes_a_temporary_file_a_kill_left(tmp_path):
    config = tiny(epochs=5)
    first = run_experiment(load_config(config), tmp_path / "trainings", tmp_path / "cache", callbacks=[DiesAt(1)])
    assert first.path is not None
    left = first.path / STATE_FOLDER / ".epoch-3.weights.safetensors.0123456789ab.tmp"
    left.write_bytes(b"\x10\x00 half")
    again = run_experiment(
        load_config(config),
        tmp_path / "trainings",
        tmp_path / "cache",
        callbacks=[DiesAt(3)],
        resume=Resume(first.path, attempt=2),
    )
    assert not again.succeeded
    assert not left.exists()
    assert json.loads((first.path / STATE_FOLDER / STATE_FILE).read_text())["epoch"] == 4


def test_a_failed_fit_waits_for_the_write_so_its_last_epoch_is_kept_and_given(tmp_path):
    """The write of the last epoch's state is in the background when the fit fails: the trainer waits for it, and
    the trackers get that epoch (it is in a kept state)."""
    config = tiny(epochs=5, trackers=[{"type": "tensorboard"}])
    failed = run_experiment(load_config(config), tmp_path / "trainings", tmp_path / "cache", callbacks=[DiesAt(4)])
    assert not failed.succeeded
    assert failed.path is not None
    assert json.loads((failed.path / STATE_FOLDER / STATE_FILE).read_text())["epoch"] == 5
    points = _tensorboard_points(failed.path / "tensorboard" / "train")
    assert sorted(step for name, step in points if name == "loss") == [1, 2, 3, 4, 5]


def test_a_fit_that_ends_leaves_no_state_behind_even_with_a_write_in_flight(tmp_path):
    config = tiny(epochs=4, trackers=[{"type": "tensorboard"}])
    done = run_experiment(load_config(config), tmp_path / "trainings", tmp_path / "cache")
    assert done.succeeded, done.error
    assert done.path is not None
    time.sleep(0.5)  # a write still in flight would put the folder back
    assert not (done.path / STATE_FOLDER).exists()
    points = _tensorboard_points(done.path / "tensorboard" / "train")
    assert Counter(step for name, step in points if name == "loss") == {s: 1 for s in range(1, 5)}


def test_the_writer_writes_one_at_a_time_the_newest_pending_snapshot_and_flush_waits():
    written: list[int] = []
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def slow_write(snapshot: Snapshot) -> None:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.2)
        written.append(snapshot.epoch)
        with lock:
            in_flight[0] -= 1

    writer = StateWriter(slow_write)
    for epoch in range(1, 6):  # five epochs' snapshots while the first is written
        writer.give(Snapshot(epoch, []))
        time.sleep(0.01)
    assert writer.written == 0  # nothing is whole yet
    writer.flush()
    assert written == [1, 5]  # 2, 3 and 4 were replaced while they waited
    assert writer.written == 5
    assert most[0] == 1
    writer.give(Snapshot(6, []))
    writer.close()  # the fit's end: waits for the write, then the thread ends
    assert written == [1, 5, 6]
    assert "gymnos-kept-state" not in [thread.name for thread in threading.enumerate()]


def test_a_write_that_fails_is_raised_on_the_training_thread():
    def full_disk(snapshot: Snapshot) -> None:
        raise OSError(28, "No space left on device")

    writer = StateWriter(full_disk, written=2)
    writer.give(Snapshot(3, []))
    with pytest.raises(OSError, match="No space left"):
        writer.flush()
    assert writer.written == 2


def test_an_epoch_whose_state_was_written_but_not_yet_given_to_the_trackers_is_given_once_on_resume(tmp_path):
    config = tiny(epochs=6, trackers=[{"type": "tensorboard"}])
    folder = _in_a_process(KILLED_ONCE_THE_FOURTH_STATE_IS_WRITTEN, config, tmp_path)
    before = sorted(step for name, step in _tensorboard_points(folder / "tensorboard" / "train") if name == "loss")
    assert before in ([1, 2, 3], [1, 2, 3, 4])  # the fourth, if its write ended before its epoch's end was over
    _resume(tmp_path, config, folder)
    assert "resumed at epoch 4 (attempt 2)" in (folder / "execution.log").read_text()
    for part in ("train", "validation"):
        points = _tensorboard_points(folder / "tensorboard" / part)
        assert {step: count for (name, step), count in points.items() if name == "loss"} == {s: 1 for s in range(1, 7)}
