"""System metrics: what a run costs the machine while it trains.

The trainer starts a ``SystemSampler`` once the execution folder exists and stops it when the run
ends, however it ends; a Keras callback (``epoch_callback``) tells it where each epoch ends. Every
``GYMNOS_SYSTEM_INTERVAL`` seconds (default 5; 0 turns it off) a thread appends one line to
``system_metrics.jsonl`` in the execution folder, written with one ``write`` and no buffer, so a
run that crashes or is killed keeps every line it wrote, whole::

    {"time": 0.0, "started_at": 1764412345.123, "interval": 5.0}          # the first line
    {"time": 5.0, "cpu_percent": 97.5, "memory_mb": 612.3, "system_cpu_percent": 51.2, ...}
    {"time": 7.412, "epoch_end": 1}                                          # epoch 1 ended here

``time`` is seconds since sampling began (just after the folder was made). The fields of a sample:

- ``cpu_percent``: the run's process, in percent of one core (two busy cores read 200);
  ``memory_mb``: its resident memory.
- ``system_cpu_percent``: the whole machine (0-100, all cores); ``system_memory_mb``,
  ``system_memory_percent``: the machine's memory in use.
- ``disk_read_bytes_per_s``, ``disk_write_bytes_per_s``: the process's reads and writes that
  reached the storage since the previous sample (absent where the system does not count them).
- For each GPU that NVIDIA's management library (``nvidia-ml-py``) sees, numbered as it numbers
  them: ``gpu_0_utilization_percent``, ``gpu_0_memory_used_mb``, ``gpu_0_memory_total_mb``,
  ``gpu_0_temperature_c``, ``gpu_0_power_w``. No GPU, no driver or no library: no such fields, and
  no error; a figure a GPU does not report is left out alone.

The file is created with the first sample: a run shorter than one interval leaves none. Nothing the
sampler does can fail the run: a probe that fails leaves its field out, and a file that cannot be
written stops the sampling with one warning in the log. It keeps nothing per sample in memory.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

try:
    import pynvml  # nvidia-ml-py: a small ctypes binding; the driver's library is only loaded by nvmlInit
except ImportError:  # GPU figures are optional
    pynvml = None

log = logging.getLogger("gymnosd.SystemMetrics")

FILE_NAME = "system_metrics.jsonl"
VARIABLE = "GYMNOS_SYSTEM_INTERVAL"
DEFAULT_INTERVAL = 5.0
MIN_INTERVAL = 0.1  # below this the sampler itself would cost the training noticeable CPU
MAX_INTERVAL = 86400.0
MB = 1024 * 1024
# Epoch ends seen before the first sample (the file does not exist yet) wait here; bounded.
MAX_PENDING_MARKS = 10_000


def interval_from_environment() -> float:
    """``GYMNOS_SYSTEM_INTERVAL`` seconds (default 5; 0 turns sampling off).

    A value that is not a number of seconds raises ``ValueError`` naming the variable, so a
    misconfigured machine says so on its first run instead of silently recording nothing.
    """
    text = os.environ.get(VARIABLE, "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value == 0:
        return 0.0
    if not (MIN_INTERVAL <= value <= MAX_INTERVAL):
        raise ValueError(
            f"{VARIABLE} is {text!r}; expected seconds between samples of the run's CPU, memory and GPU use, "
            f"from {MIN_INTERVAL:g} to {MAX_INTERVAL:g} (0 turns sampling off; unset means {DEFAULT_INTERVAL:g})"
        )
    return value


# --- reading the machine ----------------------------------------------------------------------


class GPUs:
    """The GPUs NVIDIA's management library sees; empty (and silent) without a GPU, driver or library.

    ``nvidia-ml-py`` loads ``libnvidia-ml.so`` from the driver: it starts no CUDA context, so a
    worker may read it before forking its jobs.
    """

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.problem = ""
        self._nvml: Any = None
        if pynvml is None:
            self.problem = "nvidia-ml-py is not installed"
            return
        try:
            pynvml.nvmlInit()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(index) for index in range(pynvml.nvmlDeviceGetCount())]
            self._nvml = pynvml
        except Exception as exc:  # noqa: BLE001 - no library, no driver, no GPU: no GPU figures
            self.problem = f"{type(exc).__name__}: {exc}"
            self.handles = []

    def read(self) -> list[dict[str, float]]:
        """One dict per GPU: ``utilization_percent``, ``memory_used_mb``, ``memory_total_mb``, ``temperature_c``,
        ``power_w``; a figure the GPU does not report (``NVMLError_NotSupported``) is left out."""
        nvml = self._nvml
        if nvml is None:
            return []
        figures: list[dict[str, float]] = []
        for handle in self.handles:
            gpu: dict[str, float] = {}
            for key, probe in (
                ("utilization_percent", lambda h: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)),
                ("memory_used_mb", lambda h: nvml.nvmlDeviceGetMemoryInfo(h).used / MB),
                ("memory_total_mb", lambda h: nvml.nvmlDeviceGetMemoryInfo(h).total / MB),
                ("temperature_c", lambda h: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))),
                ("power_w", lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0),  # milliwatts
            ):
                try:
                    gpu[key] = probe(handle)
                except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends: leave it out
                    continue
            figures.append(gpu)
        return figures

    def names(self) -> list[str]:
        if self._nvml is None:
            return []
        names = []
        for handle in self.handles:
            try:
                name = self._nvml.nvmlDeviceGetName(handle)
                names.append(name.decode() if isinstance(name, bytes) else str(name))
            except Exception:  # noqa: BLE001 - a name is a nicety
                names.append("")
        return names

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down what may already be gone
                pass
            self._nvml = None


def _round(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


class Probe:
    """Reads one process and the machine; ``read()`` gives the figures since the previous call.

    The first call to psutil's CPU counters only starts their clocks, so the constructor makes it.
    """

    def __init__(self, pid: int | None = None, gpus: GPUs | None = None) -> None:
        self.process = psutil.Process(pid)
        self.gpus = gpus if gpus is not None else GPUs()
        self.process.cpu_percent(None)
        psutil.cpu_percent(None)
        self._io = self._io_counters()
        self._io_at = time.monotonic()

    def _io_counters(self) -> tuple[int, int] | None:
        try:
            counters = self.process.io_counters()  # absent on macOS: AttributeError
        except (AttributeError, psutil.Error, OSError):
            return None
        return counters.read_bytes, counters.write_bytes

    def read(self) -> dict[str, float]:
        sample: dict[str, float] = {}
        try:
            sample["cpu_percent"] = _round(self.process.cpu_percent(None))
            sample["memory_mb"] = _round(self.process.memory_info().rss / MB, 1)
        except (psutil.Error, OSError):
            pass
        sample["system_cpu_percent"] = _round(psutil.cpu_percent(None))
        memory = psutil.virtual_memory()
        sample["system_memory_mb"] = _round((memory.total - memory.available) / MB, 1)
        sample["system_memory_percent"] = _round(memory.percent)
        io, now = self._io_counters(), time.monotonic()
        if io is not None and self._io is not None and now > self._io_at:
            seconds = now - self._io_at
            sample["disk_read_bytes_per_s"] = _round(max(io[0] - self._io[0], 0) / seconds, 1)
            sample["disk_write_bytes_per_s"] = _round(max(io[1] - self._io[1], 0) / seconds, 1)
        self._io, self._io_at = io, now
        for index, gpu in enumerate(self.gpus.read()):
            for key, value in gpu.items():
                sample[f"gpu_{index}_{key}"] = _round(value, 1)
        return sample


def machine_snapshot(gpus: GPUs) -> dict[str, Any]:
    """The machine now, for a worker's heartbeat: CPU (since the previous call), memory and each GPU.

    ``{"cpu_percent": 12.5, "cpu_count": 8, "memory_used_mb": ..., "memory_total_mb": ...,
    "memory_percent": ..., "gpus": [{"index": 0, "name": ..., "utilization_percent": ..., ...}]}``
    """
    memory = psutil.virtual_memory()
    names = gpus.names()
    return {
        "cpu_percent": _round(psutil.cpu_percent(None)),
        "cpu_count": psutil.cpu_count() or 0,
        "memory_used_mb": _round((memory.total - memory.available) / MB, 1),
        "memory_total_mb": _round(memory.total / MB, 1),
        "memory_percent": _round(memory.percent),
        "gpus": [
            {"index": index, "name": names[index] if index < len(names) else "", **gpu}
            for index, gpu in enumerate(gpus.read())
        ],
    }


# --- the sampler ------------------------------------------------------------------------------


class SystemSampler:
    """Samples the run's process and the machine every ``interval`` seconds into ``system_metrics.jsonl``.

    ``on_sample(sample)`` is called with each sample, from the sampler's thread (the trackers
    record them); what it raises is logged and sampling goes on.

        sampler = SystemSampler(folder, 5.0, on_sample=trackers.log_system)
        sampler.start()
        ...                      # fit(callbacks=[sampler.epoch_callback(), ...])
        sampler.stop()
    """

    def __init__(
        self, folder: Path, interval: float, on_sample: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        self.interval = float(interval)
        self.on_sample = on_sample
        self.samples = 0
        self._lock = threading.Lock()  # the file: the sampler's thread writes samples, fit's thread epoch ends
        self._fd: int | None = None
        self._failed = False
        self._pending: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._started_wall = time.time()

    def start(self) -> None:
        """Begin sampling, in a daemon thread; the first sample comes one interval from now."""
        if self._thread is not None:
            return
        self._started = time.monotonic()
        self._started_wall = time.time()
        self._thread = threading.Thread(target=self._run, name="system-metrics", daemon=True)
        self._thread.start()

    def elapsed(self) -> float:
        return round(time.monotonic() - self._started, 3)

    def mark_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` (from 1) ended now."""
        self._append({"time": self.elapsed(), "epoch_end": int(epoch)})

    def epoch_callback(self) -> Any:
        """A Keras callback that marks each epoch's end (Keras' own ``LambdaCallback``; epochs count from 1)."""
        import keras

        return keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs=None: self.mark_epoch(epoch + 1))

    def stop(self) -> None:
        """Stop sampling and close the file; safe to call twice."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(self.interval, 1.0) + 5)
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._failed = True  # nothing is written after stop
            self._pending.clear()

    # The thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            probe = Probe()
        except Exception as exc:  # noqa: BLE001 - the run goes on without system metrics
            log.warning(f"System metrics are not recorded: {type(exc).__name__}: {exc}")
            return
        try:
            due = self._started + self.interval
            while not self._stopping.wait(max(due - time.monotonic(), 0.0)):
                sample = {"time": self.elapsed(), **probe.read()}
                if not self._append(sample, is_sample=True):
                    return
                self.samples += 1
                if self.on_sample is not None:
                    try:
                        self.on_sample(sample)
                    except Exception as exc:  # noqa: BLE001 - a consumer's failure is not the sampler's
                        log.warning(f"System sample not recorded by a tracker: {type(exc).__name__}: {exc}")
                # On a fixed grid, so the count stays duration / interval; ticks missed while busy are skipped.
                now = time.monotonic()
                due += self.interval
                if due <= now:
                    due += math.ceil((now - due) / self.interval) * self.interval
        except Exception as exc:  # noqa: BLE001 - never let sampling fail the run
            log.warning(f"System metrics stopped: {type(exc).__name__}: {exc}")
        finally:
            probe.gpus.close()

    def _append(self, line: dict[str, Any], is_sample: bool = False) -> bool:
        """Write one line (the file is made with the first sample); False once writing failed or stopped."""
        with self._lock:
            if self._failed:
                return False
            if self._fd is None and not is_sample:
                if len(self._pending) < MAX_PENDING_MARKS:
                    self._pending.append(line)
                return True
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    header = {"time": 0.0, "started_at": round(self._started_wall, 3), "interval": self.interval}
                    self._write_line(header)
                    for pending in self._pending:
                        self._write_line(pending)
                    self._pending.clear()
                self._write_line(line)
            except OSError as exc:
                self._failed = True
                log.warning(f"System metrics stopped: cannot write {FILE_NAME}: {exc.strerror or exc}")
                return False
            return True

    def _write_line(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line, separators=(", ", ": ")) + "\n").encode()
        assert self._fd is not None  # _append opened it
        while data:  # one write for a line this short; a partial write (disk nearly full) is finished
            written = os.write(self._fd, data)
            data = data[written:]


# --- names for the trackers -------------------------------------------------------------------

_MLFLOW_NAMES = {
    "cpu_percent": "process_cpu_utilization_percentage",
    "memory_mb": "process_memory_usage_megabytes",
    "system_cpu_percent": "cpu_utilization_percentage",
    "system_memory_mb": "system_memory_usage_megabytes",
    "system_memory_percent": "system_memory_usage_percentage",
    "disk_read_bytes_per_s": "process_disk_read_bytes_per_second",
    "disk_write_bytes_per_s": "process_disk_write_bytes_per_second",
}
_MLFLOW_GPU_NAMES = {
    "utilization_percent": "utilization_percentage",
    "memory_used_mb": "memory_usage_megabytes",
    "memory_total_mb": "memory_total_megabytes",
    "temperature_c": "temperature_celsius",
    "power_w": "power_usage_watts",
}
_GPU_FIELD = re.compile(r"^gpu_(\d+)_(\w+)$")


def mlflow_metrics(sample: dict[str, Any]) -> dict[str, float]:
    """A sample under MLflow's own system-metric names (those of ``mlflow.enable_system_metrics_logging``)::

    {"system_cpu_percent": 51.2, "gpu_0_utilization_percent": 97} ->
    {"system/cpu_utilization_percentage": 51.2, "system/gpu_0_utilization_percentage": 97.0}

    Fields MLflow has no name for keep theirs, under ``system/``; ``time`` is the step's, not a metric.
    """
    metrics: dict[str, float] = {}
    for field, value in sample.items():
        if field == "time" or not isinstance(value, (int, float)):
            continue
        gpu = _GPU_FIELD.match(field)
        if gpu and gpu.group(2) in _MLFLOW_GPU_NAMES:
            name = f"gpu_{gpu.group(1)}_{_MLFLOW_GPU_NAMES[gpu.group(2)]}"
        else:
            name = _MLFLOW_NAMES.get(field, field)
        metrics[f"system/{name}"] = float(value)
    for index in sorted({int(m.group(1)) for m in map(_GPU_FIELD.match, sample) if m}):
        used, total = sample.get(f"gpu_{index}_memory_used_mb"), sample.get(f"gpu_{index}_memory_total_mb")
        if isinstance(used, (int, float)) and isinstance(total, (int, float)) and total > 0:
            metrics[f"system/gpu_{index}_memory_usage_percentage"] = round(100.0 * used / total, 2)
    return metrics
