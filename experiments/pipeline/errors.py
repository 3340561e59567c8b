"""Errors the engine reports about a config, each tied to the config path it is about.

A config is checked in two steps, and both report ``Problem``s in one ``ConfigError``:

- the schema (pydantic models, ``schema.py``): every problem pydantic finds, formatted once;
- the build check (``build_check.py``): Keras layers and optimizers, open-ended sets that only
  Keras can judge, whose introspection raises ``ComponentError`` at the offending key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (a JSON path such as ``model.network[1].units``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class ConfigError(ValueError):
    """A config that cannot run. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" in {self.source}" if self.source else ""
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''}{where}:"
        return "\n".join([head, *(f"  {problem}" for problem in self.problems)])


class ComponentError(Exception):
    """A Keras component refused its spec; ``at`` is relative to the spec (``"units"``, ``"type"``, ``"[2]"``)."""

    def __init__(self, message: str, at: str = "") -> None:
        self.message = message
        self.at = at
        super().__init__(message)


class MemoryLimitExceeded(BaseException):  # no Error suffix: named as the user reads it in the run's error
    """The run went over the memory its process is held to: raised in the training's thread wherever it is.

    A ``BaseException``, as ``KeyboardInterrupt`` is: an interruption from outside, which no
    ``except Exception`` on the way (a tracker that must not stop the training, an optimizer wrapping
    what it rejects) may swallow or reword. The engine fails the run with it.
    """


MEMORY_ERRORS = (MemoryError, MemoryLimitExceeded)


def out_of_memory_in(exc: BaseException) -> BaseException | None:
    """The error that says ``exc`` is, or was raised from, running out of memory, or None.

    That is the memory limit's ``MemoryLimitExceeded``, Python's ``MemoryError`` or TensorFlow's
    ``ResourceExhaustedError`` (an allocation refused). An allocation refused inside code that wraps what
    it catches (an optimizer building its slots) keeps it as the cause, which still says what happened.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, MEMORY_ERRORS) or type(current).__name__ == "ResourceExhaustedError":
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def is_out_of_memory(exc: BaseException) -> bool:
    """``exc`` is, or was raised from, running out of memory (see ``out_of_memory_in``)."""
    return out_of_memory_in(exc) is not None


def invalid(message: str, at: str = "", absolute: bool = False) -> PydanticCustomError:
    """The error a validator raises: ``message`` at ``at`` (relative to the value, or ``absolute``)."""
    return PydanticCustomError("gymnos", "{message}", {"message": message, "at": at, "absolute": absolute})


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or an empty string."""
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def unknown_type_message(kind: str, name: object, choices: Iterable[str], hint: str = "") -> str:
    """``unknown callback type 'early_stoping'; did you mean 'early_stopping'?`` (or the valid names).

    ``hint`` is added in brackets: where else to look, such as ``dataset.path`` for files.
    """
    names = sorted(choices)
    suggestion = did_you_mean(name, names)
    listing = "" if suggestion or len(names) > 30 else f"; expected one of: {', '.join(names)}"
    return f"unknown {kind} '{name}'{suggestion}{listing}" + (f" ({hint})" if hint else "")


def unknown_argument_message(owner: str, key: str, accepted: Iterable[str]) -> str:
    """``unknown argument for dense; did you mean 'units'? (it accepts: activation, units, ...)``"""
    names = list(accepted)
    listing = f"it accepts: {', '.join(names)}" if names else "it takes no arguments"
    return f"unknown argument for {owner}{did_you_mean(key, names)} ({listing})"
