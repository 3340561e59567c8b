"""A run's kept state: what a run whose process died (or that was cancelled or failed) needs to go on from the
epoch it reached.

While a run trains, at the end of every ``training.resume_every`` epochs (default ``"auto"``: every epoch unless
keeping it, the snapshot on the training thread and the write's CPU beside it, costs over 3% of the training time,
``kept_state.BUDGET``), its folder
keeps ``.resume/`` (``STATE_FOLDER``)::

    .resume/epoch-4.weights.safetensors   every variable of the model and its optimizer (its learning rate too) after
                                          4 epochs
    .resume/state.json           {"epoch": 4, "weights": "epoch-4.weights.safetensors", "history": {...},
                                  "callbacks": {...}, "random": {...}}
    .resume/previous.json        the state kept before it (epoch 3), naming epoch-3.weights.safetensors
    .resume/mlflow.json          the run's MLflow run, which a resumed run goes on with (``trackers``)

The state is taken in memory at the epoch's end (``state_writer.Snapshot``) and written by a thread of its own while
the next epoch trains (``state_writer.StateWriter``: one write at a time; a newer snapshot replaces one still
waiting; the fit's end and a failure wait for the write in flight). A kill while epoch N's state is being written
(early in epoch N+1) finds state N-1 whole: epoch N is trained again, with the part of N+1 that was done; a kill after
that write ended trains again only the part of the epoch it was in. So at most one whole epoch is trained again, as
long as a write takes less than an epoch (the Boston example's: a few ms against an epoch of 50-100 ms; when writes
are slower than epochs they coalesce, and the epochs since the last written state are trained again).

The weights file is a safetensors file (``state_writer.variables_bytes``: each variable a tensor named by its place,
its path in the metadata; an HDF5 file a run kept before 2026-12-07 is read too), not Keras' ``save_weights``,
which took about twice as long each epoch, nor HDF5, which took three times safetensors' CPU. Each write puts the
weights file whole first (``fileops.write``: a temporary file, fsynced, renamed over it), then moves ``state.json``
to ``previous.json`` (a rename), then writes the new ``state.json`` atomically the same way, and only then removes
the weights files neither names (and any temporary file a kill left). A process killed at any moment leaves at
least one whole state, and reading falls back from ``state.json`` to ``previous.json`` when the first is missing,
is not JSON, names a weights file that is missing or not whole, or fails to load (``kept_states``; ``KeptState``
loads the first that loads, every variable, so a model is
never left half-loaded from a bad file). When none can be used the run fails, naming each file and what was wrong
with it. Keras' own ``BackupAndRestore`` writes ``latest.weights.h5`` in place and its epoch in a second file after
it, so a kill while it writes leaves a half-written file or weights one epoch ahead of the epoch said: ``KeptState``
extends it with the layout above. A run that trains to its end removes the folder; one that fails, is cancelled or
is killed keeps it.

Kept with the weights: the state of the callbacks that changes the result (``kept_state.callback_states``): early
stopping's ``best``, ``wait`` and ``best_epoch``; ReduceLROnPlateau's ``best``, ``wait`` and ``cooldown_counter``
(the rate it lowered is the optimizer's, in the weights); the LR schedulers' initial rate (their position is the
epoch, which the resumed fit starts from); the checkpoint callback's ``best`` and the files its retention counts;
and the random state: Python's ``random``, NumPy's global generator, Keras' global seed generator (the layers'
own seed generators, dropout's, are variables kept in the weights). Not kept: TensorFlow's op-level random state
(``fit``'s shuffling of the samples each epoch draws from it), which has no public way to be read back, so the
epochs after a resume see the samples in another order than an uninterrupted run would; and early stopping's
``best_weights`` (with ``restore_best_weights``, a best epoch from before the resume is not restored at the end).

A run started again on the same folder (``Resume``) loads that state before its first epoch and trains the epochs
left; its History starts with the kept histories, so metrics.json and every history have each epoch once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from .jsonlimits import loads

log = logging.getLogger("gymnosd.Trainer")

STATE_FOLDER = ".resume"
STATE_FILE = "state.json"
# The weights files a kept state may name: safetensors since 2026-12-07, HDF5 before (still read: a run killed
# before an upgrade resumes after it).
WEIGHTS_SUFFIXES = (".weights.safetensors", ".weights.h5")
PREVIOUS_FILE = "previous.json"  # the state kept before state.json's: the one to fall back to
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
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # kept_state.callback_states
    random: dict[str, Any] = field(default_factory=dict)  # kept_state.random_state
    source: Path | None = None  # the file that said it (state.json or previous.json)


class StateError(ValueError):
    """A kept state that cannot be read back (named, with why): the run is not half-loaded from it."""


def has_kept_state(run_folder: str | Path) -> bool:
    """Whether ``run_folder`` keeps a state to resume from (``state.json`` or ``previous.json``, and its weights)."""
    try:
        return read_kept(run_folder) is not None
    except StateError:
        return False


def read_kept(run_folder: str | Path) -> Kept | None:
    """The state ``run_folder`` keeps, the newest that reads (``kept_states``); None if it keeps none;
    ``StateError`` naming each file and why when none reads."""
    states = kept_states(run_folder)
    return states[0] if states else None


def kept_states(run_folder: str | Path) -> list[Kept]:
    """The states ``run_folder`` keeps that read whole, newest first (``state.json``, then ``previous.json``); []
    when it keeps none. ``StateError`` (naming each file and what is wrong with it) when it keeps some and none
    reads. Each problem of a state passed over is logged as a warning."""
    folder = Path(run_folder) / STATE_FOLDER
    found: list[Kept] = []
    problems: list[str] = []
    for name in (STATE_FILE, PREVIOUS_FILE):
        path = folder / name
        if not path.is_file() or path.is_symlink():
            continue
        try:
            found.append(_read_one(path, folder))
        except StateError as exc:
            problems.append(str(exc))
    if not found and problems:
        raise StateError("; ".join(problems))
    for problem in problems:
        log.warning(f"{problem}: going on from the state kept before it")
    return found


def _read_one(path: Path, folder: Path) -> Kept:
    try:
        with open(path, "rb") as handle:
            data = handle.read(STATE_BYTES + 1)
    except OSError as exc:
        raise StateError(f"{path} cannot be read: {exc}") from exc
    return kept_from(data, folder.parent, path.name)


def kept_from(data: bytes, run_folder: str | Path, name: str = STATE_FILE) -> Kept:
    """The state ``data`` (the bytes of ``name``, ``state.json`` by default, read by whoever may read the folder:
    the web side through its bounded reader) says ``run_folder`` keeps; ``StateError`` if it is not one."""
    folder = Path(run_folder) / STATE_FOLDER
    path = folder / name
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
    if not isinstance(weights, str) or "/" in weights or not weights.endswith(WEIGHTS_SUFFIXES):
        raise StateError(f"{path}: weights must name a .weights.safetensors file in {folder}, not {weights!r}")
    weights_path = folder / weights
    if not weights_path.is_file() or weights_path.is_symlink():
        raise StateError(f"{path}: the weights it names ({weights_path}) are missing")
    _check_whole(weights_path, path)
    if not isinstance(history, dict) or not all(isinstance(values, list) for values in history.values()):
        raise StateError(f"{path}: history must map each metric to its list of values")
    callbacks, random = state.get("callbacks", {}), state.get("random", {})
    if not isinstance(callbacks, dict) or not isinstance(random, dict):
        raise StateError(f"{path}: callbacks and random must be objects")
    # Each history cut to the epochs the weights were trained for: no epoch twice, none after them.
    kept = {str(name): [float(value) for value in values[:epoch]] for name, values in history.items()}
    return Kept(epoch, weights_path, kept, callbacks, random, path)


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The metadata of the safetensors file ``path``; ``ValueError`` when it is not a whole one (safetensors checks
    that its header's tensors cover the file exactly)."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"it is not a whole safetensors file: {exc}") from exc


def _check_whole(weights: Path, state: Path) -> None:
    """A weights file cut short (a full disk, a copy stopped halfway) is not one its reader opens: safetensors
    (``safetensors_metadata``), or HDF5 for the files before safetensors."""
    if weights.name.endswith(".safetensors"):
        try:
            safetensors_metadata(weights)
        except ValueError as exc:
            raise StateError(f"{state}: the weights it names ({weights}): {exc}") from exc
        return
    import h5py  # Keras' own dependency; here, so the web side does not load it until a state is read

    try:
        with h5py.File(weights, "r") as handle:
            handle.keys()
    except (OSError, ValueError) as exc:
        raise StateError(f"{state}: the weights it names ({weights}) are not a whole HDF5 file: {exc}") from exc


def resumed_line(epoch: int, attempt: int) -> str:
    return f"resumed at epoch {epoch} (attempt {attempt})"
