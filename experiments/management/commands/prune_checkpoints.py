"""``python manage.py prune_checkpoints [--experiment NAME] [--keep-best N] [--keep-last N] [--dry-run]``.

Applies model_checkpoint's retention to runs that already ended: in each run's
``callbacks/model_checkpoint/``, keep the N best checkpoints by the metric its model_checkpoint
monitored (``--monitor`` to choose another) and/or the N last; remove the rest. Prints each file
removed (or, with ``--dry-run``, that would be) and the bytes freed; ``--dry-run`` changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from experiments.curation.edits import label
from experiments.curation.prune import prune_checkpoints
from experiments.management.arguments import whole_number
from experiments.models import Experiment


class Command(BaseCommand):
    help = "Remove checkpoints of ended runs beyond the N best (by the monitored metric) and/or the N last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--experiment", metavar="NAME", help="only this experiment's runs (default: every one)")
        parser.add_argument(
            "--keep-best",
            type=whole_number(1),
            metavar="N",
            help="keep the N best checkpoints (default 1 without --keep-last)",
        )
        parser.add_argument("--keep-last", type=whole_number(1), metavar="N", help="keep the N last checkpoints")
        parser.add_argument("--monitor", help="rank by this metric (default: what the run's model_checkpoint watched)")
        parser.add_argument("--dry-run", action="store_true", help="print what would be removed; remove nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        experiment = options["experiment"]
        if experiment is not None and not Experiment.objects.filter(name=experiment).exists():
            raise CommandError(f"--experiment: no experiment named {experiment!r}")
        keep_best, keep_last = options["keep_best"], options["keep_last"]
        if keep_best is None and keep_last is None:
            keep_best = 1
        report = prune_checkpoints(
            experiment, keep_best=keep_best, keep_last=keep_last, monitor=options["monitor"], dry_run=options["dry_run"]
        )
        verb = "would remove" if report.dry_run else "removed"
        for run in report.runs:
            for relative, size in run.removed:
                self.stdout.write(f"{label(run.execution)}: {verb} {relative} ({size:,} bytes)")
            for note in run.notes:
                self.stdout.write(f"{label(run.execution)}: {note}")
        freed = "would free" if report.dry_run else "freed"
        self.stdout.write(
            f"{verb} {report.files} checkpoint{'s' if report.files != 1 else ''} "
            f"in {sum(1 for run in report.runs if run.removed)} runs: {freed} {report.bytes:,} bytes "
            f"({filesizeformat(report.bytes)})" + (" (dry run: nothing was changed)" if report.dry_run else "")
        )
