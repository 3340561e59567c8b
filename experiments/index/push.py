"""Run folders pushed from another machine (``manage.py push``, ``gymnos_track.push``), received in pieces.

    state = begin(root, manifest)            # {"state": "new" | "partial" | "exists", "have": {path: bytes}}
    size = receive(root, experiment, folder, path, offset, data)
    outcome = finish(root, experiment, folder)   # moved into place and synced: {"execution": id, ...}

A push is staged in ``<root>/<experiment>/executions/.push-<folder>/`` (sync skips hidden names), its
manifest (each file's path, size and SHA-256) beside it; each piece is appended at the offset the
file already holds (``fileops.append``), so a piece sent twice is refused and an interrupted push
resumes where the server says it stopped. Once every file is whole and its hash matches, the staged
folder is renamed to ``<root>/<experiment>/executions/<folder>`` and synced. Pushing a folder that is
already there, with the same files, creates nothing (``"exists"``); one with other files under the
same name is refused. ``root`` is the trainings root; a push into another project than default (``project=``)
goes to that project's place, ``<root>/projects/<project>/`` (``project_root``), where sync gives it to the project.

Every name is checked as sync checks a folder's (printable UTF-8, no separator, no ``.``/``..``, not
hidden), every size against its bound (metrics.json: ``GYMNOS_MAX_METRICS_MB``; the config: what a
launch accepts), and everything is written through ``fileops``, which never follows a link.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments import files
from experiments.index.listing import printable
from experiments.index.reader import CONFIG_MAX_BYTES, TRACK_MAX_BYTES, metrics_max_bytes
from experiments.index.sync import sync_folder, sync_folders
from experiments.models import Execution
from experiments.models.projects import (
    DEFAULT_PROJECT,
    PROJECT_NAME_PATTERN,
    project_name_validator,
    project_root,
)
from experiments.pipeline import fileops
from experiments.pipeline.names import control_character_problem

MAX_FILES = 10_000  # files in one run folder
MAX_DEPTH = 8  # folders below the run's (callbacks/model_checkpoint/ is 2)
MAX_FILE_BYTES = 4 << 30  # a model or a checkpoint
MAX_RUN_BYTES = 16 << 30  # all of one run's files together
MAX_CHUNK = 1 << 20  # one piece; under Django's DATA_UPLOAD_MAX_MEMORY_SIZE
MAX_INLINE = 512 << 10  # small files' bytes sent with the list (a run of a few small files: one request)
STAGING = ".push-"
SHA256 = re.compile(r"[0-9a-f]{64}")


class PushRefused(ValueError):
    """A push the server will not store; the message names the file and says why."""


@dataclass(frozen=True)
class Item:
    path: str
    size: int
    sha256: str


def _name_problem(name: str, what: str) -> str | None:
    if not isinstance(name, str) or not name:
        return f"the {what} is empty"
    if printable(name) != name:
        return f"the {what} {printable(name)!r} is not UTF-8 text"
    if len(name.encode()) > 240:  # 255 with the staging folder's prefix
        return f"the {what} {name[:40]!r}... is longer than 240 bytes"
    problem = control_character_problem(what, name)
    if problem:
        return f"{problem}: {name[:60]!r}"
    if "/" in name or "\\" in name:
        return f"the {what} {name!r} has a path separator"
    if name in {".", ".."} or name.startswith("."):
        return f"the {what} {name!r} is '.', '..' or hidden (starts with '.'); sync would not read it"
    return None


def _bound(path: str) -> int:
    return {
        "metrics.json": metrics_max_bytes(),
        "training_config.json": CONFIG_MAX_BYTES,
        "track.json": TRACK_MAX_BYTES,
    }.get(path, MAX_FILE_BYTES)


def check_names(experiment: str, folder: str) -> None:
    """``PushRefused`` unless both name a folder as sync reads it."""
    for name, what in ((experiment, "experiment name"), (folder, "run folder name")):
        problem = _name_problem(name, what)
        if problem:
            raise PushRefused(problem)


def check_manifest(experiment: str, folder: str, items: list[dict[str, Any]]) -> list[Item]:
    """The manifest's files, each checked; ``PushRefused`` naming the first file (or name) that is not allowed."""
    check_names(experiment, folder)
    if len(items) > MAX_FILES:
        raise PushRefused(f"{folder}: {len(items):,} files; a pushed run holds at most {MAX_FILES:,}")
    seen: set[str] = set()
    checked = [_checked_item(folder, item, seen) for item in items]
    total = sum(item.size for item in checked)
    if total > MAX_RUN_BYTES:
        raise PushRefused(f"{folder}: {total:,} bytes in all; a pushed run holds at most {MAX_RUN_BYTES:,}")
    if "execution.log" not in seen and "metrics.json" not in seen:
        raise PushRefused(f"{folder}: neither execution.log nor metrics.json; not a run folder")
    return checked


def _checked_item(folder: str, item: dict[str, Any], seen: set[str]) -> Item:
    """One file of a manifest, checked (``seen``: the paths listed before it, this one added)."""
    path, size, digest = item.get("path"), item.get("size"), item.get("sha256")
    if not isinstance(path, str):
        raise PushRefused(f"{folder}: a file without a path")
    parts = path.split("/")
    if len(parts) > MAX_DEPTH + 1:
        raise PushRefused(f"{folder}/{path[:200]}: more than {MAX_DEPTH} folders deep")
    problem = next(filter(None, (_name_problem(part, "file name") for part in parts)), None)
    if problem:
        raise PushRefused(f"{folder}/{printable(path)[:200]}: {problem}")
    if path in seen:
        raise PushRefused(f"{folder}/{path}: listed twice")
    seen.add(path)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise PushRefused(f"{folder}/{path}: size {size!r} is not a number of bytes")
    if size > _bound(path):
        raise PushRefused(f"{folder}/{path}: {size:,} bytes; at most {_bound(path):,} are accepted")
    if not isinstance(digest, str) or not SHA256.fullmatch(digest):
        raise PushRefused(f"{folder}/{path}: sha256 is not 64 lowercase hex digits")
    return Item(path, size, digest)


def _check_inline(folder: str, inline: dict[str, bytes], by_path: dict[str, Item]) -> None:
    """The files sent with the list: bounded in all, and each one listed."""
    if sum(len(data) for data in inline.values()) > MAX_INLINE:
        raise PushRefused(f"{folder}: more than {MAX_INLINE:,} bytes of files sent with the list; send them in pieces")
    unlisted = next((path for path in inline if path not in by_path), None)
    if unlisted is not None:
        raise PushRefused(f"{folder}/{printable(unlisted)[:200]}: sent with the list but not in it")


def _whole(items: list[Item], inline: dict[str, bytes]) -> bool:
    """Whether every listed file came with the list, whole."""
    return bool(inline) and all(
        item.path in inline and len(inline[item.path]) == item.size and _sha256(inline[item.path]) == item.sha256
        for item in items
    )


def _stage_whole(root: Path, staging: str, items: list[Item], inline: dict[str, bytes], folder: str) -> None:
    """Stage every file of a run that came whole with its list."""
    for item in items:
        try:
            fileops.append(root, f"{staging}/{item.path}", inline[item.path], 0)
        except fileops.OffsetMismatch:
            raise PushRefused(f"{folder}: another push of this run is under way; push again") from None


def _places(root: Path, experiment: str, folder: str) -> tuple[str, str, str]:
    """(the run folder, its staging folder, its manifest), relative to the root."""
    executions = f"{experiment}/executions"
    return f"{executions}/{folder}", f"{executions}/{STAGING}{folder}", f"{executions}/{STAGING}{folder}.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(folder: Path, relative: str) -> str:
    digest = hashlib.sha256()
    for block in files.blocks(folder, relative):
        digest.update(block)
    return digest.hexdigest()


def _holds(folder: Path, items: list[Item]) -> dict[str, int]:
    """Each file's bytes in ``folder`` (0 when missing; a link or a folder counts as missing)."""
    have = {}
    for item in items:
        path = folder / item.path
        have[item.path] = path.stat().st_size if path.is_file() and not path.is_symlink() else 0
    return have


def _same(folder: Path, items: list[Item]) -> bool:
    """``folder`` holds exactly these files (names, sizes and hashes), nothing read past a size that differs."""
    have = {relative for relative, _ in files.walk(str(folder))}
    if have != {item.path for item in items}:
        return False
    return all(
        (folder / item.path).stat().st_size == item.size and _digest(folder, item.path) == item.sha256 for item in items
    )


def begin(
    root: Path,
    experiment: str,
    folder: str,
    manifest: list[dict[str, Any]],
    inline: dict[str, bytes] | None = None,
    sync: bool = True,
    project: str = DEFAULT_PROJECT,
) -> dict[str, Any]:
    """Start (or resume) a push into ``project`` (``root``: the trainings root): what the server already holds of
    each file.

    ``inline`` holds whole small files (path -> bytes, at most ``MAX_INLINE`` in all): each is staged if its
    size and hash match the list; when that makes every file whole, the push is finished at once
    (``"state": "pushed"``, with ``finish``'s answer).
    """
    items = check_manifest(experiment, folder, manifest)
    trainings, root = root, _project_root(root, project)
    inline = inline or {}
    by_path = {item.path: item for item in items}
    _check_inline(folder, inline, by_path)
    target, staging, manifest_file = _places(root, experiment, folder)
    if os.path.lexists(root / target):
        if not _same(root / target, items):
            raise PushRefused(
                f"{experiment}/executions/{folder} is already on this server with other files; "
                "a different run has that name (rename the folder to push it)"
            )
        return {"state": "exists", "have": {item.path: item.size for item in items}}
    if _whole(items, inline):  # the whole run came with its list: staged and finished at once, no list kept
        _discard(root, manifest_file)
        _discard(root, staging)
        _stage_whole(root, staging, items, inline, folder)
        sizes = {item.path: item.size for item in items}
        done = _complete(trainings, project, experiment, folder, items, sync, hashed=True)
        return {"state": "pushed", "have": sizes, **done}
    text = json.dumps([item.__dict__ for item in items], sort_keys=True).encode()
    previous = root / manifest_file
    if not (previous.is_file() and files.read_file(root, manifest_file, len(text) + 1) == text):
        _discard(root, staging)  # a push of this folder as it was before it changed: start over
        fileops.write(root, manifest_file, text, create=True)
    have = _holds(root / staging, items) if (root / staging).is_dir() else {item.path: 0 for item in items}
    for path, data in inline.items():
        item = by_path[path]
        if have[path] == 0 and len(data) == item.size and _sha256(data) == item.sha256:
            try:
                have[path] = fileops.append(root, f"{staging}/{path}", data, 0)
            except fileops.OffsetMismatch as exc:  # another push of it wrote there meanwhile
                have[path] = exc.size
    if inline and all(have[item.path] == item.size for item in items):
        return {"state": "pushed", "have": have, **finish(trainings, experiment, folder, sync, project)}
    return {"state": "partial" if any(have.values()) else "new", "have": have}


def _manifest(root: Path, experiment: str, folder: str) -> list[Item]:
    check_names(experiment, folder)
    _, _, manifest_file = _places(root, experiment, folder)
    try:
        data = files.read_file(root, manifest_file, 64 << 20)
    except (OSError, files.Refused):
        raise PushRefused(f"{experiment}/{folder}: no push begun (POST /api/push/begin first)") from None
    return [Item(**item) for item in json.loads(data)]


def receive(
    root: Path, experiment: str, folder: str, path: str, offset: int, data: bytes, project: str = DEFAULT_PROJECT
) -> int:
    """Append one piece of ``path`` at ``offset``; returns the bytes now held (``fileops.OffsetMismatch``
    when the file holds another number of bytes: the answer tells the client where to go on from)."""
    root = _project_root(root, project)
    item = next((item for item in _manifest(root, experiment, folder) if item.path == path), None)
    if item is None:
        raise PushRefused(f"{folder}/{printable(path)[:200]}: not in the pushed run's list of files")
    if len(data) > MAX_CHUNK:
        raise PushRefused(f"{folder}/{path}: a piece of {len(data):,} bytes; at most {MAX_CHUNK:,} at a time")
    if offset + len(data) > item.size:
        raise PushRefused(f"{folder}/{path}: {offset + len(data):,} bytes would pass its size, {item.size:,}")
    _, staging, _ = _places(root, experiment, folder)
    return fileops.append(root, f"{staging}/{path}", data, offset)


def finish(
    root: Path, experiment: str, folder: str, sync: bool = True, project: str = DEFAULT_PROJECT
) -> dict[str, Any]:
    """Check every staged file (size, SHA-256), move the folder into place and sync it (unless ``sync`` is
    False: a client pushing many folders has them indexed together at its end, ``sync_pushed``)."""
    items = _manifest(_project_root(root, project), experiment, folder)
    return _complete(root, project, experiment, folder, items, sync)


def _complete(
    trainings: Path, project: str, experiment: str, folder: str, items: list[Item], sync: bool, hashed: bool = False
) -> dict[str, Any]:
    """``finish`` for these files (``hashed``: their bytes were checked as they arrived)."""
    root = _project_root(trainings, project)
    target, staging, manifest_file = _places(root, experiment, folder)
    created = False
    if not os.path.lexists(root / target):
        for item in items:
            if item.size == 0:  # an empty file gets no piece: made here
                fileops.append(root, f"{staging}/{item.path}", b"", 0)
        have = _holds(root / staging, items)
        short = [item.path for item in items if have[item.path] != item.size]
        if short:
            raise PushRefused(f"{folder}: {len(short)} file(s) not complete yet, first {short[0]}; push again")
        wrong = None if hashed else next((i.path for i in items if _digest(root / staging, i.path) != i.sha256), None)
        if wrong is not None:
            fileops.remove(root, f"{staging}/{wrong}")
            raise PushRefused(f"{folder}/{wrong}: its SHA-256 differs from the list's; removed, push again")
        try:
            fileops.move(root, staging, target)
            created = True
        except FileExistsError:  # another push of the same folder finished first
            pass
    if not created and not _same(root / target, items):
        raise PushRefused(f"{experiment}/executions/{folder} is already on this server with other files")
    _discard(root, manifest_file)
    _discard(root, staging)
    if not sync:
        return {"execution": None, "status": "", "created": created}
    sync_folder(root / target, trainings)  # the trainings root: sync reads the project from the folder's place
    execution = Execution.objects.filter(
        experiment__project__name=project, experiment__name=experiment, folder_name=folder
    ).first()
    return {
        "execution": execution.pk if execution else None,
        "status": execution.status if execution else "",
        "created": created,
    }


MAX_SYNC = 1_000  # folders indexed by one request


def sync_pushed(root: Path, folders: list[tuple[str, str]], project: str = DEFAULT_PROJECT) -> dict[str, int]:
    """Index pushed folders of ``project`` together (``finish(sync=False)``); the names checked first.
    ``{"indexed", "errors"}``."""
    if len(folders) > MAX_SYNC:
        raise PushRefused(f"{len(folders):,} folders to index; at most {MAX_SYNC:,} a request")
    for experiment, folder in folders:
        check_names(experiment, folder)
    report = sync_folders(root, folders, project=project)
    return {"indexed": report.indexed, "unchanged": report.unchanged, "errors": report.errors}


def _project_root(trainings: Path, project: str) -> Path:
    """Where ``project``'s pushes go (``project_root``), made if it is not there yet; the name checked again."""
    if not re.fullmatch(PROJECT_NAME_PATTERN, project):
        raise PushRefused(f"{printable(project)[:64]!r}: {project_name_validator.message}")
    root = project_root(trainings, project)
    for folder in (root.parent, root) if root != trainings else ():
        if folder.is_symlink():  # the pushes' files go through fileops below it; its own place is checked here
            raise PushRefused(f"{folder.relative_to(trainings)}: a link on the server, not followed; push refused")
        folder.mkdir(exist_ok=True)
    return root


def _discard(root: Path, relative: str) -> None:
    if os.path.lexists(root / relative):
        fileops.remove(root, relative, missing_ok=True)


__all__ = ["begin", "receive", "finish", "sync_pushed", "check_manifest", "PushRefused", "MAX_CHUNK"]
