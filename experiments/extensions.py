"""Where the features that sit beside the core plug into a run (registered from their AppConfig.ready).

Nothing here imports Keras, so the web process may load every feature's registration.

- ``RUN_CALLBACKS``: functions ``(execution) -> [keras.callbacks.Callback, ...]`` whose callbacks a
  worker adds to that execution's ``fit`` (a sweep adds its pruner). A callback with a true
  ``pruned`` attribute when the run ends makes the run end ``pruned``.
- ``WORKER_MODULES``: modules a worker imports before it forks its first job, beside its own
  (``experiments.jobs.worker.JOB_MODULES``), so a feature's jobs do not pay a heavy import each (a sweep: Optuna).
- ``WORKER_READY``: functions a worker calls once, after those imports and before its first fork (a sweep
  opens its study's storage there, so each job reuses it); one that fails is logged and skipped.
- ``WORKER_HEARTBEAT``: functions ``(Redis connection or pipeline, the worker's key)`` a worker calls on each
  heartbeat (system metrics write the machine's figures into the worker's hash); one that fails is logged.
- ``FOLLOW_ON``: functions ``(id of a run that ended) -> [ids of queued runs, first first]`` that may be
  trained next in the work horse that trained it (``experiments.jobs.follow_on``; a sweep: its queued trials).
- ``LAUNCHING_JOBS``: functions ``(an RQ job) -> bool``: whether that job's work horse may launch runs (a sweep's
  advance job, a trial's run, which moves its sweep on as it ends); a worker starts the build checker its horses
  share before forking the first such horse (``experiments.jobs.worker``).
- ``REAPERS``: ``(what it does, function)`` pairs the reaper runs after its own steps
  (``experiments.jobs.reaper``); each function ends some stuck state of a feature and returns how many (a
  sweep: its trials reserved but never queued, its advance lost; alerts: the runs that stalled, the retries due).
- Folder readers for sync: ``experiments.index.reader.register``.
- A run ending: ``experiments.models.lifecycle.execution_ended`` (a Django signal, sent on commit); an epoch
  stored: ``epoch_recorded`` (the same, with each metric's value as logged, NaN included); a run's process lost
  (its worker, work horse or machine): ``run_lost`` (the same; resumed or failed). Alerts listen to the three, and
  to a sweep's ``sweeps.events`` (a new best trial, the sweep finished).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from experiments.models import Execution

RUN_CALLBACKS: list[Callable[[Execution], list[Any]]] = []
WORKER_MODULES: list[str] = []
WORKER_READY: list[Callable[[], object]] = []
WORKER_HEARTBEAT: list[Callable[[Any, str], None]] = []
FOLLOW_ON: list[Callable[[int], list[int]]] = []
LAUNCHING_JOBS: list[Callable[[Any], bool]] = []
REAPERS: list[tuple[str, Callable[[], int]]] = []
