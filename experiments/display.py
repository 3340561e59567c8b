"""How a run is shown wherever it appears (pages, API, reports): its URL, label, duration, progress, stages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils import timezone

from experiments.models import Execution
from experiments.pipeline.execution import STAGES

# The stages the experiment table shows a column for, with their column labels.
TABLE_STAGES = [("load_data", "load"), ("fit_model", "fit"), ("evaluate_model", "evaluate")]


def execution_url(execution: Execution) -> str:
    """The permalink once the run has a folder; ``/executions/<id>/`` while it waits for one."""
    if execution.folder_name:
        return reverse("experiments:execution", args=[execution.experiment.name, execution.folder_name])
    return reverse("experiments:execution-by-id", args=[execution.pk])


def duration(execution: Execution, now: dt.datetime | None = None) -> float | None:
    """Seconds from start to finish (to now while it runs), or None."""
    if execution.started_at is None:
        return None
    end = execution.finished_at or (now or timezone.now() if execution.status == Execution.Status.RUNNING else None)
    return (end - execution.started_at).total_seconds() if end else None


def eta_seconds(execution: Execution, now: dt.datetime | None = None) -> float | None:
    """Seconds left, from the average epoch so far, while a run trains (None otherwise)."""
    if (
        execution.status != Execution.Status.RUNNING
        or not execution.epochs
        or not execution.epochs_total
        or not execution.started_at
    ):
        return None
    spent = ((now or timezone.now()) - execution.started_at).total_seconds()
    return max(0.0, spent / execution.epochs * (execution.epochs_total - execution.epochs))


def progress_percent(execution: Execution) -> int:
    if not execution.epochs_total:
        return 100 if execution.status == Execution.Status.SUCCEEDED else 0
    return min(100, round(100 * execution.epochs / execution.epochs_total))


def hardware_label(hardware: dict[str, Any] | None) -> str:
    """One line for a table: ``Intel Xeon 8375C (16 cores) + NVIDIA A100`` or ``""``."""
    if not hardware:
        return ""
    cpu = hardware.get("cpu") or {}
    label = str(cpu.get("model") or hardware.get("platform") or "")
    cores = cpu.get("logical_cores")
    if cores:
        label += f" ({cores} cores)"
    gpus = [str(gpu["name"]) for gpu in hardware.get("gpus") or [] if isinstance(gpu, dict) and gpu.get("name")]
    if gpus:
        label += " + " + ", ".join(gpus)
    return label.strip()


def stage_times(elapsed: dict[str, Any] | None) -> list[tuple[str, float]]:
    """``[("load", 0.78), ("fit", 2.34), ("evaluate", 0.0)]`` for the stages a run reached."""
    elapsed = elapsed or {}
    return [(label, elapsed[key]) for key, label in TABLE_STAGES if isinstance(elapsed.get(key), (int, float))]


def stages(elapsed: dict[str, Any] | None) -> list[list[Any]]:
    """Every stage's seconds, in the order they ran: ``[["load_data", 0.78], ["fit_model", 2.34], ...]``."""
    numeric = {
        key: value
        for key, value in (elapsed or {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    order = {name: index for index, name in enumerate(STAGES)}  # any other stage a run recorded comes after
    return [[key, numeric[key]] for key in sorted(numeric, key=lambda key: (order.get(key, len(order)), key))]


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """A count and its noun, agreeing: ``counted(1, "run")`` -> ``1 run``, ``counted(3, "run")`` -> ``3 runs``,
    ``counted(2, "is", "are")`` -> ``2 are``. The one plural of the pages, messages and console (the
    template filter ``counted``; static/js/page.js's ``Gymnos.counted`` says it the same way)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def run_label(execution: Execution) -> str:
    return f"{execution.experiment.name}/{execution.folder_name or f'queued #{execution.pk}'}"
