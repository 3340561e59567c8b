"""Keras ``Callback`` classes the engine adds to ``fit()``. Imports Keras, so load it lazily."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import keras

log = logging.getLogger("gymnosd.Trainer")


class PeriodicModelCheckpoint(keras.callbacks.Callback):
    """Save the model every ``period`` epochs to ``filepath`` filled with the epoch and its logs."""

    def __init__(self, filepath, period=1, monitor="val_loss", save_best_only=False, save_weights_only=False, mode="auto", verbose=0):
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
