"""The Keras callbacks a worker adds to a sweep's trial (registered in ``experiments.extensions.RUN_CALLBACKS``)."""

from __future__ import annotations

from typing import Any

from experiments.models import Execution

from .launching import trial_of


def trial_callbacks(execution: Execution) -> list[Any]:
    """A trial of a sweep with a pruner reports its objective each epoch and may be stopped early."""
    trial = trial_of(execution.pk)
    if trial is None or trial.optuna_number is None or trial.sweep.document.get("pruner", {}).get("type") == "none":
        return []
    from sweeps.pruning import SweepPruning

    return [SweepPruning(trial)]
