"""Experiment trackers: TensorBoard event files and MLflow runs, fed as the model trains.

A tracker that fails (its store unreachable, a disk full) never stops the training: it is
logged as a warning naming the tracker, dropped for the rest of the run, and listed in
``trackers.json`` with its error.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from pathlib import Path

from .errors import SpecError, did_you_mean, unknown_type_message

log = logging.getLogger("gymnosd.Trackers")


def _flatten(value, prefix=""):
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": [1, 2]}`` (MLflow params are flat)."""
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}{index}."))
        return flat
    return {prefix[:-1]: value}


class RunInfo:
    """What a tracker needs to know about the execution it records."""

    def __init__(self, execution_dir, experiment_name, trainings_root, config, params, tags):
        self.execution_dir = Path(execution_dir)
        self.name = self.execution_dir.name
        self.experiment_name = experiment_name
        self.trainings_root = Path(trainings_root)
        self.config = config
        self.params = params
        self.tags = tags


class Tracker:
    name = ""
    kwargs_allowed: tuple = ()

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    @classmethod
    def check(cls, kwargs):
        for key in kwargs:
            if key not in cls.kwargs_allowed:
                hint = (
                    f" (it accepts: {', '.join(cls.kwargs_allowed)})"
                    if cls.kwargs_allowed
                    else " (it takes no arguments)"
                )
                raise SpecError(
                    f"unknown argument for {cls.name} tracker{did_you_mean(key, cls.kwargs_allowed)}{hint}", key
                )

    def start(self, run):
        """Open the run; called before the first epoch."""

    def log_epoch(self, step, logs):
        """Record one epoch's train and ``val_`` metrics at ``step`` (1-based)."""

    def log_test(self, metrics, step):
        """Record the test metrics (``{"loss": ...}``, without the ``test_`` prefix)."""

    def log_artifacts(self, paths):
        """Attach the saved files (model.h5, training_config.json)."""

    def end(self, status):
        """Close the run: ``status`` is ``"FINISHED"`` or ``"FAILED"``."""

    def location(self):
        """Where a reader finds this run's records; written to trackers.json."""
        return {}


class TensorBoardTracker(Tracker):
    """Scalars per epoch under ``<execution>/tensorboard/{train,validation,test}``.

    Train and validation use the same tag (``loss``, ``mean_absolute_error``), so TensorBoard
    draws them on one chart; test metrics are one point at the last epoch.
    """

    name = "tensorboard"
    kwargs_allowed = ()
    folder = "tensorboard"

    def start(self, run):
        import tensorflow as tf

        self.root = run.execution_dir / self.folder
        self.writers = {
            part: tf.summary.create_file_writer(str(self.root / part)) for part in ("train", "validation", "test")
        }

    def _write(self, part, metrics, step):
        import tensorflow as tf

        with self.writers[part].as_default(step=step):
            for key, value in metrics.items():
                tf.summary.scalar(key, float(value))

    def log_epoch(self, step, logs):
        self._write("train", {k: v for k, v in logs.items() if not k.startswith("val_")}, step)
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        if val:
            self._write("validation", val, step)

    def log_test(self, metrics, step):
        self._write("test", metrics, step)

    def end(self, status):
        for writer in self.writers.values():
            writer.close()

    def location(self):
        return {"log_dir": self.folder}


class MLflowTracker(Tracker):
    """One MLflow run per execution: params, per-epoch metrics (live), test metrics, artifacts.

    Tracking URI: the tracker's ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else a SQLite
    store at ``<trainings root>/mlflow.db`` with artifacts under ``<trainings root>/mlartifacts``.
    The MLflow client runs in a process of its own (``mlflow_process``), so importing MLflow,
    opening its store and writing each epoch do not slow the training down.
    """

    name = "mlflow"
    kwargs_allowed = ("tracking_uri", "experiment_name")

    @classmethod
    def check(cls, kwargs):
        super().check(kwargs)
        if importlib.util.find_spec("mlflow") is None:
            raise SpecError(
                "the mlflow tracker needs MLflow, which is not installed: pip install 'gymnos[mlflow]' (or pip install mlflow)",
                "type",
            )

    @staticmethod
    def resolve_uri(kwargs, trainings_root):
        """The tracker's ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else the store under the trainings root."""
        return (
            kwargs.get("tracking_uri")
            or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{Path(trainings_root).resolve() / 'mlflow.db'}"
        )

    def start(self, run):
        self.uri = self.resolve_uri(self.kwargs, run.trainings_root)
        self._location = {"tracking_uri": self.uri}
        self.process = _mlflow_process(self.uri)
        default_store = not self.kwargs.get("tracking_uri") and not os.environ.get("MLFLOW_TRACKING_URI")
        params = {**_flatten(run.config), **{f"tracking.params.{k}": v for k, v in run.params.items()}}
        self.process.send(
            "start",
            experiment=self.kwargs.get("experiment_name") or run.experiment_name,
            run_name=run.name,
            tags={"gymnos.execution_dir": str(run.execution_dir), **{f"tag.{tag}": "true" for tag in run.tags}},
            run_tags={"gymnos.tags": ",".join(run.tags)},
            params={key: _jsonable(value) for key, value in params.items()},
            artifact_location=(run.trainings_root.resolve() / "mlartifacts").as_uri() if default_store else None,
        )

    def log_epoch(self, step, logs):
        self.process.send("metrics", metrics={key: float(value) for key, value in logs.items()}, step=step)

    def log_test(self, metrics, step):
        self.process.send("metrics", metrics={f"test_{key}": float(value) for key, value in metrics.items()}, step=step)

    def log_artifacts(self, paths):
        self.process.send("artifacts", paths=[str(path) for path in paths])

    def end(self, status):
        answer = self.process.finish(status)
        self._location = answer.get("location") or self._location
        if answer.get("error"):
            raise RuntimeError(answer["error"])

    def location(self):
        return self._location if hasattr(self, "_location") else {}


def _jsonable(value):
    return value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)


TRACKERS = {cls.name: cls for cls in (TensorBoardTracker, MLflowTracker)}

# MLflow client processes already started, by tracking URI: `preconnect` starts one while
# TensorFlow is still importing, and the run's tracker takes it over.
_processes = {}
_processes_lock = threading.Lock()


def _mlflow_process(uri):
    from .mlflow_process import MLflowProcess

    with _processes_lock:
        process = _processes.pop(uri, None)
    if process is not None and process.process.poll() is None:
        return process
    return MLflowProcess(uri)


def preconnect(raw_config, trainings_root):
    """Start opening the stores of the trackers ``raw_config`` names, in the background.

    Safe on any input: an unparsable config simply starts nothing (validation reports it).
    """
    try:
        specs = [spec for spec in raw_config["tracking"]["trackers"] if spec.get("type") == "mlflow"]
    except (KeyError, TypeError, AttributeError):
        return
    if not specs or importlib.util.find_spec("mlflow") is None:
        return
    from .mlflow_process import MLflowProcess

    for spec in specs:
        uri = MLflowTracker.resolve_uri(spec, trainings_root)
        with _processes_lock:
            if uri not in _processes:
                _processes[uri] = MLflowProcess(uri)


def check_tracker(type_name, kwargs):
    cls = TRACKERS.get(type_name)
    if cls is None:
        raise SpecError(unknown_type_message("tracker type", type_name, TRACKERS), "type")
    cls.check(kwargs)


class TrackerSet:
    """Calls every tracker, turning a tracker's failure into a warning and dropping it."""

    def __init__(self, specs):
        self.active = [TRACKERS[type_name](**kwargs) for type_name, kwargs in specs]
        self.failed = {}
        self.all = list(self.active)

    def _call(self, method, *args):
        for tracker in list(self.active):
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:  # noqa: BLE001 - a tracker must never stop the training
                log.warning(
                    f"Tracker {tracker.name} failed ({method}): {type(exc).__name__}: {exc}; training goes on without it"
                )
                self.failed[tracker.name] = f"{type(exc).__name__}: {exc}"
                self.active.remove(tracker)

    def start(self, run):
        self._call("start", run)

    def log_epoch(self, step, logs):
        self._call("log_epoch", step, logs)

    def log_test(self, metrics, step):
        self._call("log_test", metrics, step)

    def log_artifacts(self, paths):
        self._call("log_artifacts", paths)

    def end(self, status):
        self._call("end", status)

    def summary(self):
        """The contents of trackers.json: each tracker's location, and its error if it failed."""
        summary = {}
        for tracker in self.all:
            entry = tracker.location()
            if tracker.name in self.failed:
                entry["error"] = self.failed[tracker.name]
            summary[tracker.name] = entry
        return summary
