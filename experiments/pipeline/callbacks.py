"""Training callbacks configured by name: ``{"type": "early_stopping", "patience": 3}``.

Each entry of ``CALLBACKS`` says how to check a spec's arguments (before anything trains),
which metric names it refers to (checked against what the run will log), and how to build
the Keras callback. Files a callback writes go under ``<execution>/callbacks/<type>/``.

Keras callbacks take their Keras arguments as keys. Two need code, which a config cannot
hold: ``learning_rate_scheduler`` names a schedule (see ``schedules.py``) and
``lambda_callback`` names functions by dotted path, importable only from the modules an
administrator lists in ``GYMNOS_CALLBACK_MODULES``.
"""

from __future__ import annotations

import inspect
import logging
import string
from pathlib import PurePosixPath, PureWindowsPath

from . import allowlist, schedules, values
from .errors import SpecError, did_you_mean, unknown_type_message

log = logging.getLogger("gymnosd.Trainer")

EXECUTION_HEADER = "X-Gymnos-Execution"


def check_relative_path(value, key):
    """A path a callback writes must stay inside the execution folder."""
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"must be a non-empty relative file name, got {value!r}", key)
    posix, windows = PurePosixPath(value), PureWindowsPath(value)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise SpecError(f"must be relative to the execution folder, got the absolute path {value!r}", key)
    if ".." in posix.parts or ".." in windows.parts:
        raise SpecError(f"must stay inside the execution folder; '..' is not allowed, got {value!r}", key)


def template_fields(template, key):
    """The names a ``str.format`` template uses: ``weights.{epoch:02d}-{val_loss:.2f}.h5`` -> epoch, val_loss."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise SpecError(f"is not a valid file name template ({exc}), got {template!r}", key) from exc
    for field in fields:
        if not field.isidentifier():
            raise SpecError(
                f"placeholders must be plain names like {{epoch:02d}} or {{val_loss:.2f}}, got {{{field}}}", key
            )
    try:
        template.format(**{field: 1 for field in fields})
    except (ValueError, IndexError) as exc:
        raise SpecError(f"has a format that does not fit a number ({exc}), got {template!r}", key) from exc
    return fields


def _check_kwargs_against(cls, kwargs, type_name, exclude=()):
    params = inspect.signature(cls.__init__).parameters
    accepted = [name for name in params if name not in {"self", "kwargs", *exclude}]
    for key in kwargs:
        if key not in accepted:
            raise SpecError(
                f"unknown argument for {type_name}{did_you_mean(key, accepted)} (it accepts: {', '.join(accepted) or 'nothing'})",
                key,
            )


def _check_keys(type_name, kwargs, accepted, hint=""):
    for key in kwargs:
        if key not in accepted:
            listing = f"it accepts: {', '.join(accepted)}" if accepted else "it takes no arguments"
            raise SpecError(f"unknown argument for {type_name}{did_you_mean(key, accepted)} ({listing}){hint}", key)


def _construct(cls, kwargs, type_name):
    try:
        return cls(**kwargs)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0]
        named = next((key for key in kwargs if key in message), "")
        raise SpecError(f"{type_name} rejected its arguments: {message}", named) from exc


# The Keras arguments several callbacks share, checked here so a wrong value is named at its
# path (Keras would accept many of them and fail mid-training, or warn and carry on).
ARGUMENT_CHECKS = {
    "monitor": values.non_empty_string,
    "mode": values.one_of("auto", "min", "max"),
    "patience": values.non_negative_int,
    "cooldown": values.non_negative_int,
    "start_from_epoch": values.non_negative_int,
    "min_delta": values.non_negative_number,
    "min_lr": values.non_negative_number,
    "factor": values.open_fraction,
    "baseline": values.optional_number,
    "verbose": values.one_of(0, 1),
    "restore_best_weights": values.boolean,
    "raise_error": values.boolean,
    "append": values.boolean,
    "separator": values.one_character,
    "histogram_freq": values.non_negative_int,
    "embeddings_freq": values.non_negative_int,
    "write_graph": values.boolean,
    "write_images": values.boolean,
    "write_steps_per_second": values.boolean,
    "update_freq": values.update_freq,
    "profile_batch": values.profile_batch,
}


def check_values(kwargs, checks=ARGUMENT_CHECKS):
    for key, value in kwargs.items():
        check = checks.get(key)
        problem = check(value) if check else None
        if problem:
            raise SpecError(problem, key)


class CallbackType:
    """How one config ``type`` becomes a Keras callback. Subclasses override what differs."""

    name = ""

    def check(self, kwargs):
        """Raise SpecError for a bad argument."""

    def metric_refs(self, kwargs):
        """``[(key, metric name)]`` this callback will look up in the epoch logs."""
        return []

    def build(self, kwargs, folder):
        """Return a ``keras.callbacks.Callback`` (or None: nothing to add); ``folder`` is ``<execution>/callbacks/<type>``."""
        raise NotImplementedError


class KerasCallback(CallbackType):
    """A ``keras.callbacks`` class taking the spec's keys as its arguments.

    ``keras_name`` names the Keras class whose signature says which keys are accepted;
    ``build_class`` (in ``keras_callbacks``) is built instead where Gymnos adds to it.
    ``monitors`` maps an argument naming a logged metric to its Keras default.
    """

    keras_name = ""
    build_class = ""
    monitors: dict = {}

    def keras_class(self):
        import keras

        return getattr(keras.callbacks, self.keras_name)

    def check(self, kwargs):
        _check_kwargs_against(self.keras_class(), kwargs, self.name)
        check_values(kwargs)
        _construct(self.keras_class(), kwargs, self.name)

    def metric_refs(self, kwargs):
        return [(key, kwargs.get(key, default)) for key, default in self.monitors.items()]

    def build(self, kwargs, folder):
        if self.build_class:
            from . import keras_callbacks

            return getattr(keras_callbacks, self.build_class)(**kwargs)
        return self.keras_class()(**kwargs)


class EarlyStopping(KerasCallback):
    name = "early_stopping"
    keras_name = "EarlyStopping"
    monitors = {"monitor": "val_loss"}


class ReduceLROnPlateau(KerasCallback):
    name = "reduce_lr_on_plateau"
    keras_name = "ReduceLROnPlateau"
    monitors = {"monitor": "val_loss"}


class TerminateOnNaN(KerasCallback):
    name = "terminate_on_nan"
    keras_name = "TerminateOnNaN"
    build_class = "LoggedTerminateOnNaN"


class ProgbarLogger(CallbackType):
    """Keras's progress bar on the worker's stdout. Keras 3 dropped ``count_mode``; ``verbose`` picks the form."""

    name = "progbar_logger"
    checks = {"verbose": values.one_of(1, 2)}

    def check(self, kwargs):
        _check_keys(self.name, kwargs, self.checks, hint="; verbose is 1 for a progress bar, 2 for one line per epoch")
        check_values(kwargs, self.checks)

    def build(self, kwargs, folder):
        from .keras_callbacks import EpochProgbarLogger

        return EpochProgbarLogger(**kwargs)


class CSVLogger(KerasCallback):
    """One CSV row per epoch, in ``callbacks/csv_logger/training.log`` unless ``filename`` says otherwise."""

    name = "csv_logger"
    keras_name = "CSVLogger"

    def check(self, kwargs):
        args = {"filename": "training.log", **kwargs}
        check_relative_path(args["filename"], "filename")
        super().check(args)

    def build(self, kwargs, folder):
        import keras

        args = {"filename": "training.log", **kwargs}
        path = folder / args.pop("filename")
        path.parent.mkdir(parents=True, exist_ok=True)
        return keras.callbacks.CSVLogger(str(path), **args)


class TensorBoard(KerasCallback):
    """Keras's TensorBoard logs in ``callbacks/tensorboard/`` (``log_dir``, if given, is a folder inside it)."""

    name = "tensorboard"
    keras_name = "TensorBoard"

    def check(self, kwargs):
        if "log_dir" in kwargs:
            check_relative_path(kwargs["log_dir"], "log_dir")
        metadata = kwargs.get("embeddings_metadata")
        if isinstance(metadata, str):
            check_relative_path(metadata, "embeddings_metadata")
        elif isinstance(metadata, dict):
            for layer, path in metadata.items():
                check_relative_path(path, f"embeddings_metadata.{layer}")
        elif metadata is not None:
            raise SpecError(
                f"must be a file name or an object of layer name to file name, got {metadata!r}", "embeddings_metadata"
            )
        super().check(self._keras_args(kwargs, PurePosixPath("callbacks", self.name)))

    def _keras_args(self, kwargs, folder):
        return {**kwargs, "log_dir": str(folder / kwargs.get("log_dir", "."))}

    def build(self, kwargs, folder):
        import keras

        return keras.callbacks.TensorBoard(**self._keras_args(kwargs, folder))


class RemoteMonitor(CallbackType):
    """POST each epoch's logs to ``root + path`` (Keras's RemoteMonitor, with a ``timeout`` in seconds).

    Keras's payload says nothing of the run, so each request also carries the header
    ``X-Gymnos-Execution: <dataset>/<execution folder>`` for the receiver to file it under.
    """

    name = "remote_monitor"
    checks = {
        "root": values.url,
        "path": values.url_path,
        "field": values.non_empty_string,
        "headers": values.headers,
        "send_as_json": values.boolean,
        "timeout": values.positive_number,
    }
    defaults = {"root": "http://localhost:9000", "path": "/publish/epoch/end/"}

    def check(self, kwargs):
        _check_keys(self.name, kwargs, self.checks)
        check_values(kwargs, self.checks)
        args = {**self.defaults, **kwargs}
        allowlist.check_url_allowed(args["root"] + args["path"], "root")

    def build(self, kwargs, folder):
        from .keras_callbacks import TimeoutRemoteMonitor

        execution = folder.parent.parent  # <trainings>/<dataset>/executions/<execution>/callbacks/remote_monitor
        args = {**self.defaults, **kwargs}
        allowlist.check_url_allowed(args["root"] + args["path"], "root")  # again: the worker's variable decides
        args["headers"] = {
            EXECUTION_HEADER: f"{execution.parent.parent.name}/{execution.name}",
            **(args.get("headers") or {}),
        }
        return TimeoutRemoteMonitor(**args)


class LearningRateScheduler(CallbackType):
    """Set the rate at each epoch's start from a named schedule: ``{"schedule": "step_decay", "drop": 0.5}``."""

    name = "learning_rate_scheduler"
    own_keys = ("schedule", "verbose")

    def _split(self, kwargs):
        params = {key: value for key, value in kwargs.items() if key not in self.own_keys}
        return kwargs.get("schedule"), params

    def check(self, kwargs):
        check_values({key: kwargs[key] for key in ("verbose",) if key in kwargs})
        schedules.check_schedule(*self._split(kwargs), other_keys=self.own_keys)

    def build(self, kwargs, folder):
        from .keras_callbacks import LoggedLearningRateScheduler

        return LoggedLearningRateScheduler(
            schedules.make_schedule(*self._split(kwargs)), verbose=kwargs.get("verbose", 0)
        )


class LambdaCallback(CallbackType):
    """Call functions at points of the training, each named by dotted path: ``{"on_epoch_end": "team_hooks.notify"}``.

    Configs may come from the web, so a path is imported only if its module is listed in
    ``GYMNOS_CALLBACK_MODULES``; anything else is rejected without being imported.
    """

    name = "lambda_callback"
    # hook -> the arguments Keras gives it (the function is called with them, positionally)
    hooks = {
        "on_epoch_begin": ("epoch", "logs"),
        "on_epoch_end": ("epoch", "logs"),
        "on_train_begin": ("logs",),
        "on_train_end": ("logs",),
        "on_train_batch_begin": ("batch", "logs"),
        "on_train_batch_end": ("batch", "logs"),
    }

    def check(self, kwargs):
        _check_keys(self.name, kwargs, self.hooks)
        if not kwargs:
            raise SpecError(
                f'needs at least one hook, such as "on_epoch_end": "your_module.your_function" (hooks: {", ".join(self.hooks)})'
            )
        for hook, path in kwargs.items():
            function = allowlist.import_allowed(path, hook)
            arguments = self.hooks[hook]
            try:
                inspect.signature(function).bind(*arguments)
            except TypeError:
                raise SpecError(f"'{path}' must take ({', '.join(arguments)}) to be used as {hook}", hook) from None
            except ValueError:  # builtins without a signature: trust them
                pass

    def build(self, kwargs, folder):
        from .keras_callbacks import lambda_callback

        return lambda_callback({hook: allowlist.import_allowed(path, hook) for hook, path in kwargs.items()})


class BuiltIn(CallbackType):
    """A callback every Keras 3 ``fit()`` already has: accepted for old configs, adds nothing."""

    def __init__(self, name, what):
        self.name = name
        self.what = what

    def check(self, kwargs):
        _check_keys(self.name, kwargs, {})

    def build(self, kwargs, folder):
        log.info(f"Callback {self.name}: {self.what}; nothing to add")
        return None


class ModelCheckpoint(CallbackType):
    """Save the model every ``period`` epochs (Keras 3 dropped ``period``; this brings it back).

    ``filepath`` is a template filled with ``epoch`` and the epoch's logs, as in the seed:
    ``weights.{epoch:02d}-{val_loss:.2f}.h5`` gives ``weights.05-27.07.h5``.
    """

    name = "model_checkpoint"
    defaults = {
        "filepath": "weights.{epoch:02d}.h5",
        "period": 1,
        "monitor": "val_loss",
        "save_best_only": False,
        "save_weights_only": False,
        "mode": "auto",
        "verbose": 0,
    }

    def check(self, kwargs):
        for key in kwargs:
            if key not in self.defaults:
                raise SpecError(
                    f"unknown argument for {self.name}{did_you_mean(key, self.defaults)} (it accepts: {', '.join(self.defaults)})",
                    key,
                )
        args = {**self.defaults, **kwargs}
        check_relative_path(args["filepath"], "filepath")
        template_fields(args["filepath"], "filepath")
        period = args["period"]
        if not isinstance(period, int) or isinstance(period, bool) or period < 1:
            raise SpecError(f"must be a positive integer (save every N epochs), got {period!r}", "period")
        for flag in ("save_best_only", "save_weights_only"):
            if not isinstance(args[flag], bool):
                raise SpecError(f"must be true or false, got {args[flag]!r}", flag)
        if args["mode"] not in ("auto", "min", "max"):
            raise SpecError(f"must be one of auto, min, max, got {args['mode']!r}", "mode")
        if args["save_weights_only"] and not args["filepath"].endswith(".weights.h5"):
            raise SpecError("must end in .weights.h5 when save_weights_only is true (Keras 3 requires it)", "filepath")
        if not args["save_weights_only"] and not args["filepath"].endswith((".h5", ".keras")):
            raise SpecError(f"must end in .h5 or .keras, got {args['filepath']!r}", "filepath")

    def metric_refs(self, kwargs):
        args = {**self.defaults, **kwargs}
        refs = [("filepath", field) for field in template_fields(args["filepath"], "filepath") if field != "epoch"]
        if args["save_best_only"]:
            refs.append(("monitor", args["monitor"]))
        return refs

    def build(self, kwargs, folder):
        from .keras_callbacks import PeriodicModelCheckpoint

        args = {**self.defaults, **kwargs}
        return PeriodicModelCheckpoint(filepath=str(folder / args.pop("filepath")), **args)


CALLBACKS = {
    callback.name: callback
    for callback in (
        EarlyStopping(),
        ModelCheckpoint(),
        TerminateOnNaN(),
        ProgbarLogger(),
        CSVLogger(),
        ReduceLROnPlateau(),
        TensorBoard(),
        RemoteMonitor(),
        LearningRateScheduler(),
        LambdaCallback(),
        BuiltIn("base_logger", "Keras 3 averages the epoch metrics itself (BaseLogger is built into Keras 3)"),
        BuiltIn(
            "history",
            "Keras 3 records the History of every fit (History is built into Keras 3; the epoch metrics are in metrics.json)",
        ),
    )
}


def get_callback_type(type_name):
    callback = CALLBACKS.get(type_name)
    if callback is None:
        raise SpecError(unknown_type_message("callback type", type_name, CALLBACKS), "type")
    return callback
