"""What machine a run trained on, for metrics.json's ``hardware`` section."""

from __future__ import annotations

import functools
import importlib.metadata
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


def _version(*distributions: str) -> str | None:
    """The installed version of the first of ``distributions`` found, read without importing it."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _tensorflow_gpus() -> list[dict[str, Any]]:
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
    return gpus


def _torch_gpus() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [
        {"name": torch.cuda.get_device_name(index), "compute_capability": torch.cuda.get_device_capability(index)}
        for index in range(torch.cuda.device_count())
    ]


def _jax_gpus() -> list[dict[str, Any]]:
    import jax

    gpus = []
    for device in jax.devices():
        if device.platform != "gpu":
            continue
        # "9.0" on CUDA devices; (major, minor) as TensorFlow and torch give it.
        capability = getattr(device, "compute_capability", None)
        gpus.append(
            {
                "name": device.device_kind,
                "compute_capability": tuple(int(part) for part in capability.split(".")) if capability else None,
            }
        )
    return gpus


_GPU_LISTERS = {"tensorflow": _tensorflow_gpus, "torch": _torch_gpus, "jax": _jax_gpus}


@functools.lru_cache(maxsize=4)  # probing for GPUs (CUDA) is slow and the answer does not change
def _gpus(backend: str) -> tuple[dict[str, Any], ...]:
    """The GPUs Keras' ``backend`` can train on: ``({"name": ..., "compute_capability": (9, 0)}, ...)``.

    Asked of the backend itself (never of another framework, which would start a second CUDA context).
    """
    lister = _GPU_LISTERS.get(backend)
    if lister is None:  # numpy, openvino: Keras trains on no GPU through them
        return ()
    try:
        return tuple(lister())
    except Exception:  # noqa: BLE001 - no GPU support is not an error
        return ()


def describe() -> dict[str, Any]:
    """``{"platform": ..., "python": ..., "backend": "tensorflow", "tensorflow": "2.21.0", "keras": ...,
    "cpu": {...}, "memory_bytes": ..., "gpus": [...]}``; ``tensorflow`` is None where it is not installed."""
    import keras

    backend = keras.backend.backend()
    return {
        "platform": platform.platform(),
        "hostname": platform.node(),
        "python": platform.python_version(),
        "backend": backend,
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "keras": keras.__version__,
        "cpu": {
            "model": _cpu_model(),
            "physical_cores": psutil.cpu_count(logical=False),
            "logical_cores": psutil.cpu_count(logical=True),
        },
        "memory_bytes": psutil.virtual_memory().total,
        "gpus": list(_gpus(backend)),
    }
