"""The sweep document: what to search, over which base config, and how; validated like a config.

::

    {"name": "boston lr and width", "base": {...a training config...},
     "parameters": {
       "model.compilation.optimizer.learning_rate": {"distribution": "log_uniform", "low": 0.0001, "high": 0.1},
       "model.network[0].units": {"choice": [16, 32, 64, 128]},
       "training.batch_size": {"distribution": "int_uniform", "low": 16, "high": 128, "step": 16}},
     "method": "tpe", "trials": 30, "parallel": 4,
     "objective": {"metric": "val_loss", "direction": "minimize", "which": "best"},
     "pruner": {"type": "median", "warmup_epochs": 5}}

``base`` is a training config, or the id of a run whose config to start from. ``load_sweep`` returns
a ``SweepPlan`` or raises ``ConfigError`` with every problem and its path, for example::

    parameters["model.network[0].unitz"]: unknown argument for dense ... (written into the base config)
    parameters["training.batch_size"].low: 0 makes the config invalid: training.batch_size: must be a positive ...
    trials: is required for method 'tpe' (how many trials to run)

What is checked here is what the schema can tell without Keras: the document, the base config,
that each path is one the base config has or its section accepts, and that each range's ends and
each choice make a valid config. Whether a sampled config builds is checked when its trial is
asked for; a sample that does not fails that trial, not the sweep.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from experiments.display import counted
from experiments.models.summary import higher_is_better
from experiments.pipeline.config import TrainingConfig, load_config
from experiments.pipeline.errors import ConfigError, Problem, invalid
from experiments.pipeline.schema import Component, Explained, Section, UnionKind, validate

from . import paths

MAX_PARAMETERS = 32
MAX_CHOICES = 100
MAX_TRIALS = 10_000
MAX_PARALLEL = 64
# A float range's steps: past 2**53 a float cannot tell one step from the next.
MAX_STEPS = 1e15
METHODS = ("grid", "random", "tpe")

Finite = Annotated[float, Field(allow_inf_nan=False)]
Scalar = Annotated[None | bool | int | str | Finite, Explained("null, true or false, a number or a string")]


class Distribution(Component):
    selectors = ("distribution",)

    def ends(self) -> list[tuple[str, Any]]:
        """The values the schema checks at launch, with where they are in the document."""
        raise NotImplementedError


class Uniform(Distribution):
    """A float from ``low`` to ``high``, evenly; ``step`` makes it a grid of ``low + k * step``."""

    distribution: Literal["uniform"]
    low: Finite
    high: Finite
    step: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _check_range(self) -> Uniform:
        if self.low >= self.high:
            raise invalid(f"must be above low ({self.low:g}), got {self.high:g}", "high")
        if self.step is not None:
            steps = (self.high - self.low) / self.step  # inf when the range is wider than a float holds
            if not math.isfinite(steps) or steps > MAX_STEPS:
                raise invalid(f"must divide the range into at most {MAX_STEPS:.0e} steps, got {self.step:g}", "step")
            self.high = self.low + math.floor(steps + 1e-9) * self.step
        return self

    def ends(self) -> list[tuple[str, Any]]:
        return [("low", self.low), ("high", self.high)]


class LogUniform(Distribution):
    """A float from ``low`` to ``high``, evenly on a log scale (learning rates)."""

    distribution: Literal["log_uniform"]
    low: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    high: Finite

    @model_validator(mode="after")
    def _check_range(self) -> LogUniform:
        if self.low >= self.high:
            raise invalid(f"must be above low ({self.low:g}), got {self.high:g}", "high")
        return self

    def ends(self) -> list[tuple[str, Any]]:
        return [("low", self.low), ("high", self.high)]


class IntUniform(Distribution):
    """A whole number from ``low`` to ``high``, each ``step`` apart (``high`` is kept only on a step)."""

    distribution: Literal["int_uniform"]
    low: int
    high: int
    step: Annotated[int, Field(gt=0)] = 1

    @model_validator(mode="after")
    def _check_range(self) -> IntUniform:
        if self.low >= self.high:
            raise invalid(f"must be above low ({self.low}), got {self.high}", "high")
        self.high = self.low + (self.high - self.low) // self.step * self.step
        return self

    def ends(self) -> list[tuple[str, Any]]:
        return [("low", self.low), ("high", self.high)]


class Choice(Distribution):
    """One of the values listed; written ``{"choice": [16, 32, 64]}``."""

    distribution: Literal["choice"]
    choice: Annotated[list[Scalar], Field(min_length=1, max_length=MAX_CHOICES)]

    @model_validator(mode="after")
    def _check_distinct(self) -> Choice:
        seen: dict[str, int] = {}
        for index, value in enumerate(self.choice):
            key = json.dumps(value)
            if key in seen:
                raise invalid(f"repeats choice[{seen[key]}] ({key}); list each value once", f"choice[{index}]")
            seen[key] = index
        return self

    def ends(self) -> list[tuple[str, Any]]:
        return [(f"choice[{index}]", value) for index, value in enumerate(self.choice)]


Parameter = Annotated[
    Uniform | LogUniform | IntUniform | Choice, Field(discriminator="distribution"), UnionKind("distribution")
]


class Objective(Section):
    """What a trial scores: ``metric``'s best (or last) value over its epochs."""

    metric: Annotated[str, Field(min_length=1, max_length=200)] = "val_loss"
    direction: Literal["minimize", "maximize"] | None = None
    which: Literal["best", "last"] = "best"

    @property
    def resolved_direction(self) -> str:
        """``direction``, else what the metric's name says (``val_accuracy`` is maximised)."""
        return self.direction or ("maximize" if higher_is_better(self.metric) else "minimize")


class NoPruner(Component):
    type: Literal["none"]


class MedianPruner(Component):
    """Stops a trial whose objective so far is worse than the median of earlier trials at the same epoch."""

    type: Literal["median"]
    warmup_epochs: Annotated[int, Field(ge=0)] = 5
    startup_trials: Annotated[int, Field(ge=0)] = 5


class HyperbandPruner(Component):
    """Optuna's Hyperband: brackets of trials, each stopping all but 1/``reduction_factor`` at each rung."""

    type: Literal["hyperband"]
    warmup_epochs: Annotated[int, Field(gt=0)] = 1
    reduction_factor: Annotated[int, Field(ge=2)] = 3


Pruner = Annotated[NoPruner | MedianPruner | HyperbandPruner, Field(discriminator="type"), UnionKind("pruner type")]


def _with_choice_shorthand(data: Any) -> Any:
    """``{"choice": [...]}`` needs no ``"distribution": "choice"``."""
    if isinstance(data, dict) and isinstance(data.get("parameters"), dict):
        parameters = {
            key: {"distribution": "choice", **value}
            if isinstance(value, dict) and "choice" in value and "distribution" not in value
            else value
            for key, value in data["parameters"].items()
        }
        data = {**data, "parameters": parameters}
    return data


class SweepDocument(Section):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    base: Annotated[dict[str, Any] | int, Explained("a training config (an object) or the id of a run to start from")]
    parameters: Annotated[dict[str, Parameter], Field(min_length=1, max_length=MAX_PARAMETERS)]
    method: Literal["grid", "random", "tpe"] = "tpe"
    trials: Annotated[int, Field(gt=0, le=MAX_TRIALS)] | None = None
    parallel: Annotated[int, Field(gt=0, le=MAX_PARALLEL)] = 2
    objective: Objective = Objective()
    pruner: Pruner = NoPruner(type="none")
    seed: Annotated[int, Field(ge=0, lt=2**31)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _choice_shorthand(cls, data: Any) -> Any:
        return _with_choice_shorthand(data)


_PARAMETERS: TypeAdapter[dict[str, Parameter]] = TypeAdapter(
    Annotated[dict[str, Parameter], Field(min_length=1, max_length=MAX_PARAMETERS)]
)


@dataclass(frozen=True)
class SweepPlan:
    """A valid sweep: the document, the base config it resolved to (as given, and validated: ``config``, so
    nothing after ``load_sweep`` validates the base again), and what follows from them."""

    document: SweepDocument
    base: dict[str, Any]
    config: TrainingConfig
    base_run: int | None
    name: str
    trials: int
    parallel: int
    direction: str

    @property
    def parameters(self) -> dict[str, Parameter]:
        return self.document.parameters


def load_sweep(
    data: object,
    resolve_run: Callable[[int], dict[str, Any]],
    data_roots: list[Any] | None = None,
) -> SweepPlan:
    """Validate a sweep document; ``resolve_run(id)`` gives a run's config, or raises ``LookupError`` saying why
    that run cannot be a base (there is no such run, it is deleted, its folder is missing), which is the
    problem at ``base``.

    ``data_roots`` are passed to the base config's validation as for a launch (None: any dataset path).
    Every problem is told at once: the document's and its base config's together, then (once both are
    valid) each parameter's and the plan's.
    """
    problems: list[Problem] = []
    document: SweepDocument | None = None
    try:
        document = _validate_document(data)
    except ConfigError as exc:
        problems += exc.problems
    given = document.base if document is not None else data.get("base") if isinstance(data, dict) else None
    base_run = given if isinstance(given, int) and not isinstance(given, bool) else None
    base = given if isinstance(given, dict) else None
    if base_run is not None:
        try:
            base = resolve_run(base_run)
        except LookupError as exc:
            problems.append(Problem("base", str(exc.args[0] if exc.args else exc)))
    config_model: TrainingConfig | None = None
    if base is not None:
        try:
            config_model = load_config(base, data_roots=data_roots)
        except ConfigError as exc:
            prefix = f"base (the config of run {base_run})" if base_run is not None else "base"
            problems += [Problem(_join(prefix, problem.path), problem.message) for problem in exc.problems]
    parameters = document.parameters if document is not None else _parameters_alone(data)
    if parameters is not None and base is not None and config_model is not None:
        problems += _parameter_problems(parameters, base, data_roots)
    if document is not None and config_model is not None:
        problems += _plan_problems(document, config_model)
    if problems or document is None or base is None or config_model is None:
        raise ConfigError(problems)
    trials = document.trials or _grid_size(document)
    name = document.name or f"{config_model.experiment.name} sweep"
    return SweepPlan(
        document=document,
        base=base,
        config=config_model,
        base_run=base_run,
        name=name,
        trials=trials,
        parallel=min(document.parallel, trials),
        direction=document.objective.resolved_direction,
    )


def _validate_document(data: object) -> SweepDocument:
    try:
        return validate(SweepDocument, data)
    except ConfigError as exc:
        parameters = data.get("parameters") if isinstance(data, dict) else None
        keys = list(parameters) if isinstance(parameters, dict) else []
        raise ConfigError(
            [Problem(parameter_path(problem.path, keys), problem.message) for problem in exc.problems]
        ) from None


def parameter_path(path: str, keys: list[str]) -> str:
    """``parameters.model.network[0].units.low`` -> ``parameters["model.network[0].units"].low``.

    The schema joins a key to its parent with a dot; a parameter's key is a path itself, so it is
    quoted to say where the key ends.
    """
    if not path.startswith("parameters."):
        return path
    rest = path.removeprefix("parameters.")
    for key in sorted(keys, key=len, reverse=True):
        if rest == key or rest.startswith(key + ".") or rest.startswith(key + "["):
            return f"parameters[{json.dumps(key)}]{rest[len(key) :]}"
    return path


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def _parameters_alone(data: object) -> dict[str, Parameter] | None:
    """A document's parameters when they validate on their own (the rest of the document did not), else None."""
    if not isinstance(data, dict) or not isinstance(data.get("parameters"), dict):
        return None
    try:
        return _PARAMETERS.validate_python(_with_choice_shorthand(data)["parameters"])
    except ValidationError:
        return None


def _parameter_problems(
    parameters: dict[str, Parameter], base: dict[str, Any], data_roots: list[Any] | None
) -> list[Problem]:
    """Each path can be written, and each end of its range (each choice) gives a config the schema accepts."""
    problems: list[Problem] = []
    for key, parameter in parameters.items():
        where = f"parameters[{json.dumps(key)}]"
        try:
            paths.parse(key)
        except paths.PathError as exc:
            problems.append(Problem(where, f"the key {exc}"))
            continue
        for at, value in parameter.ends():
            try:
                config = paths.write(base, key, value)
            except paths.PathError as exc:
                problems.append(Problem(where, f"cannot be written into the base config: {exc}"))
                break
            try:
                load_config(config, data_roots=data_roots)
            except ConfigError as exc:
                unknown = [p for p in exc.problems if p.message.startswith(("unknown key", "unknown argument"))]
                if unknown:  # the key is not one its section accepts: the same for every value
                    problems.append(Problem(where, f"{unknown[0].message} (at {unknown[0].path} in the base config)"))
                    break
                told = "; ".join(str(problem) for problem in exc.problems)
                problems.append(Problem(f"{where}.{at}", f"{json.dumps(value)} makes the config invalid: {told}"))
    return problems


def _plan_problems(document: SweepDocument, config: TrainingConfig) -> list[Problem]:
    """How the search is asked for: grid over choices, a number of trials, an objective the run logs."""
    problems: list[Problem] = []
    if document.method == "grid":
        for key, parameter in document.parameters.items():
            if not isinstance(parameter, Choice):
                problems.append(
                    Problem(
                        f"parameters[{json.dumps(key)}]",
                        "method 'grid' tries every combination of choices; give this parameter as "
                        '{"choice": [...]}, or use method random or tpe',
                    )
                )
        if not problems:
            size = _grid_size(document)
            if document.trials is not None and document.trials > size:
                problems.append(
                    Problem(
                        "trials",
                        f"the grid has {counted(size, 'combination')}; ask for at most {size}, or leave trials out",
                    )
                )
            elif size > MAX_TRIALS:
                problems.append(Problem("parameters", f"the grid has {size:,} combinations; at most {MAX_TRIALS:,}"))
    elif document.trials is None:
        problems.append(Problem("trials", f"is required for method '{document.method}' (how many trials to run)"))
    metric = document.objective.metric
    if metric.startswith("test_"):
        problems.append(
            Problem(
                "objective.metric",
                f"'{metric}' is measured once, after training; a sweep scores trials by a metric logged every "
                "epoch (val_loss, val_accuracy, ...), so the test split stays unseen",
            )
        )
    elif metric.startswith("val_") and not config.training.samples.val:
        problems.append(
            Problem(
                "objective.metric",
                f"'{metric}' is not logged: the base config has no validation split (training.samples.val is 0)",
            )
        )
    return problems


def _grid_size(document: SweepDocument) -> int:
    size = 1
    for parameter in document.parameters.values():
        size *= len(parameter.choice) if isinstance(parameter, Choice) else 1
    return size
