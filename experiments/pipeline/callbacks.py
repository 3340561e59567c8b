"""Training callbacks configured by name: ``{"type": "early_stopping", "patience": 3}``.

Each entry of ``CALLBACKS`` says how to check a spec's arguments (before anything trains),
which metric names it refers to (checked against what the run will log), and how to build
the Keras callback. Files a callback writes go under ``<execution>/callbacks/<type>/``.
"""
from __future__ import annotations

import inspect
import string
from pathlib import PurePosixPath, PureWindowsPath

from .errors import SpecError, did_you_mean, unknown_type_message


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
            raise SpecError(f"placeholders must be plain names like {{epoch:02d}} or {{val_loss:.2f}}, got {{{field}}}", key)
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
            raise SpecError(f"unknown argument for {type_name}{did_you_mean(key, accepted)} (it accepts: {', '.join(accepted)})", key)


def _construct(cls, kwargs, type_name):
    try:
        return cls(**kwargs)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0]
        named = next((key for key in kwargs if key in message), "")
        raise SpecError(f"{type_name} rejected its arguments: {message}", named) from exc


class CallbackType:
    """How one config ``type`` becomes a Keras callback. Subclasses override what differs."""

    name = ""

    def check(self, kwargs):
        """Raise SpecError for a bad argument."""

    def metric_refs(self, kwargs):
        """``[(key, metric name)]`` this callback will look up in the epoch logs."""
        return []

    def build(self, kwargs, folder):
        """Return a ``keras.callbacks.Callback``; ``folder`` is ``<execution>/callbacks/<type>``."""
        raise NotImplementedError


class EarlyStopping(CallbackType):
    name = "early_stopping"

    def check(self, kwargs):
        import keras

        _check_kwargs_against(keras.callbacks.EarlyStopping, kwargs, self.name)
        _construct(keras.callbacks.EarlyStopping, kwargs, self.name)

    def metric_refs(self, kwargs):
        return [("monitor", kwargs.get("monitor", "val_loss"))]

    def build(self, kwargs, folder):
        import keras

        return keras.callbacks.EarlyStopping(**kwargs)


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
                    f"unknown argument for {self.name}{did_you_mean(key, self.defaults)} (it accepts: {', '.join(self.defaults)})", key
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


CALLBACKS = {callback.name: callback for callback in (EarlyStopping(), ModelCheckpoint())}


def get_callback_type(type_name):
    callback = CALLBACKS.get(type_name)
    if callback is None:
        raise SpecError(unknown_type_message("callback type", type_name, CALLBACKS), "type")
    return callback
