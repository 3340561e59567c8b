"""The experiments list and one experiment's table of runs: filters, a query, chosen columns, any sort.

Neither page reads every run of a big experiment: counts come from the counts journal, the
default columns from the value index's two ends per param, and a sorted page from the value
index (``experiments.search``), so a page of 100,000 runs costs about what a page of 1,000 does.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import F, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from experiments import live
from experiments.access import can_launch, get_experiment_for_user, visible_experiments
from experiments.display import duration, hardware_label, stage_times
from experiments.models import LIVE, Execution
from experiments.models.summary import is_epoch_metric
from experiments.search import counts
from experiments.search.catalog import catalog
from experiments.search.columns import ATTRIBUTES, Column, Kind, column, parse_sort
from experiments.search.grammar import QueryError
from experiments.search.paging import Sort, page
from experiments.search.selection import STATUSES, chosen_columns, filters_from, select
from experiments.views.table import rows_html

PER_PAGE = 50
PER_PAGE_CHOICES = (25, 50, 100, 200)
DEFAULT_PARAMS = 8  # differing params shown by default; the column chooser has the rest
# What a table row reads: the rest (config, artifacts, paths) is not read for a 200-row page.
TABLE_FIELDS = [
    "experiment_id", "folder_name", "status", "title", "started_at", "finished_at", "epochs", "epochs_total",
    "summary", "test_metrics", "elapsed", "hardware", "tags", "params", "system", "evaluation", "size_bytes",
    "archived",
]  # fmt: skip


def _first(field: str, archived: bool, newest: bool = False) -> Subquery:
    """An experiment's lowest ``field`` (``newest``: its highest), as a subquery of the experiments' query: one
    probe of its (experiment, field) index per experiment, all in one round trip to the database."""
    runs = Execution.objects.visible(archived=archived).filter(experiment=OuterRef("pk"), **{f"{field}__isnull": False})
    order = [F(field).desc(), F("pk").desc()] if newest else [F(field).asc()]
    return Subquery(runs.order_by(*order).values(field)[:1])


def _stamp(moment: Any) -> float:
    return moment.timestamp() if moment is not None else 0.0


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    visible = visible_experiments(request.user)
    # Each experiment's best losses and last start in the experiments' own query: with one query per experiment
    # for each, a team's 50 experiments cost 150 round trips, each one more wait for a core on a busy machine.
    experiments = list(
        (visible if archived else visible.filter(archived=False)).annotate(
            best_val=_first("best_val_loss", archived),
            best_loss=_first("final_loss", archived),
            newest_start=_first("started_at", archived, newest=True),
        )
    )
    by_status = counts.by_status([experiment.pk for experiment in experiments], archived=archived)
    rows: list[dict[str, Any]] = []
    for experiment in experiments:
        found = by_status.get(experiment.pk, {})
        statuses = [(status, found[status]) for status in STATUSES if found.get(status)]
        best_val, best_loss = experiment.best_val, experiment.best_loss
        best = (
            ("val_loss", best_val) if best_val is not None else ("loss", best_loss) if best_loss is not None else None
        )
        # The list's template reads these as the experiment's own (they were annotations once).
        experiment.n_executions = sum(found.values())  # type: ignore[attr-defined]
        experiment.last_run = experiment.newest_start if found else None  # type: ignore[attr-defined]
        rows.append({"experiment": experiment, "statuses": statuses, "best": best})
    rows.sort(key=lambda row: (row["experiment"].last_run is None, -_stamp(row["experiment"].last_run)))
    return render(
        request,
        "experiments/experiment_list.html",
        {"rows": rows, "can_launch": can_launch(request.user), "archived": archived},
    )


def _int(value: Any, default: int, allowed: Container[int] | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if allowed is None or number in allowed else default


# --- cells --------------------------------------------------------------------------------------


def cell(execution: Execution, col: Column) -> Any:
    """The value a run shows in a value column (None when it has none)."""
    name = col.name
    if name == "size":
        return execution.size_bytes
    for prefix, source in (
        ("params.", execution.params),
        ("system.", execution.system),
        ("evaluation.", execution.evaluation),
    ):
        if name.startswith(prefix):
            return (source or {}).get(name.removeprefix(prefix))
    if name.startswith("metrics.best."):
        return ((execution.summary or {}).get(name.removeprefix("metrics.best.")) or {}).get("best")
    if name.startswith("metrics."):
        metric = name.removeprefix("metrics.")
        if not is_epoch_metric(metric):
            return (execution.test_metrics or {}).get(metric)
        return ((execution.summary or {}).get(metric) or {}).get("last")
    return None


def _row(execution: Execution, columns: list[Column]) -> dict[str, Any]:
    return {
        "execution": execution,
        "duration": duration(execution),
        "values": [(cell(execution, col), col) for col in columns],
        "stages": dict(stage_times(execution.elapsed)),
        "hardware": hardware_label(execution.hardware),
        "tags": [t for t in execution.tags or [] if isinstance(t, str)],
    }


def _metric_order(name: str) -> tuple[bool, str, bool]:
    return (name.removeprefix("val_") != "loss", name.removeprefix("val_"), name.startswith("val_"))


def _columns(names: list[str]) -> list[Column]:
    """The columns of these names; a name no column can have (over 255 characters) is left out."""
    found = []
    for name in names:
        try:
            found.append(column(name))
        except QueryError:
            continue
    return found


def default_columns(executions: list[Execution], varying: list[str], sorted_by: Column) -> list[Column]:
    """What a person compares runs by: the params that differ, then the objective metrics (the page's per-epoch
    metrics, losses first, the best val_loss, the test metrics). Status and duration are columns of their own;
    system figures, the evaluation report and size wait in the chooser (and the column sorted by is added)."""
    names = list(varying[:DEFAULT_PARAMS])
    metrics = sorted(
        {name for e in executions for name in (e.summary or {}) if is_epoch_metric(name)}, key=_metric_order
    )
    names += [f"metrics.{name}" for name in metrics]
    if "val_loss" in metrics:
        names.append("metrics.best.val_loss")
    names += [f"metrics.{name}" for name in sorted({n for e in executions for n in (e.test_metrics or {})})]
    columns = _columns(names)
    if sorted_by.kind is not Kind.TAG and sorted_by not in columns and sorted_by.key is not None:
        columns.append(sorted_by)
    unique: list[Column] = []
    for col in columns:
        if col not in unique:
            unique.append(col)
    return unique


def header(col: Column, sort: Sort, links: dict[str, str]) -> dict[str, Any]:
    """A sortable header: its link sorts by the column, the second click reverses."""
    active = sort.column == col
    natural = "desc" if col.higher_is_better else "asc"
    current = "desc" if sort.descending else "asc"
    following = ("asc" if current == "desc" else "desc") if active else natural
    query = urlencode({**links, "sort": col.name, "order": following})
    return {"name": col.name, "label": col.label, "active": active, "order": current, "url": f"?{query}"}


# --- the page -----------------------------------------------------------------------------------


@login_required
@require_GET
def detail(request: HttpRequest, experiment: str) -> HttpResponse:
    found = get_experiment_for_user(request.user, experiment, request.GET.get("project"))
    filters = filters_from(request)
    per_page = _int(request.GET.get("per_page"), PER_PAGE, PER_PAGE_CHOICES)
    sorted_by, sort_problem = parse_sort(request.GET.get("sort"))
    sort = Sort.natural(sorted_by, request.GET.get("order"))
    chosen = select(found, filters, base=Execution.objects.only(*TABLE_FIELDS))

    number = max(1, _int(request.GET.get("page"), 1))
    total: int | None
    pages: int | None
    if chosen.exact:  # the counts journal says how many: pages are numbered to the last
        total = chosen.total()
        last = max(1, -(-total // per_page))
        number, pages = min(number, last), last
        executions = page(chosen.segments(sort), (number - 1) * per_page, per_page) if total else []
        has_next = number < last
    else:  # a query or a tag: counting every match costs a read of every run, so the page does not wait for it
        fetched = page(chosen.segments(sort), (number - 1) * per_page, per_page + 1) if not chosen.error else []
        executions, has_next = fetched[:per_page], len(fetched) > per_page
        total = (number - 1) * per_page + len(executions) if not has_next and (executions or number == 1) else None
        pages = number if total is not None else None
    for execution in executions:
        execution.experiment = found  # one experiment for every row: no join, no query

    known = catalog(found.pk, archived=chosen.archived)
    asked = chosen_columns(request)
    columns = asked if asked is not None else default_columns(executions, known.varying, sort.column)
    rows = [_row(execution, columns) for execution in executions]

    links = {"q": filters.q, "status": filters.status, "tag": filters.tag, "per_page": str(per_page)}
    if filters.archived:
        links["archived"] = "1"
    if asked is not None:
        links["cols"] = ",".join(col.name for col in columns)
    here = {**links, "sort": sort.column.name, "order": "desc" if sort.descending else "asc"}

    def at_page(number: int) -> str:
        return f"?{urlencode({**here, 'page': str(number)})}"

    plain = {name: header(ATTRIBUTES[name], sort, links) for name in ("started", "duration", "epochs")}
    # ?fragment=table: the table alone, which the page reads again when a run it does not show changes (a new run).
    fragment = request.GET.get("fragment") == "table"
    return render(
        request,
        "experiments/_partials/run_table.html" if fragment else "experiments/experiment_detail.html",
        {
            "experiment": found,
            "rows": rows,
            "rows_html": rows_html(rows, found),
            "columns": [header(col, sort, links) for col in columns],
            "column_names": [col.name for col in columns],
            "columns_chosen": asked is not None,
            "plain_columns": plain,
            "choices": _choices(known.keys, [col.name for col in columns]),
            "total": total,
            "count_url": None
            if total is not None
            else f"{reverse('experiments:count', args=[found.name])}?"
            + urlencode({key: value for key, value in links.items() if key != "per_page"}),
            "past_end": not executions and number > 1,
            "page_number": number,
            "pages": pages,
            "previous_url": at_page(number - 1) if number > 1 else None,
            "next_url": at_page(number + 1) if has_next else None,
            "last_url": at_page(pages) if pages is not None and number < pages else None,
            "filters": filters,
            "query_error": chosen.error,
            "query_caret": " " * ((chosen.error_column or 1) - 1) + "^" if chosen.error else "",
            "sort_problem": sort_problem,
            "sort": sort.column.name,
            "order": "desc" if sort.descending else "asc",
            "statuses": STATUSES,
            "per_page": per_page,
            "per_page_choices": PER_PAGE_CHOICES,
            "filtered": filters.any,
            "archived_shown": chosen.archived,
            "can_launch": can_launch(request.user),
            # The table follows the runs' events while a run shown is queued or running (its status cells), and on
            # its first page, where a run launched meanwhile shows up (the table is read again).
            "listen": live.streams_served(request)
            and (number == 1 or any(execution.status in LIVE for execution in executions)),
            "rows_url": f"?{urlencode({**here, 'page': str(number), 'fragment': 'table'})}",
            "explore": {
                "url": reverse("experiments:explore", args=[found.name]),
                "columns": [col.name for col in columns if col.name.startswith("params.")],
                "params": [key for key in known.keys if key.startswith("params.")],
                "varying": known.varying,
                "metrics": [key for key in known.keys if key.startswith(("metrics.", "system.", "evaluation."))],
                "numeric": sorted(known.numeric),
            },
        },
    )


def _choices(keys: list[str], shown: list[str]) -> list[dict[str, Any]]:
    """The column chooser: every column the experiment's runs have, by group, ticked when shown."""
    groups = {"params.": "Params", "metrics.": "Metrics", "system.": "System", "evaluation.": "Evaluation"}
    found: dict[str, list[dict[str, Any]]] = {label: [] for label in groups.values()}
    for key in keys:
        for prefix, label in groups.items():
            if key.startswith(prefix):
                found[label].append({"name": key, "label": key.removeprefix(prefix), "shown": key in shown})
    found["Other"] = [{"name": "size", "label": "size", "shown": "size" in shown}] if "size" in keys else []
    return [{"label": label, "columns": items} for label, items in found.items() if items]
