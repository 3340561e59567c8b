"""Writing a run's kept state to disk off the training thread (#23): ``Snapshot`` and ``StateWriter``.

``KeptState`` takes a ``Snapshot`` at an epoch's end, on the training thread: every variable of the model and its
optimizer copied to NumPy arrays, the History, the callbacks' and random state, all of exactly that epoch. A
``StateWriter`` thread writes it in ``resume``'s layout while the next epoch trains: the weights file whole first
(``fileops.write``: a temporary file, fsynced, renamed into place), then ``state.json`` moved to ``previous.json``,
then the new ``state.json`` (atomically too), then the weights files neither names removed. A process killed at any
moment, mid-write included, leaves the last whole state as it was; what a kill leaves half-written is a temporary
file (``.name.<hex>.tmp``), which no reader opens and the next writer removes.

At most one write is in flight. A snapshot given while one is written waits; a newer one given before it starts
replaces it (only the newest pending one is written: the writes never fall further behind than one). ``written``:
the epoch of the newest state whole on disk, what the trackers may be given (``keras_callbacks.TrackerBridge``).
``flush`` waits until every snapshot given is written; ``close`` (the fit's end, a failure) also ends the thread. A
write that failed is raised there, or when the next snapshot is given.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save

from . import fileops
from .resume import PREVIOUS_FILE, STATE_FILE, WEIGHTS_SUFFIXES

WEIGHTS = "epoch-{epoch}.weights.safetensors"
KEPT_FORMAT = "gymnos-kept-variables"
WRITES_MEASURED = 5  # the writes whose CPU time ``write_cpu`` keeps


@dataclass(frozen=True)
class Snapshot:
    """A run's state at the end of epoch ``epoch``, in memory: what ``state.json`` and its weights file hold."""

    epoch: int
    variables: list[tuple[str, np.ndarray]]  # (the variable's path, its value), the model's then its optimizer's
    state: dict[str, Any] = field(default_factory=dict)  # history, callbacks, random: state.json's other keys

    @property
    def weights(self) -> str:
        return WEIGHTS.format(epoch=self.epoch)


def variables_bytes(variables: list[tuple[str, np.ndarray]]) -> bytes:
    """The variables as one safetensors file (``kept_state.load_variables`` reads it), returned whole, for
    ``fileops.write`` to write atomically: each variable a tensor named by its place (``"0"``, ``"1"``, ...), and
    the metadata ``format`` (``KEPT_FORMAT``), ``count`` and ``paths`` (JSON).

    safetensors (a JSON header, then the raw arrays) is made in about a third of the CPU time HDF5's in-memory file
    took (0.4 against 1.2 ms for the Boston model's 20 variables), time the training beside the writer paid."""
    # C order, each its own shape (np.ascontiguousarray alone makes a scalar, the optimizer's step, one of shape (1,)).
    tensors = {str(index): np.require(value, requirements="C") for index, (_, value) in enumerate(variables)}
    paths = json.dumps([name for name, _ in variables], separators=(",", ":"))
    return save(tensors, metadata={"format": KEPT_FORMAT, "count": str(len(variables)), "paths": paths})


def write_state(folder: Path, snapshot: Snapshot, previous: str | None, fall_back: bool) -> None:
    """``snapshot`` in ``folder`` (``resume``'s layout), each step leaving a whole state behind it. ``previous``:
    the weights file ``state.json`` names now (kept for ``previous.json``); ``fall_back``: whether that state.json is
    one to fall back to (moved to ``previous.json``)."""
    folder.mkdir(exist_ok=True)
    fileops.write(folder, snapshot.weights, variables_bytes(snapshot.variables))
    state = {"epoch": snapshot.epoch, "weights": snapshot.weights, **snapshot.state}
    if fall_back and (folder / STATE_FILE).is_file():
        fileops.move(folder, STATE_FILE, PREVIOUS_FILE, replace=True)  # the state to fall back to
    # Compact (a random state is over a thousand numbers): written each epoch, read back once.
    fileops.write(folder, STATE_FILE, json.dumps(state, separators=(",", ":")).encode())
    named = {snapshot.weights, previous}
    for old in folder.glob("epoch-*.weights.*"):
        if old.name.endswith(WEIGHTS_SUFFIXES) and old.name not in named:
            fileops.remove(folder, old.name, missing_ok=True)
    # A write of this writer's that a kill cut short (fileops.write's temporary files); not another writer's (the
    # MLflow process writes mlflow.json beside).
    for pattern in (".epoch-*.weights.*.tmp", f".{STATE_FILE}.*.tmp"):
        for left in folder.glob(pattern):
            fileops.remove(folder, left.name, missing_ok=True)


class StateWriter:
    """One thread writing the snapshots given (``give``) with ``write(snapshot)``, the newest pending one only."""

    def __init__(self, write: Callable[[Snapshot], None], written: int = 0) -> None:
        self.write = write
        self.written = written  # the epoch of the newest state whole on disk
        self.write_seconds: float | None = None  # the last write's wall time (measured, not used to decide)
        # The last writes' CPU time on this thread (``time.thread_time``): what they take from a training beside
        # them on the same cores; ``KeptState``'s "auto" counts it with the snapshot's.
        self.write_cpu: deque[float] = deque(maxlen=WRITES_MEASURED)
        self._lock = threading.Condition()
        self._pending: Snapshot | None = None
        self._busy = False  # a write in flight
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._stop = False

    def give(self, snapshot: Snapshot) -> None:
        """Write ``snapshot`` after the write in flight (replacing a snapshot still waiting); raises a write that
        failed since the last call."""
        with self._lock:
            self._raise()
            self._pending = snapshot
            if self._thread is None:
                self._stop = False
                self._thread = threading.Thread(target=self._loop, name="gymnos-kept-state", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def flush(self) -> None:
        """Wait until every snapshot given is on disk; raises a write that failed."""
        with self._lock:
            while self._pending is not None or self._busy:
                self._lock.wait()
            self._raise()

    def close(self) -> None:
        """``flush``, then end the thread (a later ``give`` starts another); raises a write that failed."""
        try:
            self.flush()
        finally:
            with self._lock:
                thread, self._thread, self._stop = self._thread, None, True
                self._lock.notify_all()
            if thread is not None:
                thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._stop:
                    self._lock.wait()
                if self._pending is None:
                    return  # closed, nothing left to write
                snapshot, self._pending, self._busy = self._pending, None, True
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                self.write(snapshot)
            except BaseException as exc:  # noqa: BLE001 - raised on the training thread (give, flush)
                with self._lock:
                    self._error, self._busy = exc, False
                    self._lock.notify_all()
                continue
            with self._lock:
                self.write_seconds = time.perf_counter() - started
                self.write_cpu.append(time.thread_time() - cpu)
                self.written, self._busy = snapshot.epoch, False
                self._lock.notify_all()
