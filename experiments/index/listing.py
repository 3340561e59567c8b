"""Finding execution folders for sync and fingerprinting them, by ``os.scandir`` and ``stat`` alone (no file read).

    folders, problems = find_folders(root)          # every <experiment>/executions/<name>/
    listing = list_folder(folders[0], root)          # names, sizes, mtimes -> fingerprint

A folder whose fingerprint matches its row's is not read at all (``experiments.index.reader`` reads the rest).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from experiments.pipeline.names import control_character_problem

# Part of every fingerprint: bump it when reading changes, and the next sync reads every folder again.
READER_VERSION = b"5"  # 4: every file through the one bounded reader (experiments.files), epochs capped;
# 5: canonical params (the validated config flattened: "adam" and {"type": "adam"} are the same params)


# --- finding folders and fingerprinting them (stat only, no reads) ----------------------------


class Folder(NamedTuple):
    """``<root>/<experiment>/executions/<name>``; ``outside`` is set when it links out of the root.

    A tuple holding its path as a str (``location``): a sweep makes one per folder, a million of them, and a
    ``Path`` costs more to make than the stamp check that may be all a folder needs (``stamps``)."""

    experiment: str
    name: str
    location: str  # its path
    outside: str = ""
    project_id: int | None = None  # None: default's (the root's own experiments)

    @property
    def path(self) -> Path:
        return Path(self.location)


@dataclass
class Listing:
    """The files of one folder, from ``os.scandir`` alone."""

    files: dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)
    links_outside: dict[str, str]  # relative path -> where the symlink points
    fingerprint: str
    newest_ns: int
    dirs: tuple[str, ...] = ()  # every subdirectory walked, relative (what a stamp stats: ``stamps``)


def inside(path: str | os.PathLike[str], root: str) -> bool:
    """Whether ``path``, with every symlink followed, is ``root`` or under it."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


def _entries(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as iterator:
            return sorted((entry for entry in iterator if not entry.name.startswith(".")), key=lambda entry: entry.name)
    except OSError:
        return []


def find_folders(root: str, project_id: int | None = None) -> tuple[list[Folder], list[str]]:
    """``(folders, problems)``: every execution folder under ``root`` (a resolved path), sorted, of the project
    ``project_id`` (None: default's).

    Entries without an ``executions/`` folder (MLflow's mlflow.db and mlartifacts/) are not experiments.
    """
    folders: list[Folder] = []
    problems: list[str] = []
    for dataset in _entries(root):
        if not dataset.is_dir():
            continue
        executions = os.path.join(dataset.path, "executions")
        if not os.path.isdir(executions):
            continue
        refused = _name_problem(dataset.name)
        if refused:
            problems.append(f"{refused}; not read")
            continue
        if not inside(executions, root):
            problems.append(
                f"{dataset.name}/executions: a symlink to {printable(os.path.realpath(executions))}, "
                "outside the trainings root; not read"
            )
            continue
        for entry in _entries(executions):
            refused = _name_problem(entry.name, f"{dataset.name}/executions/")
            if refused:
                problems.append(f"{refused}; not read")
            elif entry.is_symlink() and not inside(entry.path, root):
                outside = printable(os.path.realpath(entry.path))
                folders.append(Folder(dataset.name, entry.name, entry.path, outside, project_id))
            elif entry.is_dir():
                folders.append(Folder(dataset.name, entry.name, entry.path, "", project_id))
    return folders, problems


def _name_problem(name: str, parent: str = "") -> str | None:
    """``"<path>: <why>"`` for a folder name the index cannot keep, or None.

    Linux allows any bytes but '/' in a name; the index stores UTF-8 text of at most 255 characters, and a name
    ends up in URLs, download headers and pages, where a line break or a tab has no place.
    """
    if printable(name) != name:
        return f"{parent}{printable(name)}: the folder name is not UTF-8 text"
    if len(name) > 255:
        return f"{parent}{name[:40]}...: the folder name is longer than 255 characters"
    problem = control_character_problem("folder name", name)
    return f"{parent}{name!r}: {problem}" if problem else None


def printable(text: str) -> str:
    """``text`` as UTF-8 can hold it: undecodable bytes and lone surrogates become "?"."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def list_folder(folder: Folder, root: str) -> Listing:
    """Stat every file under the folder (symlinks are not followed out of the root) and hash it."""
    if folder.outside:  # not walked at all; the fingerprint notices if the link is pointed elsewhere
        return Listing({}, {}, hashlib.blake2b(folder.outside.encode(), digest_size=16).hexdigest(), 0)
    files, links, dirs = _walk(folder.location, root)
    newest = max((mtime for _, mtime in files.values()), default=0)
    return Listing(files, links, _fingerprint(files, links), newest, tuple(sorted(dirs)))


def _walk(top: str, root: str) -> tuple[dict[str, tuple[int, int]], dict[str, str], list[str]]:
    """Every file under ``top``, ``{relative path: (size, mtime_ns)}``, every link out of the root,
    ``{relative path: target}``, and every subdirectory walked (relative). Links inside the root to a file are
    files; links to a folder are not walked."""
    files: dict[str, tuple[int, int]] = {}
    links: dict[str, str] = {}
    dirs: list[str] = []
    pending = [("", top)]
    while pending:
        prefix, directory = pending.pop()
        try:
            iterator = os.scandir(directory)
        except OSError:
            continue
        with iterator:
            for entry in iterator:
                relative = prefix + entry.name
                try:
                    if entry.is_symlink():
                        if not inside(entry.path, root):
                            links[relative] = printable(os.path.realpath(entry.path))
                        elif entry.is_file():  # linked directories are not walked: no loops
                            stat = entry.stat()
                            files[relative] = (stat.st_size, stat.st_mtime_ns)
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append((relative + "/", entry.path))
                        dirs.append(relative)
                    else:
                        stat = entry.stat(follow_symlinks=False)
                        files[relative] = (stat.st_size, stat.st_mtime_ns)
                except OSError:  # vanished between listing and stat: the next sync sees the rest
                    continue
    return files, links, dirs


def _fingerprint(files: dict[str, tuple[int, int]], links: dict[str, str]) -> str:
    """A hash of every file's path, size and mtime and every outside link's target (and of the reader's version)."""
    digest = hashlib.blake2b(READER_VERSION, digest_size=16)
    for relative, (size, mtime) in sorted(files.items()):
        digest.update(f"{relative}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    for relative, target in sorted(links.items()):
        digest.update(f"{relative}\0->{target}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()
