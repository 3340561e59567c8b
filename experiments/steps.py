"""Per-step metrics as the web side reads them: a run's ``steps.h5`` by range, downsampled by M4.

The file is opened through the one bounded reader (``files.open_hdf5``); the range and the downsampling are
the engine's (``pipeline.steps.read_series``), which reads a long series in blocks and never whole::

    read_steps(folder, "loss", start=1000, end=2000, points=500)
    # {"step": [...], "value": [...], "epochs": [1200, ...], "downsampled": True, "count": 1001}
"""

from __future__ import annotations

import os
from typing import Any

from experiments import files
from experiments.index.reader import FolderReader, Listing, Record, register
from experiments.pipeline.steps import STEPS_FILE, read_series, summaries

MIN_POINTS, MAX_POINTS = 10, 10_000


def read_steps(
    folder: str | os.PathLike[str], metric: str, start: int | None = None, end: int | None = None, points: int = 2000
) -> dict[str, Any]:
    """The points of ``metric`` between steps ``start`` and ``end`` (inclusive; None: open), at most about
    ``points`` (bounded to 10..10,000): whole when the range holds no more, else M4's (each bucket's first,
    last, lowest and highest point, ``points // 4`` buckets).

    Raises ``KeyError`` for a metric the file does not hold, ``FileNotFoundError`` / ``files.Refused`` /
    ``OSError`` for a file that is not there or not readable.
    """
    points = max(MIN_POINTS, min(MAX_POINTS, points))
    with files.open_hdf5(folder, STEPS_FILE) as document:
        return read_series(document, metric, start, end, points)


def step_summaries(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Per metric ``{"count", "min", "max", "last"}`` (what sync indexes); {} for a run without step metrics."""
    try:
        with files.open_hdf5(folder, STEPS_FILE) as document:
            return summaries(document)
    except (OSError, files.Refused, KeyError):
        return {}


def _index_steps(content: bytes | None, listing: Listing, record: Record) -> None:
    """Sync's reader: ``Execution.steps``, the summaries only (the writer keeps them; no series is read)."""
    record.extra["steps"] = {}
    if STEPS_FILE in listing.links_outside:
        record.problem(STEPS_FILE, f"is a symlink to {listing.links_outside[STEPS_FILE]}, outside the trainings root")
        return
    if STEPS_FILE not in listing.files:
        return
    try:
        with files.open_hdf5(record.folder.path, STEPS_FILE) as document:
            record.extra["steps"] = summaries(document)
    except files.Refused as exc:
        record.problem(STEPS_FILE, str(exc))
    except (OSError, KeyError, ValueError) as exc:
        record.problem(STEPS_FILE, f"cannot be read as HDF5: {exc}")


READER = FolderReader(file=None, fields=("steps",), read=_index_steps)
register(READER)
