"""Pushes begun and never finished: their staging folders removed once nobody has written to them for a while.

A push stages a run in ``<root>/<experiment>/executions/.push-<folder>/`` (another project's, under
``<root>/projects/<project>/``) beside its list of files
(``.push-<folder>.json``) until ``finish`` moves it into place (``experiments.index.push``). A client that
stops for good half-way (its machine gone, the user gave up) leaves both behind. The reaper
(``experiments.jobs.reaper``) removes them once nothing in them changed for ``GYMNOS_PUSH_STAGING_HOURS``:
a push that resumes later starts that folder over, nothing else is lost (the client still has the run).
Removal goes through ``fileops`` (no link followed), and the age is read with ``lstat`` (no link followed either).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from django.conf import settings

from experiments.models.projects import PROJECTS_FOLDER
from experiments.pipeline import fileops

from .push import STAGING

MANIFEST = ".json"
MAX_SEEN = 10_000  # staged entries (folders and lists) looked at in one reap, the rest at the next


def _newest_change(path: str) -> float:
    """The latest modification under ``path`` (itself included), links not followed; a chunk appended shows here."""
    status = os.lstat(path)
    newest = status.st_mtime
    if not stat.S_ISDIR(status.st_mode):
        return newest
    for folder, names, files in os.walk(path):  # os.walk does not enter a link to a folder
        for name in names + files:
            newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    return newest


def _staged(root: Path) -> dict[str, list[str]]:
    """Each staged push under ``root`` ("experiment/executions/.push-folder") -> its entries (folder, list)."""
    found: dict[str, list[str]] = {}
    if not root.is_dir():
        return found
    for experiment in os.scandir(root):
        if experiment.name.startswith(".") or not experiment.is_dir(follow_symlinks=False):
            continue
        executions = os.path.join(experiment.path, "executions")
        if os.path.islink(executions) or not os.path.isdir(executions):
            continue
        for entry in os.scandir(executions):
            if entry.name.startswith(STAGING):
                push = entry.name.removesuffix(MANIFEST) if not entry.is_dir(follow_symlinks=False) else entry.name
                found.setdefault(f"{experiment.name}/executions/{push}", []).append(
                    f"{experiment.name}/executions/{entry.name}"
                )
                if len(found) >= MAX_SEEN:
                    return found
    return found


def reap_abandoned(root: Path | None = None, max_age_seconds: float | None = None) -> int:
    """Remove every staged push nothing was written to for ``max_age_seconds`` (default:
    ``GYMNOS_PUSH_STAGING_HOURS``); returns how many pushes were removed."""
    root = Path(settings.GYMNOS_TRAININGS_ROOT) if root is None else root
    if max_age_seconds is None:
        max_age_seconds = settings.GYMNOS_PUSH_STAGING_HOURS * 3600
    oldest_kept = time.time() - max_age_seconds
    removed = 0
    for place in [root, *_project_roots(root)]:
        for entries in _staged(place).values():
            try:
                if max(_newest_change(str(place / entry)) for entry in entries) > oldest_kept:
                    continue
            except FileNotFoundError:  # finished or removed meanwhile
                continue
            for entry in entries:
                fileops.remove(place, entry, missing_ok=True)
            removed += 1
    return removed


def _project_roots(root: Path) -> list[Path]:
    """``<root>/projects/<project>``: where pushes into a project other than default are staged (links not followed)."""
    projects = root / PROJECTS_FOLDER
    if projects.is_symlink() or not projects.is_dir():
        return []
    return [Path(entry.path) for entry in os.scandir(projects) if entry.is_dir(follow_symlinks=False)]
