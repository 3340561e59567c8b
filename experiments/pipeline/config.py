"""The training config: one pydantic schema, used by the CLI, the workers and the JSON API.

``load_config(data)`` returns a ``TrainingConfig`` or raises ``ConfigError`` listing every
problem as ``path: what is wrong, what was expected``, for example::

    model.network[1].units: must be a positive integer, got -5
    training.epoch: unknown key; did you mean 'epochs'?

Components named by ``type`` (layers, preprocessors, transformers, callbacks, trackers) are
checked by building them, so a bad argument is reported before anything trains.
"""

from __future__ import annotations

import contextvars
import copy
import json
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from . import callbacks, datasets, network, processing, trackers
from .errors import ConfigError, Problem, SpecError, did_you_mean

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(min_length=1)]


# False for a structural check (types, names, arguments, ranges) that builds no Keras object:
# what indexing thousands of stored configs can afford. Training always builds.
_build = contextvars.ContextVar("gymnos_build_components", default=True)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _spec_error(exc: SpecError):
    return PydanticCustomError("gymnos", "{message}", {"message": exc.message, "subpath": exc.subpath})


class Spec(BaseModel):
    """``{"type": ..., **arguments}``: the shape of every configurable component."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Name

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def as_pair(self):
        return self.type, self.kwargs

    def _checked(self, check):
        try:
            check(self.type, self.kwargs)
        except SpecError as exc:
            raise _spec_error(exc) from exc
        return self


def _type_from_string(value):
    return {"type": value} if isinstance(value, str) else value


class LayerSpec(Spec):
    @model_validator(mode="after")
    def _check(self):
        return self._checked(network.make_layer if _build.get() else network.check_layer_arguments)


class OptimizerSpec(Spec):
    @model_validator(mode="after")
    def _check(self):
        return self._checked(network.make_optimizer if _build.get() else network.check_optimizer_arguments)


class PreprocessorSpec(Spec):
    @model_validator(mode="after")
    def _check(self):
        return self._checked(processing.make_preprocessor)


class TransformerSpec(Spec):
    @model_validator(mode="after")
    def _check(self):
        return self._checked(processing.make_transformer)


class CallbackSpec(Spec):
    @model_validator(mode="after")
    def _check(self):
        return self._checked(lambda type_name, kwargs: callbacks.get_callback_type(type_name).check(kwargs))


class TrackerSpec(Spec):
    @model_validator(mode="after")
    def _check(self):
        return self._checked(trackers.check_tracker)


class Experiment(_Section):
    name: Name
    tags: list[Name] = []
    description: str | None = None


class Compilation(_Section):
    optimizer: Annotated[OptimizerSpec, BeforeValidator(_type_from_string)] = Field(
        description='an optimizer name ("adam") or {"type": "adam", "learning_rate": 0.001}'
    )
    loss: Name
    metrics: list[Name] = []

    @model_validator(mode="after")
    def _check(self):
        try:
            network.loss_name(self.loss)
        except SpecError as exc:
            raise PydanticCustomError("gymnos", "{message}", {"message": exc.message, "subpath": "loss"}) from exc
        for index, metric in enumerate(self.metrics):
            try:
                network.metric_name(metric)
            except SpecError as exc:
                raise PydanticCustomError(
                    "gymnos", "{message}", {"message": exc.message, "subpath": f"metrics[{index}]"}
                ) from exc
        return self

    def metric_names(self):
        """Names the compiled metrics are logged under (``mae`` -> ``mean_absolute_error``)."""
        return [network.metric_name(metric) for metric in self.metrics]


class ModelSection(_Section):
    input_shape: Annotated[list[PositiveInt | None], Field(min_length=1)]
    network: Annotated[list[LayerSpec], Field(min_length=1)]
    compilation: Compilation

    @model_validator(mode="after")
    def _check_shapes(self):
        # Each layer was built alone; now chain them, so a shape mismatch names its layer.
        if not _build.get():
            return self
        try:
            network.build_model(self.input_shape, [layer.as_pair() for layer in self.network])
        except SpecError as exc:
            raise PydanticCustomError(
                "gymnos", "{message}", {"message": exc.message, "subpath": f"network{exc.subpath}"}
            ) from exc
        return self


class DatasetSection(_Section):
    name: Name | None = None
    path: Name | None = None
    target: Name | None = None
    preprocessors: list[PreprocessorSpec] = []
    transformers: list[TransformerSpec] = []

    @model_validator(mode="after")
    def _check_source(self):
        if (self.name is None) == (self.path is None):
            raise PydanticCustomError(
                "gymnos",
                "{message}",
                {
                    "message": "give exactly one of name (a built-in dataset) or path (a CSV, NPZ or HDF5 file)",
                    "subpath": "",
                },
            )
        try:
            if self.name is not None:
                datasets.get_dataset(self.name)
                if self.target is not None:
                    raise SpecError("only file datasets (dataset.path) take a target column", "target")
            else:
                datasets.check_file(self.path, self.target)
        except SpecError as exc:
            raise _spec_error(exc) from exc
        return self

    @property
    def folder_name(self):
        """The ``<dataset>`` level of ``trainings/<dataset>/executions/...``."""
        return self.name if self.name is not None else datasets.file_dataset_name(self.path)


class Samples(_Section):
    fit: Annotated[float, Field(gt=0, le=1)] | None = None
    val: Fraction = 0.0
    test: Fraction = 0.0

    @model_validator(mode="after")
    def _check_total(self):
        fit = self.fit if self.fit is not None else round(1 - self.val - self.test, 10)
        total = fit + self.val + self.test
        if total > 1 + 1e-9 or fit <= 0:
            raise PydanticCustomError(
                "gymnos",
                "{message}",
                {
                    "message": f"fractions add up to {total:g} (fit {fit:g} + val {self.val:g} + test {self.test:g}); they must add up to at most 1",
                    "subpath": "",
                },
            )
        self.fit = fit
        return self


class Training(_Section):
    samples: Samples = Samples()
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 10
    shuffle: bool = True
    seed: NonNegativeInt = 0
    callbacks: list[CallbackSpec] = []


class Tracking(_Section):
    params: dict[str, Any] = {}
    trackers: list[TrackerSpec] = []


class TrainingConfig(_Section):
    experiment: Experiment
    model: ModelSection
    dataset: DatasetSection
    training: Training = Training()
    tracking: Tracking = Tracking()
    _source: dict = PrivateAttr(default_factory=dict)

    @property
    def source(self):
        """The config exactly as given (what training_config.json keeps), defaults not filled in."""
        return self._source or self.model_dump(mode="json", exclude_unset=True)

    @model_validator(mode="after")
    def _check_metric_references(self):
        """A callback that watches ``val_loss`` in a run with no validation split would never act."""
        logged = self.logged_metric_names()
        for index, spec in enumerate(self.training.callbacks):
            for key, name in callbacks.get_callback_type(spec.type).metric_refs(spec.kwargs):
                if name not in logged:
                    why = (
                        " (the val fraction is 0, so no val_ metrics are logged)"
                        if name.startswith("val_") and not self.training.samples.val
                        else ""
                    )
                    raise PydanticCustomError(
                        "gymnos",
                        "{message}",
                        {
                            "message": f"refers to '{name}', which this run will not log{why}; it logs: {', '.join(sorted(logged))}",
                            "subpath": f"training.callbacks[{index}].{key}",
                            "absolute": True,
                        },
                    )
        return self

    def logged_metric_names(self):
        names = ["loss", *self.model.compilation.metric_names()]
        if self.training.samples.val:
            names += [f"val_{name}" for name in names]
        return set(names)


# --- turning pydantic's errors into the messages a person reads -------------------------------


def _format_loc(loc):
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _inner_model(annotation):
    """The pydantic model inside ``list[X]``, ``X | None``, ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _model_at(loc):
    model = TrainingConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _inner_model(field.annotation)
        if model is None:
            return None
    return model


def _shown(value):
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_NAMES = {
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _message(error):
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "gymnos":
        return ctx["message"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        model = _model_at(error["loc"][:-1])
        fields = list(model.model_fields) if model else []
        listing = f" (expected one of: {', '.join(fields)})" if fields else ""
        return f"unknown key{did_you_mean(error['loc'][-1], fields)}{listing}"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}, got {_shown(given)}"
    if kind == "greater_than" and ctx.get("gt") == 0 and isinstance(given, int):
        return f"must be a positive integer, got {_shown(given)}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt'):g}, got {_shown(given)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge'):g}, got {_shown(given)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le'):g}, got {_shown(given)}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s), got {_shown(given)}"
    if kind == "string_too_short":
        return "must not be empty"
    message = error["msg"].removeprefix("Value error, ")
    return f"{message[0].lower()}{message[1:]}, got {_shown(given)}"


def problems_from(exc: ValidationError):
    problems = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not (isinstance(part, str) and "[" in part)]  # drop validator tags
        ctx = error.get("ctx") or {}
        subpath = ctx.get("subpath", "") if error["type"] == "gymnos" else ""
        if ctx.get("absolute"):
            path = subpath
        else:
            path = _format_loc(loc)
            if subpath:
                path += subpath if subpath.startswith("[") else (f".{subpath}" if path else subpath)
        problems.append(Problem(path, _message(error)))
    return problems


def load_config(data, source=None, build=True):
    """Validate a config (a dict, or JSON text/bytes) and return a ``TrainingConfig``.

    Raises ``ConfigError`` with every problem found. ``build=False`` checks structure, names,
    arguments and ranges without building any Keras layer or model (~50x faster per config),
    for indexing stored configs; it does not catch a bad argument value Keras alone knows.
    """
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                [Problem("", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")], source
            ) from exc
    if not isinstance(data, dict):
        raise ConfigError([Problem("", f"a config must be a JSON object, got {type(data).__name__}")], source)
    token = _build.set(build)
    try:
        config = TrainingConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc), source) from None
    finally:
        _build.reset(token)
    config._source = copy.deepcopy(data)
    return config


def load_config_file(path):
    """Read and validate a config file; a missing or unreadable file is a ConfigError too."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read {path}: {exc.strerror}")], str(path)) from exc
    return load_config(text, source=str(path))


__all__ = ["TrainingConfig", "load_config", "load_config_file", "ConfigError", "Problem"]
