"""What a sweep's page, its API and its command show: counts, the best trial, each trial's objective.

One reading of the rows, shared by all three (the web process never opens the Optuna study)::

    {"counts": {"done": 3, "queued": 1, "running": 2, "pruned": 4, "failed": 1, "total": 24}, "best": {...},
     "trials": [{"number": 0, "status": "succeeded", "params": {...}, "value": 23.1, "epochs": 25, ...}],
     "running_best": [23.1, 23.1, 21.7, ...], "importance": {"model.network[0].units": 0.71, ...}}

The list of sweeps shows only the counts and the best value of each (``list_summaries``), counted
and picked by the database: it reads no trial, so 200 sweeps of 10,000 trials cost a few queries.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Case, CharField, Count, F, Max, Min, Q, Value, When
from django.db.models.fields.json import KeyTransform

from experiments.models import Status, higher_is_better

from .models import Sweep, Trial

# The counts a sweep shows, and which trial statuses each gathers ("starting": being queued). A trial waiting
# for a worker is queued, not running: a sweep of 2 at once on one worker shows 1 running, 1 queued.
COUNTED: dict[str, set[str]] = {
    "done": {Status.SUCCEEDED},
    "queued": {Status.QUEUED, "starting"},
    "running": {Status.RUNNING},
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


# ``Trial.status`` in SQL: its run's status, else how it ended without one, else "starting".
TRIAL_STATUS = Case(
    When(execution__isnull=False, then=F("execution__status")),
    When(~Q(outcome=""), then=F("outcome")),
    When(~Q(error=""), then=Value(Status.FAILED)),
    default=Value("starting"),
    output_field=CharField(),
)


def _counts_by_sweep(ids: list[int]) -> dict[int, dict[str, int]]:
    by_status: dict[int, dict[str, int]] = defaultdict(dict)
    rows = Trial.objects.filter(sweep_id__in=ids).annotate(state=TRIAL_STATUS).values("sweep_id", "state")
    for row in rows.annotate(n=Count("pk")).order_by():
        by_status[row["sweep_id"]][row["state"]] = row["n"]
    return {
        pk: {name: sum(by_status[pk].get(status, 0) for status in statuses) for name, statuses in COUNTED.items()}
        for pk in ids
    }


def _best_values(sweeps: list[Sweep]) -> dict[int, float | None]:
    """Each sweep's best objective among its completed trials, as ``best_trial`` picks it (``Trial.objective``):
    the value the study was told, or for a run not told yet, its summary's value when that is the sweep's."""
    succeeded = Trial.objects.filter(sweep__in=sweeps).annotate(state=TRIAL_STATUS).filter(state=Status.SUCCEEDED)
    told = {
        row["sweep_id"]: row
        for row in succeeded.filter(value__isnull=False)
        .values("sweep_id")
        .annotate(low=Min("value"), high=Max("value"))
        .order_by()
    }
    untold_runs = succeeded.filter(value__isnull=True, execution__isnull=False)
    untold = dict(untold_runs.values("sweep_id").annotate(n=Count("pk")).order_by().values_list("sweep_id", "n"))
    best: dict[int, float | None] = {}
    for sweep in sweeps:
        maximize = sweep.direction == "maximize"
        found = [told[sweep.pk]["high" if maximize else "low"]] if sweep.pk in told else []
        if untold.get(sweep.pk) and not (sweep.which == "best" and higher_is_better(sweep.metric) != maximize):
            # Runs that ended since the study was last told: their summary's value, picked in the database.
            picked = KeyTransform(sweep.which, KeyTransform(sweep.metric, "execution__summary"))
            rows = untold_runs.filter(sweep=sweep).annotate(picked=picked)
            found += [value for value in rows.values_list("picked", flat=True) if isinstance(value, (int, float))]
        best[sweep.pk] = (max if maximize else min)(found) if found else None
    return best


def list_summaries(sweeps: list[Sweep]) -> list[dict[str, Any]]:
    """What the list of sweeps shows of each: ``{"counts": {...}, "best": {"value": ...} or None}``."""
    counts = _counts_by_sweep([sweep.pk for sweep in sweeps])
    best = _best_values(sweeps)
    return [
        {
            "counts": {**counts[sweep.pk], "total": sweep.trials_total},
            "best": {"value": best[sweep.pk]} if best[sweep.pk] is not None else None,
        }
        for sweep in sweeps
    ]
