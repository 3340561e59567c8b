"""Checkpoint retention for runs that already ended (``manage.py prune_checkpoints``).

The rule is ``model_checkpoint``'s own (``experiments.pipeline.checkpoints.removable``): keep the
``keep_best`` best files by the monitored metric and/or the ``keep_last`` last ones. A file's epoch
comes from its name, read with the run's ``model_checkpoint`` ``filepath`` template
(``weights.{epoch:02d}-{val_loss:.2f}.h5`` reads ``weights.05-27.07.h5`` as epoch 5); its value
is the monitored metric's history at that epoch. A file whose epoch cannot be read is kept. Files
are removed through ``experiments.pipeline.fileops``: a checkpoint that is a link is removed as a
link (its target stays), and a run whose folder lies behind a link is refused, saying so::

    report = prune_checkpoints(experiment="boston_housing", keep_best=1, dry_run=True)
    report.bytes        # what removing would free; nothing is touched
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from audit.models import Entry
from audit.recording import record
from experiments.files import execution_folder, is_checkpoint, walk
from experiments.index.sync import sync_folder
from experiments.models import ENDED, Execution, higher_is_better
from experiments.pipeline import fileops
from experiments.pipeline.checkpoints import Saved, removable

from .edits import actor_of

PREFIX = "callbacks/model_checkpoint/"
EPOCH = r"(?P<epoch>\d++)"  # possessive: the digits are the epoch's, never given back to a field
FIELD = r"[^/]*?"


@dataclass
class RunPruning:
    """One run: the files removed (or that would be) with their bytes, and what was kept and why."""

    execution: Execution
    removed: list[tuple[str, int]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.removed)


@dataclass
class PruneReport:
    runs: list[RunPruning] = field(default_factory=list)
    dry_run: bool = False

    @property
    def bytes(self) -> int:
        return sum(run.bytes for run in self.runs)

    @property
    def files(self) -> int:
        return sum(len(run.removed) for run in self.runs)


@dataclass(frozen=True)
class Template:
    """One ``model_checkpoint`` of a run's config: its file name pattern and what it monitors."""

    pattern: re.Pattern[str]
    monitor: str
    mode: str


def template_pattern(template: str) -> re.Pattern[str] | None:
    r"""A regex reading a file name made from ``template``: ``{epoch...}`` is the epoch, other fields anything.

    >>> template_pattern("weights.{epoch:02d}-{val_loss:.2f}.h5").match("weights.05-27.07.h5")["epoch"]
    '05'

    A field is the shortest text up to the literal after it (and the epoch after that literal, if it
    comes next); once found, that part of the name is never split again (an atomic group, and the
    epoch's digits possessive), so a name is read in one pass. Fields that could each take any part
    of it (``[^/]*?[^/]*?...``) made a 100-character name take seconds against ``{a}{b}{c}{d}{epoch}.h5``,
    and each more field multiplied it (CONVENTIONS 25).
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None
    pieces: list[str] = []  # escaped literals, the epoch, and a field for each run of other fields
    for literal, name, _, _ in parsed:
        if literal:
            pieces.append(re.escape(literal))
        if name == "epoch" and EPOCH not in pieces:
            pieces.append(EPOCH)
        elif name is not None and pieces[-1:] != [FIELD]:
            pieces.append(FIELD)
    if EPOCH not in pieces:
        return None
    # A group closes after a literal that the epoch does not follow: once it matches, the name is not
    # split again. The last group ends the name, so it may look as far as it needs: it is not atomic.
    groups = [""]
    for index, piece in enumerate(pieces):
        groups[-1] += piece
        if piece not in (EPOCH, FIELD) and pieces[index + 1 : index + 2] not in ([EPOCH], []):
            groups.append("")
    return re.compile("".join(f"(?>{group})" for group in groups[:-1]) + groups[-1] + r"\Z")


def templates_of(config: Any) -> list[Template]:
    """The ``model_checkpoint`` callbacks a run's config (as written in its folder) names."""
    training = config.get("training") if isinstance(config, dict) else None
    callbacks = training.get("callbacks") if isinstance(training, dict) else None
    found = []
    for callback in callbacks if isinstance(callbacks, list) else []:
        if not isinstance(callback, dict) or callback.get("type") != "model_checkpoint":
            continue
        pattern = template_pattern(str(callback.get("filepath") or "weights.{epoch:02d}.h5"))
        if pattern is not None:
            found.append(
                Template(pattern, str(callback.get("monitor") or "val_loss"), str(callback.get("mode") or "auto"))
            )
    return found


def _better(monitor: str, mode: str) -> Any:
    higher = mode == "max" or (mode == "auto" and higher_is_better(monitor))
    return (lambda a, b: a > b) if higher else (lambda a, b: a < b)


def plan(execution: Execution, keep_best: int | None, keep_last: int | None, monitor: str | None = None) -> RunPruning:
    """What pruning one run would do: the files it would remove (with their bytes), kept, and why."""
    run = RunPruning(execution)
    folder = execution_folder(execution)
    if folder is None:
        run.notes.append("no folder inside the trainings root; skipped")
        return run
    files = sorted(relative for relative, _ in walk(folder) if relative.startswith(PREFIX) and is_checkpoint(relative))
    if not files:
        return run
    templates = templates_of(execution.config)
    watched = monitor or (templates[0].monitor if templates else "val_loss")
    mode = "auto" if monitor or not templates else templates[0].mode
    history = execution.history(watched)
    saved: list[Saved] = []
    for relative in files:
        name = relative.removeprefix(PREFIX)
        match = next((m for t in templates if (m := t.pattern.match(name))), None)
        if match is None:
            run.kept.append(relative)
            run.notes.append(f"kept {relative}: its epoch cannot be read from its name")
            continue
        epoch = int(match.group("epoch"))
        value = history[epoch - 1] if 1 <= epoch <= len(history) else None
        saved.append(Saved(relative, epoch, value))
    saved.sort(key=lambda item: (item.epoch, item.path))
    if keep_best and not any(item.value is not None for item in saved) and not keep_last:
        run.notes.append(f"no {watched} value for any checkpoint; nothing removed")
    gone = removable(saved, keep_last, keep_best, _better(watched, mode))
    gone_paths = {item.path for item in gone}
    run.kept += [item.path for item in saved if item.path not in gone_paths]
    for item in gone:
        try:
            run.removed.append((item.path, fileops.size(*_where(execution, item.path))))  # a link frees nothing
        except fileops.Refused as exc:
            run.notes.append(f"nothing removed: {exc}")
            run.removed = []
            break
        except OSError:
            continue
    return run


def _where(execution: Execution, relative: str) -> tuple[fileops.StrPath, Path]:
    """The trainings root and a file of the run by the path it was indexed at, not the real one ``walk``
    gives: ``fileops`` then refuses a link on the way (an experiment or run folder that is one)."""
    return settings.GYMNOS_TRAININGS_ROOT, Path(execution.folder_path, relative)


def prune_checkpoints(
    experiment: str | None = None,
    keep_best: int | None = 1,
    keep_last: int | None = None,
    monitor: str | None = None,
    dry_run: bool = False,
    request: HttpRequest | None = None,
    actor: Any = None,
) -> PruneReport:
    """Apply checkpoint retention to every run that ended (of ``experiment``, if named).

    Each run that lost files is indexed again (its sizes) and gets one audit entry. ``dry_run``
    reports the same and changes nothing.
    """
    report = PruneReport(dry_run=dry_run)
    runs = Execution.objects.select_related("experiment").filter(status__in=ENDED).exclude(folder_name=None)
    if experiment is not None:
        runs = runs.filter(experiment__name=experiment)
    for execution in runs.order_by("experiment__name", "folder_name"):
        run = plan(execution, keep_best, keep_last, monitor)
        if not run.removed and not run.notes:
            continue
        report.runs.append(run)
        if dry_run or not run.removed:
            continue
        done = []
        for relative, _ in run.removed:
            try:
                freed = fileops.remove(*_where(execution, relative))
            except fileops.Refused as exc:
                run.notes.append(f"refused to remove {relative}: {exc}")
                break
            except OSError as exc:
                run.notes.append(f"could not remove {relative}: {exc.strerror or exc}")
                continue
            done.append((relative, freed))
        run.removed = done
        if done:
            sync_folder(execution.folder_path, settings.GYMNOS_TRAININGS_ROOT)
            record(
                request,
                Entry.Action.PRUNE_CHECKPOINTS,
                execution=execution,
                actor=actor_of(request, actor),
                files=[relative for relative, _ in done],
                bytes=run.bytes,
            )
    return report
