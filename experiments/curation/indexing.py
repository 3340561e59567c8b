"""What sync reads for curation: the sidecar (title, tags, notes, archived) and the folder's size.

Registered with ``experiments.sync_reader.register`` when the app starts (``curation/__init__.py``).
The sizes come from the listing sync already made (``os.scandir``, no extra reads): the whole
folder, and of it the checkpoints (``callbacks/**/*.h5``, ``.keras``, ``.hdf5``).
"""

from __future__ import annotations

from experiments.files import is_checkpoint
from experiments.sync_reader import FolderReader, Listing, Record

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


READER = FolderReader(file=sidecar.FILE, fields=("notes", "archived", "size_bytes", "checkpoint_bytes"), read=read_into)
