"""Reading an execution folder that changed, for sync: parse what its files hold into a Record.

    record = read_folder(folder, listing, now, stale_after)   # the files' contents as a Record

(``experiments.index.listing`` finds the folders and fingerprints them.) Every file is read
through the one bounded reader, ``experiments.files``, with a bound per file (``READERS``,
``metrics_max_bytes``, ``LOG_READ_LIMIT``, each FolderReader's ``limit``). Nothing here writes to
the database, and nothing raises for what a folder contains: every problem becomes a line on the
Record (``"metrics.json: is not valid JSON ..."``, ``"metrics.json: is 40,000,000 bytes; at most ..."``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from experiments import files
from experiments.index.listing import Folder, Listing, printable
from experiments.models import ENDED, Status, finite_or_none
from experiments.pipeline import ConfigError, jsonlimits, load_config
from experiments.pipeline.config import canonical_params, experiment_section
from experiments.pipeline.names import metric_name_problem
from experiments.pipeline.params import flatten
from gymnos_track.layout import ARTIFACTS
from gymnos_track.run import TRACK_FILE, process_gone

LOG_READ_LIMIT = 1 << 20  # logs bigger than this are read at their head and tail only
# The most bytes sync reads of each file it parses (a feature's reader states its own): a bigger file
# is that folder's error, naming the file and the bound, and nothing of it is read.
CONFIG_MAX_BYTES = jsonlimits.MAX_BYTES  # what a launch accepts
TRACKERS_MAX_BYTES = 64 * 1024  # a tracker's run id and URL
TRACK_MAX_BYTES = 4096  # track.json: the client, its version, the host and pid that write a script's run
FOLDER_TIME = re.compile(r"^(\d{2}-\d{2}-\d{2}__\d{2}-\d{2}-\d{4})(?:_\d+)?$")
LOG_TIME = re.compile(rb"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),\d{3} - ", re.MULTILINE)


# --- reading a folder that changed ------------------------------------------------------------


@dataclass
class Record:
    """What one folder says, ready to be written as an Execution (and its MetricHistory rows)."""

    folder: Folder
    fingerprint: str
    status: str = Status.SUCCEEDED
    stamp: str = ""  # set by sync where the run ended and its folder is still (experiments.index.stamps)
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
    # A script's run (gymnos_track): track.json's host and pid, read before the config (a script's own config is
    # not an engine config). ``running``: metrics.json says the script had not finished when it was written.
    tracked: dict[str, Any] | None = None
    running: bool = False
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
def _checked(text: bytes) -> tuple[str, tuple[str, ...]]:
    """A config's canonical params (as JSON text) and its problems (``()`` if valid), from one validation by the
    engine's schema. Memoised: a sweep's configs repeat.

    The schema alone (no Keras, nothing built), so a sweep whose every config differs still indexes at full
    speed. A config the schema refuses has its params read as ``canonical_params`` reads them.
    """
    try:
        return json.dumps(load_config(text).params), ()
    except ConfigError as exc:
        problems = tuple(str(problem) for problem in exc.problems)
    except Exception as exc:  # noqa: BLE001 - a checker choking on odd input is still a bad config
        problems = (f"could not be checked: {type(exc).__name__}: {exc}",)
    return json.dumps(canonical_params(_clean(json.loads(text.decode("utf-8-sig"))))), problems


def _params_json(text: bytes) -> str:
    """The canonical params of a config's bytes, as JSON text."""
    return _checked(text)[0]


def config_problems(text: bytes) -> tuple[str, ...]:
    """Check a config with the engine's schema; ``()`` if it is valid."""
    return _checked(text)[1]


def _read_config(data: bytes, record: Record) -> None:
    config = load_json(data, record, "training_config.json")
    if config is None:
        return
    if not isinstance(config, dict):
        record.problem("training_config.json", f"expected a JSON object, got {type(config).__name__}")
        return
    record.config = config = _clean(config)
    experiment = experiment_section(config)
    record.title = experiment.name if experiment is not None else ""
    record.tags = list(experiment.tags) if experiment is not None else []
    if record.tracked is not None:  # a script's own settings, kept and shown as they are: no engine schema
        record.params = flatten(config)
        return
    record.params = json.loads(_params_json(bytes(data)))  # "adam" and {"type": "adam"}: the same params
    problems = config_problems(bytes(data))
    if problems:
        record.problem("training_config.json", "no longer validates: " + "; ".join(problems))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_history(values: list[Any]) -> list[int]:
    """Make a list of numbers a history, in place (a history of a million epochs is not copied): floats,
    None where a value is NaN, infinite or an integer too large for a float. Returns those epochs (from 1)."""
    bad = []
    for index, value in enumerate(values):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            values[index] = number
        else:
            values[index] = None
            bad.append(index + 1)
    return bad


def _read_metrics(data: bytes, record: Record) -> None:
    document = load_json(data, record, "metrics.json")
    if document is None:
        record.status = Status.FAILED
        return
    if not isinstance(document, dict) or not isinstance(document.get("metrics"), dict):
        record.status = Status.FAILED
        record.problem("metrics.json", 'expected an object with a "metrics" object of {name: [values]}')
        return
    longest = max((len(v) for v in document["metrics"].values() if isinstance(v, list)), default=0)
    if longest > settings.GYMNOS_MAX_EPOCHS:
        record.status = Status.FAILED
        record.problem(
            "metrics.json",
            f"has {longest:,} epochs; at most {settings.GYMNOS_MAX_EPOCHS:,} are read (GYMNOS_MAX_EPOCHS); not indexed",
        )
        return
    metrics: dict[str, list[float | None]] = {}
    for name, values in document["metrics"].items():
        refused = metric_name_problem(name)
        if refused:
            record.problem("metrics.json", f"{refused}; not indexed")
            continue
        if not isinstance(values, list) or not all(_is_number(value) for value in values):
            record.problem("metrics.json", f"metrics.{name} is not a list of numbers; not indexed")
            continue
        bad = _as_history(values)
        if bad:
            record.problem("metrics.json", f"{name} is NaN or Infinity at epoch {_positions(bad)} (stored as null)")
        metrics[_clean(name)] = values
    record.metrics = metrics
    record.elapsed = _clean(document["elapsed"]) if isinstance(document.get("elapsed"), dict) else {}
    record.hardware = _clean(document["hardware"]) if isinstance(document.get("hardware"), dict) else {}
    record.running = document.get("running") is True
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


def _read_track(data: bytes, record: Record) -> None:
    """track.json (written by ``gymnos_track``): the folder is a script's run, written by this host and pid."""
    track = load_json(data, record, TRACK_FILE)
    record.tracked = _clean(track) if isinstance(track, dict) else {}


def tracked_process_gone(folder: Folder, listing: Listing) -> bool:
    """A script's run (track.json) whose process was on this machine and is gone: it will write nothing more."""
    if TRACK_FILE not in listing.files:
        return False
    record = Record(folder, listing.fingerprint)
    data = read_bounded(record, TRACK_FILE, TRACK_MAX_BYTES, listing)
    if data is not None:
        _read_track(data, record)
    return record.tracked is not None and process_gone(record.tracked)


def _read_trackers(data: bytes, record: Record) -> None:
    trackers = load_json(data, record, "trackers.json")
    if isinstance(trackers, dict):
        record.trackers = _clean(trackers)


def metrics_max_bytes() -> int:
    """The largest metrics.json sync reads: ``GYMNOS_MAX_METRICS_MB``."""
    return int(settings.GYMNOS_MAX_METRICS_MB) << 20


def _listed(record: Record, name: str, listing: Listing) -> bool:
    """Whether the folder has ``name`` to read; a link out of the root is said on ``record``."""
    if name in listing.links_outside:
        record.problem(name, f"is a symlink to {listing.links_outside[name]}, outside the trainings root; not read")
        return False
    return name in listing.files


def _unread(record: Record, name: str, exc: Exception) -> None:
    """Say on ``record`` why ``name`` was not read (the one reader refused it, or the system could not)."""
    if isinstance(exc, files.TooLarge):
        record.problem(name, f"{exc}; not indexed")
    elif isinstance(exc, files.Refused):
        record.problem(name, str(exc))
    elif isinstance(exc, FileNotFoundError):
        record.problem(name, "was removed while sync read the folder; the next sync reads it again")
    elif isinstance(exc, OSError):
        record.problem(name, f"cannot be read: {exc.strerror or exc}")


def read_bounded(record: Record, name: str, limit: int, listing: Listing, setting: str = "") -> bytes | None:
    """``name``'s bytes through the one reader (``files.read_file``), at most ``limit`` of them; None when
    the folder has no such file, or with the reason on ``record`` when it may not or cannot be read
    (naming the ``setting`` that sets the bound, if one does)."""
    if not _listed(record, name, listing):
        return None
    try:
        return files.read_file(record.folder.path, name, limit)
    except files.TooLarge as exc:
        record.problem(name, f"{exc}{f' ({setting})' if setting else ''}; not indexed")
    except (OSError, files.Refused) as exc:
        _unread(record, name, exc)
    return None


def _read_log_file(record: Record, listing: Listing) -> tuple[bytes, bytes] | None:
    """The log's bytes, or for a huge log its first and last half-megabyte, cut at line ends."""
    if not _listed(record, "execution.log", listing):
        return None
    try:
        with files.open_file(record.folder.path, "execution.log", limit=LOG_READ_LIMIT) as log:
            if log.size <= LOG_READ_LIMIT:
                data = log.read()
                return data, data
            head = log.read(LOG_READ_LIMIT // 2).rpartition(b"\n")[0]
            log.seek(-LOG_READ_LIMIT // 2, os.SEEK_END)
            return head, log.read().partition(b"\n")[2]
    except (OSError, files.Refused) as exc:
        _unread(record, "execution.log", exc)
        return None


# The seed's files sync parses, with the most bytes it reads of each (metrics.json: ``metrics_max_bytes``).
READERS: dict[str, tuple[int, Callable[[bytes, Record], None]]] = {
    TRACK_FILE: (TRACK_MAX_BYTES, _read_track),  # first: it says how the config is read
    "training_config.json": (CONFIG_MAX_BYTES, _read_config),
    "trackers.json": (TRACKERS_MAX_BYTES, _read_trackers),
}


@dataclass(frozen=True)
class FolderReader:
    """What a feature reads from a folder into its Execution fields (``record.extra``).

    ``file`` is read, at most ``limit`` bytes of it (None when absent, over the bound, or a link out
    of the folder: ``record.problem`` says which), and passed to ``read`` with the folder's listing;
    ``read`` fills ``record.extra`` with every field in ``fields`` (their empty value when the file is
    absent, so a file taken away clears them) and may add ``record.extra_histories``. It never raises
    for what the file holds: ``record.problem`` says it. A reader that streams its file (``file``
    None) opens it through ``experiments.files`` with a bound of its own.
    """

    file: str | None
    fields: tuple[str, ...]
    read: Callable[[bytes | None, Listing, Record], None]
    limit: int = 0

    def __post_init__(self) -> None:
        if self.file is not None and self.limit <= 0:
            raise ValueError(f"a FolderReader of {self.file} states the most bytes it reads (limit)")


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
        if name == "model.h5" or name.startswith(("callbacks/", ARTIFACTS + "/"))
    ]
    for name, (limit, reader) in READERS.items():
        data = read_bounded(record, name, limit, listing)
        if data is not None:
            reader(data, record)
    log = _read_log_file(record, listing)
    if log is not None:
        _read_log(log, record)
    for extra in FOLDER_READERS:
        content = read_bounded(record, extra.file, extra.limit, listing) if extra.file else None
        extra.read(content, listing, record)
    match = FOLDER_TIME.match(folder.name)
    if record.started_at is None and match:
        record.started_at = _local_time(match.group(1), "%H-%M-%S__%d-%m-%Y")
    data = read_bounded(record, "metrics.json", metrics_max_bytes(), listing, "GYMNOS_MAX_METRICS_MB")
    if data is not None:
        _read_metrics(data, record)
        if record.running:
            _running_script(record, listing, now, stale_after, worker_alive)
        elif record.finished_at is None:
            record.finished_at = dt.datetime.fromtimestamp(listing.files["metrics.json"][1] / 1e9, dt.UTC)
        return record
    record.finished_at = None
    _status_without_metrics(record, listing, known_status, worker_alive, now, stale_after)
    return record


def _status_without_metrics(
    record: Record,
    listing: Listing,
    known_status: str | None,
    worker_alive: bool,
    now: dt.datetime,
    stale_after: dt.timedelta,
) -> None:
    """How a run without a readable metrics.json stands: failed (unreadable, or stale), what the row says it
    ended as, or running."""
    folder = record.folder
    if "metrics.json" in listing.links_outside or "metrics.json" in listing.files:
        record.status = Status.FAILED  # there, but not read (the problem is already recorded)
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


def _running_script(
    record: Record, listing: Listing, now: dt.datetime, stale_after: dt.timedelta, worker_alive: bool
) -> None:
    """A metrics.json written while its script still ran: running, or failed once its process is gone (this
    machine) or the folder has stayed still for ``stale_after`` (another machine, or the machine went down)."""
    record.finished_at = None
    if record.status != Status.SUCCEEDED:  # it said an error as well
        return
    gone = record.tracked is not None and process_gone(record.tracked)
    if gone or (not worker_alive and is_stale(record.folder, listing, now, stale_after)):
        record.status = Status.FAILED
        changed = dt.datetime.fromtimestamp(_newest_ns(record.folder, listing) / 1e9, dt.UTC)
        why = "its process is gone" if gone else f"nothing in the folder changed since {changed:%Y-%m-%d %H:%M} UTC"
        record.run_error = (
            f"the script stopped before it finished the run ({why}): killed, crashed or its machine went down; "
            "the folder keeps what it logged until then"
        )
    else:
        record.status = Status.RUNNING


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
