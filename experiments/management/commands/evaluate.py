"""``python manage.py evaluate FOLDER [FOLDER ...]``: write evaluation.json for runs made before it existed.

Each folder's ``training_config.json`` and ``model.h5`` are read, the dataset is split again with the
run's seed, and the report is written as a finished run would have written it; then the folder is
indexed (when it lies under the trainings root), so the dashboard shows it at once.

Exit codes: 0 every folder evaluated; 1 a folder could not be (not a run, no model.h5, the data changed);
2 a folder's config no longer validates (every problem is listed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError

from experiments.index.sync import sync_folder
from experiments.pipeline import ConfigError
from experiments.pipeline.evaluation.rebuild import EvaluationError, evaluate_folder
from experiments.pipeline.execution import ExecutionLog
from experiments.pipeline.preload import import_frameworks


class Writer(Protocol):
    """A text stream: ``sys.stdout``, or a command's ``self.stdout`` (every line written ends in a newline)."""

    def write(self, text: str) -> Any: ...


def _under(folder: Path, root: Path) -> bool:
    real, base = os.path.realpath(folder), os.path.realpath(root)
    return real.startswith(base + os.sep)


def evaluate(folders: list[str], cache_dir: Path, trainings_root: Path, stdout: Writer, stderr: Writer) -> int:
    """Evaluate each folder in turn; returns the exit code (the worst of them)."""
    import_frameworks()
    code = 0
    for name in folders:
        folder = Path(name)
        try:
            with ExecutionLog(console_stream=sys.stderr):
                report = evaluate_folder(folder, cache_dir)
        except ConfigError as exc:
            stderr.write(f"{folder}: its training_config.json no longer validates: {exc}\n")
            code = max(code, 2)
            continue
        except EvaluationError as exc:
            stderr.write(f"{exc}\n")
            code = max(code, 1)
            continue
        numbers = ", ".join(f"{key} {value:.4g}" for key, value in report["headline"].items() if value is not None)
        stdout.write(
            f"{folder / 'evaluation.json'}: {report['task']} on the {report['split']} split "
            f"({report.get('evaluated', 0)} samples){': ' + numbers if numbers else ''}\n"
        )
        for item in report["not_computed"]:
            stdout.write(f"  not computed: {item['what']}: {item['why']}\n")
        if not _under(folder, trainings_root):
            stderr.write(f"{folder} is not under the trainings root ({trainings_root}); not indexed\n")
            continue
        try:
            sync_folder(folder, trainings_root)
        except DatabaseError as exc:
            stderr.write(f"Not indexed in the database ({str(exc).strip()}); run `python manage.py sync_trainings`\n")
    return code


class Command(BaseCommand):
    help = "Write evaluation.json for existing execution folders (from their model.h5 and config), and index them."
    requires_system_checks = []  # as `train`: the engine needs none of the URL and view modules

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "folders", nargs="+", help="execution folders, e.g. trainings/iris/executions/06-16-31__08-04-2019"
        )
        parser.add_argument(
            "--cache-dir", default=None, help=f"where datasets are cached (default: {settings.GYMNOS_CACHE_DIR})"
        )
        parser.add_argument(
            "--trainings-root",
            default=None,
            help=f"folders under it are indexed afterwards (default: {settings.GYMNOS_TRAININGS_ROOT})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        cache_dir = Path(options["cache_dir"] or settings.GYMNOS_CACHE_DIR)
        root = Path(options["trainings_root"] or settings.GYMNOS_TRAININGS_ROOT)
        code = evaluate(options["folders"], cache_dir, root, self.stdout, self.stderr)
        self.stdout.flush()
        if code:
            sys.exit(code)
