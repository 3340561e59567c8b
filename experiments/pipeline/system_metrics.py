"""System metrics: what a run costs the machine while it trains (issue: system metrics).

The trainer starts a ``SystemSampler`` once the execution folder exists and stops it when the run
ends, however it ends; a Keras callback tells it where each epoch ends. Until the sampler is built,
this is the interface the trainer calls, and it records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


class SystemSampler:
    """Samples the run's process and the machine every ``interval`` seconds into ``system_metrics.jsonl``.

    ``on_sample(sample)`` is called with each sample (the trackers record them).
    """

    def __init__(
        self, folder: Path, interval: float, on_sample: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self.folder = folder
        self.interval = interval
        self.on_sample = on_sample

    def start(self) -> None:
        """Begin sampling (a no-op until the sampler is built)."""

    def mark_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` (from 1) ended now."""

    def stop(self) -> None:
        """Stop sampling and close the file; safe to call twice."""


def interval_from_environment() -> float:
    """``GYMNOS_SYSTEM_INTERVAL`` seconds (default 5; 0 turns sampling off)."""
    return 0.0
