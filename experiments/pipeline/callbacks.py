"""Training callbacks configured by name: ``{"type": "early_stopping", "patience": 3}``.

Each callback is a pydantic model (a member of the ``Callback`` union on ``type``): its fields
are the arguments it accepts, checked before anything trains; ``metric_refs()`` names the
metrics it will look up (checked against what the run logs, once Keras has named them); and
``build(folder)`` makes the Keras callback. Files a callback writes go under
``<execution>/callbacks/<type>/``.

Two callbacks need code, which a config cannot hold: ``learning_rate_scheduler`` names a
schedule (``schedules.py``) and ``lambda_callback`` names functions by dotted path, importable
only from the modules an administrator lists in ``GYMNOS_CALLBACK_MODULES``.
"""

from __future__ import annotations

import inspect
import logging
import string
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from . import allowlist, schedules
from .errors import ComponentError, invalid
from .schema import Component, Explained, UnionKind

if TYPE_CHECKING:
    import keras

log = logging.getLogger("gymnosd.Trainer")

EXECUTION_HEADER = "X-Gymnos-Execution"
# What model_checkpoint saves a whole model as (weights alone: .weights.h5), and what readers of a
# folder count as a checkpoint (older runs also wrote .hdf5).
MODEL_SUFFIXES = (".h5", ".keras")
CHECKPOINT_SUFFIXES = (*MODEL_SUFFIXES, ".hdf5")


def relative_path_problem(value: str) -> str | None:
    """Why a path a callback writes would leave the execution folder, or None."""
    if not value.strip():
        return f"must be a non-empty relative file name, got {value!r}"
    posix, windows = PurePosixPath(value), PureWindowsPath(value)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        return f"must be relative to the execution folder, got the absolute path {value!r}"
    if ".." in posix.parts or ".." in windows.parts:
        return f"must stay inside the execution folder; '..' is not allowed, got {value!r}"
    return None


def _relative(value: str) -> str:
    problem = relative_path_problem(value)
    if problem:
        raise invalid(problem)
    return value


RelativePath = Annotated[str, AfterValidator(_relative)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
MetricName = Annotated[str, Field(min_length=1)]
Mode = Literal["auto", "min", "max"]
Verbose = Literal[0, 1]


def template_fields(template: str) -> list[str]:
    """The names a ``str.format`` template uses: ``weights.{epoch:02d}-{val_loss:.2f}.h5`` -> epoch, val_loss.

    Raises ValueError saying what is wrong with the template.
    """
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise ValueError(f"is not a valid file name template ({exc}), got {template!r}") from exc
    for field in fields:
        if not field.isidentifier():
            raise ValueError(
                f"placeholders must be plain names like {{epoch:02d}} or {{val_loss:.2f}}, got {{{field}}}"
            )
    try:
        template.format(**{field: 1 for field in fields})
    except (ValueError, IndexError) as exc:
        raise ValueError(f"has a format that does not fit a number ({exc}), got {template!r}") from exc
    return fields


class CallbackSpec(Component):
    """What every callback model offers the trainer."""

    def metric_refs(self) -> list[tuple[str, str]]:
        """``[(key, metric name)]`` this callback will look up in the epoch logs."""
        return []

    def check_build(self) -> None:
        """Checks that need imports (a hook's function); raise ``ComponentError`` at the key."""

    def build(self, folder: Path) -> keras.callbacks.Callback | None:
        """The Keras callback (None: nothing to add); ``folder`` is ``<execution>/callbacks/<type>``."""
        raise NotImplementedError

    def keras_arguments(self) -> dict[str, Any]:
        return self.model_dump(exclude={"type"})


class MonitorCallback(CallbackSpec):
    """A Keras callback that watches one logged metric, built from the class Keras names ``keras_name``."""

    keras_name: ClassVar[str] = ""
    monitor: MetricName = "val_loss"
    mode: Mode = "auto"
    verbose: Verbose = 0

    def metric_refs(self) -> list[tuple[str, str]]:
        return [("monitor", self.monitor)]

    def build(self, folder: Path) -> keras.callbacks.Callback:
        import keras

        return getattr(keras.callbacks, self.keras_name)(**self.keras_arguments())


class EarlyStopping(MonitorCallback):
    """Stop when ``monitor`` stops improving."""

    keras_name: ClassVar[str] = "EarlyStopping"
    type: Literal["early_stopping"]
    min_delta: NonNegativeFloat = 0
    patience: NonNegativeInt = 0
    baseline: float | None = None
    restore_best_weights: bool = False
    start_from_epoch: NonNegativeInt = 0


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls."""

    keras_name: ClassVar[str] = "ReduceLROnPlateau"
    type: Literal["reduce_lr_on_plateau"]
    factor: Annotated[float, Field(gt=0, lt=1), Explained("a number between 0 and 1 (exclusive)")] = 0.1
    patience: NonNegativeInt = 10
    min_delta: NonNegativeFloat = 0.0001
    cooldown: NonNegativeInt = 0
    min_lr: NonNegativeFloat = 0.0


class TerminateOnNaN(CallbackSpec):
    """Stop in the batch where the loss becomes NaN or infinite (``raise_error``: fail the run instead)."""

    type: Literal["terminate_on_nan"]
    raise_error: bool = False

    def build(self, folder: Path) -> keras.callbacks.Callback:
        from .keras_callbacks import LoggedTerminateOnNaN

        return LoggedTerminateOnNaN(raise_error=self.raise_error)


class ProgbarLogger(CallbackSpec):
    """Keras's progress on the worker's stdout: ``verbose`` 1 a bar, 2 one line per epoch."""

    type: Literal["progbar_logger"]
    verbose: Literal[1, 2] = 1

    def build(self, folder: Path) -> keras.callbacks.Callback:
        from .keras_callbacks import EpochProgbarLogger

        return EpochProgbarLogger(verbose=self.verbose)


class CSVLogger(CallbackSpec):
    """One CSV row per epoch, in ``callbacks/csv_logger/training.log`` unless ``filename`` says otherwise."""

    type: Literal["csv_logger"]
    filename: RelativePath = "training.log"
    separator: Annotated[str, Field(min_length=1, max_length=1), Explained('a single character such as "," or ";"')] = (
        ","
    )
    append: bool = False

    def build(self, folder: Path) -> keras.callbacks.Callback:
        import keras

        path = folder / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        return keras.callbacks.CSVLogger(str(path), separator=self.separator, append=self.append)


class TensorBoard(CallbackSpec):
    """Keras's TensorBoard logs in ``callbacks/tensorboard/`` (``log_dir``, if given, is a folder inside it)."""

    type: Literal["tensorboard"]
    log_dir: RelativePath | None = None
    histogram_freq: NonNegativeInt = 0
    write_graph: bool = True
    write_images: bool = False
    write_steps_per_second: bool = False
    update_freq: Annotated[
        Literal["epoch", "batch"] | PositiveInt, Explained('"epoch", "batch" or a positive whole number of batches')
    ] = "epoch"
    profile_batch: Annotated[
        NonNegativeInt | Annotated[list[PositiveInt], Field(min_length=2, max_length=2)],
        Explained("0 (off), a batch number, or [first, last] batch numbers"),
    ] = 0
    embeddings_freq: NonNegativeInt = 0
    embeddings_metadata: RelativePath | dict[str, RelativePath] | None = None

    def build(self, folder: Path) -> keras.callbacks.Callback:
        import keras

        arguments = self.keras_arguments()
        arguments["log_dir"] = str(folder / (self.log_dir or "."))
        return keras.callbacks.TensorBoard(**arguments)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid(f'must be an http:// or https:// URL with a host, such as "http://localhost:8000", got {value!r}')
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise invalid(f'must be a path starting with "/", such as "/publish/epoch/end/", got {value!r}')
    return value


class RemoteMonitor(CallbackSpec):
    """POST each epoch's logs to ``root + path`` (Keras's RemoteMonitor, with a ``timeout`` in seconds).

    Keras's payload says nothing of the run, so each request also carries the header
    ``X-Gymnos-Execution: <dataset>/<execution folder>`` for the receiver to file it under.
    """

    type: Literal["remote_monitor"]
    root: Annotated[str, AfterValidator(_http_url)] = "http://localhost:9000"
    path: Annotated[str, AfterValidator(_url_path)] = "/publish/epoch/end/"
    field: Annotated[str, Field(min_length=1)] = "data"
    headers: dict[str, str] | None = None
    send_as_json: bool = False
    timeout: Annotated[float, Field(gt=0)] = 10

    @model_validator(mode="after")
    def _host_allowed(self) -> RemoteMonitor:
        problem = allowlist.url_problem(self.root + self.path)
        if problem:
            raise invalid(problem, "root")
        return self

    def build(self, folder: Path) -> keras.callbacks.Callback:
        from .keras_callbacks import TimeoutRemoteMonitor

        problem = allowlist.url_problem(self.root + self.path)  # again: the worker's variable decides
        if problem:
            raise ComponentError(problem, "root")
        execution = folder.parent.parent  # <trainings>/<dataset>/executions/<execution>/callbacks/remote_monitor
        headers = {EXECUTION_HEADER: f"{execution.parent.parent.name}/{execution.name}", **(self.headers or {})}
        return TimeoutRemoteMonitor(
            root=self.root,
            path=self.path,
            field=self.field,
            headers=headers,
            send_as_json=self.send_as_json,
            timeout=self.timeout,
        )


class LearningRateScheduler(CallbackSpec):
    """Set the rate at each epoch's start from a named schedule: ``{"schedule": "step_decay", "drop": 0.5}``."""

    selectors: ClassVar[tuple[str, ...]] = ("type", "schedule")
    type: Literal["learning_rate_scheduler"]
    verbose: Verbose = 0

    def build(self, folder: Path) -> keras.callbacks.Callback:
        from .keras_callbacks import LoggedLearningRateScheduler

        assert isinstance(self, schedules.Schedule)
        return LoggedLearningRateScheduler(self, verbose=self.verbose)

    @classmethod
    def label(cls) -> str:
        return f"the {cls.model_fields['schedule'].annotation.__args__[0]} schedule"  # type: ignore[union-attr]


class StepDecayScheduler(LearningRateScheduler, schedules.StepDecay):
    __doc__ = schedules.StepDecay.__doc__


class ExponentialDecayScheduler(LearningRateScheduler, schedules.ExponentialDecay):
    __doc__ = schedules.ExponentialDecay.__doc__


class CosineDecayScheduler(LearningRateScheduler, schedules.CosineDecay):
    __doc__ = schedules.CosineDecay.__doc__


def _hook_path(value: str) -> str:
    problem = allowlist.module_problem(value)
    if problem:
        raise invalid(problem)
    return value


HookPath = Annotated[str, AfterValidator(_hook_path)]


class LambdaCallback(CallbackSpec):
    """Call functions at points of the training, each named by dotted path: ``{"on_epoch_end": "team_hooks.notify"}``.

    Configs may come from the web, so a path is imported only if its module is listed in
    ``GYMNOS_CALLBACK_MODULES``; anything else is rejected without being imported.
    """

    type: Literal["lambda_callback"]
    on_epoch_begin: HookPath | None = None
    on_epoch_end: HookPath | None = None
    on_train_begin: HookPath | None = None
    on_train_end: HookPath | None = None
    on_train_batch_begin: HookPath | None = None
    on_train_batch_end: HookPath | None = None

    # hook -> the arguments Keras gives it (the function is called with them, positionally)
    HOOKS: ClassVar[dict[str, tuple[str, ...]]] = {
        "on_epoch_begin": ("epoch", "logs"),
        "on_epoch_end": ("epoch", "logs"),
        "on_train_begin": ("logs",),
        "on_train_end": ("logs",),
        "on_train_batch_begin": ("batch", "logs"),
        "on_train_batch_end": ("batch", "logs"),
    }

    @model_validator(mode="after")
    def _some_hook(self) -> LambdaCallback:
        if not self.hooks():
            example = '"on_epoch_end": "your_module.your_function"'
            raise invalid(f"needs at least one hook, such as {example} (hooks: {', '.join(self.HOOKS)})")
        return self

    def hooks(self) -> dict[str, str]:
        return {hook: path for hook in self.HOOKS if (path := getattr(self, hook)) is not None}

    def functions(self) -> dict[str, Any]:
        """Each hook's function, imported (its module is allowed) and checked against the hook's arguments."""
        functions = {}
        for hook, path in self.hooks().items():
            function = allowlist.import_allowed(path, hook)
            arguments = self.HOOKS[hook]
            try:
                inspect.signature(function).bind(*arguments)
            except TypeError:
                raise ComponentError(
                    f"'{path}' must take ({', '.join(arguments)}) to be used as {hook}", hook
                ) from None
            except ValueError:  # builtins without a signature: trust them
                pass
            functions[hook] = function
        return functions

    def check_build(self) -> None:
        self.functions()

    def build(self, folder: Path) -> keras.callbacks.Callback:
        from .keras_callbacks import lambda_callback

        return lambda_callback(self.functions())


class BuiltIn(CallbackSpec):
    """A callback every Keras 3 ``fit()`` already has: accepted for old configs, adds nothing.

    ``why`` goes to the log.
    """

    why: ClassVar[str] = ""

    def build(self, folder: Path) -> None:
        log.info(f"Callback {self.type}: {self.why}; nothing to add")  # type: ignore[attr-defined]
        return None


class BaseLogger(BuiltIn):
    why: ClassVar[str] = "Keras 3 averages the epoch metrics itself (BaseLogger is built into Keras 3)"
    type: Literal["base_logger"]


class History(BuiltIn):
    why: ClassVar[str] = (
        "Keras 3 records the History of every fit "
        "(History is built into Keras 3; the epoch metrics are in metrics.json)"
    )
    type: Literal["history"]


class ModelCheckpoint(CallbackSpec):
    """Save the model every ``period`` epochs (Keras 3 dropped ``period``; Gymnos brings it back).

    ``filepath`` is a template filled with ``epoch`` and the epoch's logs, as in the seed:
    ``weights.{epoch:02d}-{val_loss:.2f}.h5`` gives ``weights.05-27.07.h5``. ``keep`` keeps only
    the last N files it saved, ``keep_best`` the N best by ``monitor`` (both: a file either keeps
    survives); each file it removes is named in execution.log.
    """

    type: Literal["model_checkpoint"]
    filepath: RelativePath = "weights.{epoch:02d}.h5"
    period: Annotated[int, Field(gt=0), Explained("a positive integer (save every N epochs)")] = 1
    monitor: MetricName = "val_loss"
    save_best_only: bool = False
    save_weights_only: bool = False
    mode: Mode = "auto"
    verbose: Verbose = 0
    keep: Annotated[int, Field(gt=0), Explained("a positive integer (keep the last N checkpoint files)")] | None = None
    keep_best: (
        Annotated[int, Field(gt=0), Explained("a positive integer (keep the N best checkpoint files by monitor)")]
        | None
    ) = None

    @model_validator(mode="after")
    def _check_filepath(self) -> ModelCheckpoint:
        try:
            template_fields(self.filepath)
        except ValueError as exc:
            raise invalid(str(exc), "filepath") from None
        if self.save_weights_only and not self.filepath.endswith(".weights.h5"):
            raise invalid("must end in .weights.h5 when save_weights_only is true (Keras 3 requires it)", "filepath")
        if not self.save_weights_only and not self.filepath.endswith(MODEL_SUFFIXES):
            raise invalid(f"must end in .h5 or .keras, got {self.filepath!r}", "filepath")
        return self

    def metric_refs(self) -> list[tuple[str, str]]:
        refs = [("filepath", field) for field in template_fields(self.filepath) if field != "epoch"]
        if self.save_best_only or self.keep_best:
            refs.append(("monitor", self.monitor))
        return refs

    def build(self, folder: Path) -> keras.callbacks.Callback:
        from .keras_callbacks import PeriodicModelCheckpoint

        arguments = self.keras_arguments()
        arguments["filepath"] = str(folder / self.filepath)
        # Removed files are named from the execution folder: callbacks/model_checkpoint/weights.05.h5.
        return PeriodicModelCheckpoint(**arguments, shown_from=str(folder.parent.parent))


Scheduler = Annotated[
    Union[StepDecayScheduler, ExponentialDecayScheduler, CosineDecayScheduler],  # noqa: UP007 - a discriminated union
    Field(discriminator="schedule"),
    UnionKind("schedule"),
]
Callback = Annotated[
    Union[  # noqa: UP007 - a discriminated union
        EarlyStopping,
        ModelCheckpoint,
        TerminateOnNaN,
        ProgbarLogger,
        CSVLogger,
        ReduceLROnPlateau,
        TensorBoard,
        RemoteMonitor,
        Scheduler,
        LambdaCallback,
        BaseLogger,
        History,
    ],
    Field(discriminator="type"),
    UnionKind("callback type"),
]

# Every callback type a config may name, with its model (the schedulers share one type).
CALLBACK_TYPES: dict[str, type[CallbackSpec]] = {
    str(model.model_fields["type"].annotation.__args__[0]): model  # type: ignore[union-attr]
    for model in (
        EarlyStopping, ModelCheckpoint, TerminateOnNaN, ProgbarLogger, CSVLogger, ReduceLROnPlateau, TensorBoard,
        RemoteMonitor, LearningRateScheduler, LambdaCallback, BaseLogger, History,
    )
}  # fmt: skip
