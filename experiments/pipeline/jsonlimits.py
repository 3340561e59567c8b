"""JSON from people and machines Gymnos does not control, parsed within bounds.

Python's parser recurses once per level of nesting, so ``[[[[...]]]]`` ten thousand deep ends
in ``RecursionError``, and everything that later walks the value (a deep copy, a schema, a
database driver) recurses too. Every entry point (a launch, the form's JSON, a RemoteMonitor
post, a config file) parses through ``loads`` and every parsed value that arrives another way
goes through ``check_depth``::

    data = loads(body, max_bytes=1 << 20)      # JSONLimitError: "is nested 10000 deep; at most 64 ..."
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
MAX_BYTES = 1 << 20  # 1 MiB: a config is a few kilobytes

# A JSON string (with its escapes), then the brackets that nest.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class JSONLimitError(ValueError):
    """A JSON document past a bound, or not JSON at all; the message says which and by how much."""


def depth_of_text(data: bytes) -> int:
    """How deep ``data``'s arrays and objects nest, without parsing (strings are skipped)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b"", data)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(data: str | bytes, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, what: str = "the JSON") -> Any:
    """Parse ``data``, refusing more than ``max_bytes`` or nesting deeper than ``max_depth``."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise JSONLimitError(f"{what} is {len(raw):,} bytes; at most {max_bytes:,} are accepted")
    depth = depth_of_text(raw)
    if depth > max_depth:
        raise JSONLimitError(f"{what} is nested {depth} deep; at most {max_depth} levels are accepted")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise JSONLimitError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise JSONLimitError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def check_depth(value: Any, max_depth: int = MAX_DEPTH, what: str = "the JSON") -> None:
    """Raise ``JSONLimitError`` if ``value`` (parsed JSON) nests deeper than ``max_depth``; never recurses."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise JSONLimitError(
                    f"{what} is nested more than {max_depth} deep; at most {max_depth} levels are accepted"
                )
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
