"""What sync reads for curation: the sidecar (title, tags, notes, archived) and the folder's size.

Registered with ``experiments.index.reader.register`` when the app starts (``curation/__init__.py``).
The sizes come from the listing sync already made (``os.scandir``, no extra reads): the whole
folder, and of it the checkpoints (``callbacks/**/*.h5``, ``.keras``, ``.hdf5``).
"""

from __future__ import annotations

from experiments.files import is_checkpoint
from experiments.index.reader import FolderReader, Listing, Record
from experiments.models import Execution, Experiment, Status

from . import sidecar


def sizes(listing: Listing) -> tuple[int, int]:
    """``(folder bytes, checkpoint bytes)`` from a folder's listing."""
    total = checkpoints = 0
    for relative, (size, _) in listing.files.items():
        total += size
        if is_checkpoint(relative):
            checkpoints += size
    return total, checkpoints


def read_into(data: bytes | None, listing: Listing, record: Record) -> None:
    """Fill ``record`` from the sidecar's bytes (None: the folder has none) and the listing."""
    record.extra["size_bytes"], record.extra["checkpoint_bytes"] = sizes(listing)
    found = sidecar.Sidecar()
    if data is not None:
        try:
            found = sidecar.parse(data)
        except sidecar.SidecarError as exc:
            record.problem(sidecar.FILE, f"{exc}; its title, notes, tags and archived state are not indexed")
    if found.title:
        record.title = found.title
    if found.tags is not None:
        record.tags = found.tags
    record.extra["notes"] = found.notes
    record.extra["archived"] = found.archived


READER = FolderReader(
    file=sidecar.FILE,
    limit=sidecar.MAX_BYTES,
    fields=("notes", "archived", "size_bytes", "checkpoint_bytes"),
    read=read_into,
)


def restore_archived_experiments(experiment_ids: list[int]) -> None:
    """An experiment is archived only on its row; its runs' sidecars say they went with it. When sync
    creates experiments (the index was rebuilt), one whose every run says so is archived again."""
    for experiment in Experiment.objects.filter(pk__in=experiment_ids, archived=False):
        runs = Execution.objects.filter(experiment=experiment).exclude(status=Status.DELETED)
        rows = list(runs.exclude(folder_name=None).values_list("archived", "folder_path"))
        if not rows or not all(archived for archived, _ in rows):
            continue
        if all(_went_with_experiment(path) for _, path in rows):
            Experiment.objects.filter(pk=experiment.pk).update(archived=True)


def _went_with_experiment(folder: str) -> bool:
    try:
        return bool(folder) and sidecar.read(folder).archived_with_experiment
    except (sidecar.SidecarError, OSError):
        return False
