"""The evaluation report for a run made before the report existed: ``manage.py evaluate <folder>``.

    report = evaluate_folder("trainings/iris/executions/06-16-31__08-04-2019", cache_dir="cache")

From the folder's ``training_config.json`` and ``model.h5``: the dataset is loaded and split again with
the run's seed, its preprocessors applied and its transformers fitted on the fit split, exactly the
steps of ``Trainer._run`` (kept in that order here), so the model sees the samples it was tested on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import datasets, processing
from ..config import TrainingConfig, load_config_file
from .report import write_report


class EvaluationError(Exception):
    """The folder cannot be evaluated; the message says what is missing and what to do."""


def rebuild_splits(
    config: TrainingConfig, cache_dir: str | Path
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], processing.Split, datasets.Dataset | None]:
    """The transformed fit/val/test arrays the run trained and tested on, their row numbers, and the dataset."""
    section = config.dataset
    dataset: datasets.Dataset | None = None
    if section.name is not None:
        dataset = datasets.get_dataset(section.name)
        X, y = dataset.load(cache_dir)
    else:
        assert section.path is not None  # the schema requires a name or a path
        X, y = datasets.load_file(section.path, section.target)
    samples = config.training.samples
    assert samples.fit is not None  # the schema fills it in
    split = processing.split_indices(
        len(X), samples.fit, samples.val, samples.test, config.training.shuffle, config.training.seed
    )
    for preprocessor in section.preprocessors:
        X = preprocessor(X)
    parts = {
        name: (X[index], y[index]) for name, index in (("fit", split.fit), ("val", split.val), ("test", split.test))
    }
    transformers = processing.TransformerChain(spec.make() for spec in section.transformers)
    transformers.fit(parts["fit"][0])
    if transformers.transformers:
        parts = {name: (transformers.transform(features), labels) for name, (features, labels) in parts.items()}
    return parts, split, dataset


def evaluate_folder(folder: str | Path, cache_dir: str | Path) -> dict[str, Any]:
    """Write ``evaluation.json`` in an existing execution folder and return it; ``EvaluationError`` if it cannot.

    A config that no longer validates raises the schema's ``ConfigError`` (every problem with its path).
    """
    import keras

    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(
            f"{folder} is not a folder; expected an execution folder (<root>/<dataset>/executions/<name>)"
        )
    for name in ("training_config.json", "model.h5"):
        if not (folder / name).is_file():
            why = "the run did not finish training, so there is no model" if name == "model.h5" else "not a run"
            raise EvaluationError(f"{folder} has no {name} ({why}); evaluate needs training_config.json and model.h5")
    config = load_config_file(folder / "training_config.json")
    try:
        model = keras.models.load_model(folder / "model.h5", compile=False)
    except Exception as exc:  # re-raised: a truncated or foreign file: say which, whatever h5py raised
        raise EvaluationError(f"{folder / 'model.h5'} cannot be loaded by Keras: {type(exc).__name__}: {exc}") from exc
    parts, split, dataset = rebuild_splits(config, cache_dir)
    expected = tuple(model.input_shape[1:])
    got = tuple(parts["fit"][0].shape[1:])
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got, strict=False)):
        raise EvaluationError(
            f"model.h5 takes samples of shape {list(expected)} but the dataset now gives {list(got)}; "
            "the data changed since the run, so its test split cannot be rebuilt"
        )
    return write_report(model, parts, config, dataset, folder, rows=split)
