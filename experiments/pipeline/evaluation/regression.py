"""The regression report: how far the model's predictions land from the actual values on one split.

    section, headline = regress(outputs, y, rows, notes)

``rows`` are the dataset's row numbers of the split's samples (0-based, before the split), so the
worst predictions can be looked up in the data. With several outputs per sample the figures are
scikit-learn's uniform averages and the plots hold every (sample, output) pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import Notes, number, numbers

MAX_POINTS = 5_000  # predicted-vs-actual and residual plots: all points up to this, else a sample of it
MAX_BINS = 50
WORST = 10


class NotRegression(ValueError):
    """The outputs and targets do not fit a regression report; the message says why."""


def _shapes(outputs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(outputs, dtype="float64")
    try:
        actual = np.asarray(y, dtype="float64")
    except (TypeError, ValueError):
        raise NotRegression(f"the targets are not numbers (got {np.asarray(y).dtype})") from None
    predicted = predicted.reshape(len(predicted), -1)
    actual = actual.reshape(len(actual), -1)
    if predicted.shape != actual.shape:
        raise NotRegression(
            f"the model predicts {predicted.shape[1]} value(s) per sample but the targets hold {actual.shape[1]}"
        )
    return predicted, actual


def _points(predicted: np.ndarray, actual: np.ndarray, rows: np.ndarray, notes: Notes) -> dict[str, Any]:
    """Predicted against actual, every point or a seeded sample of MAX_POINTS; residuals are actual - predicted."""
    outputs = predicted.shape[1]
    flat_predicted, flat_actual = predicted.ravel(), actual.ravel()
    total = len(flat_predicted)
    chosen = np.arange(total)
    if total > MAX_POINTS:
        chosen = np.sort(np.random.RandomState(0).choice(total, MAX_POINTS, replace=False))
        notes.add(
            "points",
            f"the plots show a random sample of {MAX_POINTS:,} of the {total:,} predictions; "
            "every figure and the histogram use all of them",
        )
    points: dict[str, Any] = {
        "sampled": total > MAX_POINTS,
        "total": total,
        "rows": [int(rows[i // outputs]) for i in chosen],
        "actual": numbers(flat_actual[chosen]),
        "predicted": numbers(flat_predicted[chosen]),
        "residual": numbers(flat_actual[chosen] - flat_predicted[chosen]),
    }
    if outputs > 1:
        points["output"] = [int(i % outputs) for i in chosen]
    return points


def _histogram(residuals: np.ndarray) -> dict[str, Any]:
    edges = np.histogram_bin_edges(residuals, bins="auto")
    bins = int(min(MAX_BINS, max(1, len(edges) - 1)))
    counts, edges = np.histogram(residuals, bins=bins)
    return {"edges": numbers(edges), "counts": [int(c) for c in counts]}


def _worst(predicted: np.ndarray, actual: np.ndarray, rows: np.ndarray) -> list[dict[str, Any]]:
    outputs = predicted.shape[1]
    residuals = (actual - predicted).ravel()
    order = np.argsort(-np.abs(residuals), kind="stable")[:WORST]
    worst = []
    for i in order:
        item = {
            "row": int(rows[i // outputs]),
            "actual": number(actual.ravel()[i]),
            "predicted": number(predicted.ravel()[i]),
            "residual": number(residuals[i]),
        }
        if outputs > 1:
            item["output"] = int(i % outputs)
        worst.append(item)
    return worst


def regress(
    outputs: np.ndarray, y: np.ndarray, rows: np.ndarray, notes: Notes
) -> tuple[dict[str, Any], dict[str, float | None]]:
    """The ``regression`` section of evaluation.json and its headline numbers."""
    from sklearn.metrics import mean_absolute_error, median_absolute_error, r2_score, root_mean_squared_error

    predicted, actual = _shapes(outputs, y)
    r2: float | None = None
    if len(actual) < 2:
        notes.add("r2", f"not computed: R² needs at least two samples, and this split has {len(actual)}")
    elif np.all(actual == actual[0]):
        notes.add("r2", "undefined: every actual value in this split is the same, so there is no variance to explain")
    else:
        r2 = number(r2_score(actual, predicted))
    section = {
        "outputs": predicted.shape[1],
        "mae": number(mean_absolute_error(actual, predicted)),
        "rmse": number(root_mean_squared_error(actual, predicted)),
        "r2": r2,
        "median_absolute_error": number(median_absolute_error(actual, predicted)),
        "points": _points(predicted, actual, rows, notes),
        "residual_histogram": _histogram((actual - predicted).ravel()),
        "worst": _worst(predicted, actual, rows),
    }
    return section, {"r2": r2, "rmse": section["rmse"]}
