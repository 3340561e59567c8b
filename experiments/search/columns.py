"""The columns of the runs table, by the names the query language, ``?sort=``, ``?cols=`` and the API use.

    column("params.training.batch_size")   # a param: number or text, in SearchValue
    column("metrics.val_loss")             # a per-epoch metric's last value
    column("metrics.best.val_loss")        # its best value; metrics.test_loss is the test value
    column("system.peak_memory_mb"), column("evaluation.accuracy"), column("tags.baseline")
    column("status"), column("attributes.started"), column("start_time")   # attributes, MLflow's names too

A column whose values live in ``SearchValue`` has a ``key``; an attribute has a model ``field``.
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass

from experiments.models import Status, higher_is_better
from experiments.search.grammar import QueryError


class Kind(enum.StrEnum):
    NUMBER = "number"
    TEXT = "text"
    ANY = "any"  # a param: a number or a text, whatever the run had
    DATE = "date"
    DURATION = "duration"  # seconds
    BOOL = "bool"
    TAG = "tag"


@dataclass(frozen=True)
class Column:
    name: str  # canonical: "params.training.batch_size", "metrics.best.val_loss", "started"
    kind: Kind
    key: str | None = None  # its SearchValue key, when its values live there
    field: str | None = None  # its model field (a lookup path), for an attribute

    @property
    def label(self) -> str:
        """The header: ``batch_size`` for a param is too short to tell apart, so the path without the prefix."""
        for prefix in ("params.", "metrics.", "attributes."):
            if self.name.startswith(prefix):
                return self.name.removeprefix(prefix).replace("best.", "best ", 1)
        return self.name

    @property
    def higher_is_better(self) -> bool:
        """Whether the natural first click sorts it descending (accuracies, dates, sizes)."""
        if self.name.startswith("metrics."):
            return higher_is_better(self.name.removeprefix("metrics.").removeprefix("best."))
        if self.name.startswith("evaluation."):
            return higher_is_better(self.name.removeprefix("evaluation."))
        return self.kind in {Kind.DATE} or self.name in {"size", "epochs", "id"}


ATTRIBUTES = {
    "id": Column("id", Kind.NUMBER, field="pk"),
    "name": Column("name", Kind.TEXT, field="folder_name"),
    "title": Column("title", Kind.TEXT, field="title"),
    "status": Column("status", Kind.TEXT, field="status"),
    "started": Column("started", Kind.DATE, field="started_at"),
    "finished": Column("finished", Kind.DATE, field="finished_at"),
    "duration": Column("duration", Kind.DURATION),
    "epochs": Column("epochs", Kind.NUMBER, field="epochs"),
    "parent": Column("parent", Kind.NUMBER, field="parent_id"),  # a run's forks: parent = 42
    "archived": Column("archived", Kind.BOOL, field="archived"),
    "queue": Column("queue", Kind.TEXT, field="queue"),
    "experiment": Column("experiment", Kind.TEXT, field="experiment__name"),
    "project": Column("project", Kind.TEXT, field="experiment__project__name"),
    "launched_by": Column("launched_by", Kind.TEXT, field="launched_by__username"),
    "size": Column("size", Kind.NUMBER, key="size"),
}
# MLflow's names for the same attributes.
ALIASES = {
    "run_id": "id",
    "run_name": "name",
    "start_time": "started",
    "end_time": "finished",
    "user_id": "launched_by",
    "size_bytes": "size",
}
PREFIXES = {
    "params.": Kind.ANY,
    "metrics.": Kind.NUMBER,
    "system.": Kind.NUMBER,
    "evaluation.": Kind.NUMBER,
    "tags.": Kind.TAG,
}
STATUSES = tuple(status.value for status in Status)
MAX_KEY = 255


def _unknown(name: str, column_at: int) -> QueryError:
    close = difflib.get_close_matches(name, [*ATTRIBUTES, *ALIASES], n=1)
    if not close and "." in name:  # a misspelt prefix: metric.val_loss -> metrics.val_loss
        head, rest = name.split(".", 1)
        prefixes = difflib.get_close_matches(head, [prefix[:-1] for prefix in PREFIXES], n=1)
        close = [f"{prefixes[0]}.{rest}"] if prefixes else []
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return QueryError(
        column_at,
        f"unknown column '{name}'{hint} (columns are params.<path>, metrics.<name>, metrics.best.<name>, "
        f"system.<name>, evaluation.<name>, tags.<tag>, or one of: {', '.join(ATTRIBUTES)})",
    )


def column(name: str, column_at: int = 1) -> Column:
    """The column ``name`` names; ``QueryError`` (at ``column_at``) for a name that is none."""
    name = name.strip()
    bare = name.removeprefix("attributes.")
    bare = ALIASES.get(bare, bare)
    if bare in ATTRIBUTES:
        return ATTRIBUTES[bare]
    for prefix, kind in PREFIXES.items():
        if name.startswith(prefix):
            rest = name.removeprefix(prefix)
            if not rest:
                raise QueryError(column_at, f"'{name}' needs a name after the dot, e.g. {prefix}...")
            if len(name) > MAX_KEY:
                raise QueryError(column_at, f"column names are at most {MAX_KEY} characters")
            return Column(name, kind, key=name)
        if name == prefix[:-1]:
            raise QueryError(column_at, f"'{name}' needs a name after it, e.g. {prefix}<name>")
    raise _unknown(name, column_at)


def parse_sort(value: str | None) -> tuple[Column, str | None]:
    """``?sort=`` / ``order_by``: a column name; the table's older short forms still work.

    ``val_loss`` is ``metrics.val_loss``, ``best.val_loss`` is ``metrics.best.val_loss``,
    ``test_loss`` is ``metrics.test_loss``. Anything unknown sorts by ``started`` (None: said why).
    """
    value = (value or "").strip()
    if not value:
        return ATTRIBUTES["started"], None
    try:
        return column(value), None
    except QueryError as exc:
        if "." not in value or value.startswith("best."):
            try:
                return column(f"metrics.{value}"), None
            except QueryError:
                pass
        return ATTRIBUTES["started"], exc.message


def parse_columns(value: str | None, limit: int = 40) -> list[Column]:
    """``?cols=params.training.batch_size,metrics.val_loss`` -> those columns (unknown names and tags dropped)."""
    found: list[Column] = []
    for part in (value or "").split(",")[:limit]:
        try:
            chosen = column(part)
        except QueryError:
            continue
        if chosen.kind is not Kind.TAG and chosen not in found:
            found.append(chosen)
    return found
