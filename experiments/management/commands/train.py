"""``python manage.py train CONFIG``: validate, train, print the execution folder's path last.

Exit codes: 0 trained, 1 the training failed (its folder keeps the log and the error),
2 the config is invalid (every problem is listed, nothing is written).
When a run ends, failed or not, its folder is indexed in the database (``experiments.index.sync``).
"""

from __future__ import annotations

import gc
import re
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from experiments.index.sync import SyncReport, sync_folder
from experiments.models.projects import (
    DEFAULT_PROJECT,
    PROJECT_NAME_PATTERN,
    project_name_validator,
    project_root,
)
from experiments.pipeline import ConfigError, load_config, run_experiment
from experiments.pipeline.build_check import all_problems
from experiments.pipeline.config import read_config_file
from experiments.pipeline.preload import import_frameworks
from experiments.pipeline.trackers import preconnect

if TYPE_CHECKING:
    from experiments.pipeline import ExecutionResult


def train(
    config_path: str | Path,
    trainings_root: Path,
    cache_dir: Path,
    stdout: IO[str],
    stderr: IO[str],
    progress: bool = True,
) -> tuple[int, ExecutionResult | None]:
    """Run one config file; returns ``(exit_code, ExecutionResult or None)``.

    The schema is checked first, before TensorFlow is imported. Then the frameworks load (the MLflow
    client starting beside them) and the build check asks Keras about the layers; only then is anything
    written. A config the schema refuses still has its components asked about, so every problem of it
    is listed at once (``build_check.all_problems``).
    """
    source = str(config_path)
    try:
        data = read_config_file(config_path)
    except ConfigError as exc:  # not a config at all: nothing to build
        stderr.write(f"Invalid config: {exc}\n")
        return 2, None
    try:
        preconnect(load_config(data, source=source).tracking.trackers, trainings_root)  # the MLflow client starts early
    except ConfigError:
        pass  # all_problems says what, once the frameworks are here to ask about its components too
    import_frameworks()
    config, problems = all_problems(data, source=source)
    if config is None or problems:
        stderr.write(f"Invalid config: {ConfigError(problems, str(config_path))}\n")
        return 2, None
    result = run_experiment(
        config,
        trainings_root=trainings_root,
        cache_dir=cache_dir,
        console_stream=stderr,
        progress_stream=stderr if progress else None,
    )
    if not result.succeeded:
        assert result.path is not None  # a failed run keeps its folder too
        stderr.write(f"Training failed: {result.error}\nThe log is in {result.path / 'execution.log'}\n")
    return (0 if result.succeeded else 1), result


def index(folder: Path, trainings_root: Path, stderr: IO[str]) -> SyncReport | None:
    """Index the folder a run just wrote; a database that is not set up only costs a warning."""
    try:
        report = sync_folder(folder, trainings_root)
    except DatabaseError as exc:
        stderr.write(
            f"Not indexed in the database ({str(exc).strip()}); "
            "run `python manage.py migrate`, then `python manage.py sync_trainings`\n"
        )
        return None
    for problem in report.problems:
        stderr.write(f"Indexed with a problem: {problem}\n")
    return report


class Command(BaseCommand):
    help = "Train a Gymnos config and write its execution folder; prints the folder's path last."
    # Django's system checks import every URL and view module: a second per run, for nothing the
    # engine needs (`manage.py check` still runs them).
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("config", help="path to a training config (JSON), e.g. examples/boston_housing.json")
        parser.add_argument(
            "--trainings-root",
            default=None,
            help=f"where execution folders go (default: {settings.GYMNOS_TRAININGS_ROOT})",
        )
        parser.add_argument(
            "--cache-dir", default=None, help=f"where datasets are cached (default: {settings.GYMNOS_CACHE_DIR})"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
        parser.add_argument(
            "--project",
            default=DEFAULT_PROJECT,
            help="the project the run belongs to: its folder goes under <trainings root>/projects/PROJECT/ "
            "(default: default, at the root itself)",
        )

    def run_from_argv(self, argv: list[str]) -> None:
        """From the command line only (not ``call_command``): the process exits right after."""
        try:
            super().run_from_argv(argv)
        finally:
            # Everything is written, closed and indexed. Frozen, the objects left are skipped by the
            # interpreter's last collections over TensorFlow's: the command returns ~0.9 s sooner.
            gc.freeze()

    def handle(self, *args: Any, **options: Any) -> None:
        trainings_root = Path(options["trainings_root"] or settings.GYMNOS_TRAININGS_ROOT)
        cache_dir = Path(options["cache_dir"] or settings.GYMNOS_CACHE_DIR)
        progress = sys.stderr.isatty() and not options["no_progress"]
        project = options["project"]
        if not re.fullmatch(PROJECT_NAME_PATTERN, project):
            raise CommandError(f"--project {project!r}: {project_name_validator.message}")
        folders_root = project_root(trainings_root, project)
        code, result = train(options["config"], folders_root, cache_dir, sys.stdout, sys.stderr, progress=progress)
        if result is not None and result.path is not None:
            index(result.path, trainings_root, sys.stderr)
            self.stdout.write(str(result.path))
        sys.stdout.flush()
        if code:
            sys.exit(code)
