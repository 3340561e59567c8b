"""Which runs a comparison is of: the ``?runs=`` ids of a page or an export, and the runs they name.

The compare page, its share links, and the features' comparison panels (system, evaluation) all read
the selection this way.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.http import HttpRequest

from experiments.access import visible_executions
from experiments.display import run_label
from experiments.models import Execution

MAX_RUNS = 50


def parse_runs(request: HttpRequest) -> list[int]:
    """``?runs=3,5&runs=8`` -> ``[3, 5, 8]`` (duplicates and junk dropped, order kept, at most MAX_RUNS)."""
    ids: list[int] = []
    for value in request.GET.getlist("runs"):
        for part in value.split(","):
            part = part.strip()
            if part.isdigit() and int(part) not in ids:
                ids.append(int(part))
    return ids[:MAX_RUNS]


def load_runs(ids: list[int], user: Any = None) -> tuple[list[Execution], list[int]]:
    """``(executions in the order asked, ids that no longer exist)``; given a ``user``, of their projects only
    (a run of another project is missing to them: a comparison across two projects needs both). Without
    one, every run: a comparison share link grants its runs."""
    runs = Execution.objects.all() if user is None else visible_executions(user)
    found = runs.select_related("experiment").defer("artifacts", "trackers", "fingerprint").in_bulk(ids)
    return [found[pk] for pk in ids if pk in found], [pk for pk in ids if pk not in found]


def run_names(executions: list[Execution]) -> dict[int, str]:
    """What each run is called in a comparison's legends: its title where no other compared run has it,
    else its folder (two "Boston Housing" runs are told apart by when they ran), else experiment/folder."""
    titles = Counter(execution.title for execution in executions if execution.title)
    folders = Counter(execution.folder_name for execution in executions if execution.folder_name)
    names: dict[int, str] = {}
    for execution in executions:
        if execution.title and titles[execution.title] == 1:
            names[execution.pk] = execution.title
        elif execution.folder_name and folders[execution.folder_name] == 1:
            names[execution.pk] = execution.folder_name
        else:
            names[execution.pk] = run_label(execution)
    return names
