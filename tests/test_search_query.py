"""The query language against one table of runs: the same rows on SQLite and on PostgreSQL.

Run this file on both databases (``DATABASE_URL=postgres://...``): every expected list below is
what each must give, so the two agree by construction. Numbers compare as numbers, text as text
by code point, dates as dates; a condition on a value a run lacks is false, ``not`` makes it true.
"""

import datetime as dt
from typing import Any

import pytest

from experiments.models import Execution, Experiment
from experiments.search.columns import column
from experiments.search.paging import Sort, after, page
from experiments.search.selection import Filters, select

pytestmark = pytest.mark.django_db

UTC = dt.UTC
OPT = "model.compilation.optimizer"


def at(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# name: (status, params, tags, val_loss history, started, extra fields)
RUNS: dict[str, tuple[Any, ...]] = {
    "r01": ("succeeded", {"training.batch_size": 32, f"{OPT}.type": "adam", f"{OPT}.learning_rate": 0.001,
            "model.network[0].units": 64, "training.shuffle": True}, ["baseline"], [30, 12, 10], "2026-10-30 10:00",
            {"title": "Boston adam", "system": {"peak_memory_mb": 500}, "evaluation": {"r2": 0.8}, "size_bytes": 1000}),
    "r02": ("succeeded", {"training.batch_size": 64, f"{OPT}.type": "adam", f"{OPT}.learning_rate": 0.01,
            "model.network[0].units": 32, "training.shuffle": False}, ["baseline", "broken"], [25, 19],
            "2026-11-01 00:00", {"title": "boston sgd"}),
    "r03": ("failed", {"training.batch_size": 64, f"{OPT}.type": "sgd", f"{OPT}.learning_rate": 0.1,
            "model.network[0].units": 128}, [], [50], "2026-11-01 23:59:59", {"title": "Wide_net 100%"}),
    "r04": ("succeeded", {"training.batch_size": 128, f"{OPT}.type": "rmsprop", f"{OPT}.learning_rate": 0.001},
            ["Mixed Case"], [8, 9], "2026-11-02 00:00", {"title": "deep", "test_loss": 7.5}),
    "r05": ("running", {"training.batch_size": "64", f"{OPT}.type": "adam", "model.network[0].units": 16},
            ["baseline"], [], "2026-11-05 08:00", {"title": "still going"}),
    "r06": ("cancelled", {"training.batch_size": 16, f"{OPT}.type": "SGD", f"{OPT}.learning_rate": 0.0001,
            "model.network[0].units": 8}, [], [100, 20], None, {"title": "never started"}),
    "r07": ("succeeded", {"training.batch_size": 64, f"{OPT}.type": "adam"}, [], [5], "2026-11-03 09:00",
            {"title": "archived one", "archived": True}),
    "r08": ("deleted", {"training.batch_size": 64, f"{OPT}.type": "adam"}, [], [4], "2026-11-03 10:00",
            {"title": "deleted one"}),
    "r09": ("succeeded", {"training.batch_size": 32, f"{OPT}.type": "adam", f"{OPT}.learning_rate": 0.001,
            "model.network[0].units": 64}, ["needs review"], [15, 11], "2026-11-03 12:00",
            {"title": "long one", "duration": 120, "val_accuracy": [0.5, 0.9]}),
}  # fmt: skip


@pytest.fixture
def runs(db):
    boston = Experiment.objects.create(name="boston")
    made = {}
    for name, (status, params, tags, val_loss, started, extra) in RUNS.items():
        extra = dict(extra)
        started_at = at(started) if started else None
        seconds = extra.pop("duration", 30)
        execution = Execution(
            experiment=boston,
            folder_name=name,
            status=status,
            params=params,
            tags=tags,
            started_at=started_at,
            finished_at=started_at + dt.timedelta(seconds=seconds) if started_at and status != "running" else None,
            title=extra.pop("title"),
            archived=extra.pop("archived", False),
            system=extra.pop("system", {}),
            evaluation=extra.pop("evaluation", {}),
            size_bytes=extra.pop("size_bytes", None),
        )
        metrics = {"val_loss": val_loss} if val_loss else {}
        if "val_accuracy" in extra:
            metrics["val_accuracy"] = extra.pop("val_accuracy")
        if "test_loss" in extra:
            metrics["test_loss"] = [extra.pop("test_loss")]
        execution.set_metrics(metrics)
        execution.save()
        made[name] = execution
    other = Experiment.objects.create(name="iris")
    Execution.objects.create(
        experiment=other, folder_name="r10", status="succeeded", params={"training.batch_size": 64}
    )
    return made


def found(query, experiment="boston", archived=False):
    """The runs a query selects, asked both ways: run by run (a table page) and by index ranges (a chart)."""
    answers = []
    for probe in (True, False):
        chosen = select(Experiment.objects.get(name=experiment), Filters(q=query, archived=archived), probe=probe)
        assert not chosen.error, chosen.error
        answers.append(sorted(str(name) for name in chosen.runs.values_list("folder_name", flat=True)))
    assert answers[0] == answers[1], answers
    return answers[0]


CASES = [
    # params: numbers as numbers, text as text, a value a run lacks
    ("params.training.batch_size = 64", ["r02", "r03"]),
    ('params.training.batch_size = "64"', ["r05"]),
    ("params.training.batch_size != 64", ["r01", "r04", "r06", "r09"]),
    ("not params.training.batch_size = 64", ["r01", "r04", "r05", "r06", "r09"]),
    ("params.training.batch_size >= 64", ["r02", "r03", "r04"]),
    ("params.training.batch_size < 32", ["r06"]),
    ("params.training.batch_size <= 32", ["r01", "r06", "r09"]),
    ("params.training.batch_size > 32", ["r02", "r03", "r04"]),
    ("params.`training.batch_size` = 32", ["r01", "r09"]),
    (f'params.{OPT}.type in ("adam", "sgd")', ["r01", "r02", "r03", "r05", "r09"]),
    (f'params.{OPT}.type not in ("adam")', ["r03", "r04", "r06"]),
    (f'params.{OPT}.type ilike "sgd"', ["r03", "r06"]),
    (f'params.{OPT}.type like "S%"', ["r06"]),
    (f'params.{OPT}.type > "rmsprop"', ["r03"]),
    (f'params.{OPT}.type < "adam"', ["r06"]),
    ("params.model.network[0].units >= 32 and not tags.broken", ["r01", "r03", "r09"]),
    ("params.model.network[0].units", ["r01", "r02", "r03", "r05", "r06", "r09"]),
    ("not params.model.network[0].units", ["r04"]),
    ("params.training.shuffle = true", ["r01"]),
    ("params.training.shuffle = false", ["r02"]),
    ("params.training.shuffle != true", ["r02"]),
    ("params.nothing.like.this = 1", []),
    # tags
    ("tags.baseline", ["r01", "r02", "r05"]),
    ("not tags.baseline", ["r03", "r04", "r06", "r09"]),
    ("tags.`Mixed Case`", ["r04"]),
    ("tags.`mixed case`", []),
    ("tags.`needs review`", ["r09"]),
    # attributes
    ('status = "succeeded"', ["r01", "r02", "r04", "r09"]),
    ('status in ("failed", "cancelled")', ["r03", "r06"]),
    ('status != "succeeded"', ["r03", "r05", "r06"]),
    ('attributes.status = "running"', ["r05"]),
    ('name = "r03"', ["r03"]),
    ('run_name in ("r01", "r09")', ["r01", "r09"]),
    ("epochs >= 2", ["r01", "r02", "r04", "r06", "r09"]),
    ("duration > 60", ["r09"]),
    ("duration <= 30", ["r01", "r02", "r03", "r04"]),
    ('title like "Wide\\_net%"', ["r03"]),
    ('title like "Wide_net%"', ["r03"]),
    ('title like "%100\\%"', ["r03"]),
    ('title like "boston%"', ["r02"]),
    ('title ilike "boston%"', ["r01", "r02"]),
    ('title not like "%o%"', ["r03", "r04", "r06"]),
    ('title > "deep"', ["r05", "r06", "r09"]),
    ("title = \"x' OR '1'='1\"", []),
    ('title = "x"; DROP TABLE experiments_execution; --"', None),  # does not parse: nothing reaches SQL
    # metrics: last, best, test; system, evaluation, size
    ("metrics.val_loss < 20", ["r01", "r02", "r04", "r09"]),
    ("metrics.val_loss <= 20", ["r01", "r02", "r04", "r06", "r09"]),
    ("metrics.val_loss < 20 or metrics.val_loss > 40", ["r01", "r02", "r03", "r04", "r09"]),
    ("metrics.best.val_loss <= 9.5", ["r04"]),
    ("metrics.test_loss < 8", ["r04"]),
    ("metrics.val_accuracy > 0.8", ["r09"]),
    ("metrics.val_loss", ["r01", "r02", "r03", "r04", "r06", "r09"]),
    ("system.peak_memory_mb > 400", ["r01"]),
    ("evaluation.r2 >= 0.8", ["r01"]),
    ("size > 500", ["r01"]),
    # dates: a date alone is that whole day, in the server's time zone (UTC)
    ('started > "2026-11-01"', ["r04", "r05", "r09"]),
    ('started >= "2026-11-01"', ["r02", "r03", "r04", "r05", "r09"]),
    ('started = "2026-11-01"', ["r02", "r03"]),
    ('started < "2026-11-01"', ["r01"]),
    ('started <= "2026-11-01"', ["r01", "r02", "r03"]),
    ('started != "2026-11-01"', ["r01", "r04", "r05", "r09"]),
    ('started > "2026-11-01 12:00"', ["r03", "r04", "r05", "r09"]),
    ('started > "2026-11-01T12:00:00+00:00"', ["r03", "r04", "r05", "r09"]),
    ('not started > "2026-11-01"', ["r01", "r02", "r03", "r06"]),
    ('start_time < "2026-11-01"', ["r01"]),
    ('finished > "2026-11-03 12:01"', ["r09"]),
    ('finished >= "2026-11-03"', ["r09"]),
    # combinations and precedence
    (f'(tags.baseline or status = "failed") and params.{OPT}.learning_rate < 0.005', ["r01"]),
    (f'tags.baseline or status = "failed" and params.{OPT}.learning_rate < 0.005', ["r01", "r02", "r05"]),
    ("not (tags.baseline or tags.broken)", ["r03", "r04", "r06", "r09"]),
    # archived runs only when the query (or the filter) asks; deleted ones never
    ("archived = true", ["r07"]),
    ("archived", ["r07"]),
    ("archived = false and params.training.batch_size = 64", ["r02", "r03"]),
    ("archived or params.training.batch_size = 64", ["r02", "r03", "r07"]),
]


@pytest.mark.parametrize("query, expected", CASES, ids=[case[0] for case in CASES])
def test_a_query_selects_these_runs(runs, query, expected):
    if expected is None:
        chosen = select(Experiment.objects.get(name="boston"), Filters(q=query))
        assert chosen.error
        assert list(chosen.runs) == []
        return
    assert found(query) == sorted(expected)


def test_without_a_query_the_table_has_every_run_neither_archived_nor_deleted(runs):
    assert found("") == ["r01", "r02", "r03", "r04", "r05", "r06", "r09"]
    assert found("", archived=True) == ["r01", "r02", "r03", "r04", "r05", "r06", "r07", "r09"]
    assert found("params.training.batch_size = 64", archived=True) == ["r02", "r03", "r07"]


def test_every_experiment_when_none_is_named(runs):
    chosen = select(None, Filters(q="params.training.batch_size = 64"))
    assert sorted(str(name) for name in chosen.runs.values_list("folder_name", flat=True)) == ["r02", "r03", "r10"]


@pytest.mark.parametrize(
    "query, column, words",
    [
        ('staus = "succeeded"', 1, "unknown column 'staus'; did you mean 'status'?"),
        ('metrics.val_loss < "abc"', 20, "metrics.val_loss is a number; expected a number after '<'"),
        ('status = "sucess"', 10, "no status 'sucess'; did you mean 'succeeded'?"),
        ('started > "yesterday"', 11, "started is a date"),
        ("tags.baseline = true", 1, "tags.baseline is a tag"),
        ('metrics.val_loss like "1%"', 1, "like and ilike compare text"),
        ("status", 1, 'status needs a comparison, e.g. status = "..."'),
        ("params.training.shuffle < true", 27, "true and false compare with = or != only"),
        ("params = 1", 1, "'params' needs a name after it"),
        ("metric.val_loss < 3", 1, "did you mean 'metrics.val_loss'?"),
        ("epochs > 'x'", 10, "epochs is a number"),
        ("title = 3", 9, "title is text; expected a quoted value"),
        ("duration > '5'", 12, "duration is a duration in seconds"),
        ("archived = 1", 12, "archived is true or false"),
    ],
)
def test_a_query_that_cannot_run_says_where_and_why(runs, query, column, words):
    chosen = select(Experiment.objects.get(name="boston"), Filters(q=query))
    assert chosen.error.startswith(f"col {column}: "), chosen.error
    assert words in chosen.error, chosen.error
    assert list(chosen.runs) == []
    assert chosen.total() == 0


ORDERS = [
    ("metrics.val_loss", "asc", ["r04", "r01", "r09", "r02", "r06", "r03", "r05"]),
    ("metrics.val_loss", "desc", ["r03", "r06", "r02", "r09", "r01", "r04", "r05"]),
    ("params.training.batch_size", "asc", ["r06", "r01", "r09", "r02", "r03", "r04", "r05"]),
    ("params.training.batch_size", "desc", ["r04", "r03", "r02", "r09", "r01", "r06", "r05"]),
    (f"params.{OPT}.type", "asc", ["r06", "r01", "r02", "r05", "r09", "r04", "r03"]),
    (f"params.{OPT}.learning_rate", "asc", ["r06", "r01", "r04", "r09", "r02", "r03", "r05"]),
    ("started", "desc", ["r05", "r09", "r04", "r03", "r02", "r01", "r06"]),
    ("started", "asc", ["r01", "r02", "r03", "r04", "r09", "r05", "r06"]),
    ("title", "asc", ["r01", "r03", "r02", "r04", "r09", "r06", "r05"]),
    ("duration", "desc", ["r09", "r04", "r03", "r02", "r01", "r06", "r05"]),
    ("size", "desc", ["r01", "r09", "r06", "r05", "r04", "r03", "r02"]),
    ("metrics.val_accuracy", None, ["r09", "r06", "r05", "r04", "r03", "r02", "r01"]),
]


@pytest.mark.parametrize("name, order, expected", ORDERS, ids=[f"{o[0]} {o[1]}" for o in ORDERS])
def test_any_column_sorts_the_same_way_on_both_databases(runs, name, order, expected):
    """Values in order, ties by id, runs without the value last (by id, newest first when descending)."""
    chosen = select(Experiment.objects.get(name="boston"), Filters())
    sort = Sort.natural(column(name), order)
    assert [e.folder_name for e in page(chosen.segments(sort), 0, 100)] == expected
    # Any window of it, by offset from either end, and by cursor, a row at a time.
    for offset in range(len(expected)):
        assert [e.folder_name for e in page(chosen.segments(sort), offset, 2)] == expected[offset : offset + 2]
    seen, cursor = [], None
    while True:
        rows, cursor = after(chosen.segments(sort), cursor, 2)
        seen += [e.folder_name for e in rows]
        if cursor is None:
            break
    assert seen == expected


def test_a_list_of_values_is_one_probe_whatever_its_length(runs):
    """Each value was a subquery of its own: 400 of them in a 1,000-character query took seconds to build."""
    numbers = "params.training.batch_size in (" + ", ".join(map(str, range(100))) + ")"
    chosen = select(Experiment.objects.get(name="boston"), Filters(q=numbers))
    assert str(chosen.runs.query).upper().count("EXISTS") == 1
    assert found(numbers) == ["r01", "r02", "r03", "r06", "r09"]
    assert found('params.training.batch_size in (64, "64", true)') == ["r02", "r03", "r05"]
    assert found('params.training.batch_size not in (64, "64")') == ["r01", "r04", "r06", "r09"]
