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

from gymnos_track.layout import MAX_METRIC_NAME, METRIC_NAME, SHOWN, metric_name_problem, shown

__all__ = [
    "MAX_METRIC_NAME", "METRIC_NAME", "SHOWN", "metric_name_problem", "shown", "control_character",
    "control_character_problem",
]  # fmt: skip


def control_character(text: str) -> str | None:
    """The first character of ``text`` that is not printable (a line break, a tab, NUL, ...), or None."""
    if text.isprintable():  # the common case, in C (sync asks it of every folder name)
        return None
    return next((character for character in text if not character.isprintable()), None)


def control_character_problem(what: str, text: str) -> str | None:
    """``"the <what> has a control character (U+000A); ..."`` when ``text`` holds one, else None."""
    character = control_character(text)
    if character is None:
        return None
    return f"the {what} has a control character (U+{ord(character):04X}); names are printable text"
