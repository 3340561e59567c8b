"""Build a Keras model from the config's network spec, and check a spec before any training.

A layer's ``type`` is any ``keras.layers`` class by its snake_case name; underscores and case
do not matter, so ``conv_2d``, ``conv2d`` and ``Conv2D`` all mean ``keras.layers.Conv2D``.
Every other key of the spec is passed to the layer's constructor.
"""

from __future__ import annotations

import functools
import inspect
import re

from .errors import SpecError, did_you_mean, unknown_type_message

# Keyword arguments every Keras layer accepts through ``**kwargs``.
_BASE_LAYER_KWARGS = {
    "name",
    "dtype",
    "trainable",
    "autocast",
    "activity_regularizer",
    "input_shape",
    "input_dim",
    "batch_size",
}
# Layers the config may not name: the input is set by ``model.input_shape``.
_FORBIDDEN_LAYERS = {"inputlayer", "input"}
_POSITIVE_INT_KWARGS = {"units", "filters", "output_dim", "input_dim", "num_heads", "key_dim"}
_SIZE_KWARGS = {"kernel_size", "pool_size", "strides", "size", "dilation_rate"}

# Metric aliases Keras accepts but would log under the short name; the seed's metrics.json
# shows the long names (``mean_absolute_error`` for ``mae``), so compile with those.
_METRIC_ALIASES = {"acc": "accuracy"}


def _normalise(name):
    return str(name).replace("_", "").replace("-", "").lower()


def _snake(class_name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name).lower()


@functools.lru_cache(maxsize=1)
def layer_classes():
    """Map each normalised layer name to its class: ``{"conv2d": Conv2D, "dense": Dense, ...}``."""
    import keras

    classes = {}
    for attr in dir(keras.layers):
        obj = getattr(keras.layers, attr)
        if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer) and _normalise(attr) not in _FORBIDDEN_LAYERS:
            classes.setdefault(_normalise(attr), obj)
    return classes


def layer_names():
    return sorted({_snake(cls.__name__) for cls in layer_classes().values()})


def resolve_layer(type_name):
    cls = layer_classes().get(_normalise(type_name))
    if cls is None:
        raise SpecError(
            unknown_type_message(
                "layer type", type_name, layer_names(), hint="any keras.layers class by its snake_case name"
            ),
            "type",
        )
    return cls


def _accepted_kwargs(cls):
    names = set(_BASE_LAYER_KWARGS)
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and param.name != "self":
                names.add(param.name)
    return names


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _precheck_values(kwargs):
    """Catch the common numeric mistakes with a precise path before Keras sees them."""
    for key, value in kwargs.items():
        if key in _POSITIVE_INT_KWARGS and not _is_positive_int(value):
            raise SpecError(f"must be a positive integer, got {value!r}", key)
        if key in _SIZE_KWARGS:
            items = value if isinstance(value, list) else [value]
            if not items or not all(_is_positive_int(item) for item in items):
                raise SpecError(f"must be a positive integer or a list of them, got {value!r}", key)
        if key == "rate" and not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
            raise SpecError(f"must be a number from 0 up to (not including) 1, got {value!r}", key)


def _keras_kwargs(kwargs):
    # JSON has no tuples; Keras wants tuples for shapes and sizes.
    return {
        key: tuple(value) if isinstance(value, list) and key != "layers" else value for key, value in kwargs.items()
    }


def check_layer_arguments(type_name, kwargs):
    """Resolve the layer type and check its argument names and common values, building nothing."""
    cls = resolve_layer(type_name)
    unknown = sorted(set(kwargs) - _accepted_kwargs(cls))
    if unknown:
        accepted = sorted(_accepted_kwargs(cls) - _BASE_LAYER_KWARGS)
        key = unknown[0]
        raise SpecError(
            f"unknown argument for {_snake(cls.__name__)}{did_you_mean(key, accepted)} "
            f"(it accepts: {', '.join(accepted)})",
            key,
        )
    _precheck_values(kwargs)
    return cls


def make_layer(type_name, kwargs):
    """Instantiate one layer, raising SpecError with the offending key on any problem."""
    cls = check_layer_arguments(type_name, kwargs)
    try:
        return cls(**_keras_kwargs(kwargs))
    except Exception as exc:  # Keras raises TypeError/ValueError with a readable message
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        named = re.search(r"`(\w+)`", message)
        subpath = named.group(1) if named and named.group(1) in kwargs else ""
        missing = re.search(r"missing \d+ required positional argument[s]?: (.+)$", message)
        if missing:
            raise SpecError(f"{_snake(cls.__name__)} needs {missing.group(1)}") from exc
        raise SpecError(f"{_snake(cls.__name__)} rejected its arguments: {message}", subpath) from exc


def build_model(input_shape, network):
    """Return an uncompiled ``keras.Sequential`` for ``network`` (a list of ``(type, kwargs)``).

    Raises ``SpecError`` whose ``subpath`` is ``"[i]..."``: the index of the layer that failed,
    so a shape mismatch points at the layer that cannot take its input.
    """
    import keras

    model = keras.Sequential([keras.Input(shape=tuple(input_shape))])
    shape = (None, *input_shape)
    for index, (type_name, kwargs) in enumerate(network):
        try:
            layer = make_layer(type_name, kwargs)
        except SpecError as exc:
            raise SpecError(exc.message, f"[{index}]" + (f".{exc.subpath}" if exc.subpath else "")) from exc
        try:
            model.add(layer)
        except Exception as exc:
            message = str(exc).strip().splitlines()[0]
            raise SpecError(f"cannot take its input of shape {shape}: {message}", f"[{index}]") from exc
        try:
            shape = tuple(layer.compute_output_shape(shape))
        except Exception:  # noqa: BLE001 - the shape only improves a later message
            shape = "unknown"
    return model


@functools.lru_cache(maxsize=1)
def optimizer_classes():
    """``{"adam": Adam, "sgd": SGD, "rmsprop": RMSprop, ...}``"""
    import keras

    return {
        _normalise(name): obj
        for name in dir(keras.optimizers)
        if inspect.isclass(obj := getattr(keras.optimizers, name))
        and issubclass(obj, keras.optimizers.Optimizer)
        and name not in {"Optimizer", "LossScaleOptimizer"}
    }


def check_optimizer_arguments(type_name, kwargs):
    """Resolve the optimizer and check its argument names, building nothing."""
    cls = optimizer_classes().get(_normalise(type_name))
    if cls is None:
        names = sorted({_snake(c.__name__) for c in optimizer_classes().values()})
        raise SpecError(unknown_type_message("optimizer type", type_name, names), "type")
    accepted = [name for name in inspect.signature(cls.__init__).parameters if name not in {"self", "kwargs"}]
    for key in kwargs:
        if key not in accepted:
            raise SpecError(
                f"unknown argument for {type_name}{did_you_mean(key, accepted)} (it accepts: {', '.join(accepted)})",
                key,
            )
    return cls


def make_optimizer(type_name, kwargs):
    cls = check_optimizer_arguments(type_name, kwargs)
    try:
        return cls(**kwargs)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0]
        named = next((key for key in kwargs if key in message), "")
        raise SpecError(f"{type_name} rejected its arguments: {message}", named) from exc


def loss_name(name):
    """The loss to compile with: aliases spelled out (``mse`` -> ``mean_squared_error``).

    Keras 3 cannot load an HDF5 model compiled with the alias ``mse`` (it looks for
    ``keras.metrics.mse``), and model.h5 is the seed's contract, so compile with the full name.
    """
    import keras

    try:
        loss = keras.losses.get(name)
    except ValueError:
        raise SpecError(
            f"unknown loss '{name}'{did_you_mean(name, _loss_names())} (any keras.losses name, e.g. mse, categorical_crossentropy)"
        )
    return loss.__name__ if inspect.isfunction(loss) else name


def _loss_names():
    import keras

    return [name for name in dir(keras.losses) if not name.startswith("_") and name[0].islower()]


def metric_name(name):
    """The name Keras will log a compiled metric under: ``mae`` -> ``mean_absolute_error``."""
    import keras

    if name in _METRIC_ALIASES or name == "accuracy":
        return _METRIC_ALIASES.get(name, name)
    try:
        metric = keras.metrics.get(name)
    except ValueError:
        raise SpecError(
            f"unknown metric '{name}'{did_you_mean(name, _metric_names())} (any keras.metrics name, e.g. mae, accuracy)"
        )
    return getattr(metric, "name", None) or getattr(metric, "__name__", name)


def _metric_names():
    import keras

    return [name for name in dir(keras.metrics) if not name.startswith("_") and name[0].islower()]
