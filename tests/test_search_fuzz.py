"""The query language fuzzed through every page that takes a query: an answer, or a 400 that says why; never a 500.

Queries are built from the grammar's own pieces (column names, operators, values of every kind,
``in (...)`` lists, ``like`` patterns, ``and``/``or``/``not``, parentheses) and from random text, and
sent to the experiment page, ``count.json``, ``explore.json`` and ``GET /api/executions`` against
the database, on SQLite and on PostgreSQL (``scripts/test`` runs this file on both). Three queries
once answered 500 everywhere: an ``in`` of 101 values, ``duration > 1e309`` and ``like '\\\\'``.
"""

import html
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.search.grammar import MAX_LENGTH, MAX_VALUES
from tests.bounds import FUZZ
from tests.test_search_query import OPT, runs  # noqa: F401  (nine runs with params, tags, metrics, dates)

pytestmark = pytest.mark.django_db

NAMES = st.sampled_from(
    ["status", "started", "finished", "duration", "title", "name", "epochs", "archived", "size",
     "attributes.status", "params.training.batch_size", f"params.{OPT}.type", f"params.{OPT}.learning_rate",
     "params.model.network[0].units", "params.`training.batch_size`", "params.nothing", "metrics.val_loss",
     "metrics.best.val_loss", "metrics.test_loss", "tags.baseline", "tags.`needs review`", "system.peak_memory_mb",
     "evaluation.r2", "nosuch", "params"]
)  # fmt: skip
OPERATORS = st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "==", "<>"])
NUMBERS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e309", "-1e309", "1e-400", "9" * 400, "1e12", "1e20", "-5", ".5", "0", "99999999999999999999"]),
)
STRINGS = st.one_of(
    st.text(max_size=12).map(lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(
        [
            '"2026-11-01"',
            '"2026-11-01 12:00"',
            '"9999-12-31"',
            '"0001-01-01"',
            '"succeeded"',
            "'\\\\'",
            '"%\\\\"',
            '"a\\\\\\\\"',
            "''",
        ]
    ),
)
VALUES = st.one_of(NUMBERS, STRINGS, st.sampled_from(["true", "false", "TRUE"]))
LIKES = st.sampled_from(["like", "ilike", "not like", "not ilike", "LIKE"])


def member(name, values, negated):
    return f"{name} {'not in' if negated else 'in'} ({', '.join(values)})"


CONDITIONS = st.one_of(
    st.builds(lambda n, o, v: f"{n} {o} {v}", NAMES, OPERATORS, VALUES),
    st.builds(member, NAMES, st.lists(VALUES, min_size=1, max_size=MAX_VALUES + 3), st.booleans()),
    st.builds(lambda n, o, v: f"{n} {o} {v}", NAMES, LIKES, STRINGS),
    NAMES,
)
QUERIES = st.recursive(
    CONDITIONS,
    lambda inner: st.one_of(
        inner.map(lambda q: f"not {q}"),
        inner.map(lambda q: f"({q})"),
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"{a} OR {b}", inner, inner),
    ),
    max_leaves=6,
)
# Valid queries, the same cut short or with a stray character in them, and random text.
BROKEN = st.builds(lambda q, cut, junk: q[:cut] + junk + q[cut:], QUERIES, st.integers(0, 80), st.text(max_size=3))
ANY_QUERY = st.one_of(QUERIES, BROKEN, st.text(max_size=40)).filter(lambda q: len(q) <= MAX_LENGTH)


def ask_everywhere(client, query):
    """The query sent to the four places that take one; the error count.json gives, or None."""
    counted = client.get("/experiments/boston/count.json", {"q": query})
    assert counted.status_code in (200, 400), counted.content
    error = counted.json()["error"] if counted.status_code == 400 else None
    explored = client.get("/experiments/boston/explore.json", {"q": query})
    assert explored.status_code == counted.status_code, explored.content
    found = client.get("/api/executions", {"experiment": "boston", "q": query})
    assert found.status_code == counted.status_code, found.content
    page = client.get("/experiments/boston/", {"q": query})
    assert page.status_code == 200
    if error is not None:
        assert found.json()["detail"] == error
        assert html.escape(error) in page.content.decode()
    return error


@pytest.mark.parametrize(
    "query, said",
    [
        (f"size in ({', '.join(['1'] * (MAX_VALUES + 1))})", f"at most {MAX_VALUES} values in one in (...)"),
        ("duration > 1e309", "1e309 is too large"),
        ("duration > 1e20", "duration is at most"),
        ("params.training.batch_size = " + "9" * 400, "is too large"),
        ('started = "9999-12-31"', "started is a date from the year 2 to 9998"),
        ("title like '\\\\'", "a pattern cannot end with an escaping \\"),
        (f'params.{OPT}.type ilike "50\\\\"', "a pattern cannot end with an escaping \\"),
    ],
)
def test_queries_that_were_500s_are_400s_that_say_why(owner_client, runs, query, said):  # noqa: F811
    assert said in ask_everywhere(owner_client, query)


def test_a_pattern_ending_in_an_escaped_backslash_still_runs(owner_client, runs):  # noqa: F811
    assert ask_everywhere(owner_client, 'title like "%\\\\\\\\"') is None


@settings(FUZZ, max_examples=40, deadline=timedelta(seconds=5))  # four requests per query, on a shared machine
@given(ANY_QUERY)
def test_any_query_is_answered_or_refused_with_a_reason_on_every_page(owner_client, runs, query):  # noqa: F811
    ask_everywhere(owner_client, query)
