"""``python manage.py sweep SWEEP.json``: launch a sweep and follow it to its end.

The trials go through the queue to the workers (``manage.py up``, or ``rqworker`` on any machine),
like any launched run. On a terminal a progress bar counts the trials that ended, with the best
objective so far; otherwise each trial's end is one line. Every line goes to stderr; the last
line of stdout is the best trial's execution folder. Ctrl-C cancels the sweep.

Exit codes: 0 the sweep finished with a best trial; 1 it failed, was cancelled, no trial
completed, or the queue is down; 2 the document is invalid (every problem listed, nothing started) or
``--project`` names no project.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import IO, Any

import django_rq
from django.core.management.base import BaseCommand, CommandParser
from rq import Worker
from tqdm import tqdm

from audit.models import Entry
from audit.recording import record
from experiments.display import counted
from experiments.jobs.queues import QueueUnavailable
from experiments.models import Execution, Project
from experiments.models.projects import PROJECT_NAME_PATTERN
from experiments.pipeline import ConfigError, Problem, jsonlimits
from sweeps.launching import cancel_sweep, heal, launch_sweep
from sweeps.models import Sweep
from sweeps.summary import summarise, trials_of

ENDED = {"succeeded", "pruned", "failed", "cancelled", "missing", "deleted"}


def read_document(path: str) -> Any:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read {path}: {exc.strerror}")]) from exc
    try:
        return jsonlimits.loads(raw, what="the sweep document")
    except jsonlimits.JSONLimitError as exc:
        raise ConfigError([Problem("", str(exc))]) from exc


class Follower:
    """Shows a sweep's progress: a tqdm bar on a terminal, else one line per trial that ends."""

    def __init__(self, sweep: Sweep, stderr: IO[str], progress: bool) -> None:
        self.stderr = stderr
        self.seen: set[int] = set()
        self.bar = (
            tqdm(total=sweep.trials_total, unit="trial", file=stderr, dynamic_ncols=True, leave=True)
            if progress
            else None
        )

    def update(self, summary: dict[str, Any]) -> None:
        counts, best = summary["counts"], summary["best"]
        for trial in summary["trials"]:
            if trial["status"] in ENDED and trial["number"] not in self.seen:
                self.seen.add(trial["number"])
                if self.bar is not None:
                    self.bar.update(1)
                else:
                    value = f"{trial['value']:.6g}" if trial["value"] is not None else "—"
                    self.stderr.write(
                        f"trial {trial['number']} {trial['status']}: {summary['objective']['metric']} {value} "
                        f"{_params(trial['params'])}\n"
                    )
        if self.bar is not None:
            shown = {name: counts[name] for name in ("done", "queued", "running", "pruned", "failed")}
            if best is not None:
                shown["best"] = f"{best['value']:.4g}"
            self.bar.set_postfix(shown, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in params.items())


def _project(name: str | None, stderr: IO[str]) -> Project | None | bool:
    """``--project``'s project (None: not given); False (said on stderr) for a name that is none."""
    if name is None:
        return None
    found = Project.objects.filter(name=name).first() if re.fullmatch(PROJECT_NAME_PATTERN, name) else None
    if found is None:
        shown = "".join(c if c.isprintable() else "?" for c in name[:64])
        stderr.write(f"--project {shown!r}: no such project (python manage.py project list shows them)\n")
        return False
    return found


def run_sweep(
    path: str,
    stdout: IO[str],
    stderr: IO[str],
    progress: bool = False,
    poll: float = 1.0,
    project: str | None = None,
) -> tuple[int, Sweep | None]:
    """Launch the sweep in ``path`` (into ``project``, where its trials train) and follow it; returns
    ``(exit code, sweep or None)``."""
    target = _project(project, stderr)
    if target is False:
        return 2, None
    try:
        sweep = launch_sweep(read_document(path), trusted=True, project=target if isinstance(target, Project) else None)
    except ConfigError as exc:
        count = len(exc.problems)
        head = f"Invalid sweep: {count} problem{'s' if count != 1 else ''} in {path}:"
        stderr.write("\n".join([head, *(f"  {problem}" for problem in exc.problems)]) + "\n")
        return 2, None
    except QueueUnavailable as exc:
        stderr.write(f"{exc}\n")
        return 1, None
    record(None, Entry.Action.SWEEP_LAUNCH, target=f"sweep {sweep.pk} ({sweep.name})", via="cli")
    trials = counted(sweep.trials_total, "trial")
    stderr.write(f"Sweep {sweep.pk}: {sweep.name}, {trials}, at most {sweep.parallel} at once.\n")
    _warn_without_workers(sweep, stderr)
    follower = Follower(sweep, stderr, progress)
    try:
        while True:
            sweep.refresh_from_db()
            summary = summarise(sweep, trials_of(sweep))
            follower.update(summary)
            if not sweep.is_running and summary["counts"]["running"] + summary["counts"]["queued"] == 0:
                break
            Execution.objects.mark_lost()
            heal([sweep])
            time.sleep(poll)
    except KeyboardInterrupt:
        follower.close()
        stderr.write("Interrupted: cancelling the sweep (its queued trials leave the queue, running ones stop).\n")
        cancel_sweep(sweep)
        return 1, sweep
    follower.close()
    return _report(sweep, summary, stdout, stderr), sweep


def _warn_without_workers(sweep: Sweep, stderr: IO[str]) -> None:
    try:
        listening = Worker.all(queue=django_rq.get_queue(sweep.queue))
    except Exception:  # noqa: BLE001 - only a hint
        return
    if not listening:
        stderr.write(
            f"No worker listens on the '{sweep.queue}' queue yet: the trials wait until one does "
            "(python manage.py up, or python manage.py rqworker default gpu).\n"
        )


def _report(sweep: Sweep, summary: dict[str, Any], stdout: IO[str], stderr: IO[str]) -> int:
    counts = summary["counts"]
    stderr.write(
        f"Sweep {sweep.pk} {sweep.status}: {counts['done']} done, {counts['pruned']} pruned, "
        f"{counts['failed']} failed of {counts['total']}.\n"
    )
    if sweep.error:
        stderr.write(f"{sweep.error}\n")
    best = summary["best"]
    if best is None:
        stderr.write("No trial completed, so there is no best one.\n")
        return 1
    execution = Execution.objects.get(pk=best["execution"])
    stderr.write(
        f"Best: trial {best['number']}, {sweep.which} {sweep.metric} {best['value']:.6g}, {_params(best['params'])}\n"
    )
    stdout.write(f"{execution.folder_path}\n")
    stdout.flush()
    return 0 if sweep.status == Sweep.State.FINISHED else 1


class Command(BaseCommand):
    help = "Launch a sweep (a JSON sweep document) and follow it to its end; prints the best trial's folder last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("document", help="the sweep document (JSON)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
        parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the sweep (default 1)")
        parser.add_argument(
            "--project",
            default=None,
            help="the project to launch into: its trials' folders go under <trainings root>/projects/PROJECT/ "
            "(default: default, or the base run's project)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        progress = sys.stderr.isatty() and not options["no_progress"]
        code, _ = run_sweep(options["document"], sys.stdout, sys.stderr, progress, options["poll"], options["project"])
        if code:
            sys.exit(code)
