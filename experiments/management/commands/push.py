"""``python manage.py push FOLDER_OR_ROOT --server URL --token TOKEN``: upload run folders to another Gymnos.

The work is ``gymnos_track.push`` (which a script can call at its end, and ``python -m gymnos_track.push``
runs where Django is not installed): resumable, idempotent, several folders at once. Exit code 0 when
every folder is there, 1 when the server refused one (its reason printed), 2 for a wrong argument.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gymnos_track.push import WORKERS, PushError, push


class Command(BaseCommand):
    help = "Push run folders (a trainings root or one run folder) to a Gymnos server; resumable and idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="a trainings root (<experiment>/executions/<run>/...) or one run folder")
        parser.add_argument("--server", required=True, help="the Gymnos server's URL, e.g. https://gymnos.example")
        parser.add_argument(
            "--token",
            default=os.environ.get("GYMNOS_TOKEN"),
            help="an API token of the server's (manage.py api_token USER --push-only); default: $GYMNOS_TOKEN",
        )
        parser.add_argument("--workers", type=int, default=WORKERS, help=f"folders pushed at once (default {WORKERS})")
        parser.add_argument(
            "--project",
            default=None,
            help="the server's project to push into (the editor role there); default: the token's project when it "
            "is limited to one, else default",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["token"]:
            raise CommandError(
                "--token is required (or set GYMNOS_TOKEN); make one with manage.py api_token", returncode=2
            )
        try:
            report = push(
                options["path"],
                options["server"],
                options["token"],
                workers=options["workers"],
                progress=self.stdout,
                project=options["project"],
            )
        except (PushError, PermissionError, OSError) as exc:
            raise CommandError(f"push failed: {exc}") from exc
        if report.refused:
            for name, reason in report.refused.items():
                self.stderr.write(f"{name}: {reason}")
            sys.exit(1)
