"""The core's signals, published as live events (connected in ``ExperimentsConfig.ready``)."""

from __future__ import annotations

from typing import Any

from experiments import live
from experiments.models.lifecycle import epoch_recorded


def on_epoch_recorded(sender: Any, pk: int, epoch: int, metrics: dict[str, float | None], **kwargs: Any) -> None:
    """``epoch_recorded`` (a worker's epoch or a RemoteMonitor post, sent on commit): the epoch's metrics."""
    live.publish(pk, live.EPOCH, epoch=epoch, metrics=metrics)


def connect() -> None:
    epoch_recorded.connect(on_epoch_recorded, dispatch_uid="experiments.live.on_epoch_recorded")
