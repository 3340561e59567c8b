"""What machine a run trained on, for metrics.json's ``hardware`` section."""

from __future__ import annotations

import functools
import platform
from typing import Any

import psutil


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)  # probing for GPUs (CUDA) is slow and the answer does not change
def _gpus() -> tuple[dict[str, Any], ...]:
    try:
        import tensorflow as tf

        gpus = []
        for device in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(device)
            gpus.append(
                {
                    "name": details.get("device_name", device.name),
                    "compute_capability": details.get("compute_capability"),
                }
            )
        return tuple(gpus)
    except Exception:  # noqa: BLE001 - no GPU support is not an error
        return ()


def describe() -> dict[str, Any]:
    """``{"platform": ..., "python": ..., "tensorflow": ..., "cpu": {...}, "memory_bytes": ..., "gpus": [...]}``"""
    import keras
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpu": {
            "model": _cpu_model(),
            "physical_cores": psutil.cpu_count(logical=False),
            "logical_cores": psutil.cpu_count(logical=True),
        },
        "memory_bytes": psutil.virtual_memory().total,
        "gpus": list(_gpus()),
    }
