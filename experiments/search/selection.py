"""Which runs a table, a chart or the API shows: an experiment's runs through the filters and the query.

    chosen = select(experiment, Filters(q='params.training.batch_size = 64', status="", tag=""))
    chosen.error          # "col 27: expected a value after '<'" (and no runs), or ""
    chosen.runs           # the queryset: visible runs (archived ones too when asked), filtered
    chosen.total()        # how many: from the counts journal when it can say, else counted (capped)

One place for it, so the table, its parallel-coordinates data and ``GET /api/executions`` always
agree on what a query selects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.http import HttpRequest

from experiments.models import Execution, ExecutionQuerySet, Experiment, SearchValue, Status
from experiments.search import counts
from experiments.search.columns import Column, parse_columns
from experiments.search.grammar import MAX_LENGTH, QueryError, parse
from experiments.search.paging import Segment, Sort, known_sizes, segments
from experiments.search.translate import Scope, has, translate

COUNT_LIMIT = 1000  # a query's or a tag's runs are counted up to this many, then "more than"
STATUSES = [status.value for status in Status if status != Status.DELETED]


@dataclass(frozen=True)
class Filters:
    q: str = ""
    status: str = ""
    tag: str = ""
    archived: bool = False  # archived runs too (deleted ones never)

    @property
    def any(self) -> bool:
        return bool(self.q.strip() or self.status or self.tag)


@dataclass
class Selection:
    experiment: Experiment | None
    filters: Filters
    runs: QuerySet[Execution]
    error: str = ""
    error_column: int | None = None
    archived: bool = False  # archived runs are in ``runs`` (asked for, or the query names archived)
    _total: int | None = field(default=None, repr=False)

    @property
    def exact(self) -> bool:
        """Whether the journals can say how many runs there are (no tag, no query)."""
        return self.experiment is not None and not self.error and not self.filters.q.strip() and not self.filters.tag

    def total(self) -> int:
        """How many runs: exact when ``exact``, else counted up to ``COUNT_LIMIT + 1``."""
        if self._total is None:
            if self.error:
                self._total = 0
            elif self.exact:
                assert self.experiment is not None
                self._total = counts.total(self.experiment.pk, self.filters.status or None, archived=self.archived)
            else:
                self._total = self.runs.order_by()[: COUNT_LIMIT + 1].count()
        return self._total

    @property
    def more(self) -> bool:
        """Whether there are more runs than a filtered table counts (``total`` says ``COUNT_LIMIT + 1``)."""
        return not self.exact and self.total() > COUNT_LIMIT

    def segments(self, sort: Sort) -> list[Segment]:
        """The runs in ``sort``'s order, a segment at a time; sizes filled where the journals know them."""
        experiment_id = self.experiment.pk if self.experiment is not None else None
        shown_only = not self.archived
        found = segments(
            self.runs, sort, experiment_id=experiment_id, state=SearchValue.State.SHOWN if shown_only else None
        )
        if self.exact and shown_only and experiment_id is not None:
            if not self.filters.status:
                key = sort.column.key
                with_value = counts.keys(experiment_id).get(key, {}) if key is not None else {}
                known_sizes(found, self.total(), with_value)
            elif found[0].kind == "attribute":
                found[0].size = self.total()
        return found


def select(
    experiment: Experiment | None, filters: Filters, base: ExecutionQuerySet | None = None, probe: bool = True
) -> Selection:
    """The runs of ``experiment`` (every experiment's with None) that ``filters`` keep.

    A query that cannot be run selects nothing and says why (``error``, ``error_column``).
    ``probe``: test the query's conditions run by run, for a page read in order (``translate.Probe``);
    False reads the runs that match each condition from the value index (a chart of all of them).
    """
    base = base if base is not None else Execution.objects.all()
    try:
        node = parse(filters.q)
        archived = filters.archived or translate(node).archived
        states = (SearchValue.State.SHOWN, SearchValue.State.ARCHIVED) if archived else (SearchValue.State.SHOWN,)
        scope = Scope(probe, experiment.pk if experiment is not None else None, states)
        translated = translate(node, scope)
    except QueryError as exc:
        return Selection(experiment, filters, base.none(), error=str(exc), error_column=exc.column)
    runs = base.visible(archived=archived)  # deleted runs never; archived ones when asked
    if experiment is not None:
        runs = runs.filter(experiment=experiment)
    if filters.status in STATUSES:
        runs = runs.filter(status=filters.status)
    if filters.tag:
        runs = runs.filter(has(f"tags.{filters.tag}", scope=scope))
    if filters.q.strip():
        runs = runs.filter(translated.q)
    return Selection(experiment, filters, runs, archived=archived)


def filters_from(request: HttpRequest) -> Filters:
    """The table's filters from its URL: ``q``, ``status``, ``tag``, ``archived=1``."""
    status = request.GET.get("status", "")
    return Filters(
        q=request.GET.get("q", "")[: MAX_LENGTH + 1],
        status=status if status in STATUSES else "",
        tag=request.GET.get("tag", "").strip()[:200],
        archived=request.GET.get("archived") == "1",
    )


def chosen_columns(request: HttpRequest) -> list[Column] | None:
    """``?cols=a,b`` (or repeated ``col=``): the value columns asked for, None for the default."""
    names = [*request.GET.getlist("col"), *request.GET.get("cols", "").split(",")]
    names = [name for name in names if name.strip()]
    return parse_columns(",".join(names)) if names else None
