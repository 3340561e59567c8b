"""Sorting runs by any column, a page at a time, without sorting every run.

A column's order is a list of *segments*, each an ordered queryset: an attribute is one segment
(``started``, nulls last); a value in ``SearchValue`` is the runs that have it as a number (then,
for a param, as text), in the order of the value index, then the runs without it, by id (in the
same direction).
Each segment ends with the run's id, so the order is total and the same on both databases.

Two ways through it:

* ``page(...)``: by offset, for the table. When the segments' sizes are known (the journals' counts
  of an experiment's runs and of those that have the value), a page in the second half of a segment
  is read from that segment's end backwards: its last page costs what its first does.
* ``after(...)``: by cursor, for the API: the rows after the last one a client saw.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db.models import Exists, F, FilteredRelation, FloatField, OuterRef, Q, QuerySet, Value
from django.db.models.expressions import OrderBy

from experiments.models import Execution, SearchValue
from experiments.search.columns import Column, Kind
from experiments.search.translate import attribute

CURSOR_SALT = "gymnos.search.cursor"
MAX_CURSOR = 2000  # characters


@dataclass(frozen=True)
class Sort:
    column: Column
    descending: bool

    @classmethod
    def natural(cls, column: Column, order: str | None = None) -> Sort:
        """``order`` ``asc``/``desc``, or the column's natural first direction (dates, accuracies: descending)."""
        if order in {"asc", "desc"}:
            return cls(column, order == "desc")
        return cls(column, column.higher_is_better)


@dataclass
class Segment:
    rows: QuerySet[Execution]  # ordered, with ``sort_value`` annotated (None for the runs without the value)
    kind: str  # "attribute", "number", "text", "rest"
    sort: Sort
    size: int | None = None  # known without counting, or None

    def ordered(self, reverse: bool = False) -> QuerySet[Execution]:
        descending = self.sort.descending != reverse
        pk = "-pk" if descending else "pk"
        if self.kind == "rest":
            return self.rows.order_by(pk)
        value = F("sort_value")
        by: OrderBy
        if self.kind != "attribute":
            # No nulls here: the plain order is the value index's own, read forwards or backwards.
            by = value.desc() if descending else value.asc()
        elif reverse:  # nulls last going forwards, so first going backwards: the exact reverse
            by = value.desc(nulls_first=True) if descending else value.asc(nulls_first=True)
        else:
            by = value.desc(nulls_last=True) if descending else value.asc(nulls_last=True)
        return self.rows.order_by(by, pk)


def segments(
    base: QuerySet[Execution], sort: Sort, experiment_id: int | None = None, state: int | None = None
) -> list[Segment]:
    """The segments of ``base`` in ``sort``'s order.

    ``experiment_id`` and ``state`` (when ``base`` is within one experiment, and all its runs have
    that ``SearchValue.State``) let the value index lead: a sorted page reads only its rows.
    """
    col = sort.column
    if col.key is None:
        return [Segment(base.annotate(sort_value=attribute(col)), "attribute", sort)]
    scope = Q(search_values__key=col.key)
    if experiment_id is not None:
        scope &= Q(search_values__experiment_id=experiment_id)
    if state is not None:
        scope &= Q(search_values__state=state)
    joined = base.annotate(sv=FilteredRelation("search_values", condition=scope))
    found = [Segment(joined.filter(sv__number__isnull=False).annotate(sort_value=F("sv__number")), "number", sort)]
    if col.kind is Kind.ANY:
        found.append(
            Segment(
                joined.filter(sv__number__isnull=True, sv__text__isnull=False).annotate(sort_value=F("sv__text")),
                "text",
                sort,
            )
        )
    has = SearchValue.objects.filter(execution_id=OuterRef("pk"), key=col.key)
    without = base.exclude(Exists(has)).annotate(sort_value=Value(None, output_field=FloatField()))
    found.append(Segment(without, "rest", sort))
    return found


def known_sizes(found: list[Segment], total: int, with_value: dict[bool, int]) -> None:
    """Fill each segment's size, for runs of one experiment and state: ``total`` of them, of which
    ``with_value[True]`` have the sorted value as a number and ``with_value[False]`` as text (the
    ``KeyCount`` journal's sums: nothing is counted here)."""
    if found[0].kind == "attribute":
        found[0].size = total
        return
    counted = 0
    for segment in found:
        if segment.kind == "number":
            segment.size = with_value.get(True, 0)
        elif segment.kind == "text":
            segment.size = with_value.get(False, 0)
        else:
            segment.size = max(0, total - counted)
        counted += segment.size or 0


def page(found: list[Segment], offset: int, limit: int) -> list[Execution]:
    """Rows ``offset`` to ``offset + limit`` of the segments in order."""
    rows: list[Execution] = []
    skip = offset
    for segment in found:
        want = limit - len(rows)
        if want <= 0:
            break
        if segment.size is not None:
            if skip >= segment.size:
                skip -= segment.size
                continue
            take = min(want, segment.size - skip)
            if skip > segment.size / 2:  # nearer its end: read backwards from there
                start = segment.size - skip - take
                chunk = list(segment.ordered(reverse=True)[start : start + take])
                chunk.reverse()
            else:
                chunk = list(segment.ordered()[skip : skip + take])
            rows += chunk
            skip = 0
            continue
        chunk = list(segment.ordered()[skip : skip + want])
        rows += chunk
        if chunk:
            skip = 0
        elif skip:
            skip = max(0, skip - segment.rows.count())
    return rows


# --- cursors ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"s": value.total_seconds()}
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return dt.datetime.fromisoformat(str(value["t"]))
    if isinstance(value, dict) and "s" in value:
        return dt.timedelta(seconds=float(value["s"]))
    return value


def cursor_for(found: list[Segment], index: int, row: Execution) -> str:
    """The cursor that continues after ``row`` (in segment ``index``)."""
    sort = found[index].sort
    data = {
        "c": sort.column.name,
        "d": sort.descending,
        "s": index,
        "v": _plain(getattr(row, "sort_value", None)),
        "id": row.pk,
    }
    return signing.dumps(data, salt=CURSOR_SALT, compress=True)


class BadCursor(ValueError):
    pass


def read_cursor(cursor: str, found: list[Segment]) -> tuple[int, Any, int]:
    """``(segment, value, id)`` of a cursor this API gave for this same order; ``BadCursor`` otherwise."""
    if len(cursor) > MAX_CURSOR:
        raise BadCursor("the cursor is too long; pass back the next_cursor of the previous page")
    try:
        data = signing.loads(cursor, salt=CURSOR_SALT)
    except signing.BadSignature:
        raise BadCursor("not a cursor this API gave; pass back the next_cursor of the previous page") from None
    sort = found[0].sort
    if not isinstance(data, dict) or data.get("c") != sort.column.name or data.get("d") != sort.descending:
        raise BadCursor("the cursor belongs to another order_by or order; start again without a cursor")
    index, pk = data.get("s"), data.get("id")
    if not isinstance(index, int) or not 0 <= index < len(found) or not isinstance(pk, int):
        raise BadCursor("not a cursor this API gave; pass back the next_cursor of the previous page")
    try:
        value = _typed(data.get("v"))
    except (TypeError, ValueError):
        raise BadCursor("not a cursor this API gave; pass back the next_cursor of the previous page") from None
    return index, value, pk


def _rows_after(segment: Segment, value: Any, pk: int) -> QuerySet[Execution]:
    descending = segment.sort.descending
    later_pk = Q(pk__lt=pk) if descending else Q(pk__gt=pk)
    if segment.kind == "rest":
        return segment.ordered().filter(later_pk)
    if value is None:  # among the nulls at the end of an attribute's segment
        return segment.ordered().filter(Q(sort_value__isnull=True) & later_pk)
    beyond = Q(sort_value__lt=value) if descending else Q(sort_value__gt=value)
    return segment.ordered().filter(beyond | (Q(sort_value=value) & later_pk) | Q(sort_value__isnull=True))


def after(found: list[Segment], cursor: str | None, limit: int) -> tuple[list[Execution], str | None]:
    """Up to ``limit`` rows after ``cursor`` (from the start without one), and the cursor after them (None: no more)."""
    start, position = 0, None
    if cursor:
        start, value, pk = read_cursor(cursor, found)
        position = (value, pk)
    rows: list[tuple[int, Execution]] = []
    for index in range(start, len(found)):
        want = limit + 1 - len(rows)
        if want <= 0:
            break
        segment = found[index]
        if index == start and position is not None:
            chunk = _rows_after(segment, *position)[:want]
        else:
            chunk = segment.ordered()[:want]
        rows += [(index, row) for row in chunk]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursor_for(found, rows[-1][0], rows[-1][1]) if more and rows else None
    return [row for _, row in rows], next_cursor
