"""Which checkpoint files to keep: the last N saved, and the N best by a monitored metric.

One rule for the two places that remove checkpoints: ``model_checkpoint`` while a run trains
(``keep``, ``keep_best``) and ``manage.py prune_checkpoints`` for runs that already ended::

    saved = [Saved("w.05.h5", epoch=5, value=27.1), Saved("w.10.h5", 10, 17.6), Saved("w.15.h5", 15, 16.0)]
    removable(saved, keep=1, keep_best=1, better=lambda a, b: a < b)   # -> [Saved("w.05.h5", ...)]

A file survives when it is among the last ``keep`` saved OR among the ``keep_best`` best. A file
whose value is unknown (the metric was not logged, or was NaN) cannot be ranked: ``keep_best``
alone never removes it (only ``keep`` can), so a metric that goes missing never empties the folder.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Saved:
    """One checkpoint file: where it is, the epoch it was saved at (from 1), the monitored value then."""

    path: str
    epoch: int
    value: float | None = None


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def removable(
    saved: Sequence[Saved], keep: int | None, keep_best: int | None, better: Callable[[float, float], bool]
) -> list[Saved]:
    """The files to remove, oldest first; ``saved`` is in the order the files were written.

    ``keep`` and ``keep_best`` of None leave that rule out; both None removes nothing.
    ``better(a, b)`` says whether ``a`` is a better value than ``b``.
    """
    if keep is None and keep_best is None:
        return []
    kept: set[str] = set()
    if keep:
        kept.update(item.path for item in saved[-keep:])
    else:
        kept.update(item.path for item in saved if not _known(item.value))
    if keep_best:
        ranked = [item for item in saved if _known(item.value)]

        def compare(a: Saved, b: Saved) -> int:
            assert a.value is not None
            assert b.value is not None  # only known values are ranked
            if better(a.value, b.value):
                return -1
            if better(b.value, a.value):
                return 1
            return b.epoch - a.epoch  # a tie keeps the later file

        ranked.sort(key=functools.cmp_to_key(compare))
        kept.update(item.path for item in ranked[:keep_best])
    return [item for item in saved if item.path not in kept]
