"""Config paths as the params columns name them (``model.network[0].units``): parsed, and written into a config.

A sweep names each value it searches by the same path ``experiments.pipeline.params.flatten`` gives
it, so a trial's sampled values show up in the params columns under the names the sweep used::

    write({"training": {"epochs": 5}}, "training.batch_size", 64)
    # {"training": {"epochs": 5, "batch_size": 64}}
    write({"model": {"compilation": {"optimizer": "adam"}}}, "model.compilation.optimizer.learning_rate", 0.01)
    # the optimizer's short form becomes {"type": "adam", "learning_rate": 0.01}

Whether the key is one its section accepts is the schema's to say (``sweeps.document``); this
module only says whether the path can be written at all.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from experiments.display import counted

MAX_LENGTH = 200
MAX_SEGMENTS = 16
# A key (anything but the separators), or a list index.
_SEGMENT = re.compile(r"([^.\[\]\s]+)|\[(\d{1,6})\]")


class PathError(ValueError):
    """A path that cannot be written into the config; the message says where it stops and why."""


def parse(path: str) -> list[str | int]:
    """``"model.network[0].units"`` -> ``["model", "network", 0, "units"]``."""
    if not path:
        raise PathError("is empty; name a config value such as training.batch_size")
    if len(path) > MAX_LENGTH:
        raise PathError(f"is {len(path)} characters long; at most {MAX_LENGTH} are accepted")
    segments: list[str | int] = []
    position = 0
    while position < len(path):
        if segments and path[position] == ".":
            position += 1
        match = _SEGMENT.match(path, position)
        if match is None or (segments == [] and match.group(2) is not None):
            raise PathError(
                f"is not a config path: cannot read it from character {position + 1} "
                "(expected keys joined by dots, list items as [index], e.g. model.network[0].units)"
            )
        key, index = match.groups()
        segments.append(key if key is not None else int(index))
        position = match.end()
    if len(segments) > MAX_SEGMENTS:
        raise PathError(f"has {len(segments)} parts; at most {MAX_SEGMENTS} are accepted")
    return segments


def render(segments: list[str | int]) -> str:
    """The inverse of ``parse``."""
    text = ""
    for segment in segments:
        text += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if text else segment)
    return text


def write(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``config`` with ``value`` at ``path``; missing keys are added, list items must exist.

    A string met where the path goes on into its keys is a component's short form (an optimizer's
    ``"adam"``) and becomes ``{"type": "adam"}`` first.
    """
    result = copy.deepcopy(config)
    write_in_place(result, parse(path), value)
    return result


def write_in_place(config: dict[str, Any], segments: list[str | int], value: Any) -> None:
    node: Any = config
    for depth, segment in enumerate(segments):
        last = depth == len(segments) - 1
        where = render(segments[:depth]) or "the config"
        if isinstance(segment, int):
            if not isinstance(node, list):
                raise PathError(f"{where} is {_kind(node)}, not a list, so it has no item [{segment}]")
            if segment >= len(node):
                raise PathError(f"{where} has {counted(len(node), 'item')}, so [{segment}] is past its end")
            if last:
                node[segment] = value
                return
            node[segment] = _container_for(node[segment], segments[depth + 1])
            node = node[segment]
            continue
        if not isinstance(node, dict):
            raise PathError(f"{where} is {_kind(node)}, not an object, so it has no key '{segment}'")
        if last:
            node[segment] = value
            return
        node[segment] = _container_for(node.get(segment), segments[depth + 1])
        node = node[segment]


def _container_for(current: Any, following: str | int) -> Any:
    """What the path walks into next: the value there, a new object for a missing key, or a component's
    short form made long."""
    if current is None and isinstance(following, str):
        return {}
    if isinstance(current, str) and isinstance(following, str):
        return {"type": current}
    return current


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return f"a number ({value:g})"
    if isinstance(value, str):
        return f"a string ('{value[:40]}')"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return "an object"
