"""The rules for names that come from a run folder or a post and end up on every page.

A metric's name becomes a chart title, a table column, a query name, a JSON key and a CSV cell;
a folder's name becomes a URL part and a download's file name. A config names its metrics from
Keras' own registry (``accuracy``, ``mean_absolute_error``), so a name a folder or a RemoteMonitor
post gives is held to what Keras writes: letters, digits, ``_``, ``.`` and ``-``. Sync
(``experiments/index/reader.py``) and the RemoteMonitor receiver (``experiments/forms.py``) both
ask here, so the two cannot drift apart::

    >>> metric_name_problem("val_mean_absolute_error") is None
    True
    >>> metric_name_problem("<img src=x onerror=alert(1)>")
    "the metric name '<img src=x onerror=alert(1)>' has a character other than letters, digits, '_', '.' and '-'"
    >>> control_character_problem("folder name", "run\\n2")
    'the folder name has a control character (U+000A); names are printable text'
"""

from __future__ import annotations

import re

MAX_METRIC_NAME = 200
# Keras' metric names (loss, val_loss, top_k_categorical_accuracy, dense_1_mae, ...) and a custom
# metric's name in the same style. Not a '/' (the index keeps "system/..." for its own series), no
# space, quote or angle bracket: a name never needs quoting anywhere it is shown or queried.
METRIC_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
SHOWN = 60  # how much of a refused name a message quotes


def shown(name: str) -> str:
    """``name`` quoted for a message: its first characters, control characters escaped (``'a\\nb'``)."""
    return repr(name[:SHOWN]) + ("..." if len(name) > SHOWN else "")


def metric_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a metric, or None."""
    if not name:
        return "a metric name cannot be empty"
    if len(name) > MAX_METRIC_NAME:
        return f"the metric name {shown(name)} is {len(name):,} characters; at most {MAX_METRIC_NAME}"
    if not METRIC_NAME.fullmatch(name):
        return f"the metric name {shown(name)} has a character other than letters, digits, '_', '.' and '-'"
    return None


def control_character(text: str) -> str | None:
    """The first character of ``text`` that is not printable (a line break, a tab, NUL, ...), or None."""
    return next((character for character in text if not character.isprintable()), None)


def control_character_problem(what: str, text: str) -> str | None:
    """``"the <what> has a control character (U+000A); ..."`` when ``text`` holds one, else None."""
    character = control_character(text)
    if character is None:
        return None
    return f"the {what} has a control character (U+{ord(character):04X}); names are printable text"
