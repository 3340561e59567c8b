"""Fork a run (#23): a new queued run, in the parent's experiment, that trains on from weights the parent saved.

    child = fork(parent, "last", changes={"model.compilation.optimizer.learning_rate": 0.0005}, user=user)
    child = fork(parent, 5, config=edited_config, user=user)      # the run form: a whole config

``source`` is a checkpoint's epoch (a file ``model_checkpoint`` saved, as the run page's markers show them) or
``"last"``: the state the parent keeps to resume from (a run that failed or was cancelled), else the model it
ended with (``model.h5``, its last epoch). The child records ``parent`` and ``forked_at_epoch``; where its weights
are and whether its optimizer's state comes too (``pipeline.fork.optimizer_dropped``) go in ``fork_start``, which
its worker reads (``horse``). Every problem is raised at once as a ``ConfigError`` (``from``: the checkpoint epochs
there are; a change's path; each problem of the config the changes make), as a launch raises them.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from django.http import Http404

from experiments import charts, files
from experiments.jobs import launching
from experiments.models import Execution
from experiments.pipeline import ConfigError, Problem
from experiments.pipeline.fork import optimizer_dropped
from experiments.pipeline.resume import STATE_BYTES, STATE_FILE, STATE_FOLDER, StateError, kept_from

# A change's path: `training.epochs`, `model.network[0].units`. Bounded: at most this many, this long.
MAX_CHANGES = 100
MAX_PATH = 200
MAX_DEPTH = 12  # keys and indices in one path: deeper than any config's (model.network[0].kernel_regularizer.l2)
_PART = re.compile(r"([^.\[\]]+)|\[(\d{1,6})\]")  # a key, or a list index; no nested quantifiers
MODEL_FILE = "model.h5"


@dataclass(frozen=True)
class Source:
    file: str  # the path inside the parent's folder
    epoch: int  # the parent's epochs those weights were trained for


def fork(
    parent: Execution,
    source: Any,
    user: Any = None,
    changes: Any = None,
    config: dict[str, Any] | None = None,
) -> Execution:
    """Queue a fork of ``parent`` from ``source`` (``"last"`` or an epoch), its config ``config`` or the parent's
    with ``changes`` applied; ``ConfigError`` with every problem (nothing created), or ``QueueUnavailable``."""
    problems: list[Problem] = []
    found = _source(parent, source, problems)
    if config is None:
        config = copy.deepcopy(parent.config) if isinstance(parent.config, dict) else {}
        problems += apply_changes(config, changes)
    if problems:
        problems += launching.config_problems(config)[1]
        raise ConfigError(problems)
    assert found is not None  # no problem: the source was found
    why = optimizer_dropped(parent.config, config)
    folder = files.execution_folder(parent)
    start = {"folder": folder, "file": found.file, "optimizer": why is None, "why": why or ""}
    lineage = {"parent": parent, "forked_at_epoch": found.epoch, "fork_start": start}
    return launching.launch(config, user=user, lineage=lineage, project=parent.experiment.project)


def apply_changes(config: dict[str, Any], changes: Any) -> list[Problem]:
    """Set each ``{"<config path>": value}`` in ``config``; the problems of the changes themselves (not an object,
    too many, a path that does not parse or leads nowhere). What the schema thinks of the values is the launch's."""
    if changes is None:
        return []
    if not isinstance(changes, dict):
        return [Problem("changes", 'must be an object of {"<config path>": value}, e.g. {"training.epochs": 20}')]
    if len(changes) > MAX_CHANGES:
        return [Problem("changes", f"at most {MAX_CHANGES} changes at once, got {len(changes)}")]
    problems: list[Problem] = []
    for path, value in changes.items():
        problem = _set(config, str(path), value)
        if problem:
            problems.append(Problem(str(path)[:MAX_PATH], problem))
    return problems


def _parts(path: str) -> list[str | int] | None:
    if not path or len(path) > MAX_PATH:
        return None
    parts: list[str | int] = []
    position = 0
    for match in _PART.finditer(path):
        key = match.group(1)
        # Between two parts: a dot before a key (none before the first), nothing before an index.
        if path[position : match.start()] != ("." if key is not None and parts else ""):
            return None
        parts.append(key if key is not None else int(match.group(2)))
        position = match.end()
    return parts if position == len(path) and parts and isinstance(parts[0], str) else None


def _set(config: dict[str, Any], path: str, value: Any) -> str | None:
    """Set ``path`` to ``value``; why it cannot be (None when it was)."""
    parts = _parts(path)
    if parts is None:
        return "is not a config path; write it as the config's keys with dots, e.g. model.network[0].units"
    if len(parts) > MAX_DEPTH:
        return f"is deeper than any config path (at most {MAX_DEPTH} keys and indices)"
    return _walk(config, parts, value)


def _walk(config: dict[str, Any], parts: list[str | int], value: Any) -> str | None:
    here: Any = config
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(here, list) or part >= len(here):
                size = len(here) if isinstance(here, list) else "no"
                return f"there is no item [{part}] there (the list has {size} items)"
            if last:
                here[part] = value
            here = here[part]
            continue
        if not isinstance(here, dict):
            return f"{part!r} is under a value that is not an object"
        if last:
            here[part] = value
        elif isinstance(here.get(part), str) and isinstance(parts[index + 1], str):
            here[part] = {"type": here[part]}  # a component named by its type alone ("adam") gets its arguments
        elif part not in here:
            here[part] = {} if isinstance(parts[index + 1], str) else []
        here = here[part]
    return None


def _source(parent: Execution, source: Any, problems: list[Problem]) -> Source | None:
    if source == "last":
        found = last_source(parent)
        if found is None:
            problems.append(Problem("from", f"run {parent.pk} keeps no state and has no {MODEL_FILE} to start from"))
        return found
    if isinstance(source, bool) or not isinstance(source, int):
        problems.append(Problem("from", f'must be "last" or a checkpoint\'s epoch (a whole number), got {source!r}'))
        return None
    saved = {item["epoch"]: item["path"] for item in charts.checkpoints(parent.artifacts) if item["epoch"]}
    if source in saved and _readable(parent, saved[source]):
        return Source(saved[source], source)
    there = ", ".join(str(epoch) for epoch in sorted(saved)) or "none"
    message = f"run {parent.pk} has no checkpoint at epoch {source}; its checkpoints' epochs: {there}"
    problems.append(Problem("from", message))
    return None


def last_source(parent: Execution) -> Source | None:
    """The state the parent keeps to resume from, else the model it ended with; None if it has neither."""
    folder = files.execution_folder(parent)
    if folder is None:
        return None
    try:
        kept = kept_from(files.read_file(folder, f"{STATE_FOLDER}/{STATE_FILE}", STATE_BYTES), folder)
    except (OSError, files.Refused, StateError):
        kept = None
    if kept is not None:
        return Source(f"{STATE_FOLDER}/{kept.weights.name}", kept.epoch)
    if _readable(parent, MODEL_FILE) and parent.epochs:
        return Source(MODEL_FILE, parent.epochs)
    return None


def _readable(parent: Execution, relative: str) -> bool:
    """Whether the parent's ``relative`` is there to copy (a plain file inside its folder)."""
    try:
        files.open_for(parent, relative, limit=0).close()
    except Http404:  # not there, or not a file a reader of the folder may read
        return False
    return True
