"""How many runs each experiment has, without counting them: sums of the ``RunCount`` and ``KeyCount`` journals.

Triggers add +1/-1 rows as runs arrive, change status or are archived (``RunCount``), and as their
values arrive or leave (``KeyCount``); the sums are the counts. Reading compacts a journal (each
group's rows become one) once it has grown, so a read sums a few hundred rows however many runs
there are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError, connection, models, transaction
from django.db.models import Max, Min, Sum

from experiments.models import KeyCount, RunCount, SearchValue, Status

COMPACT_AFTER = 2000  # journal rows
GROUPS: dict[type[models.Model], tuple[str, ...]] = {
    RunCount: ("experiment_id", "status", "archived"),
    KeyCount: ("experiment_id", "key", "state", "numeric"),
}


def compact(model: type[RunCount] | type[KeyCount]) -> None:
    """Fold a journal into one row per group, keeping every sum.

    Safe beside writers and another compaction: a row is folded by the transaction that deleted it,
    and on PostgreSQL a row another compaction deleted first is skipped.
    """
    group = GROUPS[model]
    with transaction.atomic():
        last = model.objects.aggregate(last=Max("pk"))["last"]
        if last is None:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {model._meta.db_table} WHERE id <= %s RETURNING {', '.join(group)}, delta", [last]
            )
            folded: dict[tuple[object, ...], int] = defaultdict(int)
            for *key, delta in cursor.fetchall():
                folded[tuple(key)] += delta
        rows: list[Any] = [model(**dict(zip(group, key, strict=True)), delta=n) for key, n in folded.items() if n]
        model.objects.bulk_create(rows)


def _compacted(model: type[RunCount] | type[KeyCount]) -> None:
    # The span of ids bounds the number of rows from above, at the cost of two index probes (a count reads them).
    span = model.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if span["high"] is not None and span["high"] - span["low"] + 1 > COMPACT_AFTER:
        try:
            compact(model)
        except DatabaseError:  # busy (SQLite's write lock): the sums are right anyway
            pass


def by_status(experiment_ids: Iterable[int] | None = None, archived: bool = False) -> dict[int, dict[str, int]]:
    """``{experiment_id: {status: count}}`` of the runs tables show (archived ones too with ``archived``).

    Deleted runs are never counted; statuses with no run are left out.
    """
    _compacted(RunCount)
    rows = RunCount.objects.exclude(status=Status.DELETED)
    if not archived:
        rows = rows.filter(archived=False)
    if experiment_ids is not None:
        rows = rows.filter(experiment_id__in=list(experiment_ids))
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for experiment_id, status, total in rows.values_list("experiment_id", "status").annotate(total=Sum("delta")):
        if total:
            counts[experiment_id][status] = total
    return counts


def total(experiment_id: int, status: str | None = None, archived: bool = False) -> int:
    """How many runs of one experiment the table shows (with ``status``, if given)."""
    counts = by_status([experiment_id], archived=archived).get(experiment_id, {})
    return counts.get(status, 0) if status else sum(counts.values())


def keys(experiment_id: int, archived: bool = False) -> dict[str, dict[bool, int]]:
    """``{key: {numeric: runs}}``: each name the experiment's shown runs have, and how many have it."""
    _compacted(KeyCount)
    states = [SearchValue.State.SHOWN, SearchValue.State.ARCHIVED] if archived else [SearchValue.State.SHOWN]
    rows = KeyCount.objects.filter(experiment_id=experiment_id, state__in=states)
    found: dict[str, dict[bool, int]] = defaultdict(dict)
    for key, numeric, runs in rows.values_list("key", "numeric").annotate(runs=Sum("delta")):
        if runs:
            found[key][numeric] = found[key].get(numeric, 0) + runs
    return found
