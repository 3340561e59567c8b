"""Where a page's first view spends the main thread, from a Chromium trace (Playwright's ``browser.start_tracing``).

CPU time (``tdur``), not wall time: on two cores shared with other test runs, the wall time of a task stretches
with the load while its CPU time much less. docs/performance.md has the figures this gave for a run's page.
"""

import json
from pathlib import Path
from typing import Any

CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "blink.user_timing", "loading", "v8"]
DRAWING = ("Layout", "UpdateLayoutTree", "Paint", "PrePaint")
STREAMING = ("v8.parseOnBackground", "v8.compileOnBackground")


def _cpu(events: list[dict[str, Any]], until: float | None = None) -> float:
    return sum(e.get("tdur", 0) for e in events if until is None or e["ts"] < until) / 1000


def first_view_cpu(path: Path, mark: str = "gymnos:first-chart") -> dict[str, float]:
    """CPU milliseconds of the page that set ``mark``: its main thread's up to the mark in all, running Plotly's
    script, in the task that ended with the mark (the first draw), laying out and painting; and the CPU spent
    parsing and compiling scripts off the main thread (script streaming)."""
    events = json.loads(path.read_text())["traceEvents"]
    marked = next(e for e in events if e["name"] == mark)
    pid = marked["pid"]
    # The page's renderer and main thread: the mark's. A new process may take the navigation, before the trace
    # reaches it, so the main thread's first task there is where the page starts.
    main = [e for e in events if (e["pid"], e["tid"]) == (pid, marked["tid"]) and e.get("ph") == "X"]
    tasks = [e for e in main if e["name"] == "RunTask"]
    at = marked["ts"]
    return {
        "main thread CPU to the first chart": _cpu(tasks, at),
        "running Plotly": _cpu(
            [e for e in main if e["name"] == "EvaluateScript" and "plotly" in e["args"].get("data", {}).get("url", "")]
        ),
        "the task drawing it": _cpu([e for e in tasks if e["ts"] <= at <= e["ts"] + e["dur"] + 2000]),
        "layout and paint": _cpu([e for e in main if e["name"] in DRAWING], at),
        "compiling off the main thread": _cpu(
            [e for e in events if e["pid"] == pid and e["name"] in STREAMING and e.get("ph") == "X"]
        ),
    }
