"""A resumed run's TensorBoard event files: what the trackers need to go on with the same run (#23).

A run killed after epoch E whose state was kept at epoch K < E trains epochs K+1.. again. TensorBoard has no way to
take back a point, so before the resumed run writes, each of its folders (``train``, ``validation``, ``test``) is
rewritten to the points at steps up to K (the highest of them is where the tracker takes the epochs up to K, given
again from the kept History, on from): one file with every event kept, each (tags, step) once (the last written
wins), written whole and atomically (``fileops.write``) before the files it replaces are removed. A kill in between
leaves the points twice in two files, which the next rewrite merges again. The system and step points are not
rewritten: their steps only grow (a resumed run counts its system samples on from the last one written, and its
training steps from steps.h5's last).

MLflow's store has no way to take a point back either: the trainer holds an epoch back from the trackers until the
state it is in is kept (``keras_callbacks.TrackerBridge``), so an epoch reaches MLflow once. The MLflow run a resumed
run goes on with is recorded in ``.resume/mlflow.json`` (``RUN_RECORD``, read by ``recorded_run``).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from . import fileops
from .jsonlimits import loads

log = logging.getLogger("gymnosd.Trackers")

RUN_RECORD = "mlflow.json"  # in the run's .resume/: {"run_id": ..., "experiment_id": ...}


def recorded_run(record: Path) -> str | None:
    """The MLflow run id ``record`` names; None if it names none."""
    try:
        with open(record, "rb") as handle:
            run_id = loads(handle.read(4097), max_bytes=4096, what=str(record)).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return run_id if isinstance(run_id, str) and run_id.isalnum() else None


EVENTS = "events.out.tfevents."
MERGED = ".kept"  # the suffix of the file a rewrite leaves


def _event_files(folder: Path) -> list[Path]:
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(path for path in folder.iterdir() if path.name.startswith(EVENTS) and path.is_file())


def _events(path: Path) -> list[Any]:
    """The events of one file, as far as they read whole (a writer killed mid-record leaves a tail cut short)."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    events = []
    try:
        for event in LegacyEventFileLoader(str(path)).Load():
            events.append(event)
    except Exception as exc:  # noqa: BLE001 - what read before a damaged record is kept
        log.warning(f"TensorBoard events in {path} read up to a damaged record: {exc}")
    return events


def last_step(folder: Path) -> int:
    """The highest step any event file in ``folder`` holds (0 if none): where a resumed run's system samples go on."""
    return max((event.step for path in _event_files(folder) for event in _events(path)), default=0)


def keep_until(folder: Path, step: int) -> tuple[int, int]:
    """Rewrite ``folder``'s event files to the points at steps up to ``step``, each once. ``(the points dropped,
    the highest step kept)``: the resumed run gives its epochs up to ``step`` again, and the tracker records only
    those after that one."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    files = _event_files(folder)
    if not files:
        return 0, 0
    kept: dict[tuple[Any, ...], Any] = {}
    header = None
    dropped = 0
    for path in files:
        for event in _events(path):
            if not event.HasField("summary"):
                header = header or event  # the file_version event a reader expects first
                continue
            if event.step > step:
                dropped += 1
                continue
            key = (event.step, *(value.tag for value in event.summary.value))
            kept.pop(key, None)  # the last written wins, in the order written
            kept[key] = event
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    for event in ([header] if header is not None else []) + list(kept.values()):
        writer.write(event.SerializeToString())
    # Named after the first file, so it sorts before the files the resumed run writes next.
    name = files[0].name if files[0].name.endswith(MERGED) else files[0].name + MERGED
    fileops.write(folder, name, buffer.getvalue())
    for path in files:
        if path.name != name:
            fileops.remove(folder, path.name, missing_ok=True)
    return dropped, max((event.step for event in kept.values()), default=0)
