"""Reading execution folders for sync: find them, fingerprint them, and parse what they hold.

    folders, problems = find_folders(root)          # every <experiment>/executions/<name>/
    listing = list_folder(folders[0], root)          # stat only: names, sizes, mtimes -> fingerprint
    record = read_folder(folders[0], listing, now, stale_after)   # the files' contents as a Record

Nothing here writes to the database, and nothing raises for what a folder contains: every
problem becomes a line on the Record (``"metrics.json: is not valid JSON ..."``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.utils import timezone

from experiments.models import ENDED, Status, finite_or_none
from experiments.pipeline import ConfigError, jsonlimits, load_config
from experiments.pipeline.params import flatten

# Part of every fingerprint: bump it when reading changes, and the next sync reads every folder again.
READER_VERSION = b"3"  # 3: sizes, params, system metrics, evaluation and the sidecar
LOG_READ_LIMIT = 1 << 20  # logs bigger than this are read at their head and tail only
FOLDER_TIME = re.compile(r"^(\d{2}-\d{2}-\d{2}__\d{2}-\d{2}-\d{4})(?:_\d+)?$")
LOG_TIME = re.compile(rb"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),\d{3} - ", re.MULTILINE)


# --- finding folders and fingerprinting them (stat only, no reads) ----------------------------


@dataclass(frozen=True)
class Folder:
    """``<root>/<experiment>/executions/<name>``; ``outside`` is set when it links out of the root."""

    experiment: str
    name: str
    path: Path
    outside: str = ""


@dataclass
class Listing:
    """The files of one folder, from ``os.scandir`` alone."""

    files: dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)
    links_outside: dict[str, str]  # relative path -> where the symlink points
    fingerprint: str
    newest_ns: int


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


def find_folders(root: str) -> tuple[list[Folder], list[str]]:
    """``(folders, problems)``: every execution folder under ``root`` (a resolved path), sorted.

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
        if not _storable_name(dataset.name):
            problems.append(f"{printable(dataset.name)}: the folder name is not UTF-8 text; not read")
            continue
        if not inside(executions, root):
            problems.append(
                f"{dataset.name}/executions: a symlink to {printable(os.path.realpath(executions))}, "
                "outside the trainings root; not read"
            )
            continue
        for entry in _entries(executions):
            if not _storable_name(entry.name):
                problems.append(
                    f"{dataset.name}/executions/{printable(entry.name)}: the folder name is not UTF-8 text; not read"
                )
            elif entry.is_symlink() and not inside(entry.path, root):
                folders.append(
                    Folder(dataset.name, entry.name, Path(entry.path), outside=printable(os.path.realpath(entry.path)))
                )
            elif entry.is_dir():
                folders.append(Folder(dataset.name, entry.name, Path(entry.path)))
    return folders, problems


def _storable_name(name: str) -> bool:
    """Linux allows any bytes in a name; the index stores UTF-8 text of at most 255 characters."""
    return printable(name) == name and len(name) <= 255


def printable(text: str) -> str:
    """``text`` as UTF-8 can hold it: undecodable bytes and lone surrogates become "?"."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def list_folder(folder: Folder, root: str) -> Listing:
    """Stat every file under the folder (symlinks are not followed out of the root) and hash it."""
    if folder.outside:  # not walked at all; the fingerprint notices if the link is pointed elsewhere
        return Listing({}, {}, hashlib.blake2b(folder.outside.encode(), digest_size=16).hexdigest(), 0)
    files: dict[str, tuple[int, int]] = {}
    links: dict[str, str] = {}
    pending = [("", str(folder.path))]
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
                    else:
                        stat = entry.stat(follow_symlinks=False)
                        files[relative] = (stat.st_size, stat.st_mtime_ns)
                except OSError:  # vanished between listing and stat: the next sync sees the rest
                    continue
    digest = hashlib.blake2b(READER_VERSION, digest_size=16)
    for relative, (size, mtime) in sorted(files.items()):
        digest.update(f"{relative}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
    for relative, target in sorted(links.items()):
        digest.update(f"{relative}\0->{target}\n".encode("utf-8", "surrogateescape"))
    newest = max((mtime for _, mtime in files.values()), default=0)
    return Listing(files, links, digest.hexdigest(), newest)


# --- reading a folder that changed ------------------------------------------------------------


@dataclass
class Record:
    """What one folder says, ready to be written as an Execution (and its MetricHistory rows)."""

    folder: Folder
    fingerprint: str
    status: str = Status.SUCCEEDED
    title: str = ""
    tags: list[str] = field(default_factory=list)
    config: object = None
    trackers: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    metrics: dict[str, list[float | None]] | None = None  # None: metrics.json was not read, leave metric fields alone
    elapsed: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    run_error: str = ""
    problems: list[str] = field(default_factory=list)
    keep_outcome: bool = False  # leave the row's status, error and finished_at as they are
    # What the registered FolderReaders found: Execution field -> value, and extra histories
    # ("system/cpu_percent": [...]) that are not epoch metrics.
    extra: dict[str, Any] = field(default_factory=dict)
    extra_histories: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def error(self) -> str:
        return "\n".join(line for line in [self.run_error, *self.problems] if line)

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{name}: {message}")


def _clean(value: Any) -> Any:
    """A JSON value both databases accept: NaN/Infinity become null, lone surrogates "?"."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {_clean(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def _local_time(text: str, fmt: str) -> dt.datetime | None:
    try:
        return timezone.make_aware(dt.datetime.strptime(text, fmt), timezone.get_default_timezone())
    except ValueError:
        return None


def _positions(indexes: list[int]) -> str:
    shown = ", ".join(str(index) for index in indexes[:5])
    return shown + (f" and {len(indexes) - 5} more" if len(indexes) > 5 else "")


def load_json(data: bytes, record: Record, name: str) -> Any:
    """Parse a file's bytes (NaN and Infinity allowed, as Python writes them); None after a problem."""
    depth = jsonlimits.depth_of_text(data)
    if depth > jsonlimits.MAX_DEPTH:
        record.problem(name, f"is nested {depth} deep; at most {jsonlimits.MAX_DEPTH} levels are read")
        return None
    try:
        return json.loads(data.decode("utf-8-sig"))  # UTF-8, as the engine writes it (a BOM is forgiven)
    except UnicodeDecodeError as exc:
        record.problem(name, f"is not UTF-8 text (byte {exc.start}); expected JSON")
    except json.JSONDecodeError as exc:
        record.problem(
            name,
            f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "the file is truncated or not JSON",
        )
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        record.problem(name, f"holds an integer of more than {sys.get_int_max_str_digits():,} digits; expected JSON")
    return None


@functools.lru_cache(maxsize=1024)
def config_problems(text: bytes) -> tuple[str, ...]:
    """Check a config with the engine's schema; ``()`` if it is valid. Memoised: a sweep's configs repeat.

    The schema alone (no Keras, nothing built), so a sweep whose every config differs still
    indexes at full speed.
    """
    try:
        load_config(text)
    except ConfigError as exc:
        return tuple(str(problem) for problem in exc.problems)
    except Exception as exc:  # noqa: BLE001 - a checker choking on odd input is still a bad config
        return (f"could not be checked: {type(exc).__name__}: {exc}",)
    return ()


def _read_config(data: bytes, record: Record) -> None:
    config = load_json(data, record, "training_config.json")
    if config is None:
        return
    if not isinstance(config, dict):
        record.problem("training_config.json", f"expected a JSON object, got {type(config).__name__}")
        return
    record.config = config = _clean(config)
    record.params = flatten(config)
    experiment = config.get("experiment") if isinstance(config.get("experiment"), dict) else {}
    record.title = str(experiment.get("name") or "")
    tags = experiment.get("tags")
    record.tags = [str(tag) for tag in tags if isinstance(tag, (str, int, float))] if isinstance(tags, list) else []
    problems = config_problems(bytes(data))
    if problems:
        record.problem("training_config.json", "no longer validates: " + "; ".join(problems))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_metrics(data: bytes, record: Record) -> None:
    document = load_json(data, record, "metrics.json")
    if document is None:
        record.status = Status.FAILED
        return
    if not isinstance(document, dict) or not isinstance(document.get("metrics"), dict):
        record.status = Status.FAILED
        record.problem("metrics.json", 'expected an object with a "metrics" object of {name: [values]}')
        return
    metrics: dict[str, list[float | None]] = {}
    for name, values in document["metrics"].items():
        if not isinstance(values, list) or not all(_is_number(value) for value in values) or len(name) > 255:
            record.problem("metrics.json", f"metrics.{name[:80]} is not a list of numbers; not indexed")
            continue
        bad = [index + 1 for index, value in enumerate(values) if not math.isfinite(value)]
        if bad:
            record.problem("metrics.json", f"{name} is NaN or Infinity at epoch {_positions(bad)} (stored as null)")
        metrics[_clean(name)] = [finite_or_none(float(value)) for value in values]
    record.metrics = metrics
    record.elapsed = _clean(document["elapsed"]) if isinstance(document.get("elapsed"), dict) else {}
    record.hardware = _clean(document["hardware"]) if isinstance(document.get("hardware"), dict) else {}
    error = document.get("error")
    if error:
        record.run_error = str(error)
        record.status = Status.CANCELLED if error == "interrupted" else Status.FAILED


def _read_log(data: tuple[bytes, bytes], record: Record) -> None:
    """The first and last timestamps; bytes that are not UTF-8 are reported, not fatal."""
    head, tail = data
    for part in (head,) if head is tail else (head, tail):
        try:
            part.decode("utf-8")
        except UnicodeDecodeError as exc:
            record.problem(
                "execution.log",
                f"has bytes that are not UTF-8 (first at byte {exc.start}); the dashboard shows them as \ufffd",
            )
            break
    first = LOG_TIME.search(head)
    stamps = LOG_TIME.findall(tail[-8192:]) or LOG_TIME.findall(tail)
    record.started_at = _local_time(first.group(1).decode(), "%Y-%m-%d %H:%M:%S") if first else None
    record.finished_at = _local_time(stamps[-1].decode(), "%Y-%m-%d %H:%M:%S") if stamps else None


def _head_and_tail(handle: BinaryIO, size: int) -> tuple[bytes, bytes]:
    """A log's bytes, or for a huge log its first and last half-megabyte, cut at line ends."""
    if size <= LOG_READ_LIMIT:
        data = handle.read()
        return data, data
    head = handle.read(LOG_READ_LIMIT // 2).rpartition(b"\n")[0]
    handle.seek(-LOG_READ_LIMIT // 2, os.SEEK_END)
    return head, handle.read().partition(b"\n")[2]


def _read(folder: Folder, listing: Listing, record: Record, name: str) -> bytes | tuple[bytes, bytes] | None:
    """One file's bytes, or None when it is absent, links out of the root, or cannot be read."""
    if name in listing.links_outside:
        record.problem(name, f"is a symlink to {listing.links_outside[name]}, outside the trainings root; not read")
        return None
    if name not in listing.files:
        return None
    try:
        with open(folder.path / name, "rb") as handle:
            return _head_and_tail(handle, listing.files[name][0]) if name == "execution.log" else handle.read()
    except OSError as exc:
        record.problem(name, f"cannot be read: {exc.strerror or exc}")
        return None


def _read_trackers(data: bytes, record: Record) -> None:
    trackers = load_json(data, record, "trackers.json")
    if isinstance(trackers, dict):
        record.trackers = _clean(trackers)


READERS: dict[str, Callable[[Any, Record], None]] = {
    "training_config.json": _read_config,
    "trackers.json": _read_trackers,
    "execution.log": _read_log,
}


@dataclass(frozen=True)
class FolderReader:
    """What a feature reads from a folder into its Execution fields (``record.extra``).

    ``file`` is read (None when absent, or a link out of the root) and passed to ``read`` with the
    folder's listing; ``read`` fills ``record.extra`` with every field in ``fields`` (their empty
    value when the file is absent, so a file taken away clears them) and may add
    ``record.extra_histories``. It never raises for what the file holds: ``record.problem`` says it.
    """

    file: str | None
    fields: tuple[str, ...]
    read: Callable[[bytes | None, Listing, Record], None]


FOLDER_READERS: list[FolderReader] = []


def register(reader: FolderReader) -> None:
    """Add a reader (at app start-up); sync writes its fields on every row it indexes."""
    if reader not in FOLDER_READERS:
        FOLDER_READERS.append(reader)


# Called once a full sync has written everything, with the ids of the experiments it created (an
# index rebuilt from the folders): a feature restores what it keeps of an experiment in the runs' files.
NEW_EXPERIMENT_HOOKS: list[Callable[[list[int]], None]] = []


def on_new_experiments(hook: Callable[[list[int]], None]) -> None:
    """Call ``hook(experiment ids)`` after each full sync that created experiments (at app start-up)."""
    if hook not in NEW_EXPERIMENT_HOOKS:
        NEW_EXPERIMENT_HOOKS.append(hook)


def extra_fields() -> list[str]:
    return [name for reader in FOLDER_READERS for name in reader.fields]


def read_folder(
    folder: Folder,
    listing: Listing,
    now: dt.datetime,
    stale_after: dt.timedelta,
    known_status: str | None = None,
    worker_alive: bool = False,
) -> Record:
    """Turn one folder into a ``Record``: never raises for what the files contain.

    ``known_status`` is the row's status, if it has one; ``worker_alive`` says a worker's heartbeat
    vouches for the run. Both matter only without metrics.json, when the folder cannot say how the
    run ended: a run that already ended keeps its outcome (``keep_outcome``), one a live worker runs
    stays running however long its files stay still.
    """
    record = Record(folder, listing.fingerprint)
    if folder.outside:
        record.status = Status.FAILED
        record.problem("folder", f"is a symlink to {folder.outside}, outside the trainings root; not read")
        return record
    record.artifacts = [
        {"path": name, "bytes": size}
        for name, (size, _) in sorted(listing.files.items())
        if name == "model.h5" or name.startswith("callbacks/")
    ]
    for name, reader in READERS.items():
        data = _read(folder, listing, record, name)
        if data is not None:
            reader(data, record)
    for extra in FOLDER_READERS:
        content = _read(folder, listing, record, extra.file) if extra.file else None
        extra.read(content if isinstance(content, bytes) else None, listing, record)
    match = FOLDER_TIME.match(folder.name)
    if record.started_at is None and match:
        record.started_at = _local_time(match.group(1), "%H-%M-%S__%d-%m-%Y")
    data = _read(folder, listing, record, "metrics.json")
    if data is not None:
        assert isinstance(data, bytes)  # only execution.log is read as (head, tail)
        _read_metrics(data, record)
        if record.finished_at is None:
            record.finished_at = dt.datetime.fromtimestamp(listing.files["metrics.json"][1] / 1e9, dt.UTC)
        return record
    record.finished_at = None
    if "metrics.json" in listing.links_outside or "metrics.json" in listing.files:
        record.status = Status.FAILED  # there, but not readable (the problem is already recorded)
    elif known_status is not None and known_status in ENDED:
        record.status, record.keep_outcome = known_status, True  # a cancel or a lost worker, recorded by whoever saw it
    elif not worker_alive and is_stale(folder, listing, now, stale_after):
        record.status = Status.FAILED
        changed = dt.datetime.fromtimestamp(_newest_ns(folder, listing) / 1e9, dt.UTC)
        record.problem(
            "metrics.json",
            f"missing, and nothing in the folder changed since {changed:%Y-%m-%d %H:%M} UTC; "
            "the run crashed or was stopped before it finished",
        )
    else:
        record.status = Status.RUNNING
    return record


def _newest_ns(folder: Folder, listing: Listing) -> int:
    if listing.newest_ns:
        return listing.newest_ns
    try:
        return os.stat(folder.path).st_mtime_ns
    except OSError:
        return 0


def is_stale(folder: Folder, listing: Listing, now: dt.datetime, stale_after: dt.timedelta) -> bool:
    """No file in the folder changed for ``stale_after``."""
    return now.timestamp() * 1e9 - _newest_ns(folder, listing) > stale_after.total_seconds() * 1e9
