"""The build check: what only Keras (and scikit-learn) can tell about a valid config.

``load_config`` checks the schema without importing Keras. This step asks the libraries:
each layer's type and arguments (built one by one, then chained, so a shape mismatch names
its layer), the optimizer, the loss and metric names, each transformer's parameters, each
hook's function, and whether every metric a callback watches will be logged::

    config = load_config(data)
    check_build(config)     # ConfigError listing every problem with its path, or None

A config the schema refuses is still checked where it can be: ``component_problems(data)`` asks the
libraries about each component that validates on its own, so a misspelt layer argument is told
beside a field error elsewhere in the config, not after it is fixed.

It builds layers, so it can take memory and time a config chooses: the web never runs it in
its own process (``experiments.sandbox`` runs it in a capped child).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from . import network
from .callbacks import Callback
from .config import TrainingConfig, load_config
from .errors import ComponentError, ConfigError, Problem
from .processing import TransformerSpec


def _join(path: str, at: str) -> str:
    if not at:
        return path
    return path + at if at.startswith("[") else f"{path}.{at}"


def _collect(problems: list[Problem], path: str, check: Callable[[], object]) -> object:
    try:
        return check()
    except ComponentError as exc:
        problems.append(Problem(_join(path, exc.at), exc.message))
        return None


def network_key(config: TrainingConfig) -> str:
    """What decides whether ``config``'s network builds: its input shape and its layers, as a digest."""
    spec = [config.model.input_shape, [[layer.type, layer.kwargs] for layer in config.model.network]]
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=repr).encode()).hexdigest()


def build_problems(config: TrainingConfig, network_built: bool = False) -> list[Problem]:
    """Every problem the libraries find in ``config`` (an empty list: it will build).

    ``network_built``: a network with the same ``network_key`` already built without a problem, so
    its layers and model are not built again (a sweep's samples often share one); the optimizer,
    loss, metrics, transformers and callbacks are checked all the same.
    """
    problems: list[Problem] = []
    for index, layer in enumerate([] if network_built else config.model.network):
        _collect(problems, f"model.network[{index}]", functools.partial(network.make_layer, layer.type, layer.kwargs))
    compilation = config.model.compilation
    _collect(problems, "model.compilation.optimizer", lambda: network.make_optimizer(compilation.optimizer))
    _collect(problems, "model.compilation.loss", lambda: network.loss_name(compilation.loss))
    metric_names = [
        _collect(problems, f"model.compilation.metrics[{index}]", functools.partial(network.metric_name, metric))
        for index, metric in enumerate(compilation.metrics)
    ]
    for index, transformer in enumerate(config.dataset.transformers):
        _collect(problems, f"dataset.transformers[{index}]", transformer.make)
    for index, callback in enumerate(config.training.callbacks):
        _collect(problems, f"training.callbacks[{index}]", callback.check_build)
    if problems:
        return problems  # chaining the layers or naming the logs would only repeat these
    if not network_built:
        _collect(problems, "model.network", lambda: network.build_model(config.model.input_shape, config.model.network))
    problems += _unlogged_metrics(config, [str(name) for name in metric_names])
    return problems


def _unlogged_metrics(config: TrainingConfig, metric_names: list[str]) -> list[Problem]:
    """A callback that watches ``val_loss`` in a run with no validation split would never act."""
    logged = config.logged_metric_names(metric_names)
    problems = []
    for index, callback in enumerate(config.training.callbacks):
        for key, name in callback.metric_refs():
            if name not in logged:
                why = (
                    " (the val fraction is 0, so no val_ metrics are logged)"
                    if name.startswith("val_") and not config.training.samples.val
                    else ""
                )
                problems.append(
                    Problem(
                        f"training.callbacks[{index}].{key}",
                        f"refers to '{name}', which this run will not log{why}; it logs: {', '.join(sorted(logged))}",
                    )
                )
    return problems


def check_build(config: TrainingConfig, source: str | None = None) -> None:
    """Raise ``ConfigError`` with every problem ``build_problems`` finds."""
    problems = build_problems(config)
    if problems:
        raise ConfigError(problems, source)


def _alone(adapter: TypeAdapter[Any], value: Any) -> Any:
    """``value`` validated as the one component it is (None when it does not validate: the schema said why)."""
    try:
        return adapter.validate_python(value)
    except (ValidationError, ValueError, TypeError):
        return None


def _section(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _items(section: Any, key: str) -> list[Any]:
    value = section.get(key) if isinstance(section, dict) else None
    return value if isinstance(value, list) else []


_LAYER = TypeAdapter(network.LayerSpec)
_OPTIMIZER = TypeAdapter(network.OptimizerSpec)
_TRANSFORMER: TypeAdapter[Any] = TypeAdapter(TransformerSpec)
_CALLBACK: TypeAdapter[Any] = TypeAdapter(Callback)


def component_problems(data: object) -> list[Problem]:
    """What the libraries say about each component of a config that the schema refused, where the
    component validates on its own: each layer, the optimizer, the loss and metrics, each transformer and
    callback. The layers are not chained and the logged metrics not named (that needs the whole config),
    and the dataset is not read. For example, with ``"training": {"epochs": -3}`` the schema refuses the
    config, and this still finds ``model.network[0].activaton: unknown argument for dense; did you mean
    'activation'? ...`` in ``{"type": "dense", "units": 8, "activaton": "relu"}``.
    """
    if not isinstance(data, dict):
        return []
    problems: list[Problem] = []
    model = _section(data, "model")
    for index, item in enumerate(_items(model, "network")):
        layer = _alone(_LAYER, item)
        if layer is not None:
            check = functools.partial(network.make_layer, layer.type, layer.kwargs)
            _collect(problems, f"model.network[{index}]", check)
    _compilation_problems(problems, _section(model, "compilation"))
    for index, item in enumerate(_items(data.get("dataset"), "transformers")):
        transformer = _alone(_TRANSFORMER, item)
        if transformer is not None:
            _collect(problems, f"dataset.transformers[{index}]", transformer.make)
    for index, item in enumerate(_items(data.get("training"), "callbacks")):
        callback = _alone(_CALLBACK, item)
        if callback is not None:
            _collect(problems, f"training.callbacks[{index}]", callback.check_build)
    return problems


def _compilation_problems(problems: list[Problem], compilation: dict[str, Any]) -> None:
    """What Keras says about the optimizer, the loss and each metric of ``model.compilation``, into ``problems``."""
    optimizer = _alone(_OPTIMIZER, compilation.get("optimizer")) if "optimizer" in compilation else None
    if optimizer is not None:
        _collect(problems, "model.compilation.optimizer", functools.partial(network.make_optimizer, optimizer))
    loss = compilation.get("loss")
    if isinstance(loss, str) and loss:
        _collect(problems, "model.compilation.loss", functools.partial(network.loss_name, loss))
    for index, metric in enumerate(_items(compilation, "metrics")):
        if isinstance(metric, str) and metric:
            _collect(problems, f"model.compilation.metrics[{index}]", functools.partial(network.metric_name, metric))


def all_problems(data: dict[str, Any], source: str | None = None) -> tuple[TrainingConfig | None, list[Problem]]:
    """Every problem of a config in one list, in this process: the schema's, and the libraries' (the whole
    build check when the schema accepts it, ``component_problems`` when it does not). Returns the config
    too (None when the schema refused it). For a process that may build: the CLI, a capped child."""
    try:
        config = load_config(data, source=source)
    except ConfigError as exc:
        return None, [*exc.problems, *component_problems(data)]
    return config, build_problems(config)
