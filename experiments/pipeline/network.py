"""The model: layer and optimizer specs, and building them with Keras.

A layer's ``type`` is any ``keras.layers`` class by its snake_case name; underscores and case
do not matter, so ``conv_2d``, ``conv2d`` and ``Conv2D`` all mean ``keras.layers.Conv2D``.
Every other key of the spec is passed to the layer's constructor. Layers and optimizers are
open-ended sets, so only Keras can judge them: the schema (``LayerSpec``, ``OptimizerSpec``)
checks their shape and the common numeric mistakes without importing Keras, and the build
check (``build_check.py``) looks each one up in Keras and builds it, raising ``ComponentError``
at the offending key.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from .errors import (
    ComponentError,
    did_you_mean,
    invalid,
    is_out_of_memory,
    unknown_argument_message,
    unknown_type_message,
)
from .schema import Section

if TYPE_CHECKING:
    import keras

# Keyword arguments every Keras layer accepts through ``**kwargs``.
_BASE_LAYER_KWARGS = {"name", "dtype", "trainable", "autocast", "activity_regularizer", "input_shape", "input_dim",
                      "batch_size"}  # fmt: skip
# Layers the config may not name: the input is set by ``model.input_shape``.
_FORBIDDEN_LAYERS = {"inputlayer", "input"}
_POSITIVE_INT_KWARGS = {"units", "filters", "output_dim", "input_dim", "num_heads", "key_dim"}
_SIZE_KWARGS = {"kernel_size", "pool_size", "strides", "size", "dilation_rate"}

# Metric aliases Keras accepts but would log under the short name; the seed's metrics.json
# shows the long names (``mean_absolute_error`` for ``mae``), so compile with those.
_METRIC_ALIASES = {"acc": "accuracy"}


class Spec(Section):
    """``{"type": ..., **arguments}`` of an open-ended Keras set: the arguments are checked by Keras."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Annotated[str, Field(min_length=1)]

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class LayerSpec(Spec):
    """One layer: ``{"type": "dense", "units": 8, "activation": "relu"}``."""

    @model_validator(mode="after")
    def _common_values(self) -> LayerSpec:
        """Catch the common numeric mistakes with a precise path, before Keras sees them."""
        for key, value in self.kwargs.items():
            if key in _POSITIVE_INT_KWARGS and not _is_positive_int(value):
                raise invalid(f"must be a positive integer, got {value!r}", key)
            if key in _SIZE_KWARGS:
                items = value if isinstance(value, list) else [value]
                if not items or not all(_is_positive_int(item) for item in items):
                    raise invalid(f"must be a positive integer or a list of them, got {value!r}", key)
            if key == "rate" and not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
            ):
                raise invalid(f"must be a number from 0 up to (not including) 1, got {value!r}", key)
        return self


class OptimizerSpec(Spec):
    """An optimizer: ``{"type": "adam", "learning_rate": 0.001}`` (a config may give just its name)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _rate(self) -> OptimizerSpec:
        rate = self.kwargs.get("learning_rate")
        if rate is not None and not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0):
            raise invalid(f"must be a number above 0, got {rate!r}", "learning_rate")
        return self


# --- looking things up in Keras --------------------------------------------------------------


def _normalise(name: str) -> str:
    return str(name).replace("_", "").replace("-", "").lower()


def _snake(class_name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name).lower()


@functools.lru_cache(maxsize=1)
def layer_classes() -> dict[str, type]:
    """Map each normalised layer name to its class: ``{"conv2d": Conv2D, "dense": Dense, ...}``."""
    import keras

    classes: dict[str, type] = {}
    for attr in dir(keras.layers):
        obj = getattr(keras.layers, attr)
        if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer) and _normalise(attr) not in _FORBIDDEN_LAYERS:
            classes.setdefault(_normalise(attr), obj)
    return classes


def layer_names() -> list[str]:
    return sorted({_snake(cls.__name__) for cls in layer_classes().values()})


def resolve_layer(type_name: str) -> type:
    cls = layer_classes().get(_normalise(type_name))
    if cls is None:
        hint = "any keras.layers class by its snake_case name"
        raise ComponentError(unknown_type_message("layer type", type_name, layer_names(), hint=hint), "type")
    return cls


def _accepted_kwargs(cls: type) -> set[str]:
    names = set(_BASE_LAYER_KWARGS)
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and param.name != "self":
                names.add(param.name)
    return names


def _keras_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    # JSON has no tuples; Keras wants tuples for shapes and sizes.
    return {
        key: tuple(value) if isinstance(value, list) and key != "layers" else value for key, value in kwargs.items()
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def make_layer(type_name: str, kwargs: dict[str, Any]) -> keras.layers.Layer:
    """Instantiate one layer; ``ComponentError`` with the offending key on any problem."""
    cls = resolve_layer(type_name)
    unknown = sorted(set(kwargs) - _accepted_kwargs(cls))
    if unknown:
        accepted = sorted(_accepted_kwargs(cls) - _BASE_LAYER_KWARGS)
        raise ComponentError(unknown_argument_message(_snake(cls.__name__), unknown[0], accepted), unknown[0])
    try:
        return cls(**_keras_kwargs(kwargs))
    except Exception as exc:  # Keras raises TypeError/ValueError with a readable message
        if is_out_of_memory(exc):
            raise
        message = _first_line(exc)
        named = re.search(r"`(\w+)`", message)
        missing = re.search(r"missing \d+ required positional argument[s]?: (.+)$", message)
        if missing:
            raise ComponentError(f"{_snake(cls.__name__)} needs {missing.group(1)}") from exc
        at = named.group(1) if named and named.group(1) in kwargs else ""
        raise ComponentError(f"{_snake(cls.__name__)} rejected its arguments: {message}", at) from exc


def build_model(input_shape: list[int | None], network: list[LayerSpec]) -> keras.Sequential:
    """An uncompiled ``keras.Sequential`` of ``network``.

    Raises ``ComponentError`` whose ``at`` is ``"[i]..."``: the index of the layer that failed,
    so a shape mismatch points at the layer that cannot take its input.
    """
    import keras

    model = keras.Sequential([keras.Input(shape=tuple(input_shape))])
    shape: Any = (None, *input_shape)
    for index, spec in enumerate(network):
        try:
            layer = make_layer(spec.type, spec.kwargs)
        except ComponentError as exc:
            raise ComponentError(exc.message, f"[{index}]" + (f".{exc.at}" if exc.at else "")) from exc
        try:
            model.add(layer)
        except Exception as exc:
            if is_out_of_memory(exc):
                raise  # the model is too big for this process, not wrong
            raise ComponentError(f"cannot take its input of shape {shape}: {_first_line(exc)}", f"[{index}]") from exc
        try:
            shape = tuple(layer.compute_output_shape(shape))
        except Exception:  # noqa: BLE001 - the shape only improves a later message
            shape = "unknown"
    return model


@functools.lru_cache(maxsize=1)
def optimizer_classes() -> dict[str, type[keras.optimizers.Optimizer]]:
    """``{"adam": Adam, "sgd": SGD, "rmsprop": RMSprop, ...}``"""
    import keras

    return {
        _normalise(name): obj
        for name in dir(keras.optimizers)
        if inspect.isclass(obj := getattr(keras.optimizers, name))
        and issubclass(obj, keras.optimizers.Optimizer)
        and name not in {"Optimizer", "LossScaleOptimizer"}
    }


def make_optimizer(spec: OptimizerSpec) -> keras.optimizers.Optimizer:
    """The optimizer ``spec`` names, with its arguments; ``ComponentError`` at the offending key."""
    cls = optimizer_classes().get(_normalise(spec.type))
    if cls is None:
        names = sorted({_snake(c.__name__) for c in optimizer_classes().values()})
        raise ComponentError(unknown_type_message("optimizer type", spec.type, names), "type")
    accepted = [name for name in inspect.signature(cls.__init__).parameters if name not in {"self", "kwargs"}]
    for key in spec.kwargs:
        if key not in accepted:
            raise ComponentError(unknown_argument_message(spec.type, key, accepted), key)
    try:
        return cls(**spec.kwargs)
    except Exception as exc:
        if is_out_of_memory(exc):
            raise
        message = _first_line(exc)
        raise ComponentError(
            f"{spec.type} rejected its arguments: {message}", next((k for k in spec.kwargs if k in message), "")
        ) from exc


def _known(kind: str, module: Any, name: str, hint: str) -> Any:
    """``module.get(name)`` (Keras' losses and metrics), or ``ComponentError`` naming the closest one."""
    try:
        return module.get(name)
    except ValueError:
        names = [n for n in dir(module) if not n.startswith("_") and n[0].islower()]
        suggestion = did_you_mean(name, names)
        raise ComponentError(f"unknown {kind} '{name}'{suggestion} ({hint})") from None


def loss_name(name: str) -> str:
    """The loss to compile with: aliases spelled out (``mse`` -> ``mean_squared_error``).

    Keras 3 cannot load an HDF5 model compiled with the alias ``mse`` (it looks for
    ``keras.metrics.mse``), and model.h5 is the seed's contract, so compile with the full name.
    """
    import keras

    loss = _known("loss", keras.losses, name, "any keras.losses name, e.g. mse, categorical_crossentropy")
    return loss.__name__ if inspect.isfunction(loss) else name


def metric_name(name: str) -> str:
    """The name Keras will log a compiled metric under: ``mae`` -> ``mean_absolute_error``."""
    import keras

    if name in _METRIC_ALIASES or name == "accuracy":
        return _METRIC_ALIASES.get(name, name)
    metric = _known("metric", keras.metrics, name, "any keras.metrics name, e.g. mae, accuracy")
    return getattr(metric, "name", None) or str(getattr(metric, "__name__", name))
