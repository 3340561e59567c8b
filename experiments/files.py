"""The files of an execution folder, as the dashboard and the API may read them.

One rule for every reader (downloads, the zip, the log tail on pages, share links and the API):
a file is read only if its real path, with every symlink followed, lies inside the execution's
folder, and that folder inside the trainings root. Anything else (``..``, absolute paths,
encoded traversal, a symlink leading out, a folder that links out of the root) is ``Http404``,
the same answer as a file that is not there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import Http404

from experiments.models import Execution
from experiments.pipeline.callbacks import CHECKPOINT_SUFFIXES

# The files a run page offers first, in this order; then every checkpoint.
FIXED = ["model.h5", "training_config.json", "metrics.json", "execution.log"]


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root + os.sep)


def execution_folder(execution: Execution) -> str | None:
    """The execution folder's real path, if it has one inside the trainings root (else None)."""
    if not execution.folder_path:
        return None
    real = os.path.realpath(execution.folder_path)
    if not _inside(real, os.path.realpath(settings.GYMNOS_TRAININGS_ROOT)) or not os.path.isdir(real):
        return None
    return real


def resolve(execution: Execution, relative: str) -> str:
    """The real path of the file ``relative`` inside the execution folder, or ``Http404``."""
    folder = execution_folder(execution)
    if folder is None or not relative or "\x00" in relative or "\\" in relative:
        raise Http404("No such file in this execution.")
    parts = relative.split("/")
    if os.path.isabs(relative) or any(part in {"", ".", ".."} for part in parts):
        raise Http404("No such file in this execution.")
    real = os.path.realpath(os.path.join(folder, *parts))
    if not _inside(real, folder) or real == folder or not os.path.isfile(real):
        raise Http404("No such file in this execution.")
    return real


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


def is_checkpoint(relative: str) -> bool:
    return relative.startswith("callbacks/") and relative.endswith(CHECKPOINT_SUFFIXES)


def list_downloads(execution: Execution) -> list[dict[str, Any]]:
    """What the page offers: the fixed files that exist, then every checkpoint, each ``{path, bytes}``.

    Read from the folder (not the index), so checkpoints show up while the run trains.
    """
    folder = execution_folder(execution)
    if folder is None:
        return []
    found = dict(walk(folder))
    chosen = [name for name in FIXED if name in found] + [name for name in sorted(found) if is_checkpoint(name)]
    return [{"path": name, "bytes": _size(found[name])} for name in chosen]


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None
