"""A config as flat params: ``{"training.batch_size": 32, "model.network[0].units": 8, ...}``.

The one flattening every consumer shares: MLflow's params, the compare page's config diff and
the dashboard's params columns all name a value by the same path. A run's params are the flattening
of its *validated* config (``TrainingConfig.params``: defaults filled in, ``"adam"`` spelt out as
``{"type": "adam"}``), so two ways of writing the same config give the same params.
"""

from __future__ import annotations

from typing import Any


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths with list indices; lists of plain values stay one value.

    >>> flatten({"training": {"epochs": 5}, "model": {"network": [{"units": 8}], "input_shape": [13]}})
    {'training.epochs': 5, 'model.network[0].units': 8, 'model.input_shape': [13]}

    An empty object stays as ``{}`` under its path, so a key that is present but empty still shows.
    """
    if isinstance(value, dict):
        items: dict[str, Any] = {}
        for key, inner in value.items():
            items.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return items if items or not prefix else {prefix: {}}
    if isinstance(value, list) and value and any(isinstance(item, (dict, list)) for item in value):
        items = {}
        for index, inner in enumerate(value):
            items.update(flatten(inner, f"{prefix}[{index}]"))
        return items
    return {prefix: value}
