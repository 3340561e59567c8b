"""A run's kept state: what a run whose process died needs to go on from the epoch it reached.

While a run trains, at the end of each epoch, its folder keeps ``.resume/`` (``STATE_FOLDER``)::

    .resume/epoch-3.weights.h5   the model's weights and its optimizer's state after 3 epochs
    .resume/state.json           {"epoch": 3, "weights": "epoch-3.weights.h5", "history": {"loss": [...], ...}}

``state.json`` is written last and atomically (``fileops.write``: a temporary file renamed over it), and it
names a weights file written whole before it: a process killed at any moment leaves the previous state whole
(the weights it names, the epochs they were trained for, and each metric's history up to there). Keras' own
``BackupAndRestore`` writes ``latest.weights.h5`` in place and its epoch in a second file after it, so a kill
while it writes leaves a half-written file or weights one epoch ahead of the epoch said: ``KeptState`` extends it
with the layout above (``keras_callbacks.KeptState``). A run that trains to its end removes the folder; one
that fails or is killed keeps it.

A run started again on the same folder (``Resume``) loads that state before its first epoch and trains the epochs
left; its History starts with the kept histories, so metrics.json and every history have each epoch once.
What is not kept (yet): callbacks' own state (early stopping's wait, a plateau's counter, a checkpoint's best) and
the random generators' state; a resumed run restarts those from the epoch it resumes at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jsonlimits import loads

STATE_FOLDER = ".resume"
STATE_FILE = "state.json"
# The most of state.json read back: the histories of a long run (a float is ~20 bytes: 100 metrics x 10,000 epochs).
STATE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Resume:
    """Train again in ``folder`` (the run's own), from its kept state; ``attempt`` counts from 1 (the first run)."""

    folder: Path
    attempt: int = 2


@dataclass(frozen=True)
class Kept:
    epoch: int  # epochs trained (the next one to train, counted from 0)
    weights: Path
    history: dict[str, list[float]]


class StateError(ValueError):
    """A kept state that cannot be read back (named, with why): the run is not half-loaded from it."""


def has_kept_state(run_folder: str | Path) -> bool:
    """Whether ``run_folder`` keeps a state to resume from (its ``state.json`` and the weights it names)."""
    try:
        return read_kept(run_folder) is not None
    except StateError:
        return False


def read_kept(run_folder: str | Path) -> Kept | None:
    """The state ``run_folder`` keeps; None if it keeps none; ``StateError`` if it is unreadable."""
    folder = Path(run_folder) / STATE_FOLDER
    path = folder / STATE_FILE
    if not path.is_file() or path.is_symlink():
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read(STATE_BYTES + 1)
    except OSError as exc:
        raise StateError(f"{path} cannot be read: {exc}") from exc
    return kept_from(data, run_folder)


def kept_from(data: bytes, run_folder: str | Path) -> Kept:
    """The state ``data`` (``state.json``'s bytes, read by whoever may read the folder: the web side through its
    bounded reader) says ``run_folder`` keeps; ``StateError`` if it is not one."""
    folder = Path(run_folder) / STATE_FOLDER
    path = folder / STATE_FILE
    try:
        state = loads(data, max_bytes=STATE_BYTES, what=str(path))
    except ValueError as exc:
        raise StateError(f"{path} cannot be read: {exc}") from exc
    return _checked(state, folder, path)


def _checked(state: Any, folder: Path, path: Path) -> Kept:
    if not isinstance(state, dict):
        raise StateError(f"{path}: expected an object")
    epoch, weights, history = state.get("epoch"), state.get("weights"), state.get("history")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise StateError(f"{path}: epoch must be a whole number of epochs, not {epoch!r}")
    if not isinstance(weights, str) or "/" in weights or not weights.endswith(".weights.h5"):
        raise StateError(f"{path}: weights must name a .weights.h5 file in {folder}, not {weights!r}")
    weights_path = folder / weights
    if not weights_path.is_file() or weights_path.is_symlink():
        raise StateError(f"{path}: the weights it names ({weights}) are missing")
    if not isinstance(history, dict) or not all(isinstance(values, list) for values in history.values()):
        raise StateError(f"{path}: history must map each metric to its list of values")
    # Each history cut to the epochs the weights were trained for: no epoch twice, none after them.
    kept = {str(name): [float(value) for value in values[:epoch]] for name, values in history.items()}
    return Kept(epoch, weights_path, kept)


def resumed_line(epoch: int, attempt: int) -> str:
    return f"resumed at epoch {epoch} (attempt {attempt})"
