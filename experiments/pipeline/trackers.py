"""Experiment trackers: TensorBoard event files and MLflow runs, fed as the model trains.

A tracker that fails (its store unreachable, a disk full) never stops the training: it is
logged as a warning naming the tracker, dropped for the rest of the run, and listed in
``trackers.json`` with its error.
"""

from __future__ import annotations

import bisect
import importlib.util
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from . import tracker_resume
from .errors import invalid
from .mlflow_process import MLflowProcess, StepSender
from .resume import STATE_FOLDER
from .schema import Component, UnionKind
from .system_metrics import mlflow_metrics

if TYPE_CHECKING:
    from .steps import Points

log = logging.getLogger("gymnosd.Trackers")


class TensorBoardSpec(Component):
    """``{"type": "tensorboard"}``: scalars per epoch under ``<execution>/tensorboard/``."""

    type: Literal["tensorboard"]


class MLflowSpec(Component):
    """``{"type": "mlflow", "tracking_uri": ..., "experiment_name": ...}``: one MLflow run per execution."""

    type: Literal["mlflow"]
    tracking_uri: Annotated[str, Field(min_length=1)] | None = None
    experiment_name: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _installed(self) -> MLflowSpec:
        if importlib.util.find_spec("mlflow") is None:
            raise invalid(
                "the mlflow tracker needs MLflow, which is not installed: pip install 'gymnos[mlflow]' "
                "(or pip install mlflow)",
                "type",
            )
        return self

    def resolve_uri(self, trainings_root: Path) -> str:
        """``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else the store under the trainings root."""
        return (
            self.tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{Path(trainings_root).resolve() / 'mlflow.db'}"
        )


TrackerSpec = Annotated[
    Union[TensorBoardSpec, MLflowSpec],  # noqa: UP007 - a discriminated union
    Field(discriminator="type"),
    UnionKind("tracker type"),
]


class RunInfo:
    """What a tracker needs to know about the execution it records; ``params``: the config's canonical params
    (``TrainingConfig.params``), by the paths the dashboard names them with."""

    def __init__(
        self,
        execution_dir: str | Path,
        experiment_name: str,
        trainings_root: str | Path,
        config: dict[str, Any],
        params: dict[str, Any],
        tags: list[str],
        resumed: bool = False,
    ) -> None:
        self.execution_dir = Path(execution_dir)
        self.resumed = resumed  # a run going on in its own folder (``resume``): its trackers go on with their run
        self.name = self.execution_dir.name
        self.experiment_name = experiment_name
        self.trainings_root = Path(trainings_root)
        self.config = config
        self.params = params
        self.tags = tags


class Tracker:
    name = ""

    def start(self, run: RunInfo) -> None:
        """Open the run; called before the first epoch."""

    def resumed(self, epoch: int) -> None:
        """A resumed run goes on after ``epoch`` epochs (those its kept state holds): forget what was recorded after
        them, before the first epoch trained again is recorded. Called at the fit's start, after ``start``; then
        ``log_epoch`` is called for each of the epochs 1..``epoch`` again (from the kept History), and the tracker
        records only those it does not have (a kill may have come after it got an epoch and before the state
        said so, or after the state was written and before the epoch was given)."""

    def log_epoch(self, step: int, logs: dict[str, float]) -> None:
        """Record one epoch's train and ``val_`` metrics at ``step`` (1-based)."""

    def log_test(self, metrics: dict[str, float], step: int) -> None:
        """Record the test metrics (``{"loss": ...}``, without the ``test_`` prefix)."""

    def log_artifacts(self, paths: list[Path]) -> None:
        """Attach the saved files (model.h5, training_config.json)."""

    def log_system(self, sample: dict[str, Any]) -> None:
        """Record one system sample (``system_metrics.SystemSampler``): ``{"time": seconds, "cpu_percent": ...}``."""

    def log_steps(self, points: Points) -> None:
        """Record per-step points (``training.log_every_steps``) as ``steps/<metric>`` at their step: one call per
        flush of ``steps.h5`` (about a second's or 10,000 points), on the training thread."""

    def end(self, status: str) -> None:
        """Close the run: ``status`` is ``"FINISHED"``, ``"FAILED"`` or ``"KILLED"``."""

    def location(self) -> dict[str, Any]:
        """Where a reader finds this run's records; written to trackers.json."""
        return {}


class TensorBoardTracker(Tracker):
    """Scalars per epoch under ``<execution>/tensorboard/{train,validation,test}``.

    Train and validation use the same tag (``loss``, ``mean_absolute_error``), so TensorBoard
    draws them on one chart; test metrics are one point at the last epoch.
    """

    name = "tensorboard"
    folder = "tensorboard"

    def __init__(self, spec: TensorBoardSpec) -> None:
        # Imported here, on the thread that builds the run's trackers, before the sampler's thread starts: the
        # training thread and the sampler's importing them for the first time at once saw a partially
        # initialised module (and both dropped this tracker).
        import tensorflow as tf
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.spec = spec
        self._tf = tf
        self._event, self._summary, self._event_writer = Event, Summary, EventFileWriter
        self._system_lock = threading.Lock()  # system samples come from the sampler's thread
        self._system_open = True
        self._system_steps = 0
        self._system_writer: Any = None
        self._steps_writer: Any = None

    def start(self, run: RunInfo) -> None:
        self.root = run.execution_dir / self.folder
        self.writers: dict[str, Any] = {}  # made at their first point: a resumed run's files are rewritten first
        self.held: dict[str, int] = {}  # a resumed run's: the last epoch each part's files have
        if run.resumed:  # its system samples go on counting from the last one written
            self._system_steps = tracker_resume.last_step(self.root / "system")

    def resumed(self, epoch: int) -> None:
        for part in ("train", "validation", "test"):
            dropped, self.held[part] = tracker_resume.keep_until(self.root / part, epoch)
            if dropped:
                log.info(f"TensorBoard: {dropped} {part} points after epoch {epoch} dropped (they are trained again)")

    def _write(self, part: str, metrics: dict[str, float], step: int) -> None:
        if part not in self.writers:
            self.writers[part] = self._tf.summary.create_file_writer(str(self.root / part))
        with self.writers[part].as_default(step=step):
            for key, value in metrics.items():
                self._tf.summary.scalar(key, float(value))
        self.writers[part].flush()  # on disk before the next epoch: a kill loses no epoch it was given

    def log_epoch(self, step: int, logs: dict[str, float]) -> None:
        if step > self.held.get("train", 0):
            self._write("train", {k: v for k, v in logs.items() if not k.startswith("val_")}, step)
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        if val and step > self.held.get("validation", 0):
            self._write("validation", val, step)

    def log_test(self, metrics: dict[str, float], step: int) -> None:
        self._write("test", metrics, step)

    def log_system(self, sample: dict[str, Any]) -> None:
        """``system/<field>`` scalars under ``tensorboard/system``, one step per sample (made with the first).

        Written with TensorBoard's own event writer, not ``tf.summary``: a sample's scalars then cost
        about 0.04 ms of CPU in the sampler's thread, where TensorFlow ops cost about 4 ms beside the training.
        """
        with self._system_lock:
            if not self._system_open:
                return
            if self._system_writer is None:
                self._system_writer = self._event_writer(str(self.root / "system"))
            self._system_steps += 1
            values = [
                self._summary.Value(tag=f"system/{key}", simple_value=float(value))
                for key, value in sample.items()
                if key != "time"
            ]
            event = self._event(wall_time=time.time(), step=self._system_steps, summary=self._summary(value=values))
            self._system_writer.add_event(event)

    def log_steps(self, points: Points) -> None:
        """``steps/<metric>`` scalars under ``tensorboard/steps``, one event per step, with TensorBoard's own event
        writer (as ``log_system``): every point, TensorBoard's reader then keeps what it samples."""
        if self._steps_writer is None:
            self._steps_writer = self._event_writer(str(self.root / "steps"))
        by_step: dict[int, list[Any]] = {}
        for name, (steps, values) in points.items():
            for step, value in zip(steps, values, strict=True):
                by_step.setdefault(step, []).append(self._summary.Value(tag=f"steps/{name}", simple_value=value))
        now = time.time()
        for step, values in by_step.items():
            self._steps_writer.add_event(self._event(wall_time=now, step=step, summary=self._summary(value=values)))

    def end(self, status: str) -> None:
        with self._system_lock:
            self._system_open = False
            if self._system_writer is not None:
                self._system_writer.close()
        if self._steps_writer is not None:
            self._steps_writer.close()
        for writer in self.writers.values():
            writer.close()

    def location(self) -> dict[str, Any]:
        return {"log_dir": self.folder}


class MLflowTracker(Tracker):
    """One MLflow run per execution: params, per-epoch metrics (live), test metrics, artifacts.

    Tracking URI: the tracker's ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else a SQLite
    store at ``<trainings root>/mlflow.db`` with artifacts under ``<trainings root>/mlartifacts``.
    The MLflow client runs in a process of its own (``mlflow_process``), so importing MLflow,
    opening its store and writing each epoch do not slow the training down.
    """

    name = "mlflow"

    def __init__(self, spec: MLflowSpec) -> None:
        self.spec = spec
        self._location: dict[str, Any] = {}
        self._system_lock = threading.Lock()  # system samples come from the sampler's thread
        self._system_open = False
        self._system_steps = 0
        self._steps: StepSender | None = None

    def start(self, run: RunInfo) -> None:
        self.uri = self.spec.resolve_uri(run.trainings_root)
        self._location = {"tracking_uri": self.uri}
        self.process = _mlflow_process(self.uri)
        # Where the MLflow process writes the run's id (in the kept state's folder, made now: the process may get
        # there after the training ended and removed it), and the run a resumed run reopens.
        record = run.execution_dir / STATE_FOLDER / tracker_resume.RUN_RECORD
        reopen = tracker_resume.recorded_run(record) if run.resumed else None
        record.parent.mkdir(exist_ok=True)
        default_store = not self.spec.tracking_uri and not os.environ.get("MLFLOW_TRACKING_URI")
        params = run.params  # the config's canonical params (TrainingConfig.params), tracking.params.* among them
        self.process.send(
            "start",
            experiment=self.spec.experiment_name or run.experiment_name,
            run_name=run.name,
            tags={"gymnos.execution_dir": str(run.execution_dir), **{f"tag.{tag}": "true" for tag in run.tags}},
            run_tags={"gymnos.tags": ",".join(run.tags)},
            params={_mlflow_name(key): _jsonable(value) for key, value in params.items()},
            artifact_location=(run.trainings_root.resolve() / "mlartifacts").as_uri() if default_store else None,
            record=str(record),
            reopen=reopen,
        )
        self._system_open = True

    def log_epoch(self, step: int, logs: dict[str, float]) -> None:
        self.process.send("metrics", metrics={key: float(value) for key, value in logs.items()}, step=step)

    def log_test(self, metrics: dict[str, float], step: int) -> None:
        self.process.send("metrics", metrics={f"test_{key}": float(value) for key, value in metrics.items()}, step=step)

    def log_artifacts(self, paths: list[Path]) -> None:
        self.process.send("artifacts", paths=[str(path) for path in paths])

    def log_system(self, sample: dict[str, Any]) -> None:
        """MLflow's own system-metric names (``system/cpu_utilization_percentage``, ...), one step per sample."""
        with self._system_lock:
            if not self._system_open:
                return
            self._system_steps += 1
            self.process.send(
                "metrics",
                metrics=mlflow_metrics(sample),
                step=self._system_steps,
                timestamp=int(time.time() * 1000),
                system=True,  # a reopened run's steps go on after its last sample's (the MLflow process adds it)
            )

    def log_steps(self, points: Points) -> None:
        if self._steps is None:
            self._steps = StepSender(self.process)
        self._steps.put(points)

    def end(self, status: str) -> None:
        with self._system_lock:
            self._system_open = False
        if self._steps is not None:
            self._steps.close()
        answer = self.process.finish(status)
        self._location = answer.get("location") or self._location
        if answer.get("error"):
            raise RuntimeError(answer["error"])

    def location(self) -> dict[str, Any]:
        return self._location


def _mlflow_name(path: str) -> str:
    """MLflow names allow no brackets: ``model.network[0].units`` is logged as ``model.network.0.units``."""
    return re.sub(r"\[(\d+)\]", r".\1", path)


def _describe(exc: BaseException) -> str:
    """``RuntimeError: the store is down``; an error whose own text fails to render is named by its type."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001 - the description of a tracker's error must not raise in its turn
        return type(exc).__name__


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)


def _after(points: Points, step: int) -> Points:
    """``points`` at steps after ``step`` (each metric's steps are in order); metrics with none left out."""
    kept: Points = {}
    for name, (steps, values) in points.items():
        start = bisect.bisect_right(steps, step)
        if start < len(steps):
            kept[name] = (steps[start:], values[start:])
    return kept


RUNTIME: dict[type[Component], type[Tracker]] = {TensorBoardSpec: TensorBoardTracker, MLflowSpec: MLflowTracker}

# MLflow client processes already started, by tracking URI: `preconnect` starts one while
# TensorFlow is still importing, and the run's tracker takes it over.
_processes: dict[str, MLflowProcess] = {}
_processes_lock = threading.Lock()


def _mlflow_process(uri: str) -> MLflowProcess:
    with _processes_lock:
        process = _processes.pop(uri, None)
    if process is not None and process.process.poll() is None:
        return process
    return MLflowProcess(uri)


def preconnect(specs: Iterable[Component], trainings_root: Path) -> None:
    """Start opening the stores of the mlflow trackers among ``specs`` (a validated config's
    ``tracking.trackers``), in the background."""
    for spec in specs:
        if not isinstance(spec, MLflowSpec):
            continue
        uri = spec.resolve_uri(trainings_root)
        with _processes_lock:
            if uri not in _processes:
                _processes[uri] = MLflowProcess(uri)


# The most step points per metric a tracker gets from one flush of steps.h5 (about a second of training): TensorBoard's
# writer costs about 75 µs a point in the training thread and MLflow's store takes about 1,000-6,000 points a
# second here (bench/steps.py --trackers), against the file's 5 µs; steps.h5 keeps every point.
STEP_POINTS = 48


class TrackerSet:
    """Calls every tracker, turning a tracker's failure into a warning and dropping it for the rest of the run.

    Two threads call it: the training thread (epochs, test metrics, artifacts, the end) and the system
    sampler's (``log_system``). The list of active trackers changes under a lock, a tracker is dropped by
    identity once however many threads saw it fail, and nothing a tracker raises (an ``Exception``) leaves
    ``_call``: a tracker never stops the training. Ctrl-C and the memory limit's interrupt, which are not the
    tracker's, go through. Build it on the main thread (``for_specs``), before the sampler's thread starts:
    each tracker imports its libraries as it is made.

        trackers = TrackerSet.for_specs(config.tracking.trackers)
        trackers.start(run_info); trackers.log_epoch(1, {"loss": 0.5}); trackers.end("FINISHED")
    """

    def __init__(self, trackers: Iterable[Tracker]) -> None:
        self.all = list(trackers)
        self.active = list(self.all)
        self.failed: dict[str, str] = {}
        self._lock = threading.Lock()
        self.steps_given = 0  # a resumed run's: the step points its trackers may have had already

    @classmethod
    def for_specs(cls, specs: Iterable[Component]) -> TrackerSet:
        """The trackers a config's ``tracking.trackers`` name, made now (their libraries imported now); one that
        cannot be made is failed from the start, as one that fails later."""
        made: list[Tracker] = []
        failed: dict[str, str] = {}
        for spec in specs:
            runtime = RUNTIME[type(spec)]
            try:
                made.append(runtime(spec))  # type: ignore[call-arg]
            except Exception as exc:  # noqa: BLE001 - a tracker must never stop the training
                failed[runtime.name] = error = _describe(exc)
                log.warning(f"Tracker {runtime.name} failed (import): {error}; training goes on without it")
        trackers = cls(made)
        trackers.failed.update(failed)
        return trackers

    def _call(self, method: str, *args: Any) -> None:
        with self._lock:
            active = list(self.active)
        for tracker in active:
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:  # noqa: BLE001 - a tracker must never stop the training
                self._drop(tracker, method, exc)

    def _drop(self, tracker: Tracker, method: str, exc: Exception) -> None:
        """Drop ``tracker`` for the rest of the run, once: two threads may both have seen it fail."""
        with self._lock:
            if not any(active is tracker for active in self.active):
                return
            self.active = [active for active in self.active if active is not tracker]
            error = _describe(exc)
            self.failed[tracker.name] = error
        log.warning(f"Tracker {tracker.name} failed ({method}): {error}; training goes on without it")

    def start(self, run: RunInfo) -> None:
        self._call("start", run)

    def resumed(self, epoch: int) -> None:
        self._call("resumed", epoch)

    def log_epoch(self, step: int, logs: dict[str, float]) -> None:
        self._call("log_epoch", step, logs)

    def log_test(self, metrics: dict[str, float], step: int) -> None:
        self._call("log_test", metrics, step)

    def log_artifacts(self, paths: list[Path]) -> None:
        self._call("log_artifacts", paths)

    def log_system(self, sample: dict[str, Any]) -> None:
        self._call("log_system", sample)

    def resumed_steps(self, given: int) -> None:
        """A resumed run: its trackers may have had the step points up to ``given`` (``steps.h5``'s last before it
        was cut back to the kept state); those trained again are not given to them twice (MLflow cannot take a
        point back; TensorBoard keeps the first it got, as MLflow). ``steps.h5`` has the points trained again."""
        self.steps_given = given

    def log_steps(self, points: Points) -> None:
        """A flush of step points, thinned to ``STEP_POINTS`` per metric (M4: spikes kept) for every tracker."""
        from .steps import thinned

        if self.steps_given:
            points = _after(points, self.steps_given)
            if not points:
                return
        self._call("log_steps", thinned(points, STEP_POINTS))

    def end(self, status: str) -> None:
        self._call("end", status)

    def summary(self) -> dict[str, dict[str, Any]]:
        """The contents of trackers.json: each tracker's location, and its error if it failed."""
        summary: dict[str, dict[str, Any]] = {name: {"error": error} for name, error in self.failed.items()}
        for tracker in self.all:
            summary[tracker.name] = {**tracker.location(), **summary.get(tracker.name, {})}
        return summary
