"""The seed's folder layout and names, shared by the engine and the client (plain Python, nothing imported).

``<root>/<experiment>/executions/<%H-%M-%S__%d-%m-%Y>/`` with ``execution.log`` in the seed's line
format. The engine (``experiments.pipeline``) and the tracking client (``gymnos_track``) both take
these from here, so a folder a script wrote and one a worker wrote cannot drift apart::

    >>> metric_name_problem("val_mean_absolute_error") is None
    True
    >>> metric_name_problem("<img src=x onerror=alert(1)>")
    "the metric name '<img src=x onerror=alert(1)>' has a character other than letters, digits, '_', '.' and '-'"
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from pathlib import Path

FOLDER_FORMAT = "%H-%M-%S__%d-%m-%Y"
LOG_FORMAT = "%(asctime)s - gymnosd - %(levelname)s - %(component)s - %(message)s"
LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # then ",<milliseconds>", as logging's asctime writes it

# Where a script's own files go (``run.log_artifact``): the run page offers every file under it for download.
ARTIFACTS = "artifacts"

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


def create_execution_dir(
    trainings_root: str | Path,
    dataset_folder: str,
    now: dt.datetime | None = None,
    claim: Callable[[Path], bool] | None = None,
) -> Path:
    """Create and return a new, empty execution folder; never reuse an existing one.

    A second run in the same second gets ``_2``, ``_3``... appended (``mkdir`` is atomic, so two
    processes racing for one name cannot both win). ``claim(path)``, when given, is asked before
    a name is taken, and a False answer moves on to the next one.
    """
    executions = Path(trainings_root) / dataset_folder / "executions"
    executions.mkdir(parents=True, exist_ok=True)
    base = (now or dt.datetime.now()).strftime(FOLDER_FORMAT)
    for attempt in range(1, 10_000):
        candidate = executions / (base if attempt == 1 else f"{base}_{attempt}")
        if os.path.lexists(candidate) or (claim is not None and not claim(candidate)):
            continue
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not find a free execution folder name under {executions}")
