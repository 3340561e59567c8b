"""Keras ``Callback`` classes the engine adds to ``fit()``. Imports Keras, so load it lazily."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import keras

log = logging.getLogger("gymnosd.Trainer")


class PeriodicModelCheckpoint(keras.callbacks.Callback):
    """Save the model every ``period`` epochs to ``filepath`` filled with the epoch and its logs."""

    def __init__(
        self,
        filepath,
        period=1,
        monitor="val_loss",
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        verbose=0,
    ):
        super().__init__()
        self.filepath = str(filepath)
        self.period = period
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.verbose = verbose
        if mode == "auto":
            mode = "max" if any(word in monitor for word in ("acc", "auc", "precision", "recall")) else "min"
        self.better = (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)
        self.best = None
        self.saved = []

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        number = epoch + 1
        if number % self.period:
            return
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None or math.isnan(current):
                log.warning(f"Checkpoint skipped at epoch {number}: '{self.monitor}' is not in this epoch's logs")
                return
            if self.best is not None and not self.better(current, self.best):
                return
            self.best = current
        path = Path(self.filepath.format(epoch=number, **logs))
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        self.saved.append(path)
        log.debug(f"Saved checkpoint {path.name} at epoch {number}")


class EpochProgressBar(keras.callbacks.Callback):
    """One tqdm bar over the epochs, with the last epoch's metrics beside it (for terminals)."""

    def __init__(self, epochs, stream):
        super().__init__()
        self.epochs = epochs
        self.stream = stream
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm import tqdm

        self.bar = tqdm(total=self.epochs, unit="epoch", file=self.stream, dynamic_ncols=True, leave=True)

    def on_epoch_end(self, epoch, logs=None):
        shown = {key: f"{value:.4g}" for key, value in (logs or {}).items() if isinstance(value, (int, float))}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


class TrackerBridge(keras.callbacks.Callback):
    """Feeds each epoch's logs to the trackers; a tracker that fails is dropped with a warning."""

    def __init__(self, trackers):
        super().__init__()
        self.trackers = trackers

    def on_epoch_end(self, epoch, logs=None):
        self.trackers.log_epoch(epoch + 1, logs or {})


class LoggedTerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras's TerminateOnNaN, saying in the execution log where the loss went bad."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            action = "failing the run" if self.raise_error else "stopping the training"
            log.warning(
                f"Loss became {loss} at epoch {getattr(self, 'epoch', '?')}, batch {batch + 1}: {action} (terminate_on_nan)"
            )
        super().on_batch_end(batch, logs)


class EpochProgbarLogger(keras.callbacks.ProgbarLogger):
    """Keras's progress bar on stdout, at the verbosity the config asks for.

    The trainer calls ``fit(verbose=0)`` (the execution log is the record), and Keras hands that
    verbosity to every ProgbarLogger; this one keeps its own: 1 a bar, 2 one line per epoch.
    """

    def __init__(self, verbose=1):
        super().__init__()
        self.wanted_verbose = verbose

    def set_params(self, params):
        super().set_params(params)
        self.verbose = self.wanted_verbose


class TimeoutRemoteMonitor(keras.callbacks.RemoteMonitor):
    """Keras's RemoteMonitor with a timeout, and failures written to the execution log.

    Keras posts without a timeout (a server that accepts and never answers would hang the
    training) and reports failures as Python warnings, which never reach execution.log.
    The payload is Keras's: ``{"epoch": <0-based>, **logs}``, as form field ``field`` or as JSON.
    Redirects are not followed: they could lead past the host allowlist (``allowlist``).
    """

    def __init__(self, root, path, field="data", headers=None, send_as_json=False, timeout=10):
        super().__init__(root=root, path=path, field=field, headers=headers, send_as_json=send_as_json)
        self.timeout = timeout
        self.sent = 0
        self.failures = 0

    def on_epoch_end(self, epoch, logs=None):
        import json

        import numpy as np
        import requests

        send = {"epoch": epoch}
        for key, value in (logs or {}).items():
            send[key] = value.item() if isinstance(value, (np.ndarray, np.generic)) else value
        url = self.root + self.path
        try:
            if self.send_as_json:
                response = requests.post(
                    url, json=send, headers=self.headers, timeout=self.timeout, allow_redirects=False
                )
            else:
                response = requests.post(
                    url,
                    {self.field: json.dumps(send)},
                    headers=self.headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            response.raise_for_status()
            if response.is_redirect:
                raise requests.exceptions.RequestException(
                    f"it answered with a redirect to {response.headers.get('Location')}, which is not followed"
                )
        except requests.exceptions.RequestException as exc:
            self.failures += 1
            # Once as a warning; every epoch would bury the log while the server is down.
            level = logging.WARNING if self.failures == 1 else logging.DEBUG
            log.log(level, f"remote_monitor could not post epoch {epoch + 1} to {url}: {exc}; training goes on")
            return
        self.sent += 1


class LoggedLearningRateScheduler(keras.callbacks.LearningRateScheduler):
    """Keras's LearningRateScheduler, logging each change of rate; tells the schedule the run's epochs."""

    def set_params(self, params):
        super().set_params(params)
        if hasattr(self.schedule, "epochs"):
            self.schedule.epochs = params.get("epochs")

    def on_epoch_begin(self, epoch, logs=None):
        before = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        super().on_epoch_begin(epoch, logs)
        after = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if epoch == 0 or not math.isclose(before, after, rel_tol=1e-6):
            log.info(f"Epoch {epoch + 1}: learning rate {after:.6g} ({getattr(self.schedule, 'name', 'schedule')})")


def lambda_callback(hooks):
    """A LambdaCallback calling ``hooks`` (``{"on_epoch_end": function}``) as ``f(epoch, logs)``, ``f(logs)``
    or ``f(batch, logs)``, always positionally (Keras passes batch logs by keyword)."""

    def epoch_hook(function):
        return lambda epoch, logs=None: function(epoch, logs)

    def train_hook(function):
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
