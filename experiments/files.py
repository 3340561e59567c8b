"""The files of a run folder, as everything in Gymnos reads them: the one bounded reader.

One rule for every reader (sync and the features' folder readers, the pages, the API, share links,
downloads, the zip, the log tail, the work horse):

- a file is read only if its real path, with every symlink followed, lies inside the run's folder
  (``..``, absolute paths, a link out of the folder are refused);
- it is opened as a regular file: a pipe or a device named ``metrics.json`` would block the reader
  or never end, so it is refused;
- at most the bytes its caller states are read. Every caller names its bound; what would pass it is
  refused (``read_file`` raises ``TooLarge``) or cut (``RunFile.read`` returns what the bound allows
  and sets ``cut``), and the caller says so to whoever asked::

    data = files.read_file(folder, "metrics.json", limit=64 << 20)     # the whole file, or TooLarge
    with files.open_file(folder, "execution.log", limit=256 << 10) as log:
        log.seek(max(0, log.size - 4096))
        tail = log.read()                                             # never more than 256 KiB in all

The web side names a file by its execution (``open_for``): anything a page may not read is
``Http404``, the same answer as a file that is not there.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import h5py
from django.conf import settings
from django.http import Http404

from experiments.models import Execution
from experiments.pipeline.callbacks import CHECKPOINT_SUFFIXES
from gymnos_track.layout import ARTIFACTS

# The files a run page offers first, in this order; then every checkpoint.
FIXED = ["model.h5", "training_config.json", "metrics.json", "execution.log"]
# How much a download or the zip reads at a time: a model of gigabytes streams in blocks this big.
BLOCK = 64 * 1024


class Refused(Exception):
    """A file of a run folder that is not read; the message says why, after the file's name
    (``"metrics.json: " + str(exc)``)."""


class TooLarge(Refused):
    """A file over the bound its reader stated."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"is {size:,} bytes; at most {limit:,} are read")
        self.size, self.limit = size, limit


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root + os.sep)


def _parts(relative: str) -> list[str]:
    """``relative`` split on ``/``, if it is a plain relative path (no ``..``, nothing absolute); else Refused."""
    parts = relative.split("/")
    if (
        not relative
        or "\x00" in relative
        or "\\" in relative
        or os.path.isabs(relative)
        or any(part in {"", ".", ".."} for part in parts)
    ):
        raise Refused("is not a plain path inside the run's folder; not read")
    return parts


class RunFile:
    """A regular file of a run folder, open for reading, that gives at most ``limit`` bytes in all.

    ``size`` is its size when it was opened; the end (``seek(0, SEEK_END)``) is that size, so a log
    still growing is read up to where it was. A read the bound shortens returns what is left of it
    and sets ``cut``; once the bound is spent every read returns ``b""``.
    """

    def __init__(self, handle: io.BufferedReader, name: str, limit: int | None) -> None:
        self._handle, self.name = handle, name
        self.size = os.fstat(handle.fileno()).st_size
        self.limit = self.size if limit is None else limit
        self.given = 0
        self.cut = False

    def _allowed(self, size: int) -> int:
        """How much of a read of ``size`` bytes (-1: to the end) the bound lets through; ``cut`` when that is
        less than the file has there."""
        left = max(self.limit - self.given, 0)
        there = max(self.size - self._handle.tell(), 0)
        wanted = there if size < 0 else min(size, there)
        if wanted > left:
            self.cut = True
        return left if size < 0 else min(size, left)

    def read(self, size: int = -1) -> bytes:
        allowed = self._allowed(size)
        data = self._handle.read(allowed) if allowed else b""
        self.given += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        """A line of at most ``size`` bytes, as ``io`` reads one; cut short (and ``cut`` set) at the bound."""
        left = max(self.limit - self.given, 0)
        allowed = left if size < 0 else min(size, left)
        line = self._handle.readline(allowed) if allowed else b""
        self.given += len(line)
        if len(line) == allowed < (size if size >= 0 else allowed + 1) and not line.endswith(b"\n"):
            self.cut = self.cut or self._handle.tell() < self.size
        return line

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            offset, whence = self.size + offset, os.SEEK_SET
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RunFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def open_file(folder: str | os.PathLike[str], relative: str, limit: int | None) -> RunFile:
    """Open ``folder/relative`` for reading at most ``limit`` bytes (None: its size when opened, for a download,
    which streams it in blocks and never holds it).

    Raises ``FileNotFoundError`` when it is not there, ``Refused`` when it may not be read.
    """
    base = os.path.realpath(folder)
    real = os.path.realpath(os.path.join(base, *_parts(relative)))
    if not _inside(real, base) or real == base:
        raise Refused(f"is a symlink to {real}, outside the run's folder; not read")
    try:
        # No link is followed any more (the path is resolved), and a pipe opens without waiting for a writer.
        descriptor = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            raise FileNotFoundError(exc.errno, exc.strerror, relative) from None
        if exc.errno == 40:  # ELOOP: it became a symlink between resolving and opening
            raise Refused("became a symlink while it was opened; not read") from None
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise Refused("is not a regular file (a folder, a pipe or a device); not read")
    return RunFile(open(descriptor, "rb"), os.path.basename(real), limit)  # RunFile closes it


def read_file(folder: str | os.PathLike[str], relative: str, limit: int) -> bytes:
    """The whole of ``folder/relative``, if it holds at most ``limit`` bytes; else ``TooLarge`` (nothing read).

    ``FileNotFoundError`` when it is not there, ``Refused`` when it may not be read, ``OSError`` otherwise.
    """
    with open_file(folder, relative, limit) as handle:
        if handle.size > limit:
            raise TooLarge(handle.size, limit)
        data = handle._handle.read(limit + 1)  # one byte more: a file that grew past the bound meanwhile
    if len(data) > limit:
        raise TooLarge(len(data), limit)
    return data


@contextmanager
def open_hdf5(folder: str | os.PathLike[str], relative: str) -> Iterator[h5py.File]:
    """``folder/relative`` as an HDF5 file for reading (per-step metrics' ``steps.h5``), under ``open_file``'s rules.

    h5py reads through the handle ``open_file`` opened (its file-object driver), never by a path of its own:
    the same checks that the file resolves inside the folder and is a regular file, opened without following
    a link. The byte bound is not ``RunFile``'s total: HDF5 reads its metadata again and again at random
    places, so the bound is what the caller asks of the datasets (``pipeline.steps.read_series`` reads in
    blocks). A file another process writes in SWMR mode opens too, also one a killed writer left (h5py's own
    open by path refuses that one). ``FileNotFoundError``, ``Refused``, or ``OSError`` for a file HDF5 cannot
    read::

        with files.open_hdf5(folder, "steps.h5") as steps:
            steps["metrics/loss/value"][-10:]
    """
    with open_file(folder, relative, limit=None) as handle, h5py.File(handle._handle, "r") as document:
        yield document


def blocks(folder: str | os.PathLike[str], relative: str) -> Iterator[bytes]:
    """The file in ``BLOCK``-sized pieces, opened when the first is asked for (the zip adds every file up front);
    nothing for a file gone or refused by then."""
    try:
        handle = open_file(folder, relative, limit=None)
    except (OSError, Refused):
        return
    with handle:
        while block := handle.read(BLOCK):
            yield block


# --- the web side: files named by their execution ---------------------------------------------


def execution_folder(execution: Execution) -> str | None:
    """The execution folder's real path, if it has one inside the trainings root (else None)."""
    if not execution.folder_path:
        return None
    real = os.path.realpath(execution.folder_path)
    if not _inside(real, os.path.realpath(settings.GYMNOS_TRAININGS_ROOT)) or not os.path.isdir(real):
        return None
    return real


def open_for(execution: Execution, relative: str, limit: int | None) -> RunFile:
    """``open_file`` in the execution's folder; ``Http404`` for anything that may not be read, or is not there."""
    folder = execution_folder(execution)
    if folder is None:
        raise Http404("No such file in this execution.")
    try:
        return open_file(folder, relative, limit)
    except (OSError, Refused):
        raise Http404("No such file in this execution.") from None


def walk(folder: str) -> Iterator[tuple[str, str]]:
    """``(relative path, real path)`` of every regular file in ``folder``; links leading out are skipped."""
    for directory, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(
            name
            for name in dirnames
            if not os.path.islink(os.path.join(directory, name))
            and _inside(os.path.realpath(os.path.join(directory, name)), folder)
        )
        for name in sorted(filenames):
            path = os.path.join(directory, name)
            real = os.path.realpath(path)
            if _inside(real, folder) and os.path.isfile(real):
                yield os.path.relpath(path, folder).replace(os.sep, "/"), real


def is_artifact(relative: str) -> bool:
    """A file a tracked script saved with ``run.log_artifact`` (``artifacts/model.pt``)."""
    return relative.startswith(ARTIFACTS + "/")


def is_checkpoint(relative: str) -> bool:
    return relative.startswith("callbacks/") and relative.endswith(CHECKPOINT_SUFFIXES)


def list_downloads(execution: Execution) -> list[dict[str, Any]]:
    """What the page offers: the fixed files that exist, then every checkpoint and a script's artifacts,
    each ``{path, bytes}``.

    Read from the folder (not the index), so checkpoints show up while the run trains.
    """
    folder = execution_folder(execution)
    if folder is None:
        return []
    found = dict(walk(folder))
    chosen = [name for name in FIXED if name in found]
    chosen += [name for name in sorted(found) if is_checkpoint(name) or is_artifact(name)]
    return [{"path": name, "bytes": _size(found[name])} for name in chosen]


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None
