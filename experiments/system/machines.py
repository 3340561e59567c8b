"""Each worker machine's figures: written with the worker's heartbeat, read by the queue page.

The worker (``experiments.jobs.worker.GymnosWorker``) puts a snapshot of its machine in a field of its
own Redis hash on every heartbeat, so it lives and expires with the worker's registration::

    {"cpu_percent": 12.5, "cpu_count": 8, "memory_used_mb": 5120.0, "memory_total_mb": 15872.0,
     "memory_percent": 32.3, "gpus": [{"index": 0, "name": "NVIDIA H200", "utilization_percent": 97.0,
     "memory_used_mb": 70100.0, "memory_total_mb": 143771.0, ...}], "at": 1764412345.1}
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis
from redis.client import Pipeline

from experiments.pipeline.system_metrics import GPUs, machine_snapshot

FIELD = "gymnos_machine"
MAX_BYTES = 64 * 1024  # a snapshot is a few hundred bytes; eight GPUs a couple of kilobytes
MAX_GPUS = 64


_gpus: GPUs | None = None


def start() -> GPUs:
    """The GPUs' handles, opened once; the first call also starts psutil's CPU clock, so the first heartbeat's
    figure covers a span (a worker calls this before its first fork: ``extensions.WORKER_READY``)."""
    global _gpus
    if _gpus is None:
        _gpus = GPUs()
        machine_snapshot(_gpus)
    return _gpus


def publish(connection: Redis | Pipeline, worker_key: str) -> None:
    """Write this machine's snapshot into the worker's hash (``worker.key``): ``extensions.WORKER_HEARTBEAT``."""
    snapshot = {**machine_snapshot(start()), "at": round(time.time(), 3)}
    connection.hset(worker_key, FIELD, json.dumps(snapshot))


def _figure(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _gb(megabytes: Any) -> float | None:
    value = _figure(megabytes)
    return round(value / 1024, 1) if value is not None else None


def read(raw: bytes | str | None, now: float | None = None) -> dict[str, Any] | None:
    """A snapshot as the queue page shows it (memory in GB, its age in seconds), or None if absent or unreadable.

    It comes from Redis, which any worker may write: read within a size bound, numbers kept only as numbers.
    """
    if not raw or len(raw) > MAX_BYTES:
        return None
    try:
        snapshot = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(snapshot, dict):
        return None
    at = _figure(snapshot.get("at"))
    gpus = snapshot.get("gpus")
    gpus = gpus if isinstance(gpus, list) else []
    return {
        "cpu_percent": _figure(snapshot.get("cpu_percent")),
        "cpu_count": _figure(snapshot.get("cpu_count")),
        "memory_used_gb": _gb(snapshot.get("memory_used_mb")),
        "memory_total_gb": _gb(snapshot.get("memory_total_mb")),
        "memory_percent": _figure(snapshot.get("memory_percent")),
        "age_seconds": max(0, round((now or time.time()) - at)) if at is not None else None,
        "gpus": [
            {
                "index": _figure(gpu.get("index")),
                "name": str(gpu.get("name") or "")[:100],
                "utilization_percent": _figure(gpu.get("utilization_percent")),
                "memory_used_gb": _gb(gpu.get("memory_used_mb")),
                "memory_total_gb": _gb(gpu.get("memory_total_mb")),
            }
            for gpu in gpus[:MAX_GPUS]
            if isinstance(gpu, dict)
        ],
    }
