"""Pruning: a Keras callback reports a trial's objective to its study after every epoch and stops
the trial when the sweep's pruner says so (the worker then ends the run ``pruned``)."""

from __future__ import annotations

import logging
import math
from typing import Any

import keras

from . import study
from .models import Trial

# Its lines go to the run's execution.log ("... - gymnosd - INFO - Sweep - Epoch 6: pruned ...").
log = logging.getLogger("gymnosd.Sweep")


class SweepPruning(keras.callbacks.Callback):
    """Reports ``metric`` (its best so far, or its last value) as the trial's intermediate value at
    each epoch (counted from 1), and asks the pruner. ``pruned`` is true once it stopped the run."""

    def __init__(self, trial: Trial) -> None:
        super().__init__()
        sweep = trial.sweep
        self.metric = sweep.metric
        self.which = sweep.which
        self.maximize = sweep.direction == "maximize"
        self.pruner = sweep.document.get("pruner", {}).get("type", "")
        self.trial = study.running_trial(sweep, trial.optuna_number or 0)
        self.best: float | None = None
        self.pruned = False
        self.failed = False
        self.reported: set[int] = set()  # the epochs (from 1) reported by an earlier attempt of this trial

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """A resumed trial (#23): the epochs it already reported are not reported again (those trained again after
        its last kept state), and its best so far counts them."""
        try:
            earlier = self.trial.storage.get_trial(self.trial._trial_id).intermediate_values
        except Exception as exc:  # noqa: BLE001 - the study being unreachable must not fail the training
            log.warning("Could not read what this trial reported before (%s); it reports every epoch", exc)
            return
        self.reported = set(earlier)
        for value in earlier.values():
            self._note(float(value))

    def _note(self, value: float) -> None:
        if math.isfinite(value) and (self.best is None or (value > self.best if self.maximize else value < self.best)):
            self.best = value

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.metric)
        if value is None or self.failed or epoch + 1 in self.reported:
            return
        value = float(value)
        if not math.isfinite(value):
            return
        self._note(value)
        reported = self.best if self.which == "best" and self.best is not None else value
        try:
            self.trial.report(reported, epoch + 1)
            prune = self.trial.should_prune()
        except Exception as exc:  # noqa: BLE001 - the study being unreachable must not fail the training
            self.failed = True
            log.warning(
                "Epoch %d: could not report to the sweep's study (%s); this trial will not be pruned", epoch + 1, exc
            )
            return
        if prune:
            self.pruned = True
            self.model.stop_training = True
            log.info(
                "Epoch %d: pruned by the sweep's %s pruner (%s %s %.6g is not promising next to earlier trials)",
                epoch + 1,
                self.pruner,
                self.which,
                self.metric,
                reported,
            )
