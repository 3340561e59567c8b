"""Sync's reader of ``system_metrics.jsonl``: the ``Execution.system`` summary and the ``system/...`` histories."""

from __future__ import annotations

from experiments import files
from experiments.index.reader import FolderReader, Listing, Record
from experiments.system.reading import FILE_NAME, read_file


def read_system_metrics(content: bytes | None, listing: Listing, record: Record) -> None:
    """Fill ``record.extra["system"]`` and ``record.extra_histories`` from the folder's file.

    The file is opened here (through the one bounded reader) rather than handed over whole: it grows
    with the run, and is read line by line within ``reading``'s bounds. Its problems go on the run's
    error, naming the file.
    """
    record.extra["system"] = {}
    if FILE_NAME in listing.links_outside:
        target = listing.links_outside[FILE_NAME]
        record.problem(FILE_NAME, f"is a symlink to {target}, outside the trainings root; not read")
        return
    if FILE_NAME not in listing.files:
        return
    try:
        series = read_file(record.folder.path)
    except files.Refused as exc:
        record.problem(FILE_NAME, str(exc))
        return
    except OSError as exc:
        record.problem(FILE_NAME, f"cannot be read: {exc.strerror or exc}")
        return
    for problem in series.problems():
        record.problem(FILE_NAME, problem)
    record.extra["system"] = series.summary()
    record.extra_histories.update(series.histories())


READER = FolderReader(file=None, fields=("system",), read=read_system_metrics)
