"""The training config: one pydantic schema, used by the CLI, the workers, sync and the JSON API.

``load_config(data)`` returns a ``TrainingConfig`` or raises ``ConfigError`` listing every
problem as ``path: what is wrong, what was expected``, for example::

    model.network[1].units: must be a positive integer, got -5
    training.epoch: unknown key; did you mean 'epochs'? (expected one of: samples, batch_size, ...)

It imports no Keras and builds nothing: types, names, arguments and ranges of every section
and component. Keras alone can tell whether a layer takes an argument or fits the layer before
it; that is the build check (``build_check.check_build``), a separate step the caller asks for.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PrivateAttr, ValidationInfo, model_validator

from . import datasets, jsonlimits
from .callbacks import Callback
from .errors import ComponentError, ConfigError, Problem, invalid
from .network import LayerSpec, OptimizerSpec
from .params import flatten
from .processing import PreprocessorSpec, TransformerSpec
from .schema import Section, validate
from .trackers import TrackerSpec

DEFAULT_MAX_EPOCHS = 1_000_000
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(min_length=1)]


class Experiment(Section):
    name: Name
    tags: list[Name] = []
    description: str | None = None
    # What the evaluation report treats the model as, when its loss and output layer leave it ambiguous.
    task: Literal["classification", "regression"] | None = None


class Compilation(Section):
    optimizer: OptimizerSpec = Field(
        description='an optimizer name ("adam") or {"type": "adam", "learning_rate": 0.001}'
    )
    loss: Name
    metrics: list[Name] = []


class ModelSection(Section):
    input_shape: Annotated[list[PositiveInt | None], Field(min_length=1)]
    network: Annotated[list[LayerSpec], Field(min_length=1)]
    compilation: Compilation


# ``<trainings root>/projects/`` holds the folders of projects other than default: no dataset's folder may be it.
RESERVED_FOLDER = "projects"


class DatasetSection(Section):
    name: Name | None = None
    path: Name | None = None
    target: Name | None = None
    preprocessors: list[PreprocessorSpec] = []
    transformers: list[TransformerSpec] = []

    @model_validator(mode="after")
    def _check_source(self, info: ValidationInfo) -> DatasetSection:
        if (self.name is None) == (self.path is None):
            raise invalid("give exactly one of name (a built-in dataset) or path (a CSV, NPZ or HDF5 file)")
        context = info.context or {}
        roots = context.get("data_roots")
        if self.path is not None and roots is not None and not datasets.inside_any(self.path, roots):
            # Said before the file is touched: whether it exists, or what it holds, is not told.
            shown = ", ".join(str(root) for root in roots) or "none are set"
            raise invalid(
                f"must be a file inside the data folders this server reads ({shown}; GYMNOS_DATA_ROOTS), "
                f"got {self.path!r}",
                "path",
            )
        try:
            if self.name is not None:
                datasets.get_dataset(self.name)
                if self.target is not None:
                    raise ComponentError("only file datasets (dataset.path) take a target column", "target")
            elif context.get("read_files", True):
                assert self.path is not None  # exactly one of name and path is set
                datasets.check_file(self.path, self.target)
        except ComponentError as exc:
            raise invalid(exc.message, exc.at) from exc
        if self.folder_name == RESERVED_FOLDER:
            raise invalid(
                f"names the run's folder {RESERVED_FOLDER!r}, which is reserved (other projects' runs live under "
                f"<trainings root>/{RESERVED_FOLDER}/); rename the file",
                "path" if self.path is not None else "name",
            )
        return self

    @property
    def folder_name(self) -> str:
        """The ``<dataset>`` level of ``trainings/<dataset>/executions/...``."""
        return self.name if self.name is not None else datasets.file_dataset_name(self.path or "")


class Samples(Section):
    fit: Annotated[float, Field(gt=0, le=1)] | None = None
    val: Fraction = 0.0
    test: Fraction = 0.0

    @model_validator(mode="after")
    def _check_total(self) -> Samples:
        fit = self.fit if self.fit is not None else round(1 - self.val - self.test, 10)
        total = fit + self.val + self.test
        if total > 1 + 1e-9 or fit <= 0:
            raise invalid(
                f"fractions add up to {total:g} (fit {fit:g} + val {self.val:g} + test {self.test:g}); "
                "they must add up to at most 1"
            )
        self.fit = fit
        return self


def max_epochs() -> int:
    """``GYMNOS_MAX_EPOCHS`` (default 1,000,000): no config may ask for more epochs."""
    try:
        return max(1, int(os.environ.get("GYMNOS_MAX_EPOCHS") or DEFAULT_MAX_EPOCHS))
    except ValueError:
        return DEFAULT_MAX_EPOCHS


def _bounded_epochs(value: int) -> int:
    limit = max_epochs()
    if value > limit:
        raise invalid(f"must be at most {limit:,} (GYMNOS_MAX_EPOCHS), got {value:,}")
    return value


def _steps_interval(value: int) -> int:
    if value < 0:
        raise invalid(
            f"must be 0 (no per-step metrics) or a number of steps N (a point every N steps), got {value}; "
            "use 1 to log every step"
        )
    return value


def _resume_interval(value: int | str) -> int | str:
    if isinstance(value, int) and value < 1:
        raise invalid(
            f"must be a number of epochs N >= 1 (the state a run resumes from is kept every N epochs), got {value}; "
            "1 keeps it every epoch, so a resumed run trains at most one epoch again"
        )
    return value


class Training(Section):
    samples: Samples = Samples()
    batch_size: PositiveInt = 32
    epochs: Annotated[int, Field(gt=0), AfterValidator(_bounded_epochs)] = 10
    shuffle: bool = True
    seed: NonNegativeInt = 0
    callbacks: list[Callback] = []
    # Per-step metrics (steps.h5): a point per metric every N training steps; 0 logs none.
    log_every_steps: Annotated[int, AfterValidator(_steps_interval)] = 0
    # Keep the state a run resumes from (``pipeline.resume``) every N epochs (at most N epochs trained again), or
    # "auto": every epoch unless that would cost more than 3% of the training time (kept_state.BUDGET), and at least
    # every second epoch (kept_state.MOST_APART).
    resume_every: Annotated[int | Literal["auto"], AfterValidator(_resume_interval)] = "auto"


class Tracking(Section):
    params: dict[str, Any] = {}
    trackers: list[TrackerSpec] = []


class TrainingConfig(Section):
    experiment: Experiment
    model: ModelSection
    dataset: DatasetSection
    training: Training = Training()
    tracking: Tracking = Tracking()
    _source: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> dict[str, Any]:
        """The config exactly as given (what training_config.json keeps), defaults not filled in."""
        return self._source or self.model_dump(mode="json", exclude_unset=True)

    @property
    def params(self) -> dict[str, Any]:
        """The run's params by path (``params.flatten``) in one canonical form: the validated config, with
        every default the schema fills in and a component given by its name spelt out as ``{"type": name}``.

        So ``"optimizer": "adam"`` and ``"optimizer": {"type": "adam"}`` are the same params
        (``model.compilation.optimizer.type: adam``), and so are a callback given with its defaults and the
        same callback given bare: sync, search, the table's columns, compare, MLflow and sweeps all name a
        value by these paths.
        """
        return flatten(self.model_dump(mode="json", exclude_none=True))

    def logged_metric_names(self, metric_names: list[str]) -> set[str]:
        """What the run logs each epoch, given the names Keras logs the compiled metrics under."""
        names = ["loss", *metric_names]
        if self.training.samples.val:
            names += [f"val_{name}" for name in names]
        return set(names)


def load_config(
    data: object, source: str | None = None, data_roots: Sequence[str | Path] | None = None
) -> TrainingConfig:
    """Validate a config (a dict, or JSON text/bytes) and return a ``TrainingConfig``.

    Raises ``ConfigError`` with every problem found. Builds nothing and imports no Keras:
    ``build_check.check_build(config)`` is the step that asks Keras. JSON text is bounded
    (``jsonlimits``: size and nesting). ``data_roots``, when given (a config from the web), are the
    only folders ``dataset.path`` may name.
    """
    if isinstance(data, (str, bytes)):
        try:
            data = jsonlimits.loads(data, what="the config")
        except jsonlimits.JSONLimitError as exc:
            raise ConfigError([Problem("", str(exc))], source) from exc
    context = {"data_roots": [Path(root) for root in data_roots]} if data_roots is not None else None
    config = validate(TrainingConfig, data, source, context)
    config._source = copy.deepcopy(data)  # type: ignore[arg-type]
    return config


def canonical_params(data: object) -> dict[str, Any]:
    """``data``'s params in the canonical form (``TrainingConfig.params``); a config the schema refuses
    (it no longer validates), flattened as it is written.

    The dataset's file is not opened: a run's params do not depend on what this machine holds.
    """
    if not isinstance(data, dict):
        return {}
    try:
        return validate(TrainingConfig, data, context={"read_files": False}).params
    except ConfigError:
        return flatten(data)
    except Exception:  # noqa: BLE001 - a checker choking on odd input: the params as written
        return flatten(data)


def experiment_section(data: object) -> Experiment | None:
    """A config's ``experiment`` section (its name and tags), read through the schema on its own; None
    when the section itself does not validate.

    On its own, so a run whose config no longer validates elsewhere (a layer argument renamed since)
    still has the name and tags it was launched with::

        experiment_section({"experiment": {"name": "wide", "tags": ["baseline"]}, "model": "gone"}).tags
        # ['baseline']
    """
    section = data.get("experiment") if isinstance(data, dict) else None
    try:
        return validate(Experiment, section)
    except ConfigError:
        return None


def read_config_file(path: str | Path) -> Any:
    """A config file's JSON (bounded: ``jsonlimits``); a missing, unreadable or non-JSON file is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read {path}: {exc.strerror}")], str(path)) from exc
    try:
        return jsonlimits.loads(text, what="the config")
    except jsonlimits.JSONLimitError as exc:
        raise ConfigError([Problem("", str(exc))], str(path)) from exc


def load_config_file(path: str | Path) -> TrainingConfig:
    """Read and validate a config file; a missing or unreadable file is a ConfigError too."""
    return load_config(read_config_file(path), source=str(path))


__all__ = [
    "TrainingConfig",
    "canonical_params",
    "experiment_section",
    "load_config",
    "load_config_file",
    "ConfigError",
    "Problem",
]
