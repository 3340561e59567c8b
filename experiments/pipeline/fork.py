"""A fork's start (#23): a new run, in a folder of its own, that trains on from weights its parent saved.

Its parent's file (a checkpoint, ``callbacks/model_checkpoint/weights.05.h5``; the state a run keeps while it
trains, ``.resume/epoch-5.weights.safetensors``; or the model it ended with, ``model.h5``) is copied into the child's
folder first (``fork/<name>``, through ``fileops``: no link followed, the copy whole or absent), and the model
loads it from there before its first epoch::

    start = Start(Path(parent_folder), "callbacks/model_checkpoint/weights.05.h5", epoch=5, optimizer=True)
    run_experiment(config, start=start)   # its metrics.json counts its own epochs from 0

The optimizer's state (Adam's moments, its step count) comes too when it still means something: the same
network and the same optimizer type (``optimizer_dropped`` says why not). A changed learning rate keeps the
moments and trains at the new rate: the rate is a variable of the optimizer's state, set back to the config's
after loading. A changed network or optimizer type starts a fresh optimizer (the weights still load when the
changed network has the same variables; when it has not, the run fails naming the file and why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import fileops

if TYPE_CHECKING:
    import keras

log = logging.getLogger("gymnosd.Trainer")

# Where the child keeps the copy of its parent's file.
FORK_FOLDER = "fork"


@dataclass(frozen=True)
class Start:
    """Train from ``file`` (a path inside ``folder``, the parent's), trained for ``epoch`` epochs of its parent."""

    folder: Path
    file: str
    epoch: int
    optimizer: bool = True
    why: str = ""  # why the optimizer's state is not kept (optimizer_dropped)


class StartError(ValueError):
    """The parent's file cannot be copied or loaded (named, with why): the run does not train from scratch instead."""


def optimizer_dropped(parent: Any, child: Any) -> str | None:
    """Why the child's optimizer cannot start from its parent's state (two config dicts), or None when it can.

    >>> optimizer_dropped({"model": {"compilation": {"optimizer": "adam"}}},
    ...                   {"model": {"compilation": {"optimizer": {"type": "sgd"}}}})
    'the optimizer type changed (adam -> sgd): its state would mean nothing to the new one'
    """
    parent_model, child_model = _section(parent, "model"), _section(child, "model")
    for key in ("network", "input_shape"):
        if parent_model.get(key) != child_model.get(key):
            return f"the network changed (model.{key}): the optimizer's state belongs to the old variables"
    before = _optimizer_type(_section(parent_model, "compilation").get("optimizer"))
    after = _optimizer_type(_section(child_model, "compilation").get("optimizer"))
    if before != after:
        return f"the optimizer type changed ({before} -> {after}): its state would mean nothing to the new one"
    return None


def _section(config: Any, key: str) -> dict[str, Any]:
    value = config.get(key) if isinstance(config, dict) else None
    return value if isinstance(value, dict) else {}


def _optimizer_type(spec: Any) -> str:
    name = spec.get("type") if isinstance(spec, dict) else spec
    return str(name).lower().replace("_", "") if name is not None else "(none)"


def copy_into(start: Start, run_folder: Path) -> Path:
    """Copy the parent's file into ``run_folder/fork/``; returns the copy's path. ``StartError`` if it cannot."""
    name = Path(start.file).name
    copy = run_folder / FORK_FOLDER / name
    if copy.is_file() and not copy.is_symlink():
        return copy  # copied by an earlier attempt of this run (its worker died before it kept a state)
    try:
        fileops.copy_file(start.folder, start.file, run_folder, f"{FORK_FOLDER}/{name}")
    except OSError as exc:
        raise StartError(f"the parent's file {start.folder / start.file} cannot be copied: {exc}") from exc
    return copy


def load(model: keras.Model, path: Path, optimizer: bool) -> None:
    """Load ``path``'s weights into ``model`` (compiled), and its optimizer's state when ``optimizer``.

    The config's learning rate is set back after loading: a fork with a lower rate trains at the lower rate.
    With ``optimizer`` false the caller compiles the model again (a fresh optimizer, weights untouched).
    """
    model_optimizer = model.optimizer
    if model_optimizer is not None and not model_optimizer.built:
        model_optimizer.build(model.trainable_variables)  # its variables exist before they are loaded
    rate = _rate(model_optimizer)
    from . import kept_state  # here: it imports Keras, which validating a config must not (tests/test_config.py)

    try:
        if kept_state.is_kept_variables(path):  # a run's kept state (.resume/epoch-N.weights.safetensors)
            kept_state.load_variables(model, path, optimizer)
        elif path.name.endswith((".h5", ".hdf5")) and not path.name.endswith(".weights.h5"):
            model.load_weights(str(path))  # a whole model in Keras' legacy HDF5 format: its layers' weights
            if optimizer:
                _load_legacy_optimizer(model, path)
        elif path.name.endswith(".weights.h5") and not optimizer:
            model.load_weights(str(path), objects_to_skip=[model_optimizer])  # the model's variables alone
        else:
            model.load_weights(str(path))  # .weights.h5 or .keras: the model's and its optimizer's variables
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StartError(f"the parent's weights {path} do not load into this run's model: {exc}") from exc
    if rate is not None:
        model_optimizer.learning_rate = rate


def _rate(optimizer: Any) -> float | None:
    """The config's learning rate when it is a plain number (a schedule follows the step count it loads)."""
    import keras

    if optimizer is None or not isinstance(getattr(optimizer, "_learning_rate", None), keras.Variable):
        return None
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _load_legacy_optimizer(model: keras.Model, path: Path) -> None:
    """The optimizer's variables a legacy ``.h5`` model file holds (``model.save(..., include_optimizer=True)``).

    Keras reads them only in ``load_model``, which builds a second model; its own reader of that group is used
    here on the model already built (``legacy_h5_format``: Keras' private module, the one that wrote them).
    """
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "r") as handle:
        if "optimizer_weights" not in handle:
            log.warning(f"{path.name} holds no optimizer state: the optimizer starts fresh")
            return
        values = [np.asarray(value) for value in legacy_h5_format.load_optimizer_weights_from_hdf5_group(handle)]
    model.optimizer.set_weights(values)


def started_line(start: Start) -> str:
    kept = "kept" if start.optimizer else f"not kept: {start.why or 'asked'}"
    return f"Forked from {start.folder / start.file} at its epoch {start.epoch}; the optimizer's state {kept}"
