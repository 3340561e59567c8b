"""``python manage.py sync_trainings [--root DIR] [--full]``: index every execution folder under the root.

``--full`` lists every folder, even a finished run's whose directories are as sync last saw them (its stamp):
the way to pick up a file changed in place, without a rename, after its run ended.

Prints each problem found (on stderr), then a last line ``indexed N, unchanged M, errors K``.
Exit code 0 even when folders have problems (they are recorded on their executions); 1 if
the root is not a directory.
"""

import sys
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from experiments.index.sync import sync_trainings


class TqdmProgress:
    """``progress(done, total)`` for sync, drawn as one tqdm bar on a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, unit="folder", file=self.stream, dynamic_ncols=True, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Command(BaseCommand):
    help = "Index the execution folders under the trainings root into the database (skips unchanged folders)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--root", default=None, help=f"the trainings root (default: {settings.GYMNOS_TRAININGS_ROOT})"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
        parser.add_argument(
            "--full",
            action="store_true",
            help="list every folder, even a finished run's that is stamped as unchanged (for files changed in place)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        progress = TqdmProgress(sys.stderr) if sys.stderr.isatty() and not options["no_progress"] else None
        try:
            report = sync_trainings(options["root"], progress=progress, full=options["full"])
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if progress:
                progress.close()
        for problem in report.problems:
            self.stderr.write(problem)
        if report.missing:
            self.stdout.write(f"marked missing {report.missing} (their folders are gone; the rows are kept)")
        self.stdout.write(report.line())
