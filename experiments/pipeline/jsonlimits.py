"""JSON from people and machines Gymnos does not control, parsed within bounds, in linear time.

Python's parser recurses once per level of nesting, so ``[[[[...]]]]`` ten thousand deep ends
in ``RecursionError``, and everything that later walks the value (a deep copy, a schema, a
database driver) recurses too. Every entry point (a launch, the form's JSON, a RemoteMonitor
post, a config file) parses through ``loads`` and every parsed value that arrives another way
goes through ``check_depth``::

    data = loads(body, max_bytes=1 << 20)      # JSONLimitError: "is nested 10000 deep; at most 64 ..."

Every check here takes time proportional to the text (docs/security.md, "Linear-time checks of
untrusted text"): the text arrives from anyone who can post or plant a file, and the web process
holds the GIL while it looks.
"""

from __future__ import annotations

import json
import sys
from itertools import accumulate, count, repeat
from typing import Any

MAX_DEPTH = 64
MAX_BYTES = 1 << 20  # 1 MiB: a config is a few kilobytes

# The characters that give JSON text its shape: the rest (numbers, letters, escapes) nests nothing.
_NOT_SHAPE = bytes(set(range(256)) - set(b'"[]{}'))
_STEP = [0] * 256
for _opening in b"[{":
    _STEP[_opening] = 1
for _closing in b"]}":
    _STEP[_closing] = -1
_CHUNK = 1 << 16  # the text is read this much at a time, so no step holds a list as long as the text


class JSONLimitError(ValueError):
    """A JSON document past a bound, or not JSON at all; the message says which and by how much."""


class NulInJSON(JSONLimitError):
    """A string of the document (a key or a value) holds a NUL character; ``path`` is where, from the top: the keys
    and list indexes down to it (to a key holding one: that key)."""

    def __init__(self, what: str, path: list[str | int]) -> None:
        self.path = path
        self.detail = f"{'the key' if _at_a_key(path) else 'the string'} holds a NUL character (\\u0000)"
        where = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")
        super().__init__(f"{what}: {self.detail}{f' at {where!r}' if where else ''}; {NUL_FIX}")


NUL_FIX = "PostgreSQL stores no text holding one and no name or value in Gymnos has one: remove it"


def _at_a_key(path: list[str | int]) -> bool:
    return bool(path) and isinstance(path[-1], str) and "\x00" in path[-1]


def nul_path(value: Any) -> list[str | int] | None:
    r"""Where the first string holding a NUL character is in ``value`` (parsed JSON), or None; never recurses.
    The path ends with the key itself when a key holds one.

    >>> nul_path({"a": [1, "x\x00"]}), nul_path({"a": {"k\x00": 1}}), nul_path("\x00"), nul_path({"a": "x"})
    (['a', 1], ['a', 'k\x00'], [], None)
    >>> nul_path({"a": ["\x00", "\x00"], "b\x00": "\x00"})  # the first in the text
    ['a', 0]

    Linear in the value's size: each node is visited once and keeps only a link to its parent's link, so a path
    is built for the string found alone (not copied at every level on the way down).
    """
    pending: list[tuple[Any, Any]] = [(value, None)]  # (a value, its link: (its key or index, its parent's link))
    pop, extend = pending.pop, pending.extend
    while pending:  # in the document's order: children are pushed last first, a key just above its value
        item, link = pop()
        kind = type(item)
        if kind is str:
            if "\x00" in item:
                return _path(link)
        elif kind is list:
            if item:  # the pairs made by zip, in C: about half the time of a generator's
                extend(zip(reversed(item), zip(count(len(item) - 1, -1), repeat(link)), strict=False))
        elif kind is dict:
            for key, child in reversed(item.items()):
                step = (key, link)
                pending += ((child, step), (key, step))  # a key's link is its value's
    return None


def _path(link: Any) -> list[str | int]:
    path: list[str | int] = []
    while link is not None:
        step, link = link
        path.append(step)
    return path[::-1]


def depth_of_text(data: bytes) -> int:
    r"""How deep ``data``'s arrays and objects nest, without parsing (strings are skipped), in linear time.

    Exact for JSON, and for text that is not JSON up to where a parser would stop (past an
    unterminated string nothing counts: a parser stops there too).

    >>> depth_of_text(b'{"a": [1, "]]", [2]], "b": "\\\\", "c": "\\"]"}')
    3

    No regex: one for a string with its escapes (``"(?:[^"\\]|\\.)*"``) tries again from every
    quote of an unterminated run of ``\"`` and took 20 seconds for 80 KB.
    """
    # A run of backslashes pairs from its left, as a parser reads it: without every pair, then without
    # every escaped quote, the quotes left are those that open and close strings.
    shape = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_SHAPE)
    depth = deepest = 0
    inside = False  # in a string, at the start of the chunk
    for start in range(0, len(shape), _CHUNK):
        pieces = shape[start : start + _CHUNK].split(b'"')
        outside = b"".join(pieces[1 if inside else 0 :: 2])
        inside ^= len(pieces) % 2 == 0
        depths = list(accumulate(map(_STEP.__getitem__, outside), initial=depth))
        deepest, depth = max(deepest, max(depths)), depths[-1]
    return deepest


def loads(
    data: str | bytes,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    what: str = "the JSON",
    refuse_nul: bool = False,
) -> Any:
    """Parse ``data``, refusing more than ``max_bytes`` or nesting deeper than ``max_depth``; with ``refuse_nul``,
    also a NUL character in any string (``NulInJSON``, which says where): what a person or a machine sends the web
    side, which PostgreSQL would refuse to store or look up. Files read from a run folder keep theirs (a sync
    reports the value the database refuses, for that folder alone)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise JSONLimitError(f"{what} is {len(raw):,} bytes; at most {max_bytes:,} are accepted")
    depth = depth_of_text(raw)
    if depth > max_depth:
        raise JSONLimitError(f"{what} is nested {depth} deep; at most {max_depth} levels are accepted")
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise JSONLimitError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise JSONLimitError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError:  # the only other one: an integer longer than Python converts (a denial of service guard)
        digits = sys.get_int_max_str_digits()
        raise JSONLimitError(f"{what} holds an integer of more than {digits:,} digits; at most {digits:,}") from None
    except RecursionError:  # only with a max_depth near the interpreter's own limit
        raise JSONLimitError(f"{what} nests too deep to parse; at most {max_depth} levels are accepted") from None
    path = nul_path(value) if refuse_nul and b"\\u0000" in raw else None  # JSON text holds a NUL only escaped
    if path is not None:
        raise NulInJSON(what, path)
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH, what: str = "the JSON") -> None:
    """Raise ``JSONLimitError`` if ``value`` (parsed JSON) nests deeper than ``max_depth``; never recurses."""
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:
        item, depth = pending.pop()
        if depth > max_depth:
            raise JSONLimitError(
                f"{what} is nested more than {max_depth} deep; at most {max_depth} levels are accepted"
            )
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
