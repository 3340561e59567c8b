"""The execution folder and its log: ``<root>/<dataset>/executions/<%H-%M-%S__%d-%m-%Y>/``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from gymnos_track.layout import LOG_FORMAT
from gymnos_track.layout import create_execution_dir as create_execution_dir  # the folder's name: one rule

from . import fileops

# metrics.json's ``elapsed``: the seconds of each stage of a run, in the order they run.
STAGES = ("load_data", "transform_preprocessors", "fit_transformers", "transform_transformers", "fit_model",
          "evaluate_model")  # fmt: skip


class _Formatter(logging.Formatter):
    """The seed's line format: the component is the last part of the logger name (``Trainer``)."""

    def format(self, record: logging.LogRecord) -> str:
        record.component = record.name.rsplit(".", 1)[-1]
        return super().format(record)


class ExecutionLog:
    """Collects the ``gymnosd`` log of one run; writes it to ``execution.log`` once the folder exists.

    The seed's log begins with lines from before the folder is created ("Building Keras model"),
    so records are held in memory until ``attach(folder)``.
    """

    def __init__(self, console_stream: IO[str] | None = None, console_level: int = logging.INFO) -> None:
        self.logger = logging.getLogger("gymnosd")
        self.formatter = _Formatter(LOG_FORMAT)
        self.buffer: list[logging.LogRecord] = []
        self.file_handler: logging.FileHandler | None = None
        self.console: logging.StreamHandler[IO[str]] | None = None
        if console_stream is not None:
            self.console = logging.StreamHandler(console_stream)
            self.console.setLevel(console_level)
            self.console.setFormatter(self.formatter)

    def __enter__(self) -> ExecutionLog:
        self._previous = (self.logger.level, self.logger.propagate)
        self.logger.setLevel(logging.DEBUG)
        # Libraries (absl, MLflow) configure the root logger; the run's lines go only where we send them.
        self.logger.propagate = False
        _quiet_legacy_h5_warning()
        self._buffering = _Collector(self.buffer)
        self.logger.addHandler(self._buffering)
        if self.console:
            self.logger.addHandler(self.console)
        return self

    def attach(self, folder: str | Path) -> None:
        self.path = Path(folder) / "execution.log"
        self.file_handler = logging.FileHandler(self.path, encoding="utf-8")
        self.file_handler.setFormatter(self.formatter)
        self.file_handler.setLevel(logging.DEBUG)
        for record in self.buffer:
            self.file_handler.handle(record)
        self.logger.removeHandler(self._buffering)
        self.logger.addHandler(self.file_handler)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        for handler in (self._buffering, self.file_handler, self.console):
            if handler is not None:
                self.logger.removeHandler(handler)
        if self.file_handler:
            self.file_handler.close()
        self.logger.setLevel(self._previous[0])
        self.logger.propagate = self._previous[1]
        return False


class _Collector(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _DropLegacyH5Warning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "HDF5 file via `model.save()`" not in record.getMessage()


def _quiet_legacy_h5_warning() -> None:
    """Keras warns on every ``.h5`` save; the seed's contract *is* model.h5, so say it once in the docs instead."""
    absl = logging.getLogger("absl")
    if not any(isinstance(f, _DropLegacyH5Warning) for f in absl.filters):
        absl.addFilter(_DropLegacyH5Warning())


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (a reader never sees half a file). NaN/Infinity stay as Python writes them.

    Through ``fileops.write`` in the file's folder: a link at ``path`` is replaced, never written through.
    """
    path = Path(path)
    text = json.dumps(data, indent=4, default=_jsonable) + "\n"
    fileops.write(path.parent, path.name, text.encode("utf-8"))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
