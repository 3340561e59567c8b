"""What the commands' options accept, checked as argparse reads them (an option's ``type=``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole_number(at_least: int, unit: str = "") -> Callable[[str], int]:
    """A whole number of at least ``at_least``; anything else is a usage error naming the option::

    parser.add_argument("--older-than", type=whole_number(0, "days"))
    # --older-than -1: "argument --older-than: expected 0 or more days, got -1" (exit code 2)
    """
    expected = f"{at_least} or more{f' {unit}' if unit else ''}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number ({expected}), got {text!r}") from None
        if value < at_least:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse
