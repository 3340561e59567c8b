"""The evaluation report: where the model gets the test split right and wrong (issue: evaluation report).

The trainer calls ``write_report`` once the model is saved; evaluation failing never fails a run
that trained. Until the report is built, this is the interface the trainer calls, and it writes
nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import numpy as np

    from .config import TrainingConfig
    from .datasets import Dataset


def write_report(
    model: keras.Model,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    config: TrainingConfig,
    dataset: Dataset | None,
    folder: Path,
) -> dict[str, Any] | None:
    """Write ``evaluation.json`` in ``folder`` from the test split (else the validation split) and return it.

    ``splits`` holds the transformed ``fit``, ``val`` and ``test`` arrays; ``dataset`` is the built-in
    dataset (None for a file), which may know its class names. Returns None when nothing was written.
    """
    return None
