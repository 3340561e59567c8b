"""Formatting for the dashboard: durations, metric values, JSON."""

import json
import math
from typing import Any

from django import template
from django.templatetags.static import static

from experiments import display

register = template.Library()


@register.filter
def seconds(value: Any) -> str:
    """``134.2`` -> ``2m 14s``; ``0.004`` -> ``4 ms``; None -> ``—``."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    value = float(value)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.filter
def metric(value: Any) -> str:
    """Four significant digits, no exponent for ordinary sizes: ``22.415260`` -> ``22.42``."""
    if value is None or isinstance(value, bool):
        return "—"
    if not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


@register.filter
def counted(value: Any, nouns: str) -> str:
    """``{{ runs|counted:"run" }}`` -> ``1 run`` / ``3 runs``; ``{{ n|counted:"entry,entries" }}``.

    ``experiments.display.counted``, for a number or a list (its length)."""
    noun, _, plural = nouns.partition(",")
    number = value if isinstance(value, int) else len(value) if hasattr(value, "__len__") else int(value or 0)
    return display.counted(number, noun, plural or None)


@register.filter
def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# Plotly's bundles (static/vendor/plotly/README.md), by the name charts.plotly_bundle gives a page's.
PLOTLY_SCRIPTS = {
    "strict": "vendor/plotly/plotly-strict.min.js",
    "basic": "vendor/plotly/plotly-gymnos-basic.min.js",
    "cartesian": "vendor/plotly/plotly-gymnos-cartesian.min.js",
}


@register.filter
def plotly_script(bundle: str) -> str:
    """The URL of one of Plotly's bundles ("basic", "cartesian" or "strict"; the cartesian one for any other)."""
    return static(PLOTLY_SCRIPTS.get(bundle, PLOTLY_SCRIPTS["cartesian"]))
