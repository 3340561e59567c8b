"""What a sweep's page, its API and its command show: counts, the best trial, each trial's objective.

One reading of the rows, shared by all three (the web process never opens the Optuna study)::

    {"counts": {"done": 3, "running": 2, "pruned": 4, "failed": 1, "total": 24}, "best": {...},
     "trials": [{"number": 0, "status": "succeeded", "params": {...}, "value": 23.1, "epochs": 25, ...}],
     "running_best": [23.1, 23.1, 21.7, ...], "importance": {"model.network[0].units": 0.71, ...}}
"""

from __future__ import annotations

from typing import Any

from experiments.models import Status

from .models import Sweep, Trial

# The four counts a sweep shows, and which trial statuses each gathers ("starting": being queued).
COUNTED: dict[str, set[str]] = {
    "done": {Status.SUCCEEDED},
    "running": {Status.QUEUED, Status.RUNNING, "starting"},
    "pruned": {Status.PRUNED},
    "failed": {Status.FAILED, Status.CANCELLED, Status.MISSING, Status.DELETED},
}


def trials_of(sweep: Sweep) -> list[Trial]:
    return list(sweep.trials.select_related("sweep", "execution", "execution__experiment").order_by("number"))


def counts(trials: list[Trial], total: int) -> dict[str, int]:
    found = {name: sum(1 for trial in trials if trial.status in statuses) for name, statuses in COUNTED.items()}
    return {**found, "total": total}


def best_trial(sweep: Sweep, trials: list[Trial]) -> Trial | None:
    """The completed trial with the best objective (pruned ones did not finish, so they are not candidates)."""
    scored = [(trial.objective(), trial) for trial in trials if trial.status == Status.SUCCEEDED]
    scored = [(value, trial) for value, trial in scored if value is not None]
    if not scored:
        return None
    if sweep.direction == "maximize":
        return max(scored, key=lambda pair: (pair[0], -pair[1].number))[1]
    return min(scored, key=lambda pair: (pair[0], pair[1].number))[1]


def running_best(sweep: Sweep, trials: list[Trial]) -> list[float | None]:
    """After each trial (in order), the best objective of the completed ones so far."""
    best: float | None = None
    series: list[float | None] = []
    for trial in trials:
        value = trial.objective() if trial.status == Status.SUCCEEDED else None
        if value is not None:
            better = best is None or (value > best if sweep.direction == "maximize" else value < best)
            best = value if better else best
        series.append(best)
    return series


def scales(sweep: Sweep) -> dict[str, str]:
    """How a chart's axis shows each parameter: ``log`` (log_uniform), ``category`` (a choice of words), ``linear``."""
    found = {}
    for name, spec in sweep.document.get("parameters", {}).items():
        kind = spec.get("distribution")
        numbers = kind != "choice" or all(
            isinstance(value, (int, float)) and not isinstance(value, bool) for value in spec.get("choice", [])
        )
        found[name] = "log" if kind == "log_uniform" else "linear" if numbers else "category"
    return found


def summarise(sweep: Sweep, trials: list[Trial] | None = None) -> dict[str, Any]:
    """Everything the page and the API show of a sweep, as JSON-ready values."""
    trials = trials if trials is not None else trials_of(sweep)
    best = best_trial(sweep, trials)
    return {
        "id": sweep.pk,
        "name": sweep.name,
        "status": sweep.status,
        "method": sweep.method,
        "trials_total": sweep.trials_total,
        "parallel": sweep.parallel,
        "objective": {"metric": sweep.metric, "direction": sweep.direction, "which": sweep.which},
        "pruner": sweep.document.get("pruner", {"type": "none"}),
        "parameters": list(sweep.document.get("parameters", {})),
        "scales": scales(sweep),
        "counts": counts(trials, sweep.trials_total),
        "best": best.as_dict() if best is not None else None,
        "trials": [trial.as_dict() for trial in trials],
        "running_best": running_best(sweep, trials),
        "importance": sweep.importance or {},
        "error": sweep.error,
        "created_at": sweep.created_at.isoformat(),
        "finished_at": sweep.finished_at.isoformat() if sweep.finished_at else None,
    }
