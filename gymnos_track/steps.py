"""Per-step metrics' writer: ``steps.h5``, appended while a run trains (the engine's and the tracking client's).

The file's layout and the engine's use of it: ``experiments/pipeline/steps.py``. Here only the writer, so that
``gymnos_track`` (plain Python: no Django, no TensorFlow) writes the same file the engine writes; it needs h5py and
NumPy, which the client imports only when a script first logs a step (``run.log(..., step=N)``).
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

STEPS_FILE = "steps.h5"
Points = dict[str, tuple[list[int], list[float]]]  # per metric: its steps and values, in order
CHUNK = 16_384  # points per HDF5 chunk: ~128 KiB per dataset; appends and range reads touch few chunks

log = logging.getLogger("gymnosd.Trainer")


def _appendable(group: h5py.Group, name: str, dtype: str) -> h5py.Dataset:
    return group.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(CHUNK,), dtype=dtype)


def _append(dataset: h5py.Dataset, values: list[Any]) -> None:
    start = dataset.shape[0]
    dataset.resize((start + len(values),))
    dataset[start:] = values


def _cut(group: h5py.Group, end: int) -> None:
    """A metric's points cut back to those at steps up to ``end``, and its summary made again from them."""
    steps, values = group["step"], group["value"]
    keep = bisect.bisect_right(steps, end)  # steps are written in order: a few reads, not the whole series
    steps.resize((keep,))
    values.resize((keep,))
    count, low, high, last = 0, math.nan, math.nan, math.nan
    for start in range(0, keep, 64 * CHUNK):  # read a slice at a time: a metric may hold millions of points
        array = values[start : start + 64 * CHUNK]
        finite = array[~np.isnan(array)]
        if finite.size:
            low = float(np.nanmin([low, finite.min()]))
            high = float(np.nanmax([high, finite.max()]))
        count, last = count + array.size, float(array[-1])
    group["summary"][:] = [count, low, high, last]


class StepWriter:
    """Appends step points to ``path`` (``steps.h5``), buffered; the file is created at the first flush.

    A metric name Keras logs that HDF5 cannot name (a ``/`` in it) is skipped, and so is a metric first
    seen after the first flush (SWMR adds no objects once it started); each is said once in the log.
    """

    def __init__(
        self,
        path: str | Path,
        flush_points: int = 10_000,
        flush_seconds: float = 1.0,
        on_flush: Callable[[Points], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.on_flush = on_flush  # given each flush's points once written (the engine's trackers: TensorBoard, MLflow)
        self.flush_points, self.flush_seconds = flush_points, flush_seconds
        self.pending: dict[str, tuple[list[int], list[float]]] = {}
        self.pending_epochs: list[int] = []
        self.buffered = 0
        self.last_flush = time.monotonic()
        self.file: h5py.File | None = None
        self.summaries: dict[str, list[float]] = {}
        self.skipped: set[str] = set()
        self.broken = ""  # why the file cannot be written (then nothing is)

    def last_step(self) -> int:
        """The step at which the file's last epoch ended (0 for no file): where a resumed run goes on counting."""
        if not self.path.exists():
            return 0
        try:
            with h5py.File(self.path, "r") as file:
                marks = file["epochs"]
                return int(marks[-1]) if marks.shape[0] else 0
        except (OSError, KeyError) as exc:
            self.broken = f"{type(exc).__name__}: {exc}"
            log.warning(f"{STEPS_FILE} cannot be continued ({self.broken}); this run logs no more step metrics")
            return 0

    def last_point(self) -> int:
        """The highest step of any point the file holds (0 for no file). A flush's points reach ``on_flush`` (the
        trackers) once written here, so a run killed and resumed gave its trackers no point after this step."""
        if not self.path.exists():
            return 0
        try:
            with h5py.File(self.path, "r") as file:
                ends = [int(group["step"][-1]) for group in file["metrics"].values() if group["step"].shape[0]]
        except (OSError, KeyError, ValueError):
            return 0
        return max(ends, default=0)

    def resume_at(self, epoch: int) -> int:
        """Cut the file back to its first ``epoch`` epochs, the ones a resumed run keeps; returns the step at
        which they end (where the run goes on counting; 0 for no file, or ``epoch`` 0).

        A run killed between two kept states (``resume_every`` above 1, or a kill mid-epoch) wrote points and
        epoch marks past the state it resumes from: those epochs are trained again, so each metric's points after
        that step and the marks after that epoch are dropped, and each summary is made again from what is left.
        A file with fewer marks than ``epoch`` is kept whole and continued from its last mark."""
        if not self.path.exists():
            return 0
        try:
            with h5py.File(self.path, "a", libver="latest") as file:
                marks = file["epochs"]
                if marks.shape[0] < epoch:
                    log.warning(f"{STEPS_FILE} marks {marks.shape[0]} epochs, fewer than the {epoch} resumed from")
                    return int(marks[-1]) if marks.shape[0] else 0
                end = int(marks[epoch - 1]) if epoch else 0
                marks.resize((epoch,))
                for group in file["metrics"].values():
                    _cut(group, end)
                return end
        except (OSError, KeyError, ValueError) as exc:
            self.broken = f"{type(exc).__name__}: {exc}"
            log.warning(f"{STEPS_FILE} cannot be continued ({self.broken}); this run logs no more step metrics")
            return 0

    def append(self, step: int, values: dict[str, float]) -> None:
        if self.broken:
            return
        for name, value in values.items():
            steps, points = self.pending.setdefault(name, ([], []))
            steps.append(step)
            points.append(value)
            self.buffered += 1
        if self.buffered >= self.flush_points or time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def epoch_end(self, step: int) -> None:
        if self.broken:
            return
        self.pending_epochs.append(step)
        self.flush()

    def _open(self) -> h5py.File:
        # A resumed run continues the file it started; a new one creates it.
        file = h5py.File(self.path, "a" if self.path.exists() else "w", libver="latest")
        metrics = file.require_group("metrics")
        if "epochs" not in file:
            _appendable(file, "epochs", "i8")
        for name in self.pending:
            if name in metrics or "/" in name or name in {"", ".", ".."}:
                continue
            group = metrics.create_group(name)
            _appendable(group, "step", "i8")
            _appendable(group, "value", "f8")
            group.create_dataset("summary", data=np.array([0.0, math.nan, math.nan, math.nan]))
        file.swmr_mode = True
        return file

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.buffered and not self.pending_epochs:
            return
        if self.file is None:
            self.file = self._open()
        metrics = self.file["metrics"]
        for name, (steps, values) in self.pending.items():
            if name not in metrics:
                self._skip(name)
                continue
            if steps:
                self._write(metrics[name], steps, values)
        if self.pending_epochs:
            _append(self.file["epochs"], self.pending_epochs)
        self.file.flush()
        if self.on_flush is not None and self.buffered:
            self.on_flush({name: points for name, points in self.pending.items() if points[0] and name in metrics})
        self.pending = {name: ([], []) for name in self.pending}
        self.pending_epochs = []
        self.buffered = 0

    def _write(self, group: h5py.Group, steps: list[int], values: list[float]) -> None:
        _append(group["step"], steps)
        _append(group["value"], values)
        array = np.asarray(values, dtype=np.float64)
        finite = array[~np.isnan(array)]
        count, low, high, _ = group["summary"][:] if group.name not in self.summaries else self.summaries[group.name]
        if finite.size:
            low = float(np.nanmin([low, finite.min()]))
            high = float(np.nanmax([high, finite.max()]))
        summary = [count + len(values), low, high, float(array[-1])]
        self.summaries[group.name] = summary
        group["summary"][:] = summary

    def _skip(self, name: str) -> None:
        if name not in self.skipped:
            self.skipped.add(name)
            log.warning(f"Step metric {name!r} is not written to {STEPS_FILE} (a name with '/' or first seen late)")

    def close(self) -> None:
        self.flush()
        if self.file is not None:
            self.file.close()
            self.file = None
