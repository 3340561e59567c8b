"""``python manage.py empty_trash [--older-than DAYS]``: remove for good the runs deleted that long ago.

DAYS defaults to ``GYMNOS_TRASH_DAYS`` (30); 0 empties the whole trash. Prints each run removed and
the bytes freed. Exit code 0, or 1 if a folder could not be removed (it is named, and left there).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from experiments.curation.trash import empty_trash
from experiments.management.arguments import whole_number


class Command(BaseCommand):
    help = "Remove for good the runs in the trash that were deleted DAYS ago or more (default GYMNOS_TRASH_DAYS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=whole_number(0, "days"),
            default=None,
            metavar="DAYS",
            help=f"days since deletion (default: GYMNOS_TRASH_DAYS, now {settings.GYMNOS_TRASH_DAYS}); 0: everything",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than"] if options["older_than"] is not None else settings.GYMNOS_TRASH_DAYS
        report = empty_trash(dt.timedelta(days=days))
        for where in report.removed:
            self.stdout.write(f"removed {where}")
        for problem in report.problems:
            self.stderr.write(problem)
        self.stdout.write(
            f"emptied the trash of {len(report.removed)} run{'s' if len(report.removed) != 1 else ''} deleted "
            f"{days} or more days ago: {report.bytes:,} bytes ({filesizeformat(report.bytes)}) freed"
        )
        if report.problems:
            raise CommandError(f"{len(report.problems)} could not be removed", returncode=1)
