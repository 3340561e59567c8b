"""``GET /api/executions/{id}/system``: a run's system metrics (attached to the executions router)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Schema

from experiments.access import get_execution_by_id_for_user
from experiments.api.base import Detail
from experiments.api.executions import router
from experiments.system.series import api_payload


class SystemSeries(Schema):
    id: int
    source: str
    interval: float | None
    samples: int
    time: list[float]
    series: dict[str, list[float | None]]
    epoch_ends: list[float]
    summary: dict[str, float | int]


@router.get(
    "/{execution_id}/system",
    response={200: SystemSeries, 404: Detail},
    summary="System metrics: the run's CPU, memory, disk and GPU use over time",
)
def system(request: HttpRequest, execution_id: int) -> dict[str, Any]:
    """Every sample of ``system_metrics.jsonl`` (at most 10,000, evenly thinned beyond), aligned on ``time``
    (seconds since the run started): ``series`` holds one list per field (``cpu_percent``, ``memory_mb``,
    ``gpu_0_utilization_percent``, ...; null where a sample lacks it), ``epoch_ends`` the time each epoch
    ended (epoch 1 first), ``summary`` the peak memory and mean CPU and GPU use. ``source`` says where they
    were read: ``file`` while the run trains, ``index`` once it was synced, ``none`` when nothing was recorded
    (``GYMNOS_SYSTEM_INTERVAL=0``, or a run shorter than one interval)."""
    return api_payload(get_execution_by_id_for_user(request.user, execution_id))
