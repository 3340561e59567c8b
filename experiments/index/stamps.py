"""A finished run's stamp: a re-sync stats its directories instead of listing every file (sync's fast path).

    stamp = seal(folder, listing, quiet_before_ns)   # "" unless the folder may be trusted to stay as listed
    held([(folder, stamp)])                          # [True]: no entry was added, removed or renamed in it

A stamp hashes the device, inode, mtime and ctime of the folder and of every subdirectory it had when it
was listed, and names those subdirectories (``<hash>|callbacks|callbacks/model_checkpoint|...``). Adding,
removing or renaming a file anywhere in the folder changes the mtime and ctime of the directory that holds
it; every writer of a run that ended does that: the curation sidecar, evaluation.json and a resumed run's
metrics.json are written to a temporary name and renamed (``pipeline.fileops.write``), pruning removes
checkpoints, the trash and push move whole folders (another inode). Setting a directory's mtime back
(``rsync -a``, ``touch -d``) still changes its ctime.

What a stamp cannot see is a file written in place (appended or overwritten without a rename): only a live
run's writers do that. So sync stores a stamp only for a run that ended (succeeded, failed, cancelled,
pruned), no live worker vouches for, and whose files and directories have all been still for the stale
window (``GYMNOS_SYNC_STALE_MINUTES``); and sync uses it only while the row's status is one of those.
A folder changed in place after that (a file copied over with ``rsync --inplace``, a log edited in an
editor that writes in place) is read again by ``manage.py sync_trainings --full``.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import OperationalError

from experiments.index.listing import READER_VERSION, Folder, Listing, printable
from experiments.models import Execution

SEPARATOR = "|"
MAX_DIRS = 64  # a folder with more subdirectories is listed every time
VERSION = b"stamp 1"


def _digest(path: str, dirs: list[str] | tuple[str, ...], parent: int | None = None) -> tuple[str, int]:
    """``(hash, newest directory mtime_ns)``; raises ``OSError`` when one of them is gone. ``parent``: an open
    descriptor of the folder's parent, ``path`` then its name (a stat then walks no long path)."""
    stat = os.stat(path, dir_fd=parent)  # the folder itself may be a link inside the root: followed, as walked
    values = [stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]
    newest = stat.st_mtime_ns
    for relative in dirs:
        stat = os.stat(f"{path}/{relative}", dir_fd=parent, follow_symlinks=False)
        values += (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)
        if stat.st_mtime_ns > newest:
            newest = stat.st_mtime_ns
    # One "dev ino mtime ctime" line per directory, formatted at once (a re-sync does this for every folder).
    text = _FORMATS[len(dirs)] if len(dirs) < len(_FORMATS) else _format(len(dirs))
    digest = hashlib.blake2b(text % tuple(values), digest_size=16, key=VERSION + READER_VERSION)
    return digest.hexdigest(), newest


def _format(dirs: int) -> bytes:
    return b"\n".join([b"%d %d %d %d"] * (dirs + 1))


_FORMATS = [_format(count) for count in range(16)]


def seal(folder: Folder, listing: Listing, quiet_before_ns: int) -> str:
    """The stamp of a folder just listed, or "" where it may still change: a folder with a file or a directory
    changed after ``quiet_before_ns``, a link out of the root, too many subdirectories or one whose name the
    stamp cannot hold. The caller decides whether the run ended."""
    dirs = listing.dirs
    if folder.outside or listing.newest_ns > quiet_before_ns or len(dirs) > MAX_DIRS:
        return ""
    if any(SEPARATOR in relative or printable(relative) != relative for relative in dirs):
        return ""
    try:
        digest, newest = _digest(folder.location, dirs)
    except OSError:
        return ""
    if newest > quiet_before_ns:
        return ""
    return SEPARATOR.join((digest, *dirs))


def held(candidates: list[tuple[Folder, str]], workers: int = 0) -> list[bool]:
    """For each ``(folder, stamp)``: whether the folder still has the directories its stamp was made of, unchanged.

    Each folder's directories are stat'ed relative to an open descriptor of its parent
    (``<experiment>/executions``). Threads (``workers``; default: one per CPU but one, at most 8) share the
    stats only where there are CPUs to spare: with 2, 8 threads cost a third more CPU for the same time,
    the stats being page-cache hits of about 2 µs each (``bench/sync.py``, docs/performance.md).
    """
    chunks = [candidates[start : start + CHUNK] for start in range(0, len(candidates), CHUNK)]
    workers = workers or min(8, max(1, (os.cpu_count() or 1) - 1))
    if len(chunks) <= 1 or workers == 1:
        return [found for chunk in chunks for found in _held(chunk)]
    with ThreadPoolExecutor(workers, thread_name_prefix="sync-stamps") as pool:
        return [found for result in pool.map(_held, chunks) for found in result]


CHUNK = 1000


def _held(candidates: list[tuple[Folder, str]]) -> list[bool]:
    parents: dict[str, int] = {}
    found = []
    try:
        for folder, stamp in candidates:
            digest, _, names = stamp.partition(SEPARATOR)
            where, _, name = folder.location.rpartition("/")
            try:
                parent = parents.get(where)
                if parent is None:
                    parent = parents[where] = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
                found.append(_digest(name, names.split(SEPARATOR) if names else (), parent)[0] == digest)
            except OSError:
                found.append(False)  # gone, or its parent: listed, which says what happened
    finally:
        for parent in parents.values():
            os.close(parent)
    return found


def store(stamps: list[tuple[int, str]]) -> None:
    """Write ``(execution id, stamp)`` pairs: folders found unchanged whose stamp was missing or out of date."""
    for start in range(0, len(stamps), STORE_BATCH):
        rows = [Execution(pk=pk, folder_stamp=stamp) for pk, stamp in stamps[start : start + STORE_BATCH]]
        for attempt in range(6):  # SQLite's lock while a worker writes: as sync's own batches do
            try:
                Execution.objects.bulk_update(rows, ["folder_stamp"])
                break
            except OperationalError:
                if attempt == 5:
                    raise
                time.sleep(0.05 * 2**attempt)


STORE_BATCH = 500
