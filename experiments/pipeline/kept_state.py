"""``KeptState``: the Keras callback that keeps a run's state and loads it back (the layout: ``resume``).

Besides the weights, it keeps what else changes the result of the epochs still to train: the callbacks' own
counters (``callback_states``) and the random generators' state (``random_state``). Imports Keras: load lazily.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import numpy as np
from safetensors import SafetensorError, safe_open

from . import checkpoints, fileops
from .jsonlimits import loads
from .resume import STATE_FILE, STATE_FOLDER, Kept, StateError, resumed_line, safetensors_metadata
from .state_writer import KEPT_FORMAT, Snapshot, StateWriter, variables_bytes, write_state

log = logging.getLogger("gymnosd.Trainer")

# The attributes of a callback that carry its decisions from one epoch to the next: early stopping's and
# ReduceLROnPlateau's best value, the epochs waited since it and the cooldown left; the checkpoint's best; a
# Gymnos LR scheduler's initial rate. Those a callback has are kept, numbers only.
KEPT_ATTRIBUTES = ("best", "wait", "best_epoch", "cooldown_counter", "initial")

# ``resume_every: "auto"``: the most of the training time keeping the state may take: the snapshot on the training
# thread and the write's CPU on the writer's (on a machine whose cores the training fills, the write's CPU is taken
# from the training beside it). A state is kept at an epoch's end once the training since the last one took at
# least what the last state cost divided by this: every epoch unless an epoch is shorter than about 33 states' cost.
BUDGET = 0.03
# ... and at least every this many epochs whatever the cost, so a crash trains at most one whole epoch again (the
# Boston example's state costs about 4 ms against 80 ms epochs here: every second epoch, 2.5% of the training).
MOST_APART = 2
SNAPSHOTS_MEASURED = 5  # the snapshots whose median time "auto" counts


def _number(value: Any) -> float | int | str | None:
    """A number as JSON keeps it: an infinity or NaN (a best not yet seen) as its name."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else str(float(value))
    return None


def _unnumber(value: Any) -> float | int:
    return float(value) if isinstance(value, str) else value


def callback_states(callbacks: Sequence[keras.callbacks.Callback]) -> dict[str, dict[str, Any]]:
    """Each of the config's callbacks' state, by its place and class (``"0:EarlyStopping"``)."""
    states: dict[str, dict[str, Any]] = {}
    for index, callback in enumerate(callbacks):
        state: dict[str, Any] = {
            name: _number(getattr(callback, name))
            for name in KEPT_ATTRIBUTES
            if _number(getattr(callback, name, None)) is not None
        }
        saved = getattr(callback, "saved", None)
        if isinstance(saved, list):  # PeriodicModelCheckpoint: the files its retention counts
            state["saved"] = [[item.path, item.epoch, _number(item.value)] for item in saved]
        if state:
            states[f"{index}:{type(callback).__name__}"] = state
    return states


def restore_callback_states(callbacks: Sequence[keras.callbacks.Callback], states: dict[str, Any]) -> None:
    """Put back what ``callback_states`` kept, after the callbacks' own ``on_train_begin`` reset it."""
    for index, callback in enumerate(callbacks):
        state = states.get(f"{index}:{type(callback).__name__}")
        if not isinstance(state, dict):
            continue
        for name in KEPT_ATTRIBUTES:
            if name in state:
                setattr(callback, name, _unnumber(state[name]))
        if isinstance(state.get("saved"), list):
            callback.saved = [
                checkpoints.Saved(str(path), int(epoch), None if value is None else float(_unnumber(value)))
                for path, epoch, value in state["saved"]
            ]


def random_state() -> dict[str, Any]:
    """Python's and NumPy's global generators, and Keras' global seed generator (if one was made)."""
    from keras.src.backend.common import global_state  # no public way to reach the global seed generator

    numpy = np.random.get_state(legacy=False)
    version, python_state, python_gaussian = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(python_state), python_gaussian],
        "numpy": {
            "bit_generator": numpy["bit_generator"],
            "key": [int(value) for value in numpy["state"]["key"]],
            "pos": int(numpy["state"]["pos"]),
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        },
    }
    generator = global_state.get_global_attribute("global_seed_generator")
    if generator is not None:
        state["keras"] = [int(value) for value in keras.ops.convert_to_numpy(generator.state)]
    return state


def restore_random_state(state: dict[str, Any]) -> None:
    """Put back what ``random_state`` kept."""
    from keras.src.random import seed_generator

    if isinstance(state.get("python"), list):
        version, python_state, gaussian = state["python"]
        random.setstate((version, tuple(python_state), gaussian))
    numpy = state.get("numpy")
    if isinstance(numpy, dict):
        key = np.asarray(numpy["key"], dtype=np.uint32)
        np.random.set_state((numpy["bit_generator"], key, numpy["pos"], numpy["has_gauss"], numpy["gauss"]))
    if isinstance(state.get("keras"), list):
        seed_generator.global_seed_generator().state.assign(np.asarray(state["keras"], dtype="int64"))


def _variables(model: keras.Model) -> list[Any]:
    """Every variable a resumed run needs, in an order that depends only on the config: the model's (weights, and
    its layers' seed generators: dropout's) and its optimizer's (its step, learning rate and slots)."""
    optimizer = model.optimizer.variables if model.optimizer is not None else []
    return [*model.variables, *optimizer]


def _own(value: Any) -> np.ndarray:
    """``value`` as a NumPy array no training that goes on can change: a read of a variable that is already an
    array of its own (``owndata``, TensorFlow's) is kept, one that is a view of a buffer is copied."""
    array = np.asarray(value)
    return array if array.flags.owndata else array.copy()


class VariableReader:
    """Reads every variable of the model and its optimizer (``_variables``) at once, as arrays of their own.

    With TensorFlow, one traced function reads them all (one call instead of one eager read each: about a quarter
    of the time for the Boston model's 20 variables); traced at the first read, so ``KeptState`` reads once before
    the first epoch. Another backend reads them one by one."""

    def __init__(self, model: keras.Model) -> None:
        self.variables = _variables(model)
        self.paths = [variable.path for variable in self.variables]
        self._read: Any = None
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            values = [variable.value for variable in self.variables]
            self._read = tf.function(lambda: [tf.identity(value) for value in values], autograph=False)

    def __call__(self) -> list[tuple[str, np.ndarray]]:
        if self._read is None:
            values = [keras.ops.convert_to_numpy(variable) for variable in self.variables]
        else:
            values = [tensor.numpy() for tensor in self._read()]
        return [(path, _own(value)) for path, value in zip(self.paths, values, strict=True)]


def snapshot_variables(model: keras.Model) -> list[tuple[str, np.ndarray]]:
    """Every variable of the model and its optimizer (``_variables``), as arrays of their own, read once."""
    return VariableReader(model)()


def save_variables(model: keras.Model, path: Path) -> None:
    """The model's and its optimizer's variables in one safetensors file (``variables_bytes``; Keras' save_weights
    takes several times as long walking its objects), written atomically (``fileops.write``)."""
    fileops.write(path.parent, path.name, variables_bytes(snapshot_variables(model)))


def is_kept_variables(path: Path) -> bool:
    """Whether ``path`` is a file ``save_variables`` wrote (a run's kept state), not one of Keras' own: a safetensors
    file of ours, or (written before 2026-12-07) an HDF5 file with a ``count``."""
    if path.name.endswith(".safetensors"):
        try:
            return safetensors_metadata(path).get("format") == KEPT_FORMAT
        except ValueError:
            return False
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return "count" in handle.attrs
    except OSError:
        return False


def load_variables(model: keras.Model, path: Path, optimizer: bool = True) -> None:
    """What ``save_variables`` wrote, every variable checked before any is set: a file that does not fit the model
    (cut short, another model's) raises ``ValueError`` naming the first that does not fit, and changes nothing.
    ``optimizer`` False: the model's variables alone (they come first), for a model with another optimizer.
    A kept state's HDF5 file from before safetensors (packed by dtype, or one dataset a variable) is read too."""
    variables = _variables(model) if optimizer else list(model.variables)
    with _opened(path) as (count, read):
        enough = isinstance(count, (int, np.integer)) and count >= len(variables)
        if count != len(variables) and (optimizer or not enough):
            raise ValueError(f"it holds {count} variables, the model and its optimizer {len(variables)}")
        values = []
        for index, variable in enumerate(variables):
            value = read(index)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{variable.path} has shape {tuple(variable.shape)}, the file {tuple(value.shape)}")
            values.append(value)
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


@contextmanager
def _opened(path: Path) -> Iterator[tuple[Any, Callable[[int], np.ndarray]]]:
    """The count of variables ``path`` says it holds and a reader of the one at a place (``ValueError`` when it has
    none there), for a safetensors file of ours or an HDF5 one from before."""
    if path.name.endswith(".safetensors"):
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = handle.metadata() or {}
                count = int(metadata["count"]) if str(metadata.get("count", "")).isdigit() else None
                names = set(handle.keys())

                def tensor(index: int) -> np.ndarray:
                    if str(index) not in names:
                        raise ValueError(f"it has no variable {index}")
                    return handle.get_tensor(str(index))

                yield count, tensor
        except SafetensorError as exc:
            raise ValueError(f"it is not a whole safetensors file: {exc}") from exc
        return
    import h5py

    with h5py.File(path, "r") as handle:
        read = _packed(handle) if "layout" in handle.attrs else (lambda index: handle[str(index)][()])
        yield handle.attrs.get("count"), read


def _packed(handle: Any) -> Any:
    """The reader of the HDF5 layout kept states had from 2026-12-06 to safetensors (one dataset per dtype,
    ``packed-N``, and a JSON ``layout``: ``[[the dataset's index, offset, shape], ...]`` by place): the variable at
    a place, as an array of its shape; a layout that does not fit its datasets (cut short, not ours) raises
    ``ValueError``. A file written before the layout was packed has one dataset a variable, by place."""
    layout = loads(str(handle.attrs["layout"]).encode(), max_bytes=64 * 2**20, what="the weights file's layout")
    groups = [handle[f"packed-{index}"][()] for index in range(len(handle.attrs.get("dtypes", [])))]

    def read(index: int) -> np.ndarray:
        try:
            group, offset, shape = layout[index]
            size = math.prod(shape)
            values = groups[group]
            if not 0 <= offset <= offset + size <= values.size:
                raise ValueError
            return np.asarray(values[offset : offset + size]).reshape(shape)
        except (IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"its layout has no whole variable {index}") from exc

    return read


class KeptState(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` with a state written so a kill never leaves half of one (``resume``'s layout), off the
    training thread (``state_writer``).

    It must come after the run's ``History`` and the config's callbacks (``watched``) in the callback list: the
    state it keeps at an epoch's end has that epoch's logs, and it puts the callbacks' state back after their own
    ``on_train_begin`` reset it. ``kept``: the states read before fitting, newest first; the first that loads is
    loaded on the fit's start (``attempt``: said in the log). ``every``: keep a state every N epochs, or
    ``"auto"``: at the end of the first epoch, then of each epoch that ends at least a state's cost / ``BUDGET``
    after the last snapshot ended (``cost``: the snapshot the training thread pays and the write's CPU on the
    writer thread), and at least every ``MOST_APART`` epochs. ``kept_epoch``: the epochs the newest state WRITTEN
    holds (the trackers get those only). ``flush()`` waits for the write in flight: the fit's end calls it, and the
    trainer on a failure.
    """

    def __init__(
        self,
        run_folder: Path,
        history: keras.callbacks.History,
        kept: Sequence[Kept] = (),
        watched: Sequence[keras.callbacks.Callback] = (),
        every: int | str = 1,
        attempt: int = 1,
    ) -> None:
        super().__init__(backup_dir=str(run_folder / STATE_FOLDER), save_freq="epoch", delete_checkpoint=True)
        self.run_folder = run_folder
        self.folder = run_folder / STATE_FOLDER
        self.run_history = history
        self.kept = list(kept)
        self.watched = list(watched)
        self.every = every
        self.attempt = attempt
        self.loaded: Kept | None = None
        self.previous: str | None = None  # the weights file state.json names (previous.json's from the next write)
        self.wrote = False  # whether this fit wrote state.json yet
        self.writer = StateWriter(self._write)
        self.reader: VariableReader | None = None  # made (and traced) at the fit's start
        # The last snapshots' times on the training thread ("auto": their median, so one the system paused for
        # does not thin the states kept), and when the last ended (time.perf_counter).
        self.snapshot_seconds: deque[float] = deque(maxlen=SNAPSHOTS_MEASURED)
        self.snapshot_at = 0.0
        self.snapshot_epoch = 0  # the epoch of the last snapshot taken (or of the state loaded)

    @property
    def kept_epoch(self) -> int:
        """The epochs the newest state on disk holds (a snapshot still being written is not counted)."""
        return self.writer.written

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._load_model()
        self._reader()

    def _reader(self) -> VariableReader:
        if self.reader is None:
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)  # its variables are read from the first
            self.reader = VariableReader(self.model)
            self.reader()  # traced now, not in the first epoch's snapshot ("auto" measures that)
        return self.reader

    def _load_model(self) -> None:
        if not self.kept:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its variables exist before they are loaded
        problems = []
        for kept in self.kept:
            try:
                load_variables(self.model, kept.weights)  # all of them, or none
            except (OSError, ValueError, KeyError) as exc:
                problems.append(f"the kept weights {kept.weights} (named by {kept.source}) cannot be loaded: {exc}")
                continue
            for problem in problems:
                log.warning(f"{problem}: going on from the state kept before it")
            self._go_on_from(kept)
            return
        raise StateError("; ".join(problems))

    def _go_on_from(self, kept: Kept) -> None:
        log.info(resumed_line(kept.epoch, self.attempt))
        self.run_history.history = {name: list(values) for name, values in kept.history.items()}
        restore_callback_states(self.watched, kept.callbacks)
        restore_random_state(kept.random)
        self.model._initial_epoch = kept.epoch
        self._current_epoch = kept.epoch
        self.snapshot_epoch = kept.epoch
        self.writer.written = kept.epoch
        self.loaded = kept
        self.previous = kept.weights.name

    def _due(self) -> bool:
        if isinstance(self.every, int):
            return self._current_epoch % self.every == 0
        if not self.snapshot_seconds or self._current_epoch - self.snapshot_epoch >= MOST_APART:
            return True  # the first (its cost is measured), or MOST_APART epochs since the last
        return time.perf_counter() - self.snapshot_at >= self.cost() / BUDGET

    def cost(self) -> float:
        """What keeping a state costs in seconds of CPU: the median of the last snapshots (training thread) and of
        the last writes' CPU (writer thread; none measured yet counts as none). Medians, so one the system paused
        for does not thin the states kept."""
        writes = list(self.writer.write_cpu)
        return statistics.median(self.snapshot_seconds) + (statistics.median(writes) if writes else 0.0)

    def _save_model(self) -> None:
        if not self._due():
            return
        started = time.perf_counter()
        self.writer.give(self.snapshot())
        self.snapshot_at, self.snapshot_epoch = time.perf_counter(), self._current_epoch
        self.snapshot_seconds.append(self.snapshot_at - started)

    def snapshot(self) -> Snapshot:
        """The state at the end of the epoch just trained, in memory (the training thread's part of a save)."""
        history = {key: [float(value) for value in values] for key, values in self.run_history.history.items()}
        state = {"history": history, "callbacks": callback_states(self.watched), "random": random_state()}
        return Snapshot(self._current_epoch, self._reader()(), state)

    def _write(self, snapshot: Snapshot) -> None:
        """On the writer's thread: ``snapshot`` on disk (``state_writer.write_state``)."""
        write_state(self.folder, snapshot, self.previous, self._state_file_is_good())
        self.previous = snapshot.weights  # what previous.json names from the next write on
        self.wrote = True

    def flush(self) -> None:
        """Wait until the last snapshot is on disk (raises a write that failed), and end the writer's thread."""
        self.writer.close()

    def _state_file_is_good(self) -> bool:
        """Whether state.json is a state to fall back to: one this run wrote, or the one it resumed from (a run
        that fell back from a bad state.json to previous.json keeps previous.json and writes state.json over)."""
        if not (self.folder / STATE_FILE).is_file():
            return False
        return self.wrote or self.loaded is None or self.loaded.source is None or self.loaded.source.name == STATE_FILE

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Trained to the end: the state is no longer needed (a failure or a kill never gets here). The write in
        flight is waited for first, so it cannot put the folder back."""
        self.flush()
        fileops.remove(self.run_folder, STATE_FOLDER, missing_ok=True)
