"""Errors the engine reports about a config, each tied to the config path it is about."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (a JSON path such as ``model.network[1].units``) and what."""

    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self):
        return {"path": self.path, "message": self.message}


class ConfigError(ValueError):
    """A config that cannot run. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems, source=None):
        self.problems = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self):
        where = f" in {self.source}" if self.source else ""
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''}{where}:"
        return "\n".join([head, *(f"  {problem}" for problem in self.problems)])


class SpecError(Exception):
    """Raised by a component's checker; ``subpath`` is relative to the spec (``"units"``, ``"type"``)."""

    def __init__(self, message, subpath=""):
        self.message = message
        self.subpath = subpath
        super().__init__(message)


def did_you_mean(word, choices):
    """Return ``"; did you mean 'x'?"`` for the closest choice, or an empty string."""
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def unknown_type_message(kind, name, choices, hint=""):
    """``unknown callback type 'early_stoping'; did you mean 'early_stopping'?`` (or the valid names).

    ``hint`` is added in brackets: where else to look, such as ``dataset.path`` for files.
    """
    choices = sorted(choices)
    suggestion = did_you_mean(name, choices)
    listing = "" if suggestion or len(choices) > 30 else f"; expected one of: {', '.join(choices)}"
    return f"unknown {kind} '{name}'{suggestion}{listing}" + (f" ({hint})" if hint else "")
