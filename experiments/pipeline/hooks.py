"""Ready-made ``lambda_callback`` hooks, writing to the execution log.

Allowed by default; a ``GYMNOS_CALLBACK_MODULES`` that an administrator sets must list this module
to keep them::

    GYMNOS_CALLBACK_MODULES=team_hooks,experiments.pipeline.hooks

    {"type": "lambda_callback", "on_epoch_end": "experiments.pipeline.hooks.log_epoch"}
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("gymnosd.Hooks")


def log_epoch(epoch: int, logs: dict[str, Any] | None) -> None:
    """``Epoch 3 ended: loss=12.5, val_loss=14.1`` (1-based, as the log's other lines count)."""
    shown = ", ".join(f"{key}={value:.4g}" for key, value in (logs or {}).items() if isinstance(value, (int, float)))
    log.info(f"Epoch {epoch + 1} ended: {shown}")


def log_train_begin(logs: dict[str, Any] | None) -> None:
    log.info("Training started")


def log_train_end(logs: dict[str, Any] | None) -> None:
    log.info("Training ended")
