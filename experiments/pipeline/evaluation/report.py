"""The evaluation report: where the model gets the test split right and wrong, for every run.

The trainer calls ``write_report`` once model.h5 is saved (``manage.py evaluate`` calls it for an old
run); evaluation failing never fails a run that trained. It writes ``evaluation.json``::

    {
      "format": 1, "task": "classification", "task_from": "the loss (sparse_categorical_crossentropy)",
      "split": "test", "samples": 30, "evaluated": 30, "rows": "dataset",
      "headline": {"accuracy": 0.93, "macro_f1": 0.93, "roc_auc": 0.99},
      "classification": {...} | "regression": {...},      (evaluation_classification / _regression)
      "model": {"layers": [...], "params": {...}, "model_h5_bytes": 12345},
      "not_computed": [{"what": "roc", "why": "..."}], "seconds": 0.04
    }

Its time is a stage of its own in execution.log (``Evaluation - ... took 0.04s``); metrics.json is
left exactly as the seed documents it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..execution import write_json
from .classification import NotClassification, classify
from .common import Notes, number
from .regression import NotRegression, regress
from .task import task_for

if TYPE_CHECKING:
    import keras

    from ..config import TrainingConfig
    from ..datasets import Dataset
    from ..processing import Split

log = logging.getLogger("gymnosd.Evaluation")

FORMAT = 1
FILE_NAME = "evaluation.json"
MAX_LAYERS = 500  # listed in the model summary; the totals always count every layer
HEADLINE = ("accuracy", "macro_f1", "roc_auc", "r2", "rmse")  # what sync indexes, in this order


def output_activation(model: keras.Model) -> str:
    """The last layer's activation (``softmax``, ``linear``...), or ``""`` when it has none."""
    if not model.layers:
        return ""
    last = model.layers[-1]
    if type(last).__name__ == "Softmax":
        return "softmax"
    activation = getattr(last, "activation", None)
    return str(getattr(activation, "__name__", "") or "")


def decide_task(config: TrainingConfig, activation: str) -> tuple[str, str]:
    """``(task, why)``: the config's ``experiment.task``, else the loss, else the output layer (``task.task_for``)."""
    return task_for(config.experiment.task, config.model.compilation.loss, activation)


def model_summary(model: keras.Model, folder: Path) -> dict[str, Any]:
    """Layers with output shapes and parameter counts (trainable and not), the totals, and model.h5's size."""
    layers = []
    for layer in model.layers[:MAX_LAYERS]:
        trainable = sum(int(np.prod(weight.shape)) for weight in layer.trainable_weights)
        frozen = sum(int(np.prod(weight.shape)) for weight in layer.non_trainable_weights)
        try:
            shape = [None if size is None else int(size) for size in layer.output.shape]
        except (AttributeError, ValueError, TypeError):  # a layer used twice has no single output
            shape = None
        layers.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": shape,
                "params": trainable + frozen,
                "trainable": trainable,
                "non_trainable": frozen,
            }
        )
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    frozen = sum(int(np.prod(weight.shape)) for weight in model.non_trainable_weights)
    try:
        size: int | None = os.path.getsize(folder / "model.h5")
    except OSError:
        size = None
    return {
        "layers": layers,
        "layers_total": len(model.layers),
        "params": {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen},
        "model_h5_bytes": size,
    }


def predict(model: keras.Model, X: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs for ``X``, in chunks.

    ``predict_on_batch`` rather than ``predict``: ``predict`` traces a new function, which costs more
    than the whole report on a small test split (0.18 s against 0.02 s for Boston's 101 samples).
    """
    chunk = max(batch_size, 256)
    parts = [np.asarray(model.predict_on_batch(X[start : start + chunk])) for start in range(0, len(X), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0,))


def _finite_rows(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    keep = np.isfinite(outputs.reshape(len(outputs), -1)).all(axis=1)
    try:
        keep &= np.isfinite(np.asarray(y, dtype="float64").reshape(len(y), -1)).all(axis=1)
    except (TypeError, ValueError):  # labels that are not numbers: the task's report says so
        pass
    return keep


def build_report(
    model: keras.Model,
    X: np.ndarray | None,
    y: np.ndarray | None,
    split: str,
    rows: np.ndarray | None,
    config: TrainingConfig,
    dataset: Dataset | None,
    folder: Path,
) -> dict[str, Any]:
    """The report's content (without ``seconds``); ``X`` None when the run has no split to evaluate on."""
    notes = Notes()
    activation = output_activation(model)
    task, why = decide_task(config, activation)
    report: dict[str, Any] = {"format": FORMAT, "task": task, "task_from": why, "split": split}
    if split == "val":
        report["split_note"] = (
            "the run has no test split (training.samples.test is 0), so this report is on the validation "
            "split, which the run saw during training (early stopping, checkpoints)"
        )
    headline: dict[str, float | None] = {}
    if X is None or y is None:
        notes.add("predictions", "not computed: the run has neither a test nor a validation split to predict on")
        report.update(samples=0, evaluated=0)
    else:
        report["samples"] = len(X)
        report["rows"] = "dataset" if rows is not None else "split"
        positions = np.asarray(rows) if rows is not None else np.arange(len(X))
        outputs = predict(model, X, config.training.batch_size)
        keep = _finite_rows(outputs, y)
        report["evaluated"] = int(keep.sum())
        if not keep.all():
            bad = len(keep) - int(keep.sum())
            where = ", ".join(str(int(row)) for row in positions[~keep][:5]) + (" ..." if bad > 5 else "")
            if keep.any():
                notes.add(
                    "predictions",
                    f"{bad} of {len(keep)} predictions are NaN or infinite (rows {where}); "
                    f"every figure is from the other {int(keep.sum())}",
                )
            else:
                notes.add(
                    "predictions",
                    f"every prediction is NaN or infinite ({len(keep)} of {len(keep)}): the model diverged or its "
                    "inputs hold NaN; nothing could be computed from them",
                )
        if keep.any():
            outputs, y, positions = outputs[keep], np.asarray(y)[keep], positions[keep]
            try:
                if task == "classification":
                    names = dataset.class_names() if dataset is not None else None
                    report["classification"], headline = classify(outputs, y, names, activation, notes)
                else:
                    report["regression"], headline = regress(outputs, y, positions, notes)
            except (NotClassification, NotRegression) as exc:
                notes.add(task, f"not computed: {exc}")
    report["headline"] = {name: number(headline[name]) for name in HEADLINE if name in headline}
    report["model"] = model_summary(model, folder)
    report["not_computed"] = notes.items
    return report


def write_report(
    model: keras.Model,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    config: TrainingConfig,
    dataset: Dataset | None,
    folder: Path,
    rows: Split | None = None,
) -> dict[str, Any]:
    """Write ``evaluation.json`` in ``folder`` from the test split (else the validation split) and return it.

    ``splits`` holds the transformed ``fit``, ``val`` and ``test`` arrays; ``dataset`` is the built-in
    dataset (None for a file), which may know its class names; ``rows`` the dataset row numbers of
    each split, so the worst predictions can be found in the data.
    """
    start = time.perf_counter()
    split = next((name for name in ("test", "val") if name in splits and len(splits[name][0])), None)
    if split is None:
        log.info("Writing the evaluation report: no test or validation split, so it describes the model only ...")
        X = y = split_rows = None
    else:
        X, y = splits[split]
        split_rows = getattr(rows, split) if rows is not None else None
        name = "test" if split == "test" else "validation (there is no test split)"
        log.info(f"Writing the evaluation report from the {name} split ({len(X)} samples) ...")
    report = build_report(model, X, y, split or "none", split_rows, config, dataset, Path(folder))
    report["seconds"] = time.perf_counter() - start
    write_json(Path(folder) / FILE_NAME, report)
    shown = [f"{name} {value:.4g}" for name, value in report["headline"].items() if value is not None]
    if shown:
        log.info("Headline numbers: " + ", ".join(shown))
    for item in report["not_computed"]:
        log.info(f"Not computed: {item['what']}: {item['why']}")
    log.debug(f"Evaluation report took {report['seconds']:.2f}s")
    return report
