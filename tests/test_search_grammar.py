"""The query language's grammar: every operator, precedence, quoting, bounds, and errors that say where."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from experiments.search.grammar import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_VALUES,
    And,
    Compare,
    Flag,
    Like,
    Member,
    Not,
    Or,
    QueryError,
    conditions,
    parse,
)
from tests.bounds import FUZZ, assert_quick


def shape(node):
    """A compact, readable form of a tree: ('and', ('<', 'a', 1), ('flag', 'b')), ..."""
    if isinstance(node, Compare):
        return (node.op, node.name.text, node.value.value)
    if isinstance(node, Member):
        return ("not in" if node.negated else "in", node.name.text, tuple(v.value for v in node.values))
    if isinstance(node, Like):
        word = "ilike" if node.insensitive else "like"
        return (f"not {word}" if node.negated else word, node.name.text, node.pattern.value)
    if isinstance(node, Flag):
        return ("flag", node.name.text)
    if isinstance(node, Not):
        return ("not", shape(node.inner))
    if isinstance(node, And):
        return ("and", *map(shape, node.items))
    assert isinstance(node, Or)
    return ("or", *map(shape, node.items))


def compared(text) -> Compare:
    """The one comparison ``text`` is."""
    node = parse(text)
    assert isinstance(node, Compare), shape(node)
    return node


def error(text):
    with pytest.raises(QueryError) as caught:
        parse(text)
    return caught.value


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_every_comparison_operator(op):
    assert shape(parse(f"metrics.val_loss {op} 20")) == (op, "metrics.val_loss", 20)


def test_double_equals_and_sql_not_equal_are_the_same_operators():
    assert shape(parse("a == 1")) == ("=", "a", 1)
    assert shape(parse("a <> 1")) == ("!=", "a", 1)


def test_the_issues_examples_parse():
    assert shape(parse("params.training.batch_size = 64 and metrics.val_loss < 20")) == (
        "and",
        ("=", "params.training.batch_size", 64),
        ("<", "metrics.val_loss", 20),
    )
    assert shape(parse('params.model.compilation.optimizer.type in ("adam", "sgd")')) == (
        "in",
        "params.model.compilation.optimizer.type",
        ("adam", "sgd"),
    )
    assert shape(parse("tags.baseline")) == ("flag", "tags.baseline")
    assert shape(parse('status = "succeeded"')) == ("=", "status", "succeeded")
    assert shape(parse("metrics.best.val_loss <= 9.5")) == ("<=", "metrics.best.val_loss", 9.5)
    assert shape(parse('started > "2026-11-01"')) == (">", "started", "2026-11-01")
    assert shape(parse("params.model.network[0].units >= 32 and not tags.broken")) == (
        "and",
        (">=", "params.model.network[0].units", 32),
        ("not", ("flag", "tags.broken")),
    )


def test_in_not_in_like_ilike_and_their_negations():
    assert shape(parse("a in (1, 2.5, 'x', true)")) == ("in", "a", (1, 2.5, "x", True))
    assert shape(parse("a not in (1)")) == ("not in", "a", (1,))
    assert shape(parse('title like "%boston%"')) == ("like", "title", "%boston%")
    assert shape(parse('title ilike "%Boston%"')) == ("ilike", "title", "%Boston%")
    assert shape(parse('title not like "x_"')) == ("not like", "title", "x_")
    assert shape(parse('title not ilike "x"')) == ("not ilike", "title", "x")


def test_not_binds_tighter_than_and_which_binds_tighter_than_or():
    assert shape(parse("a or b and c")) == ("or", ("flag", "a"), ("and", ("flag", "b"), ("flag", "c")))
    assert shape(parse("a and b or c")) == ("or", ("and", ("flag", "a"), ("flag", "b")), ("flag", "c"))
    assert shape(parse("not a and b")) == ("and", ("not", ("flag", "a")), ("flag", "b"))
    assert shape(parse("not (a and b)")) == ("not", ("and", ("flag", "a"), ("flag", "b")))
    assert shape(parse("(a or b) and c")) == ("and", ("or", ("flag", "a"), ("flag", "b")), ("flag", "c"))
    assert shape(parse("not not a")) == ("not", ("not", ("flag", "a")))


def test_keywords_are_case_insensitive_and_names_may_start_with_them():
    assert shape(parse("a = 1 AND NOT b Or c")) == ("or", ("and", ("=", "a", 1), ("not", ("flag", "b"))), ("flag", "c"))
    assert shape(parse("x IN (1) and y ILIKE 'a' and z = TRUE")) == (
        "and",
        ("in", "x", (1,)),
        ("ilike", "y", "a"),
        ("=", "z", True),
    )
    assert shape(parse("notes.x and android or order")) == (
        "or",
        ("and", ("flag", "notes.x"), ("flag", "android")),
        ("flag", "order"),
    )


def test_numbers_strings_and_booleans():
    assert compared("a = -3").value.value == -3
    assert compared("a = 1e-3").value.value == 0.001
    assert compared("a = .5").value.value == 0.5
    assert compared("a = 64").value.value == 64
    assert isinstance(compared("a = 64").value.value, int)
    assert compared("a = false").value.value is False
    assert compared("a = '64'").value.value == "64"


def test_quotes_and_escapes():
    assert compared(r'a = "say \"hi\""').value.value == 'say "hi"'
    assert compared(r"a = 'it\'s'").value.value == "it's"
    assert compared(r'a = "back\\slash"').value.value == "back\\slash"
    assert compared(r'a = "tab\tnew\nline"').value.value == "tab\tnew\nline"
    assert compared('a = "it\'s"').value.value == "it's"
    assert compared("a = 'say \"hi\"'").value.value == 'say "hi"'
    # SQL's own characters are only text: the value reaches the database as a parameter.
    assert (
        compared("""title = "x'; DROP TABLE experiments_execution; --" """).value.value
        == "x'; DROP TABLE experiments_execution; --"
    )


def test_names_with_indices_and_backticks():
    assert compared("params.model.network[12].units = 1").name.text == "params.model.network[12].units"
    assert (
        compared("params.tracking.params.`learning-rate x` = 1").name.text == "params.tracking.params.learning-rate x"
    )
    assert compared("params.`a.b` = 1").name.text == "params.a.b"
    assert compared("metrics.val-acc > 0.9").name.text == "metrics.val-acc"


def test_positions_are_columns_from_one():
    node = parse("a = 1 and  metrics.loss < 'x'")
    assert isinstance(node, And)
    second = node.items[1]
    assert isinstance(second, Compare)
    assert second.name.column == 12
    assert second.value.column == 27


def test_an_empty_query_is_no_condition():
    assert parse("") is None
    assert parse("   ") is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("params.training.batch_size = 64 and metrics.val_loss < ", "col 55: expected a value after '<'"),
        ("metrics.val_loss <", "col 19: expected a value after '<'"),
        ("a = ", "col 4: expected a value after '='"),
        ("(a = 1", "col 7: expected ')' after '1'"),
        ("a = 1)", "col 6: expected the end of the query after '1', got ')'"),
        ("a = 1 b = 2", "col 7: expected 'and', 'or' or the end of the query after '1', got 'b'"),
        ("a in (1 2)", "col 9: expected ',' or ')' after '1', got '2'"),
        ("a in (", "col 7: expected a value after '('"),
        ("= 3", "col 1: expected a column name or '(', got '='"),
        ("a and", "col 6: expected a column name or '(' after 'and'"),
        ("not", "col 4: expected a column name or '(' after 'not'"),
        ('x = "abc', 'col 5: this string has no closing "'),
        ("a like 3", "col 8: expected a quoted pattern (e.g. \"%adam%\") after 'like', got '3'"),
    ],
)
def test_errors_say_the_column_and_what_was_expected(text, message):
    assert str(error(text)) == message


def test_an_unquoted_text_value_is_told_to_use_quotes():
    found = error("status = succeeded")
    assert found.column == 10
    assert 'text goes in quotes, e.g. "succeeded"' in found.message


def test_an_unknown_character_is_named():
    found = error("a @ 3")
    assert found.column == 3
    assert "got '@'" in found.message
    assert "an operator" in found.message


def test_the_query_length_is_bounded():
    assert parse('a = "' + "x" * (MAX_LENGTH - 6) + '"') is not None
    found = error('a = "' + "x" * MAX_LENGTH + '"')
    assert f"at most {MAX_LENGTH:,}" in found.message
    assert found.column == MAX_LENGTH + 1


def test_the_nesting_is_bounded_without_exhausting_the_stack():
    deep = "not " * MAX_DEPTH + "a"
    assert parse(deep) is not None
    found = error("not " * (MAX_DEPTH + 1) + "a")
    assert f"deeper than {MAX_DEPTH}" in found.message
    found = error("not " * 240 + "a")  # within the length bound, far past the depth one
    assert f"deeper than {MAX_DEPTH}" in found.message
    nested = "(" * 100 + "a" + ")" * 100  # parentheses alone add no level
    assert shape(parse(nested)) == ("flag", "a")


def test_the_number_of_conditions_is_bounded():
    assert len(conditions(parse(" or ".join(f"a{i}" for i in range(MAX_CONDITIONS))))) == MAX_CONDITIONS
    found = error(" or ".join(f"a{i}" for i in range(MAX_CONDITIONS + 1)))
    assert f"at most {MAX_CONDITIONS} conditions" in found.message


def test_a_nul_character_is_refused():
    assert error("a = 'x\x00'").column == 7


# --- worst inputs and fuzzing (tests/bounds.py) ------------------------------------------------------

WORST = {
    "an unterminated run of escaped quotes": 'title = "' + '\\"' * MAX_LENGTH,
    "an unterminated single-quoted run": "title = '" + "\\'" * MAX_LENGTH,
    "a long name before an unterminated string": "a" * 900 + ' = "x',
    "open parentheses": "(" * MAX_LENGTH,
    "parentheses around a name": "(" * 499 + "a" + ")" * 500,
    "nots": "not " * MAX_LENGTH,
    "ands": "a and " * MAX_LENGTH,
    "a dotted name": "a" + ".a" * MAX_LENGTH,
    "an indexed name": "a" + "[0]" * MAX_LENGTH,
    "an unterminated backtick": "params.`" + "a" * MAX_LENGTH,
    "backticks": "a" + ".`a`" * MAX_LENGTH,
    "a list past its bound": "a in (" + "1," * MAX_LENGTH,
    "strings in a list": "a in (" + '"x",' * MAX_LENGTH,
    "a huge number": "a = " + "9" * MAX_LENGTH,
    "a huge exponent": "a = 1e" + "9" * MAX_LENGTH,
    "quotes": '"' * MAX_LENGTH,
    "backslashes": "\\" * MAX_LENGTH,
    "words": "a " * MAX_LENGTH,
}
BENIGN = " and ".join(["params.training.batch_size >= 32", 'status in ("succeeded", "failed")', "not tags.broken"] * 9)


def answer(text):
    try:
        return parse(text[:MAX_LENGTH])
    except QueryError as exc:
        return exc


def test_the_worst_queries_of_the_longest_length_are_answered_as_fast_as_an_ordinary_one():
    assert_quick(answer, WORST, BENIGN[:MAX_LENGTH])


TOKENS = st.sampled_from(
    ["status", "params.a.b", "metrics.val_loss", "tags.x", "a[0]", "params.`x y`", "`", "=", "!=", "<", ">=", "<>",
     "in", "not in", "like", "ilike", "not", "and", "or", "(", ")", ",", "1", "-2.5e3", "1e309", ".5", "true",
     "false", '"text"', "'it\\'s'", '"\\\\"', '"', "'", "\\", "@", "\x00", " "]
)  # fmt: skip
QUERIES = st.lists(TOKENS, max_size=60).map(" ".join) | st.lists(TOKENS, max_size=60).map("".join) | st.text()


@FUZZ
@given(QUERIES)
def test_any_text_parses_or_says_where_it_does_not(text):
    found = answer(text)
    if isinstance(found, QueryError):
        assert 1 <= found.column <= len(text) + 1
        assert found.message


def test_a_list_past_its_bound_and_a_number_past_a_float_are_errors_at_the_value():
    """Both were raised inside lark's transformer, which wrapped them in its own VisitError: a 500."""
    found = error("a in (" + "1, " * MAX_VALUES + "2)")
    assert found.message == "at most 100 values in one in (...)"
    assert found.column == 7 + 3 * MAX_VALUES
    found = error("a = 1 and b > 1e309")
    assert found.message == "1e309 is too large; numbers go up to about 1.8e308"
    assert found.column == 15
    assert shape(parse("a = 99999999999999999999")) == ("=", "a", 1e20)  # past 64 bits: a float, as stored
