"""Sync's part: the headline numbers of evaluation.json into ``Execution.evaluation``.

``{"accuracy": 0.93, "macro_f1": 0.92, "roc_auc": 0.98}`` for a classifier, ``{"r2": 0.81, "rmse": 3.9}``
for a regressor: flat, numbers only, a number that could not be computed left out (so a sort puts
that run last). The whole report stays in the folder; pages read it from there.
"""

from __future__ import annotations

import math
from typing import Any

from experiments.index.reader import FolderReader, Listing, Record, load_json
from experiments.pipeline.evaluation.report import FILE_NAME, HEADLINE

from .report import MAX_BYTES


def headline(document: Any, record: Record) -> dict[str, float]:
    """The known headline numbers of a parsed report; a problem on ``record`` if it has none to give."""
    numbers = document.get("headline") if isinstance(document, dict) else None
    if not isinstance(numbers, dict):
        record.problem(FILE_NAME, 'expected an object with a "headline" object of {name: number}; not indexed')
        return {}
    found = {}
    for name in HEADLINE:
        value = numbers.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            found[name] = float(value)
    return found


def read(content: bytes | None, listing: Listing, record: Record) -> None:
    """Fill ``record.extra["evaluation"]``; ``{}`` when the folder has no readable report."""
    record.extra["evaluation"] = {}
    if content is None:
        return
    document = load_json(content, record, FILE_NAME)
    if document is not None:
        record.extra["evaluation"] = headline(document, record)


READER = FolderReader(file=FILE_NAME, limit=MAX_BYTES, fields=("evaluation",), read=read)
