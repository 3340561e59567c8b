"""Disk usage: each experiment's runs, the trash, and the trainings root's filesystem (psutil).

The runs' sizes are the ones sync indexed (``Execution.size_bytes``, ``checkpoint_bytes``), so the
summary is one grouped query, not a walk of the disk::

    summary()["experiments"][0]   # {"name": "boston_housing", "runs": 12, "bytes": 48211, "checkpoints": 30012}
"""

from __future__ import annotations

import os
from typing import Any

import psutil
from django.conf import settings
from django.db.models import Count, QuerySet, Sum

from experiments.models import Execution, Status


def filesystem(path: str | os.PathLike[str]) -> dict[str, int] | None:
    """``{"total", "used", "free"}`` bytes of the filesystem holding ``path``, or None if it cannot be read."""
    try:
        usage = psutil.disk_usage(os.fspath(path))
    except OSError:
        return None
    return {"total": usage.total, "used": usage.used, "free": usage.free}


def summary(runs: QuerySet[Execution] | None = None) -> dict[str, Any]:
    """Bytes per experiment of ``runs`` (default: every run; not deleted, archived ones included), in the trash,
    in all, and free (the filesystem's figures are the whole disk's)."""
    runs = Execution.objects.all() if runs is None else runs
    per_experiment = (
        runs.exclude(status=Status.DELETED)
        .values("experiment__name")
        .annotate(runs=Count("pk"), bytes=Sum("size_bytes"), checkpoints=Sum("checkpoint_bytes"))
        .order_by("experiment__name")
    )
    experiments = [
        {
            "name": row["experiment__name"],
            "runs": row["runs"],
            "bytes": row["bytes"] or 0,
            "checkpoints": row["checkpoints"] or 0,
        }
        for row in per_experiment
    ]
    trashed = runs.filter(status=Status.DELETED).aggregate(runs=Count("pk"), bytes=Sum("size_bytes"))
    runs_bytes = sum(row["bytes"] for row in experiments)
    return {
        "experiments": sorted(experiments, key=lambda row: (-row["bytes"], row["name"])),
        "runs_bytes": runs_bytes,
        "checkpoint_bytes": sum(row["checkpoints"] for row in experiments),
        "trash": {"runs": trashed["runs"], "bytes": trashed["bytes"] or 0},
        "root_bytes": runs_bytes + (trashed["bytes"] or 0),
        "filesystem": filesystem(settings.GYMNOS_TRAININGS_ROOT),
        "root": str(settings.GYMNOS_TRAININGS_ROOT),
    }
