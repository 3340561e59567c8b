"""Experiment trackers: TensorBoard event files and MLflow runs, fed as the model trains.

A tracker that fails (its store unreachable, a disk full) never stops the training: it is
logged as a warning naming the tracker, dropped for the rest of the run, and listed in
``trackers.json`` with its error.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
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
                hint = f" (it accepts: {', '.join(cls.kwargs_allowed)})" if cls.kwargs_allowed else " (it takes no arguments)"
                raise SpecError(f"unknown argument for {cls.name} tracker{did_you_mean(key, cls.kwargs_allowed)}{hint}", key)

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
        self.writers = {part: tf.summary.create_file_writer(str(self.root / part)) for part in ("train", "validation", "test")}

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
    Connecting (importing MLflow, creating its tables) runs in a background thread while the
    data loads, so it costs the run little.
    """

    name = "mlflow"
    kwargs_allowed = ("tracking_uri", "experiment_name")

    @classmethod
    def check(cls, kwargs):
        super().check(kwargs)
        if importlib.util.find_spec("mlflow") is None:
            raise SpecError("the mlflow tracker needs MLflow, which is not installed: pip install 'gymnos[mlflow]' (or pip install mlflow)", "type")

    @staticmethod
    def resolve_uri(kwargs, trainings_root):
        """The tracker's ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else the store under the trainings root."""
        return kwargs.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(trainings_root).resolve() / 'mlflow.db'}"

    def start(self, run):
        self.run_info = run
        self.uri = self.resolve_uri(self.kwargs, run.trainings_root)
        self.pending = []
        self._error = None
        self._thread = threading.Thread(target=self._connect, name="mlflow-connect", daemon=True)
        self._thread.start()

    def _connect(self):
        try:
            from mlflow.entities import Param, RunTag

            run = self.run_info
            self.client = _mlflow_client(self.uri)
            experiment_name = self.kwargs.get("experiment_name") or run.experiment_name
            experiment = self.client.get_experiment_by_name(experiment_name)
            if experiment is None:
                artifacts = None
                if not self.kwargs.get("tracking_uri") and not os.environ.get("MLFLOW_TRACKING_URI"):
                    artifacts = (run.trainings_root.resolve() / "mlartifacts").as_uri()
                self.experiment_id = self.client.create_experiment(experiment_name, artifact_location=artifacts)
            else:
                self.experiment_id = experiment.experiment_id
            tags = {"gymnos.execution_dir": str(run.execution_dir), **{f"tag.{tag}": "true" for tag in run.tags}}
            self.run_id = self.client.create_run(self.experiment_id, run_name=run.name, tags=tags).info.run_id
            params = {**_flatten(run.config), **{f"tracking.params.{k}": v for k, v in run.params.items()}}
            # MLflow caps a param value at 6,000 characters and a batch at 100 params.
            items = [Param(key[:250], str(value)[:6000]) for key, value in params.items()]
            for start in range(0, len(items), 100):
                self.client.log_batch(self.run_id, params=items[start : start + 100])
            self.client.log_batch(self.run_id, tags=[RunTag("gymnos.tags", ",".join(run.tags))])
        except Exception as exc:  # noqa: BLE001 - reported by the next call
            self._error = exc

    def _ready(self):
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _metrics(self, metrics, step, prefix=""):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        return [Metric(f"{prefix}{key}", float(value), now, step) for key, value in metrics.items()]

    def log_epoch(self, step, logs):
        self._ready()
        # Asynchronous: the next epoch does not wait for the store.
        self.pending.append(self.client.log_batch(self.run_id, metrics=self._metrics(logs, step), synchronous=False))

    def log_test(self, metrics, step):
        self._ready()
        self.client.log_batch(self.run_id, metrics=self._metrics(metrics, step, prefix="test_"))

    def log_artifacts(self, paths):
        self._ready()
        for path in paths:
            if Path(path).exists():
                self.client.log_artifact(self.run_id, str(path))

    def end(self, status):
        self._ready()
        for operation in self.pending:
            operation.wait()
        self.client.set_terminated(self.run_id, status=status)

    def location(self):
        if getattr(self, "run_id", None) is None:
            return {"tracking_uri": getattr(self, "uri", None)}
        return {"tracking_uri": self.uri, "experiment_id": self.experiment_id, "run_id": self.run_id}


TRACKERS = {cls.name: cls for cls in (TensorBoardTracker, MLflowTracker)}

# MLflow clients being made, by tracking URI. Importing MLflow and opening its store takes a
# second or two; `preconnect` starts that while TensorFlow is still importing.
_clients = {}
_clients_lock = threading.Lock()


def _make_client(uri):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    client.search_experiments(max_results=1)  # opens the store (and creates its tables) now
    return client


def _mlflow_client(uri):
    with _clients_lock:
        pending = _clients.pop(uri, None)
    if pending is not None:
        pending.join()
        if pending.client is not None:
            return pending.client
    return _make_client(uri)


class _Connecting(threading.Thread):
    def __init__(self, uri):
        super().__init__(name="mlflow-preconnect", daemon=True)
        self.uri, self.client = uri, None

    def run(self):
        try:
            self.client = _make_client(self.uri)
        except Exception:  # noqa: BLE001 - the real connection reports it
            self.client = None


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
    for spec in specs:
        uri = MLflowTracker.resolve_uri(spec, trainings_root)
        with _clients_lock:
            if uri in _clients:
                continue
            _clients[uri] = thread = _Connecting(uri)
        thread.start()


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
                log.warning(f"Tracker {tracker.name} failed ({method}): {type(exc).__name__}: {exc}; training goes on without it")
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
