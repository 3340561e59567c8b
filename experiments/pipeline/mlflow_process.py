"""The MLflow tracker's client, in a process of its own.

Importing MLflow and opening its store costs a couple of seconds of CPU, and every epoch's
``log_batch`` a few milliseconds; in the training process both compete with TensorFlow for
the interpreter. Here they run beside it, on another core: the training process writes one
JSON line per event to this process's stdin and reads one answer when the run ends.

Protocol (stdin, one JSON object per line):
    {"op": "start", "experiment": ..., "run_name": ..., "tags": {...}, "params": {...}, "artifact_location": ...,
     "record": path, "reopen": run id}  (optional: the run's id is written to ``record``; ``reopen``: that run
                                       goes on, back to RUNNING, if it is still there; else a new run is made)
    {"op": "metrics", "metrics": {...}, "step": N, "timestamp": ms, "system": bool}   (timestamp optional: now;
                                       system: a system sample, its step counted on after a reopened run's last;
                                       else a reopened run's metric at a step it has already is not logged again)
    {"op": "steps", "points": [[key, value, step], ...]}              (per-step metrics, batched)
    {"op": "artifacts", "paths": [...]}
    {"op": "end", "status": "FINISHED" | "FAILED" | "KILLED"}
Answer (stdout, one line, after "end" or EOF): {"location": {...}} or {"error": "..."}.

    python -m experiments.pipeline.mlflow_process TRACKING_URI

``StepSender`` feeds it the per-step points from a thread of its own, so a slow store never blocks the training.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from . import fileops
from .gcpause import paused_collector

if TYPE_CHECKING:
    from .steps import Points

log = logging.getLogger("gymnosd.Trackers")  # StepSender's warnings are the trackers'

PROJECT = Path(__file__).resolve().parents[2]


class MLflowProcess:
    """The training side: start the process (it connects at once), send events, collect the answer."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "experiments.pipeline.mlflow_process", uri],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        # Epochs come from fit's thread, system samples from the sampler's: one line at a time.
        self._send_lock = threading.Lock()

    def send(self, op: str, **fields: Any) -> None:
        assert self.process.stdin is not None  # opened with stdin=PIPE
        try:
            with self._send_lock:
                self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
                self.process.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise RuntimeError(f"the MLflow client process exited early ({self._answer().get('error', exc)})") from exc

    def finish(self, status: str, timeout: float = 300) -> dict[str, Any]:
        """Send "end" and wait until everything is recorded: ``{"location": {...}}``, plus ``"error"`` if any."""
        try:
            self.send("end", status=status)
        except RuntimeError:
            pass  # the answer below says why
        return self._answer(timeout)

    def _answer(self, timeout: float = 300) -> dict[str, Any]:
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return {"error": f"the MLflow store did not answer within {timeout}s"}
        except ValueError:  # already collected
            out = ""
        lines = [line for line in (out or "").splitlines() if line.startswith("{")]
        return (
            json.loads(lines[-1])
            if lines
            else {"error": f"the MLflow client process exited with {self.process.returncode}"}
        )


class Opened(NamedTuple):
    """The run the "start" event opened: ``system_offset`` is a reopened run's last system sample's step, ``held``
    its last step of each other metric (an epoch the resumed run gives again is not logged twice)."""

    experiment_id: str
    run_id: str
    system_offset: int = 0
    held: dict[str, int] = {}


def _reopened(client: Any, event: dict[str, Any]) -> Opened | None:
    """The run ``event["reopen"]`` names (its id), back to RUNNING, for a resumed run; None when there is none to go
    on with (deleted, another store's)."""
    if not event.get("reopen"):
        return None
    try:
        run = client.get_run(str(event["reopen"]))
    except Exception:  # noqa: BLE001 - no run to go on with: a new one is made
        traceback.print_exc()
        return None
    if run.info.lifecycle_stage != "active":
        return None
    client.update_run(run.info.run_id, status="RUNNING")
    last: dict[str, int] = {}
    for key in run.data.metrics:
        if not key.startswith("steps/"):  # per-step points: too many to read back (steps.h5 has them all)
            last[key] = max((metric.step for metric in client.get_metric_history(run.info.run_id, key)), default=0)
    system = max((step for key, step in last.items() if key.startswith("system/")), default=0)
    held = {key: step for key, step in last.items() if not key.startswith("system/")}
    return Opened(run.info.experiment_id, run.info.run_id, system, held)


def _write_record(event: dict[str, Any], experiment_id: str, run_id: str) -> None:
    """The run's id in ``event["record"]``, if its folder is still there (the training made it before it started
    this run; a run that trained to its end removed it, and no longer needs the record)."""
    if not event.get("record"):
        return
    path = Path(event["record"])
    data = json.dumps({"run_id": run_id, "experiment_id": experiment_id}).encode()
    try:
        fileops.write(path.parent, path.name, data)
    except OSError:  # the run is recorded all the same; only a resume of it makes a new MLflow run
        traceback.print_exc()


def _opened(client: Any, event: dict[str, Any]) -> Opened:
    """The "start" event: the run reopened (``reopen``) or a new one, recorded."""
    opened = _reopened(client, event) or Opened(*_start(client, event))
    _write_record(event, opened.experiment_id, opened.run_id)
    return opened


def _start(client: Any, event: dict[str, Any]) -> tuple[str, str]:
    """The "start" event: the experiment (made if new), the run, its params and tags. ``(experiment id, run id)``."""
    from mlflow.entities import Param, RunTag

    experiment = client.get_experiment_by_name(event["experiment"])
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(event["experiment"], artifact_location=event.get("artifact_location"))
    )
    run_id = client.create_run(experiment_id, run_name=event["run_name"], tags=event["tags"]).info.run_id
    params = [Param(key[:250], str(value)[:6000]) for key, value in event["params"].items()]
    for start in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
        client.log_batch(run_id, params=params[start : start + 100])
    client.log_batch(run_id, tags=[RunTag(key, value) for key, value in event.get("run_tags", {}).items()])
    return experiment_id, run_id


def _record(client: Any, event: dict[str, Any], opened: Opened | None) -> None:
    """A "metrics", "steps" or "artifacts" event, into the run started before it."""
    from mlflow.entities import Metric

    assert opened is not None, f"{event['op']} before start"
    run_id = opened.run_id
    if event["op"] == "metrics":
        now = int(event.get("timestamp") or time.time() * 1000)
        system = bool(event.get("system"))
        step = event["step"] + (opened.system_offset if system else 0)
        metrics = [
            Metric(key, float(value), now, step)
            for key, value in event["metrics"].items()
            if system or step > opened.held.get(key, 0)
        ]
        if metrics:
            client.log_batch(run_id, metrics=metrics)
    elif event["op"] == "steps":  # [[key, value, step], ...]: per-step points, any number
        now = int(time.time() * 1000)
        points = [Metric(key, float(value), now, int(step)) for key, value, step in event["points"]]
        for start in range(0, len(points), 1000):  # MLflow takes at most 1,000 metrics a batch
            client.log_batch(run_id, metrics=points[start : start + 1000])
    elif event["op"] == "artifacts":
        for path in event["paths"]:
            if Path(path).exists():
                client.log_artifact(run_id, path)


def _serve(uri: str, events: Iterable[str], answer: IO[str]) -> None:
    """The MLflow side: connect, then apply each event; always answer once."""
    opened: Opened | None = None
    error: str | None = None
    status = "KILLED"  # if the training process vanishes without saying "end"
    # Import now (the slow part, while the trainer starts up), but touch the store only once the
    # run starts: a config that fails validation must leave nothing behind, not even mlflow.db.
    with paused_collector():
        import mlflow.entities  # noqa: F401 - what _start and _record use, imported while the trainer starts
        from mlflow.tracking import MlflowClient

    client = None
    for line in events:
        event = json.loads(line)
        if event["op"] == "end":
            status = event["status"]
            break
        if error is not None:
            continue  # keep reading, so the training process never blocks on a full pipe
        if client is None:
            try:
                client = MlflowClient(uri)
                client.search_experiments(max_results=1)  # opens the store (and creates its tables)
            except Exception as exc:  # noqa: BLE001 - reported in the answer
                error = f"cannot open the MLflow store {uri}: {type(exc).__name__}: {exc}"
                continue
        try:
            if event["op"] == "start":
                opened = _opened(client, event)
            else:
                _record(client, event, opened)
        except Exception as exc:  # noqa: BLE001 - reported in the answer
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
    if opened is not None and client is not None:  # a run was created, so the client was too
        try:
            client.set_terminated(opened.run_id, status=status if error is None else "FAILED")
        except Exception as exc:  # noqa: BLE001 - reported in the answer (the first error wins)
            error = error or f"{type(exc).__name__}: {exc}"
    location = {
        "tracking_uri": uri,
        "experiment_id": opened.experiment_id if opened else None,
        "run_id": opened.run_id if opened else None,
    }
    answer.write(json.dumps({"error": error, "location": location} if error else {"location": location}) + "\n")
    answer.flush()


class StepSender:
    """Step points to the MLflow process from a thread of its own: a store slower than the training never blocks
    it. At most ``BACKLOG`` flushes wait; a flush beyond that is not sent to MLflow (its points are counted and
    said once in the log; steps.h5 has every one). The MLflow store on this machine takes about 6,000 points a
    second (docs/performance.md): a run logging more than that per second is thinned so in MLflow."""

    BACKLOG = 64  # flushes of at most STEP_POINTS points per metric each: about a minute of training

    def __init__(self, process: MLflowProcess) -> None:
        self.process = process
        self.waiting: queue.Queue[Points | None] = queue.Queue(self.BACKLOG)
        self.dropped = 0
        self.error = ""
        self.thread = threading.Thread(target=self._send, name="mlflow-steps", daemon=True)
        self.thread.start()

    def put(self, points: Points) -> None:
        if self.error:
            raise RuntimeError(self.error)
        try:
            self.waiting.put_nowait(points)
        except queue.Full:
            if not self.dropped:
                log.warning("MLflow cannot keep up with the step metrics: some are not sent to it (steps.h5 has all)")
            self.dropped += sum(len(steps) for steps, _ in points.values())

    def _send(self) -> None:
        while (points := self.waiting.get()) is not None:
            rows = [
                [f"steps/{name}", value, step]
                for name, (steps, values) in points.items()
                for step, value in zip(steps, values, strict=True)
            ]
            try:
                self.process.send("steps", points=rows)
            except RuntimeError as exc:
                self.error = str(exc)
                return

    def close(self) -> None:
        """Send what waits, then stop; say how many points MLflow did not get."""
        if not self.error:
            self.waiting.put(None)
            self.thread.join()
        if self.dropped:
            log.warning(f"{self.dropped:,} step points not sent to MLflow (it could not keep up): steps.h5 has all")


if __name__ == "__main__":
    # Only the answer goes to stdout; anything MLflow prints goes to stderr.
    answer_stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _serve(sys.argv[1], sys.stdin, answer_stream)
