"""The query language: a lark grammar, parsed into a small tree of conditions.

    parse('params.training.batch_size = 64 and metrics.val_loss < 20')
    parse('params.model.compilation.optimizer.type in ("adam", "sgd") and not tags.broken')

Names follow MLflow's search syntax where it has one: ``params.``, ``metrics.``, ``tags.``,
``attributes.`` (or a bare attribute: ``status``, ``started``...), and Gymnos' own ``system.`` and
``evaluation.``. A name's parts are joined by dots and list indices (``model.network[0].units``);
a part with other characters goes in backticks (``params.tracking.params.`learning-rate```).
Conditions combine with ``and``, ``or``, ``not`` and parentheses (``not`` binds tightest, then
``and``, then ``or``); comparisons are ``= != < <= > >=``, ``in (...)``, ``not in (...)``, ``like``,
``ilike`` (``not like``...); values are numbers, quoted strings (``"..."`` or ``'...'``, with
backslash escapes), ``true`` and ``false``. A bare name is a condition of its own: ``tags.baseline``
(the run has that tag), ``archived``, or ``params.x`` (the run has that param).

What the names mean is ``experiments.search.translate``'s: this module only knows the shape. A
query that does not parse raises ``QueryError`` saying where (its column, from 1) and what was
expected there: ``col 27: expected a value after '<'``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

MAX_LENGTH = 1000  # characters in one query
MAX_DEPTH = 16  # nested parentheses and nots
MAX_CONDITIONS = 32  # comparisons and bare names in one query
MAX_VALUES = 100  # values in one in (...)

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negation
         | atom
?atom: NAME OP value                          -> compare
     | NAME IN "(" value ("," value)* ")"      -> member
     | NAME LIKE STRING                        -> like
     | NAME                                    -> flag
     | "(" or_expr ")"
?value: NUMBER -> number
      | STRING -> string
      | TRUE -> true
      | FALSE -> false

_OR.3: /or\b/i
_AND.3: /and\b/i
_NOT.3: /not\b/i
IN.3: /(not\s+)?in\b/i
LIKE.3: /(not\s+)?i?like\b/i
TRUE.3: /true\b/i
FALSE.3: /false\b/i
NAME: /[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z0-9_][A-Za-z0-9_\-]*|`[^`]*`)|\[[0-9]+\])*/
OP: /!=|<>|<=|>=|==|=|<|>/
NUMBER: /[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?/
STRING: /"([^"\\]|\\.)*"/ | /'([^'\\]|\\.)*'/

%ignore /\s+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False)


class QueryError(ValueError):
    """A query that cannot be run: ``column`` (from 1) is where, ``message`` what was expected there."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(f"col {column}: {message}")
        self.column = column
        self.message = message


# --- the tree -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    """A column as written: ``params.model.network[0].units`` (backticks removed), where it starts."""

    text: str
    column: int


@dataclass(frozen=True)
class Value:
    value: str | float | int | bool
    column: int
    text: str  # as written, for messages


@dataclass(frozen=True)
class Compare:
    name: Name
    op: str  # = != < <= > >=
    value: Value


@dataclass(frozen=True)
class Member:
    name: Name
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    name: Name
    pattern: Value
    insensitive: bool
    negated: bool


@dataclass(frozen=True)
class Flag:
    name: Name


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Compare | Member | Like | Flag | Not | And | Or
CONDITIONS = (Compare, Member, Like, Flag)

# --- parsing ------------------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            following = body[index + 1]
            out.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _name(token: Token) -> Name:
    return Name(re.sub(r"`([^`]*)`", r"\1", str(token)), token.column or 1)


def _number(token: Token) -> float | int:
    """An integer as written when a database stores it (64 bits), else a float; ``QueryError`` past a float's range."""
    text = str(token)
    try:
        number: float | int = int(text)
    except ValueError:
        number = float(text)
    if isinstance(number, int) and -(2**63) <= number < 2**63:
        return number
    try:
        number = float(number)
    except OverflowError:  # an integer past 1.8e308
        number = math.inf
    if not math.isfinite(number):
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise QueryError(token.column or 1, f"{shown} is too large; numbers go up to about 1.8e308")
    return number


@v_args(inline=True)
class _Build(Transformer[Token, Node]):
    def number(self, token: Token) -> Value:
        return Value(_number(token), token.column or 1, str(token))

    def string(self, token: Token) -> Value:
        return Value(_unquote(str(token)), token.column or 1, str(token))

    def true(self, token: Token) -> Value:
        return Value(True, token.column or 1, str(token))

    def false(self, token: Token) -> Value:
        return Value(False, token.column or 1, str(token))

    def compare(self, name: Token, op: Token, value: Value) -> Compare:
        operator = {"==": "=", "<>": "!="}.get(str(op), str(op))
        return Compare(_name(name), operator, value)

    def member(self, name: Token, keyword: Token, *values: Value) -> Member:
        return Member(_name(name), tuple(values), negated=str(keyword).lower().startswith("not"))

    def like(self, name: Token, keyword: Token, pattern: Token) -> Like:
        words = str(keyword).lower().split()
        value = Value(_unquote(str(pattern)), pattern.column or 1, str(pattern))
        return Like(_name(name), value, insensitive=words[-1] == "ilike", negated=words[0] == "not")

    def flag(self, name: Token) -> Flag:
        return Flag(_name(name))

    def negation(self, inner: Node) -> Not:
        return Not(inner)

    def and_expr(self, *items: Node) -> And:
        return And(tuple(items))

    def or_expr(self, *items: Node) -> Or:
        return Or(tuple(items))


# What the parser expected, in words, in this order.
_EXPECTED = (
    ({"NUMBER", "STRING", "TRUE", "FALSE"}, "a value"),
    ({"NAME"}, "a column name"),
    ({"OP", "IN", "LIKE"}, "an operator (= != < <= > >= in like ilike)"),
    ({"_AND"}, "'and'"),
    ({"_OR"}, "'or'"),
    ({"COMMA"}, "','"),
    ({"RPAR"}, "')'"),
    ({"LPAR"}, "'('"),
    ({"$END"}, "the end of the query"),
)


def _expected(names: set[str], text: str = "", column: int = 0) -> str:
    if names == {"STRING"}:
        return 'a quoted pattern (e.g. "%adam%")'
    if text and text[: column - 1].count("(") <= text[: column - 1].count(")"):
        names = names - {"RPAR"}  # LALR may offer a ')' with nothing open
    words = [text for group, text in _EXPECTED if names & group]
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _accepted(exc: UnexpectedToken | UnexpectedEOF) -> set[str]:
    """The tokens the parser would take here: exactly (LALR's ``expected`` may name more), when lark can say."""
    try:
        accepts = getattr(exc, "accepts", None) or exc.interactive_parser.accepts()
    except Exception:  # noqa: BLE001 - only the message's precision depends on it
        accepts = None
    return set(accepts or exc.expected)


def _after(text: str, column: int) -> str:
    """`` after '<'``: the token before ``column``, for the message ('' at the start of the query).

    Read with the query's own lexer, left to right: one pass (a regex searched back from the end
    would try again from every character).
    """
    last = ""
    try:
        for token in _PARSER.lex(text[: column - 1]):
            last = str(token)
    except UnexpectedInput:  # the text before the error lexes; this is only in case
        pass
    if not last:
        return ""
    shown = last if len(last) <= 40 else last[:37] + "..."
    return f" after '{shown}'"


def _error(text: str, exc: UnexpectedInput) -> QueryError:
    if isinstance(exc, UnexpectedCharacters):
        column = exc.column
        char = text[column - 1] if 0 < column <= len(text) else ""
        expected = _expected(set(exc.allowed or ()), text, column)
        if char in "\"'":
            return QueryError(column, f"this string has no closing {char}")
        if expected == "a value" and char:
            return QueryError(column, f'expected a value{_after(text, column)}; text goes in quotes, e.g. "succeeded"')
        return QueryError(column, f"expected {expected}{_after(text, column)}, got '{char}'")
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        column = len(text.rstrip()) + 1 if token.type == "$END" else (token.column or 1)
        expected = _expected(_accepted(exc), text, column)
        if token.type == "$END":
            return QueryError(column, f"expected {expected}{_after(text, column)}")
        hint = '; text goes in quotes, e.g. "succeeded"' if expected == "a value" and token.type == "NAME" else ""
        return QueryError(column, f"expected {expected}{_after(text, column)}, got '{token}'{hint}")
    if isinstance(exc, UnexpectedEOF):
        column = len(text.rstrip()) + 1
        return QueryError(column, f"expected {_expected(_accepted(exc), text, column)}{_after(text, column)}")
    return QueryError(1, str(exc))


def _column(node: Tree[Token] | Token) -> int:
    if isinstance(node, Token):
        return node.column or 1
    return getattr(node.meta, "column", 1) if not node.meta.empty else 1


def _check_size(tree: Tree[Token]) -> None:
    """Depth, conditions and values in an ``in``, walked without recursion (a deep tree must not blow the stack)."""
    conditions = 0
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        column = _column(node)
        if node.data in {"compare", "member", "like", "flag"}:
            conditions += 1
            if conditions > MAX_CONDITIONS:
                raise QueryError(column, f"at most {MAX_CONDITIONS} conditions in one query")
        if node.data == "member" and len(node.children) - 2 > MAX_VALUES:  # the name, 'in', then the values
            raise QueryError(_column(node.children[2 + MAX_VALUES]), f"at most {MAX_VALUES} values in one in (...)")
        nested = depth + (1 if node.data in {"negation", "or_expr", "and_expr"} else 0)
        if nested > MAX_DEPTH:
            raise QueryError(column, f"the query nests deeper than {MAX_DEPTH} levels")
        stack.extend((child, nested) for child in node.children)


def parse(text: str) -> Node | None:
    """The tree of ``text``, or None for an empty query; ``QueryError`` if it does not parse."""
    if len(text) > MAX_LENGTH:
        raise QueryError(MAX_LENGTH + 1, f"the query is {len(text):,} characters long; at most {MAX_LENGTH:,}")
    if not text.strip():
        return None
    if "\x00" in text:
        raise QueryError(text.index("\x00") + 1, "the query holds a NUL character")
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _error(text, exc) from None
    if isinstance(tree, Token):  # a query that is one bare name
        return Flag(_name(tree))
    _check_size(tree)
    try:
        built: Any = _Build().transform(tree)
    except VisitError as exc:  # lark wraps what a callback raises
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise
    return built


def conditions(node: Node | None) -> list[Compare | Member | Like | Flag]:
    """Every condition in the tree, left to right."""
    found: list[Compare | Member | Like | Flag] = []
    stack: list[Node] = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, (And, Or)):
            stack.extend(reversed(current.items))
        elif isinstance(current, Not):
            stack.append(current.inner)
        else:
            found.append(current)
    return found
