"""A run of any training script, written as the seed's execution folder while it trains.

    run = start(experiment="mnist_torch", config={"lr": 0.01}, tags=["baseline"])
    for epoch in range(10):
        run.log({"loss": loss, "val_loss": val_loss}, epoch=epoch)
    run.log_artifact("model.pt")
    run.finish()

What a killed script leaves: ``training_config.json`` and ``track.json`` from the start, every line of
``execution.log`` (appended and flushed per call), and ``metrics.json`` as of its last rewrite (at
most ``flush_seconds`` old), marked ``"running"``. Sync reads such a folder as running while its
process lives (and its files change), and as failed once the process is gone (same machine) or the
folder has been still for ``GYMNOS_SYNC_STALE_MINUTES``. JSON files are written to a temporary name
and renamed, so no reader ever sees half a file.

No thread, no import of Django, TensorFlow or torch: ``log`` stores the values, appends one line, and
rewrites metrics.json only when ``flush_seconds`` have passed since the last rewrite.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from .layout import ARTIFACTS, LOG_TIME_FORMAT, create_execution_dir, metric_name_problem, shown
from .live import ApiStream, LiveStream

if TYPE_CHECKING:
    from .steps import StepWriter

# Beside the seed's files: who wrote the folder (sync reads the config as a script's own, not as an engine
# config) and which process, so a run whose process is gone reads as failed at once.
TRACK_FILE = "track.json"
CLIENT = "gymnos_track"
VERSION = 1
# The bounds of what a script may log (sync's own bounds are the same or wider: GYMNOS_MAX_EPOCHS).
MAX_METRICS = 1_000  # metric names in one run
MAX_EPOCHS = 1_000_000
MAX_STEP = 2**62  # steps.h5 keeps them as int64
MAX_CONFIG_BYTES = 1 << 20  # what a launch accepts (experiments.pipeline.jsonlimits.MAX_BYTES)
MAX_CONFIG_DEPTH = 64  # experiments.pipeline.jsonlimits.MAX_DEPTH
MAX_TAGS = 50
MAX_TAG = 100
MAX_EXPERIMENT = 100
MAX_ARTIFACT_BYTES = 8 << 30
FLUSH_SECONDS = 2.0
Status = Literal["finished", "failed", "interrupted"]


class TrackError(ValueError):
    """What a script gave the client that a run folder cannot hold; the message names it and says the fix."""


def start(
    experiment: str,
    config: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    root: str | os.PathLike[str] | None = None,
    flush_seconds: float = FLUSH_SECONDS,
    live: str | None = None,
    server: str | None = None,
    token: str | None = None,
    project: str | None = None,
) -> Run:
    """Start a run: create ``<root>/<experiment>/executions/<time>/`` and write its config.

    ``root`` defaults to ``GYMNOS_TRAININGS_ROOT``, else ``./trainings`` (what the server indexes).
    ``experiment`` names the folder level above ``executions`` (letters, digits, ``_ . -``).
    ``flush_seconds`` is how often ``log`` rewrites metrics.json (what a killed script keeps; 0: every call);
    it grows so that rewriting a long history takes at most 1% of the run's time.
    ``config`` is kept as ``training_config.json`` (any JSON object: a script's own settings),
    with ``{"experiment": {"name": experiment, "tags": tags}}`` added, as the engine's configs have it.
    ``live``, a run's RemoteMonitor URL on a Gymnos server, also streams each epoch there from a thread
    (``gymnos_track.live``): only then is a thread started, and a server that is down never blocks ``log``.
    ``server`` and ``token`` (an API token; push-only will do) stream them through the API instead, batched, to the
    run its folder becomes on that server when pushed (``gymnos_track.live.ApiStream``), in the server's ``project``
    (push the folder with the same one; None: the token's project when it is limited to one, else default).
    """
    return Run(experiment, config, tags, root, flush_seconds, live, server, token, project)


class Run:
    """One tracked run; see ``start``. Use it as a context manager to record a crash as failed."""

    def __init__(
        self,
        experiment: str,
        config: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        root: str | os.PathLike[str] | None = None,
        flush_seconds: float = FLUSH_SECONDS,
        live: str | None = None,
        server: str | None = None,
        token: str | None = None,
        project: str | None = None,
    ) -> None:
        _check_experiment(experiment)
        if (server is None) != (token is None) or (server is not None and live is not None):
            raise TrackError("to stream live, give live=URL (a RemoteMonitor URL), or server= and token= together")
        tags = _checked_tags(tags)
        document = _checked_config(experiment, config, tags)
        self.root = Path(root if root is not None else os.environ.get("GYMNOS_TRAININGS_ROOT") or "trainings")
        self.flush_seconds = float(flush_seconds)
        self.metrics: dict[str, list[float]] = {}
        self.epoch = -1  # the last epoch logged
        self.status: str | None = None
        self.step = 0  # the last step logged (steps count from 1, as the engine's do)
        self.steps: StepWriter | None = None  # steps.h5, opened at the first step logged (h5py imported then)
        self._step_names: set[str] = set()  # checked once
        self.started = time.monotonic()
        self._flushed = 0.0
        self._stamp_second = -1
        self._stamp = ""
        self.hardware = {"platform": platform.platform(), "hostname": platform.node(), "python": sys.version.split()[0]}
        self.path = create_execution_dir(self.root, experiment)
        _write_json(self.path / TRACK_FILE, {"client": CLIENT, "version": VERSION, **process_identity()})
        _write_json(self.path / "training_config.json", document)
        # Unbuffered: each line is one write(2), so a kill never leaves half a line behind the last one.
        self._log = open(self.path / "execution.log", "ab", buffering=0)
        self._line("INFO", f"Running experiment: {self.path.name} ...")
        self._line("INFO", f"Creating directory to save training results ({self.path})")
        self._write_metrics(running=True)
        self.live: LiveStream | None = LiveStream(live) if live else None
        if server is not None and token is not None:
            self.live = ApiStream(server, token, experiment, self.path.name, project)

    # --- what a script calls -------------------------------------------------------------------

    def log(self, values: Mapping[str, Any], epoch: int | None = None, step: int | None = None) -> None:
        """Record one epoch's values (``{"loss": 0.31, "val_loss": 0.42}``), or with ``step=N`` one training step's.

        With ``step`` (counting from 1 over the whole run, as the engine counts batches), the values go to
        ``steps.h5`` in the engine's per-step format (the run page's step charts), not to the epochs; steps only go
        forward. The names a run logs per step are those of its first step (the file's layout is fixed when it is
        first written, as the engine's is); h5py is imported at the first step. An epoch logged after steps marks
        where that epoch ended, at the last step logged.

        ``epoch`` counts from 0 (as Keras' ``on_epoch_end`` does); left out, it is the epoch after the
        last one. Logging the same epoch again adds or replaces names in it; an earlier one is refused.
        A name missing from an epoch it was not logged in holds NaN there (what sync shows as a gap).
        Values are anything ``float()`` takes (Python, NumPy and torch scalars); NaN and infinity
        are kept, written as Python writes them (``NaN``, ``Infinity``), as the engine does.
        """
        if step is not None:
            if epoch is not None:
                raise TrackError(f"run.log(epoch={epoch!r}, step={step!r}): give one of them, a step or an epoch")
            return self._log_step(values, step)
        if epoch is None:
            epoch = self.epoch + 1
        elif not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise TrackError(f"epoch={epoch!r}: expected an integer from 0")
        if epoch < self.epoch:
            raise TrackError(f"epoch {epoch} is before epoch {self.epoch}, already logged; epochs only go forward")
        if epoch >= MAX_EPOCHS:
            raise TrackError(f"epoch {epoch}: a run holds at most {MAX_EPOCHS:,} epochs")
        checked = self.log_values(values, epoch, f"Epoch {epoch + 1}")
        self.epoch = epoch
        if self.steps is not None:
            self.steps.epoch_end(self.step)
        if self.live is not None:
            self.live.put(epoch, checked)
        if time.monotonic() - self._flushed >= self.flush_seconds:
            self._write_metrics(running=True)

    def _log_step(self, values: Mapping[str, Any], step: int) -> None:
        if self.status is not None:
            raise TrackError(f"the run {self.path.name} has ended ({self.status}); start() a new one to log more")
        if not isinstance(step, int) or isinstance(step, bool) or not 0 < step < MAX_STEP:
            raise TrackError(f"step={step!r}: expected an integer from 1")
        if step < self.step:
            raise TrackError(f"step {step} is before step {self.step}, already logged; steps only go forward")
        if not isinstance(values, Mapping):
            raise TrackError(f"run.log takes {{name: number}}, not {type(values).__name__}")
        for name in values:
            if name not in self._step_names:
                problem = metric_name_problem(name) if isinstance(name, str) else "a metric name must be text"
                if problem:
                    raise TrackError(f"{problem} (in run.log, step {step})")
        checked = _numbers(values)
        self._step_names.update(values)
        if self.steps is None:
            from .steps import STEPS_FILE, StepWriter

            self.steps = StepWriter(self.path / STEPS_FILE)
        self.steps.append(step, dict(checked))
        self.step = step

    def log_values(self, values: Mapping[str, Any], epoch: int, said: str) -> list[tuple[str, float]]:
        """Put ``values`` at ``epoch`` of their histories and say them in the log as ``said: ...``; all of
        them are checked before any is kept, so a refused call leaves the run as it was."""
        if self.status is not None:
            raise TrackError(f"the run {self.path.name} has ended ({self.status}); start() a new one to log more")
        if not isinstance(values, Mapping):
            raise TrackError(f"run.log takes {{name: number}}, not {type(values).__name__}")
        for name in values:
            if name not in self.metrics:
                problem = metric_name_problem(name) if isinstance(name, str) else "a metric name must be text"
                if problem:
                    raise TrackError(f"{problem} (in run.log)")
        checked = _numbers(values)
        new = sum(1 for name, _ in checked if name not in self.metrics)
        if len(self.metrics) + new > MAX_METRICS:
            raise TrackError(f"run.log would make {len(self.metrics) + new:,} metric names; at most {MAX_METRICS:,}")
        parts = []
        for name, number in checked:
            history = self.metrics.setdefault(name, [])
            missing = epoch + 1 - len(history)
            if missing > 0:
                history.extend([math.nan] * missing)
            history[epoch] = number
            parts.append(f"{name} {number:.6g}")
        self._line("INFO", f"{said}: {' | '.join(parts)}")
        return checked

    def log_test(self, values: Mapping[str, Any]) -> None:
        """Record the final evaluation on the test split (``{"loss": 0.5}``), kept as ``test_loss: [0.5]``
        in metrics.json, as the engine keeps its ``model.evaluate`` results."""
        self.log_values({f"test_{name}": value for name, value in values.items()}, 0, "Test")

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Copy a file into the run's ``artifacts/`` folder, where the run page offers it for download.

        ``name`` is its name there (default: the file's own), a plain file name. ``model.h5`` goes beside
        metrics.json instead, where the seed keeps a run's model. Returns the copy's path.
        """
        source = Path(path)
        name = source.name if name is None else name
        if not name or name in {".", ".."} or "/" in name or "\\" in name or name.startswith("."):
            raise TrackError(f"artifact name {shown(name)}: expected a plain file name (no '/', not hidden)")
        if not name.isprintable():
            raise TrackError(f"artifact name {shown(name)} has a control character; names are printable text")
        if name in {"metrics.json", "training_config.json", "execution.log", TRACK_FILE}:
            raise TrackError(f"artifact name {name!r} is one of the run's own files; give it another name")
        if source.is_symlink() or not source.is_file():
            raise TrackError(f"artifact {source}: expected a regular file (not a link or a folder)")
        size = source.stat().st_size
        if size > MAX_ARTIFACT_BYTES:
            raise TrackError(f"artifact {source} is {size:,} bytes; at most {MAX_ARTIFACT_BYTES:,}")
        folder = self.path if name == "model.h5" else self.path / ARTIFACTS
        folder.mkdir(exist_ok=True)
        target, temporary = folder / name, folder / f".{name}.part"
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
        self._line("INFO", f"Saved artifact {target.relative_to(self.path)} ({size:,} bytes)")
        return target

    def finish(self, status: Status = "finished", error: str | None = None) -> None:
        """End the run: metrics.json written for good (sync reads it as succeeded, or failed with ``error``).

        ``status`` is ``"finished"``, ``"failed"`` or ``"interrupted"`` (sync: cancelled). Finishing twice does nothing.
        """
        if self.status is not None:
            return
        if status not in ("finished", "failed", "interrupted"):
            raise TrackError(f"status={status!r}: expected 'finished', 'failed' or 'interrupted'")
        self.status = status
        if self.steps is not None:
            self.steps.close()
        if self.live is not None:
            unsent = self.live.close()
            if unsent or self.live.dropped or self.live.refused:
                why = self.live.error or self.live.refused or "too many waited"
                self._line(
                    "WARNING",
                    f"Live stream: {unsent + self.live.dropped} epoch(s) not sent ({why}); the folder has them all",
                )
        if status == "finished":
            self._line("INFO", f"Execution finished: {self.path}")
            self._write_metrics()
        else:
            said = "interrupted" if status == "interrupted" else (error or "the script said the run failed")
            self._line("ERROR", f"Execution failed: {said}")
            self._write_metrics(error=said)
        self._log.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if exc is None:
            self.finish()
        elif isinstance(exc, Exception):
            if self.status is None:
                self._line("ERROR", "".join(traceback.format_exception(exc)).rstrip())
            self.finish("failed", f"{type(exc).__name__}: {exc}")
        else:  # Ctrl-C, SystemExit: as the engine says it
            self.finish("interrupted")
        return False

    def keras_callback(self, finish: bool = False) -> Any:
        """A Keras callback that logs each epoch's logs into this run (``model.fit(..., callbacks=[...])``).

        ``finish=True`` also finishes the run when ``fit`` returns. Keras is imported here, not before.
        """
        from .keras import KerasCallback

        return KerasCallback(self, finish=finish)

    # --- writing --------------------------------------------------------------------------------

    def _line(self, level: str, message: str) -> None:
        now = time.time()
        second = int(now)
        if second != self._stamp_second:  # strftime costs more than the rest of a line: once a second
            self._stamp_second, self._stamp = second, time.strftime(LOG_TIME_FORMAT, time.localtime(second))
        line = f"{self._stamp},{int((now - second) * 1000):03d} - gymnosd - {level} - Track - {message}\n"
        self._log.write(line.encode("utf-8", "backslashreplace"))

    def _write_metrics(self, running: bool = False, error: str | None = None) -> None:
        started = time.monotonic()
        document: dict[str, Any] = {
            "elapsed": {"fit_model": started - self.started},
            "metrics": self.metrics,
            "hardware": self.hardware,
        }
        if running:
            document["running"] = True
        if error is not None:
            document["error"] = error
        _write_json(self.path / "metrics.json", document, indent=None if running else 4)
        self._flushed = time.monotonic()
        if self.flush_seconds > 0:  # a long history costs more to rewrite: at most 1% of the time goes on it
            self.flush_seconds = max(self.flush_seconds, 100 * (self._flushed - started))


def process_identity() -> dict[str, Any]:
    """Which process writes a run: its host and pid, and the pid's start (a reused pid is another process)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": process_started(os.getpid())}


def process_started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or None where that is not known."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read(4096).rpartition(b")")[2].split()
        return fields[19].decode() if len(fields) > 19 else None
    except OSError:
        return None


def process_gone(identity: Mapping[str, Any]) -> bool:
    """True when ``identity`` (``process_identity``) names a process on this machine that is no longer there."""
    if identity.get("host") != socket.gethostname():
        return False  # another machine: only the folder's staleness can tell
    pid = identity.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        pass
    started = identity.get("pid_started")
    now = process_started(pid)
    return started is not None and now is not None and now != started


def _write_json(path: Path, data: Any, indent: int | None = 4) -> None:
    """Write JSON to a temporary name and rename it over ``path``: a reader sees the old file or the new, whole.

    ``indent=None`` while a run goes on: only then does ``json`` use its C encoder (5-10x faster on a long history).
    """
    text = json.dumps(data, indent=indent) + "\n"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)


def _check_experiment(experiment: str) -> None:
    if not isinstance(experiment, str):
        raise TrackError(f"experiment={experiment!r}: expected a name (text)")
    problem = metric_name_problem(experiment) if len(experiment) <= MAX_EXPERIMENT else "it is too long"
    if problem or experiment.startswith("."):
        raise TrackError(
            f"experiment={shown(experiment)}: names a folder, so it is letters, digits, '_', '.' and '-' "
            f"(not starting with '.'), at most {MAX_EXPERIMENT} characters"
        )


def _checked_tags(tags: Iterable[str]) -> list[str]:
    if isinstance(tags, str):
        raise TrackError(f"tags={tags!r}: expected a list of tags, not one string")
    tags = list(tags)
    if len(tags) > MAX_TAGS:
        raise TrackError(f"tags: {len(tags)} given; at most {MAX_TAGS}")
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG or not tag.isprintable():
            raise TrackError(f"tag {tag!r:.60}: expected printable text of 1 to {MAX_TAG} characters")
    return tags


def _checked_config(experiment: str, config: Mapping[str, Any] | None, tags: list[str]) -> dict[str, Any]:
    """``config`` with its ``experiment`` section, checked to be JSON within the launch's bounds."""
    config = dict(config or {})
    if "experiment" in config:
        raise TrackError("config has an 'experiment' key; the run's name and tags are start()'s experiment= and tags=")
    _check_depth(config)
    document = {"experiment": {"name": experiment, "tags": tags}, **config}
    try:
        text = json.dumps(document)
    except (TypeError, ValueError) as exc:
        raise TrackError(f"config is not JSON: {exc}; give numbers, text, lists and objects") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise TrackError(f"config is {len(text):,} bytes as JSON; at most {MAX_CONFIG_BYTES:,}")
    return json.loads(text)


def _check_depth(value: Any) -> None:
    """Refuse nesting past ``MAX_CONFIG_DEPTH`` without recursing (a deep value must not overflow the stack)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise TrackError(f"config is nested deeper than {MAX_CONFIG_DEPTH} levels")
        if isinstance(item, Mapping):
            stack.extend((inner, depth + 1) for inner in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((inner, depth + 1) for inner in item)


def _numbers(values: Mapping[str, Any]) -> list[tuple[str, float]]:
    """``values`` as (name, float) pairs; a TrackError naming the first that is not a number."""
    checked = []
    for name, value in values.items():
        if isinstance(value, bool):
            raise TrackError(f"{name}={value!r}: expected a number, not a boolean")
        try:
            checked.append((name, float(value)))
        except (TypeError, ValueError, OverflowError):
            raise TrackError(f"{name}={value!r:.60}: expected a number") from None
    return checked
