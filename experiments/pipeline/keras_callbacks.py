"""Keras ``Callback`` classes the engine adds to ``fit()``. Imports Keras, so load it lazily."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode

import keras
import numpy as np
import urllib3
from tqdm import tqdm

from . import allowlist, checkpoints, fileops
from .schedules import Schedule
from .steps import StepWriter

if TYPE_CHECKING:
    from .kept_state import KeptState
    from .trackers import TrackerSet

log = logging.getLogger("gymnosd.Trainer")


class PeriodicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keras's ModelCheckpoint, saving every ``period`` epochs (Keras 3 dropped ``period``).

    ``filepath`` is filled with the epoch (from 1) and its logs, as Keras does; with
    ``save_best_only`` an epoch that does not improve on ``monitor`` is not saved. ``keep`` and
    ``keep_best`` remove the files it saved earlier in this run beyond the last N / the N best by
    ``monitor`` (``checkpoints.removable``); each removal is a line in execution.log, the path
    shown from ``shown_from``.
    """

    def __init__(
        self,
        filepath: str,
        period: int = 1,
        keep: int | None = None,
        keep_best: int | None = None,
        shown_from: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(filepath, **kwargs)
        self.period = period
        self.keep = keep
        self.keep_best = keep_best
        self.shown_from = shown_from
        self.saved: list[checkpoints.Saved] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.period == 0:
            super().on_epoch_end(epoch, logs)

    def _save_model(self, epoch: int, batch: int | None, logs: dict[str, Any] | None) -> None:
        # Keras' own hook for one save (private, but the one place that knows the path it wrote):
        # what it saved is noted so that retention can remove the files beyond keep / keep_best.
        if self.keep is None and self.keep_best is None:
            super()._save_model(epoch, batch, logs)
            return
        path = self._get_file_path(epoch, batch, logs)
        before = _stamp(path)
        super()._save_model(epoch, batch, logs)
        if _stamp(path) in (None, before):
            return  # not saved (save_best_only and no improvement)
        value = (logs or {}).get(self.monitor)
        number = float(value) if isinstance(value, (int, float, np.floating)) else None
        self.saved = [item for item in self.saved if item.path != path]  # a template without {epoch} overwrites
        self.saved.append(checkpoints.Saved(path, epoch + 1, number))
        self._apply_retention()

    def _better(self, a: float, b: float) -> bool:
        return bool(self._is_improvement(a, b))

    def _apply_retention(self) -> None:
        gone = checkpoints.removable(self.saved, self.keep, self.keep_best, self._better)
        for item in gone:
            try:
                # A link saved in its place is removed as a link; a folder on the way that is one, refused.
                folder = self.shown_from or os.path.dirname(item.path)
                fileops.remove(folder, os.path.relpath(item.path, folder))
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning(f"Could not remove checkpoint {self._shown(item.path)}: {exc.strerror or exc}")
                continue
            log.info(f"Removed checkpoint {self._shown(item.path)} (epoch {item.epoch}): {self._rule()}")
        removed = {item.path for item in gone}
        self.saved = [item for item in self.saved if item.path not in removed]

    def _rule(self) -> str:
        rules = []
        if self.keep:
            rules.append(f"the last {self.keep}")
        if self.keep_best:
            rules.append(f"the {self.keep_best} best by {self.monitor}")
        return "model_checkpoint keeps " + " and ".join(rules)

    def _shown(self, path: str) -> str:
        return os.path.relpath(path, self.shown_from).replace(os.sep, "/") if self.shown_from else path


def _stamp(path: str) -> tuple[int, int] | None:
    """A file's (mtime_ns, size), or None when it is not there: tells whether a save wrote it."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


class EpochProgressBar(keras.callbacks.Callback):
    """One tqdm bar over the epochs, with the last epoch's metrics beside it (for terminals)."""

    def __init__(self, epochs: int, stream: IO[str]) -> None:
        super().__init__()
        self.epochs = epochs
        self.stream = stream
        self.bar = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.bar = tqdm(total=self.epochs, unit="epoch", file=self.stream, dynamic_ncols=True, leave=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        shown = {key: f"{value:.4g}" for key, value in (logs or {}).items() if isinstance(value, (int, float))}
        assert self.bar is not None  # on_train_begin made it
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.bar is not None:
            self.bar.close()


class TrackerBridge(keras.callbacks.Callback):
    """Feeds each epoch's logs to the trackers; a tracker that fails is dropped with a warning.

    With ``kept`` (the run's ``KeptState``, before this in the callbacks), an epoch is held back until a state
    holding it is WRITTEN (``kept.kept_epoch``: a snapshot still being written in the background does not count),
    and the rest at the fit's end: an epoch a crash makes the run train again was never given to a tracker (MLflow
    cannot take a point back). ``resumed``: the run goes on from its kept state. At the fit's start the trackers are
    told from which epoch, and every epoch the kept state holds is given again from its History: each tracker
    records only the epochs it lacks (``Tracker.resumed``). So an epoch a kill kept from the trackers after its state
    was written reaches them then, and one a tracker got just before the kill is not recorded twice.
    """

    def __init__(self, trackers: TrackerSet, kept: KeptState | None = None, resumed: bool = False) -> None:
        super().__init__()
        self.trackers = trackers
        self.kept = kept
        self.resumed = resumed
        self.waiting: list[tuple[int, dict[str, float]]] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self.resumed:
            return
        epoch = self.kept.kept_epoch if self.kept is not None else 0
        self.trackers.resumed(epoch)
        if self.kept is not None:
            self._give_kept(self.kept, epoch)

    def _give_kept(self, kept: KeptState, epoch: int) -> None:
        """Every epoch the kept state holds, from its History; the trackers skip those they have."""
        history = kept.run_history.history
        for step in range(1, epoch + 1):
            values = {name: float(values[step - 1]) for name, values in history.items() if len(values) >= step}
            self.trackers.log_epoch(step, {name: value for name, value in values.items() if _is_number(value)})

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {key: float(value) for key, value in (logs or {}).items() if _is_number(value)}
        self.waiting.append((epoch + 1, values))
        self._give(self.kept.kept_epoch if self.kept is not None else epoch + 1)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._give(None)

    def on_failure(self) -> None:
        """The fit failed, its kept state written (``KeptState.flush``): the epochs that state holds are given."""
        if self.kept is not None:
            self._give(self.kept.kept_epoch)

    def _give(self, until: int | None) -> None:
        while self.waiting and (until is None or self.waiting[0][0] <= until):
            step, values = self.waiting.pop(0)
            self.trackers.log_epoch(step, values)


class StepLogger(keras.callbacks.Callback):
    """Every ``every`` training steps, each metric of the batch's logs as a point of ``steps.h5`` (``steps.py``).

    Steps count batches from 1 over the whole run; each epoch's last step is written as its boundary.
    """

    def __init__(
        self,
        writer: StepWriter,
        every: int,
        kept: KeptState | None = None,
        on_resumed: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.writer, self.every, self.kept, self.on_resumed = writer, every, kept, on_resumed
        self.step = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # After the kept state's own on_train_begin (it is before this in the callbacks): a resumed run's file is
        # cut back to the epochs that state holds (0 where none loaded), since the ones after are trained again;
        # the run goes on counting from there. ``on_resumed`` (the trackers') is told the last step they may have
        # had before: the steps trained again up to it are not given to them twice.
        if self.kept is not None:
            given = self.writer.last_point()
            self.step = self.writer.resume_at(self.kept.kept_epoch)
            if self.on_resumed is not None:
                self.on_resumed(given)
        else:
            self.step = self.writer.last_step()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.step += 1
        if self.step % self.every == 0:
            values = {name: float(value) for name, value in (logs or {}).items() if _is_number(value)}
            self.writer.append(self.step, values)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.writer.epoch_end(self.step)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.writer.close()


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return bool(np.ndim(value) == 0)


class LoggedTerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras's TerminateOnNaN, saying in the execution log where the loss went bad."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch + 1

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            action = "failing the run" if self.raise_error else "stopping the training"
            log.warning(
                f"Loss became {loss} at epoch {getattr(self, 'epoch', '?')}, batch {batch + 1}: "
                f"{action} (terminate_on_nan)"
            )
        super().on_batch_end(batch, logs)


class EpochProgbarLogger(keras.callbacks.ProgbarLogger):
    """Keras's progress bar on stdout, at the verbosity the config asks for.

    The trainer calls ``fit(verbose=0)`` (the execution log is the record), and Keras hands that
    verbosity to every ProgbarLogger; this one keeps its own: 1 a bar, 2 one line per epoch.
    """

    def __init__(self, verbose: int = 1) -> None:
        super().__init__()
        self.wanted_verbose = verbose

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        self.verbose = self.wanted_verbose


class TimeoutRemoteMonitor(keras.callbacks.RemoteMonitor):
    """Keras's RemoteMonitor with a timeout, and failures written to the execution log.

    Keras posts without a timeout (a server that accepts and never answers would hang the
    training) and reports failures as Python warnings, which never reach execution.log.
    The payload is Keras's: ``{"epoch": <0-based>, **logs}``, as form field ``field`` or as JSON.
    Redirects are not followed: they could lead past the host allowlist (``allowlist``).
    """

    def __init__(
        self,
        root: str,
        path: str,
        field: str = "data",
        headers: dict[str, str] | None = None,
        send_as_json: bool = False,
        timeout: float = 10,
    ) -> None:
        super().__init__(root=root, path=path, field=field, headers=headers, send_as_json=send_as_json)
        self.timeout = timeout
        self.failures = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        send: dict[str, Any] = {"epoch": epoch}
        for key, value in (logs or {}).items():
            send[key] = value.item() if isinstance(value, (np.ndarray, np.generic)) else value
        url = self.root + self.path
        try:
            self._post(url, send)
        except (PermissionError, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            self.failures += 1
            # Once as a warning; every epoch would bury the log while the server is down.
            level = logging.WARNING if self.failures == 1 else logging.DEBUG
            log.log(level, f"remote_monitor could not post epoch {epoch + 1} to {url}: {exc}; training goes on")

    def _post(self, url: str, send: dict[str, Any]) -> None:
        """POST to the address the allowlist checked, resolved now: the name cannot lead elsewhere meanwhile."""
        if self.send_as_json:
            body, content_type = json.dumps(send).encode(), "application/json"
        else:
            body, content_type = urlencode({self.field: json.dumps(send)}).encode(), "application/x-www-form-urlencoded"
        allowlist.post(url, body, content_type, headers=self.headers, timeout=self.timeout)


class LoggedLearningRateScheduler(keras.callbacks.LearningRateScheduler):
    """Keras's LearningRateScheduler driven by a config's ``Schedule``, logging each change of rate."""

    def __init__(self, schedule: Schedule, verbose: int = 0) -> None:
        super().__init__(self._rate, verbose=verbose)
        self.spec = schedule
        self.initial = schedule.initial_learning_rate
        self.epochs: int | None = None

    def _rate(self, epoch: int, lr: float) -> float:
        if self.initial is None:  # the first call comes before any change: the optimizer's own rate
            self.initial = float(lr)
        return float(self.spec.rate(epoch, self.initial, self.epochs))

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        self.epochs = params.get("epochs")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        before = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        super().on_epoch_begin(epoch, logs)
        after = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if epoch == 0 or not math.isclose(before, after, rel_tol=1e-6):
            log.info(f"Epoch {epoch + 1}: learning rate {after:.6g} ({self.spec.schedule})")  # type: ignore[attr-defined]


def lambda_callback(hooks: dict[str, Callable[..., Any]]) -> keras.callbacks.LambdaCallback:
    """A LambdaCallback calling ``hooks`` (``{"on_epoch_end": function}``) as ``f(epoch, logs)``, ``f(logs)``
    or ``f(batch, logs)``, always positionally (Keras passes batch logs by keyword)."""

    def epoch_hook(function: Callable[..., Any]) -> Callable[..., Any]:
        return lambda epoch, logs=None: function(epoch, logs)

    def train_hook(function: Callable[..., Any]) -> Callable[..., Any]:
        return lambda logs=None: function(logs)

    wrap = {
        "on_epoch_begin": epoch_hook,
        "on_epoch_end": epoch_hook,
        "on_train_begin": train_hook,
        "on_train_end": train_hook,
        "on_train_batch_begin": epoch_hook,
        "on_train_batch_end": epoch_hook,
    }
    return keras.callbacks.LambdaCallback(**{name: wrap[name](function) for name, function in hooks.items()})
