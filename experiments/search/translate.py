"""A parsed query as one ``Q``: the conditions of one database query, every value a parameter.

    found = translate(parse('params.training.batch_size = 64 and not tags.broken'))
    Execution.objects.visible(archived=found.archived).filter(found.q)

How values compare: numbers as numbers, text as text (by code point, on both databases), dates as
dates (``started > "2026-11-01"``: a date alone means that whole day, so ``started = "2026-11-01"``
is every run started that day), ``duration`` in seconds. A param holds whatever its run had, so
``params.x = 64`` matches runs whose x is the number 64 and ``params.x = "64"`` those whose x is
the text "64". A condition on a value a run does not have is false for that run, and ``not``
makes it true: ``not tags.broken`` keeps every run without the tag.

``like`` and ``ilike`` take SQL's patterns (``%`` any text, ``_`` one character, ``\\`` escapes);
``like`` is case-sensitive and ``ilike`` is not, on both databases (ilike folds ASCII letters on
SQLite, all letters on PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.db.models import (
    BooleanField,
    CharField,
    DurationField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
)
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Lookup,
)
from django.utils import timezone

from experiments.models import SearchValue
from experiments.search.columns import STATUSES, Column, Kind, column
from experiments.search.grammar import (
    And,
    Compare,
    Flag,
    Like,
    Member,
    Node,
    Not,
    Or,
    QueryError,
    Value,
    conditions,
)

LOOKUPS: dict[str, type[Lookup]] = {
    "=": Exact,
    "<": LessThan,
    "<=": LessThanOrEqual,
    ">": GreaterThan,
    ">=": GreaterThanOrEqual,
}
_FIELD_OPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
# Durations compare as intervals; SQLite holds one as a 64-bit count of microseconds (9.2e12 seconds).
MAX_SECONDS = 1e12


@dataclass(frozen=True)
class Translated:
    q: Q
    archived: bool  # the query names ``archived``: archived runs must be in what it filters


class Matches(Expression):
    """``expression LIKE pattern`` with the same meaning on both databases (case-sensitive; ``ilike``: not).

    PostgreSQL's LIKE is case-sensitive and its ILIKE is not. SQLite's LIKE ignores ASCII case, so a
    case-sensitive match there is a GLOB of the same pattern.
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, expression: Any, pattern: str, insensitive: bool) -> None:
        super().__init__()
        self.expression, self.pattern, self.insensitive = expression, pattern, insensitive

    def get_source_expressions(self) -> list[Any]:
        return [self.expression]

    def set_source_expressions(self, expressions: Sequence[Any]) -> None:
        (self.expression,) = expressions

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        sql, params = compiler.compile(self.expression)
        operator = "ILIKE" if self.insensitive else "LIKE"
        return f"({sql} {operator} %s)", [*params, self.pattern]

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.expression)
        if self.insensitive:
            return f"({sql} LIKE %s ESCAPE '\\')", [*params, self.pattern]
        return f"({sql} GLOB %s)", [*params, glob_from_like(self.pattern)]


def glob_from_like(pattern: str) -> str:
    """SQL LIKE's pattern as SQLite's GLOB: ``%`` -> ``*``, ``_`` -> ``?``, the rest literal.

    >>> glob_from_like(r"50\\% of *_x%")
    '50% of [*]?x*'
    """
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            index += 1
            char = pattern[index]
            out.append(f"[{char}]" if char in "*?[" else char)
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(f"[{char}]" if char in "*?[" else char)
        index += 1
    return "".join(out)


# --- values -------------------------------------------------------------------------------------


def _describe(value: Value) -> str:
    return value.text if len(value.text) <= 40 else value.text[:37] + "..."


def _is_number(value: Value) -> bool:
    return isinstance(value.value, (int, float)) and not isinstance(value.value, bool)


def _date(value: Value, col: Column, op: str) -> tuple[dt.datetime, bool]:
    """``(moment, whole_day)`` of a date or datetime literal, in the server's time zone."""
    if not isinstance(value.value, str):
        raise QueryError(value.column, f"{col.name} is a date; expected a date like \"2026-11-01\" after '{op}'")
    text = value.value.strip()
    try:
        if len(text) == 10:
            moment, whole_day = dt.datetime.combine(dt.date.fromisoformat(text), dt.time()), True
        else:
            moment, whole_day = dt.datetime.fromisoformat(text.replace("Z", "+00:00")), False
    except ValueError:
        raise QueryError(
            value.column,
            f'{col.name} is a date; expected a date like "2026-11-01" or "2026-11-01 14:30", got {value.text}',
        ) from None
    if not 2 <= moment.year <= 9998:  # a day either side, in any time zone, is still a date Python can hold
        raise QueryError(value.column, f"{col.name} is a date from the year 2 to 9998, got {value.text}")
    return (timezone.make_aware(moment) if timezone.is_naive(moment) else moment), whole_day


def _typed(col: Column, value: Value, op: str) -> Any:
    """The literal as the column compares it, or QueryError saying what the column holds."""
    if isinstance(value.value, bool):
        return _typed_bool(col, value, op)
    if col.kind in {Kind.NUMBER, Kind.DURATION}:
        return _typed_number(col, value, op)
    if col.kind is Kind.TEXT:
        return _typed_text(col, value, op)
    if col.kind is Kind.BOOL:
        raise QueryError(value.column, f"{col.name} is true or false; expected true or false after '{op}'")
    return value.value  # ANY: a number or a text, as written


def _typed_bool(col: Column, value: Value, op: str) -> bool:
    """``true`` or ``false``: for a true-or-false column (or a param), compared with = or != only."""
    if col.kind not in {Kind.ANY, Kind.BOOL}:
        raise QueryError(value.column, f"{col.name} is {_article(col)}; expected {_wanted(col)} after '{op}'")
    if op not in {"=", "!="}:
        raise QueryError(value.column, f"true and false compare with = or != only, not '{op}'")
    return bool(value.value)


def _typed_number(col: Column, value: Value, op: str) -> Any:
    """A number for a number column; for a duration, a float of at most ``MAX_SECONDS``."""
    if not _is_number(value):
        raise QueryError(
            value.column,
            f"{col.name} is {_article(col)}; expected {_wanted(col)} after '{op}', got {_describe(value)}",
        )
    if col.kind is Kind.DURATION and abs(float(value.value)) > MAX_SECONDS:
        raise QueryError(
            value.column, f"duration is at most {MAX_SECONDS:,.0f} seconds (31,000 years), got {_describe(value)}"
        )
    return float(value.value) if col.kind is Kind.DURATION else value.value


def _typed_text(col: Column, value: Value, op: str) -> str:
    """A quoted text for a text column; for ``status`` with = or !=, one of the statuses."""
    if not isinstance(value.value, str):
        raise QueryError(
            value.column, f"{col.name} is text; expected a quoted value after '{op}', e.g. \"{value.text}\""
        )
    if col.name == "status" and op in {"=", "!="} and value.value not in STATUSES:
        close = difflib.get_close_matches(value.value, STATUSES, n=1, cutoff=0.4)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise QueryError(value.column, f"no status '{value.value}'; {hint}statuses are {', '.join(STATUSES)}")
    return value.value


_ARTICLES = {
    Kind.NUMBER: "a number",
    Kind.DURATION: "a duration in seconds",
    Kind.TEXT: "text",
    Kind.DATE: "a date",
    Kind.BOOL: "true or false",
    Kind.ANY: "a param",
    Kind.TAG: "a tag",
}


def _article(col: Column) -> str:
    return _ARTICLES[col.kind]


def _wanted(col: Column) -> str:
    return {
        Kind.NUMBER: "a number",
        Kind.DURATION: "a number of seconds",
        Kind.TEXT: "a quoted value",
        Kind.DATE: 'a date like "2026-11-01"',
        Kind.BOOL: "true or false",
        Kind.ANY: "a value",
        Kind.TAG: "nothing",
    }[col.kind]


# --- conditions ---------------------------------------------------------------------------------


class Probe(Exists):
    """``EXISTS`` that PostgreSQL answers per run, by one probe of the unique (execution, key) index.

    A table page reads runs in its order and stops after a page of matches: a probe per run read is
    what that costs. Left to itself, the planner may instead join the whole value index first (its
    estimate of "key = x and number < y" mixes every key's values), which reads every run that
    matches one condition. ``OFFSET 0`` keeps the subquery a per-row test (PostgreSQL does not
    turn an ``EXISTS`` with an offset into a join).
    """

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = self.as_sql(compiler, connection, **extra)
        assert sql.endswith(")")
        return sql[:-1] + " OFFSET 0)", list(params)


@dataclass(frozen=True)
class Scope:
    """How a value condition is asked of the database.

    ``probe`` (a table page, read in its order until a page of matches): run by run, ``Probe``.
    Otherwise (every match, e.g. a chart of them): the runs whose value matches, read from the value
    index's range for the experiment (``experiment_id``) and visibility (``states``) when given.
    """

    probe: bool = True
    experiment_id: int | None = None
    states: tuple[int, ...] | None = None


PROBE = Scope()


def has(key: str, condition: Q | None = None, scope: Scope = PROBE) -> Q:
    """The run has a value under ``key`` (meeting ``condition``)."""
    if not scope.probe and scope.experiment_id is not None and scope.states is not None:
        matching = SearchValue.objects.filter(experiment_id=scope.experiment_id, state__in=scope.states, key=key)
        if condition is not None:
            matching = matching.filter(condition)
        return Q(pk__in=matching.values("execution_id"))
    values = SearchValue.objects.filter(execution_id=OuterRef("pk"), key=key)
    if condition is not None:
        values = values.filter(condition)
    return Q(Probe(values) if scope.probe else Exists(values))


def _stored(typed: Any) -> tuple[str, Any]:
    """Which SearchValue column a literal compares with, and the value there."""
    if isinstance(typed, bool):
        return "text", "true" if typed else "false"
    if isinstance(typed, (int, float)):
        return "number", typed
    return "text", typed


def _value_compare(col: Column, op: str, typed: Any, scope: Scope) -> Q:
    assert col.key is not None
    field, stored = _stored(typed)
    if op == "!=":
        return has(col.key, Q(**{f"{field}__isnull": False}) & ~Q(**{field: stored}), scope)
    return has(col.key, Q(**{f"{field}__{_FIELD_OPS[op]}": stored}), scope)


class Binary(Expression):
    """Text compared and sorted by code point on PostgreSQL too, whatever the database's locale (SQLite's way)."""

    def __init__(self, expression: Any) -> None:
        super().__init__(output_field=CharField())
        self.expression = expression

    def get_source_expressions(self) -> list[Any]:
        return [self.expression]

    def set_source_expressions(self, expressions: Sequence[Any]) -> None:
        (self.expression,) = expressions

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        return compiler.compile(self.expression)

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.expression)
        return f'({sql} COLLATE "C")', params


def attribute(col: Column) -> Any:
    """An attribute's expression, as filters and sorts use it."""
    if col.kind is Kind.DURATION:
        return ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    assert col.field is not None
    return Binary(F(col.field)) if col.kind is Kind.TEXT else F(col.field)


def _attribute_compare(col: Column, op: str, typed: Any, value: Value) -> Q:
    expression = attribute(col)
    present = Q(IsNull(expression, False))
    if col.kind is Kind.DATE:
        moment, whole_day = _date(value, col, op)
        if whole_day:
            end = moment + dt.timedelta(days=1)
            day = Q(GreaterThanOrEqual(expression, moment)) & Q(LessThan(expression, end))
            ranges = {
                "=": day,
                "!=": present & ~day,
                "<": Q(LessThan(expression, moment)),
                "<=": Q(LessThan(expression, end)),
                ">": Q(GreaterThanOrEqual(expression, end)),
                ">=": Q(GreaterThanOrEqual(expression, moment)),
            }
            return present & ranges[op]
        typed = moment
    if col.kind is Kind.DURATION:
        typed = dt.timedelta(seconds=typed)
    if op == "!=":
        return present & ~Q(Exact(expression, typed))
    return present & Q(LOOKUPS[op](expression, typed))


def _compare(node: Compare, scope: Scope) -> Q:
    col = column(node.name.text, node.name.column)
    if col.kind is Kind.TAG:
        raise QueryError(node.name.column, f"{col.name} is a tag: write it alone ({col.name}) or with not")
    typed = _typed(col, node.value, node.op)
    if col.key is not None:
        return _value_compare(col, node.op, typed, scope)
    return _attribute_compare(col, node.op, typed, node.value)


def _member(node: Member, scope: Scope) -> Q:
    col = column(node.name.text, node.name.column)
    if col.kind is Kind.TAG:
        raise QueryError(node.name.column, f"{col.name} is a tag: write it alone ({col.name}) or with not")
    if col.key is not None:  # one probe for the list: 100 values were 100 subqueries for the ORM to build
        stored = [_stored(_typed(col, value, "=")) for value in node.values]
        lists = {field: [value for kind, value in stored if kind == field] for field in ("number", "text")}
        found = has(col.key, reduce(lambda a, b: a | b, (Q(**{f"{f}__in": v}) for f, v in lists.items() if v)), scope)
    else:
        found = reduce(lambda a, b: a | b, (_compare(Compare(node.name, "=", value), scope) for value in node.values))
    return ~found if node.negated else found


def _like(node: Like, scope: Scope) -> Q:
    col = column(node.name.text, node.name.column)
    if col.kind not in {Kind.ANY, Kind.TEXT}:
        raise QueryError(node.name.column, f"like and ilike compare text; {col.name} is {_article(col)}")
    pattern = str(node.pattern.value)
    if (len(pattern) - len(pattern.rstrip("\\"))) % 2:  # PostgreSQL refuses it; SQLite matches nothing
        raise QueryError(node.pattern.column, "a pattern cannot end with an escaping \\ (write \\\\ for a \\ itself)")
    if col.key is not None:
        found = has(col.key, Q(text__isnull=False) & Q(Matches(F("text"), pattern, node.insensitive)), scope)
    else:
        expression = attribute(col)
        found = Q(IsNull(expression, False)) & Q(Matches(expression, pattern, node.insensitive))
    return ~found if node.negated else found


def _flag(node: Flag, scope: Scope) -> Q:
    col = column(node.name.text, node.name.column)
    if col.kind is Kind.BOOL:
        assert col.field is not None
        return Q(**{col.field: True})
    if col.key is not None:
        return has(col.key, None, scope)
    raise QueryError(node.name.column, f"{col.name} needs a comparison, e.g. {_example(col)}")


def _example(col: Column) -> str:
    examples = {
        Kind.DATE: f'{col.name} > "2026-11-01"',
        Kind.TEXT: f'{col.name} = "..."',
        Kind.NUMBER: f"{col.name} > 10",
        Kind.DURATION: f"{col.name} > 60",
    }
    return examples.get(col.kind, f"{col.name} = ...")


def _q(node: Node, scope: Scope) -> Q:
    if isinstance(node, Compare):
        return _compare(node, scope)
    if isinstance(node, Member):
        return _member(node, scope)
    if isinstance(node, Like):
        return _like(node, scope)
    if isinstance(node, Flag):
        return _flag(node, scope)
    if isinstance(node, Not):
        return ~_q(node.inner, scope)
    if isinstance(node, And):
        return reduce(lambda a, b: a & b, (_q(item, scope) for item in node.items))
    assert isinstance(node, Or)
    return reduce(lambda a, b: a | b, (_q(item, scope) for item in node.items))


def translate(node: Node | None, scope: Scope = PROBE) -> Translated:
    """The ``Q`` of a parsed query (``Q()`` for none); ``QueryError`` for a name or value that cannot be.

    ``scope``: how each value condition is asked (``Scope``: run by run for a page, by index range for all).
    """
    if node is None:
        return Translated(Q(), archived=False)
    archived = any(column(item.name.text, item.name.column).name == "archived" for item in conditions(node))
    return Translated(_q(node, scope), archived=archived)
