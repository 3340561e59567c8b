"""The classification report: where the model puts each class, from its outputs on one split.

    section, headline = classify(outputs, y, class_names, activation, notes)

``outputs`` are the model's predictions (one probability or score per class, or one for the positive
class of a binary problem), ``y`` the true labels as the model was trained on them (class indices,
one-hot rows, or 0/1). Every figure comes from scikit-learn on the same predicted labels; what
cannot be computed (a curve for a class with no samples, precision of a class never predicted) is
left null and said in ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import Notes, downsample, label_list, number, numbers

MAX_MATRIX_CLASSES = 50  # a heatmap stops being readable, and evaluation.json grows as classes squared
MAX_CURVE_CLASSES = 20  # one ROC and PR curve per class up to this many; beyond, one micro-averaged curve
MAX_MICRO_POINTS = 5_000_000  # samples x classes fed to the micro-averaged curve
MOST_CONFUSED = 10


class NotClassification(ValueError):
    """The outputs and labels do not fit a classification report; the message says why."""


@dataclass
class Labels:
    """The split's true and predicted classes as indices ``0..K-1``, and each sample's score per class."""

    true: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray  # (n, K): what the curves rank by
    classes: list[str]  # the label of each index, as the data spells it ("0", "1", or "-1", "1")
    note: str = ""  # how the scores were made from the outputs, when it is not obvious


def _integral(values: np.ndarray, what: str) -> np.ndarray:
    try:
        floats = values.astype("float64")
    except (TypeError, ValueError):
        raise NotClassification(f"{what} are not numbers (got {values.dtype}); expected class indices") from None
    if not np.all(floats == np.round(floats)):
        raise NotClassification(f"{what} are not whole numbers; expected class indices 0, 1, 2, ...")
    return floats.astype("int64")


def _softmax(outputs: np.ndarray) -> np.ndarray:
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def labels_from(outputs: np.ndarray, y: np.ndarray, activation: str) -> Labels:
    """Class indices from the model's outputs and the labels it was trained on.

    Raises ``NotClassification`` when they do not fit together (the message says how).
    """
    outputs = np.asarray(outputs, dtype="float64")
    y = np.asarray(y)
    if outputs.ndim == 2 and outputs.shape[1] >= 2:
        count = outputs.shape[1]
        if y.ndim == 2 and y.shape[1] == count:
            true = np.argmax(y, axis=1)  # one-hot rows (categorical_crossentropy)
        elif y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
            true = _integral(y.reshape(-1), "the labels")
        else:
            raise NotClassification(
                f"the labels have shape {list(y.shape[1:])} per sample but the model has {count} outputs; "
                "expected one class index or one one-hot row per sample"
            )
        outside = np.unique(true[(true < 0) | (true >= count)])
        if len(outside):
            raise NotClassification(
                f"labels {label_list([str(v) for v in outside])} are not among the model's {count} outputs "
                f"(class indices 0 to {count - 1})"
            )
        probabilities = bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3))
        scores = outputs if probabilities else _softmax(outputs)
        note = "" if probabilities else "the outputs are not probabilities (logits?): the curves rank by their softmax"
        return Labels(true, np.argmax(outputs, axis=1), scores, [str(k) for k in range(count)], note)
    if outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1):
        score = outputs.reshape(-1)
        if y.ndim > 1 and int(np.prod(y.shape[1:])) != 1:
            raise NotClassification(
                f"the model has one output but the labels have shape {list(y.shape[1:])} per sample; "
                "several 0/1 outputs per sample (multi-label) are not evaluated"
            )
        values = set(np.unique(_integral(y.reshape(-1), "the labels")).tolist())
        if values <= {0, 1}:
            true, classes = _integral(y.reshape(-1), "the labels"), ["0", "1"]
        elif values <= {-1, 1}:  # hinge losses
            true, classes = (_integral(y.reshape(-1), "the labels") > 0).astype("int64"), ["-1", "1"]
        else:
            raise NotClassification(
                f"the model has one output, so labels should be 0/1 (or -1/1), but they hold "
                f"{label_list([str(v) for v in sorted(values)])}"
            )
        sigmoid = activation == "sigmoid" or bool(np.all((score >= 0) & (score <= 1)))
        threshold = 0.5 if sigmoid else 0.0
        note = "" if sigmoid else "the output is not a probability: a score of 0 or more predicts the positive class"
        predicted = (score >= threshold).astype("int64")
        return Labels(true, predicted, np.column_stack([-score, score]), classes, note)
    raise NotClassification(f"the model's outputs have shape {list(outputs.shape[1:])} per sample; expected one vector")


def _names(labels: Labels, dataset_names: list[str] | None) -> tuple[list[str], str]:
    if dataset_names and len(dataset_names) == len(labels.classes):
        return [str(name) for name in dataset_names], "dataset"
    return labels.classes, "labels"


def _per_class(labels: Labels, names: list[str], notes: Notes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from sklearn.metrics import precision_recall_fscore_support

    indices = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels.true, labels.predicted, labels=indices, zero_division=np.nan
    )
    never_predicted = [names[k] for k in indices if np.isnan(precision[k])]
    absent = [names[k] for k in indices if support[k] == 0]
    if never_predicted:
        notes.add(
            "precision",
            f"undefined for {label_list(never_predicted)}: the model never predicted "
            f"{'it' if len(never_predicted) == 1 else 'them'} on this split",
        )
    if absent:
        notes.add(
            "recall",
            f"undefined for {label_list(absent)}: no samples of {'it' if len(absent) == 1 else 'them'} in this split",
        )
    rows = [
        {
            "class": names[k],
            "precision": number(precision[k]),
            "recall": number(recall[k]),
            "f1": number(f1[k]),
            "support": int(support[k]),
            "roc_auc": None,  # filled in with the curves
            "average_precision": None,
        }
        for k in indices
    ]
    averages: dict[str, Any] = {}
    for average in ("macro", "weighted"):
        # scikit-learn's own averages: over the classes in the split or the predictions, undefined counted as 0.
        p, r, f, _ = precision_recall_fscore_support(labels.true, labels.predicted, average=average, zero_division=0.0)
        averages[average] = {"precision": number(p), "recall": number(r), "f1": number(f)}
    return rows, averages


def _confusion(labels: Labels, names: list[str], notes: Notes) -> dict[str, Any] | None:
    from sklearn.metrics import confusion_matrix

    count = len(names)
    if count > MAX_MATRIX_CLASSES:
        notes.add(
            "confusion_matrix",
            f"left out: {count:,} classes make a {count:,} x {count:,} matrix (it is kept up to "
            f"{MAX_MATRIX_CLASSES} classes); the most confused pairs below say where the model errs",
        )
        return None
    counts = confusion_matrix(labels.true, labels.predicted, labels=list(range(count)))
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = counts / totals
    return {
        "labels": names,
        "counts": counts.tolist(),
        "normalized": [
            numbers(row) if total else [None] * count for row, total in zip(normalised, totals[:, 0], strict=True)
        ],
    }


def _most_confused(labels: Labels, names: list[str]) -> list[dict[str, Any]]:
    """The pairs (actual, predicted) the model mixes up most, from the pairs alone (no K x K matrix)."""
    wrong = labels.true != labels.predicted
    if not wrong.any():
        return []
    pairs, counts = np.unique(
        np.column_stack([labels.true[wrong], labels.predicted[wrong]]), axis=0, return_counts=True
    )
    support = np.bincount(labels.true, minlength=len(names))
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -counts))[:MOST_CONFUSED]
    return [
        {
            "actual": names[pairs[i, 0]],
            "predicted": names[pairs[i, 1]],
            "count": int(counts[i]),
            "share": number(counts[i] / support[pairs[i, 0]]),
        }
        for i in order
    ]


def _curve(positive: np.ndarray, score: np.ndarray, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(positive, score)
    precision, recall, _ = precision_recall_curve(positive, score)
    fpr_kept, tpr_kept = downsample(fpr, tpr)
    recall_kept, precision_kept = downsample(recall, precision)
    roc = {"class": name, "auc": number(roc_auc_score(positive, score)), "fpr": fpr_kept, "tpr": tpr_kept}
    pr = {
        "class": name,
        "average_precision": number(average_precision_score(positive, score)),
        "recall": recall_kept,
        "precision": precision_kept,
    }
    return roc, pr


def _ranked_aucs(true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Every class's one-vs-rest ROC AUC at once, from ranks (the Mann-Whitney U statistic); NaN without samples.

    The same numbers as ``roc_auc_score`` column by column (tied scores share their average rank, as
    ROC's trapezoids count them), but one ranking of the whole matrix: 1,000 classes take about 0.2 s
    instead of 5 s of one ``roc_auc_score`` call per class.
    """
    from scipy.stats import rankdata

    onehot = np.zeros(scores.shape, dtype=bool)
    onehot[np.arange(len(true)), true] = True
    positives = onehot.sum(axis=0).astype("float64")
    negatives = len(true) - positives
    ranks = rankdata(scores, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * onehot).sum(axis=0) - positives * (positives + 1) / 2) / (positives * negatives)


def _curves(labels: Labels, names: list[str], rows: list[dict[str, Any]], notes: Notes) -> dict[str, Any] | None:
    """ROC and PR: the positive class of a binary problem, else one-vs-rest per class (or micro-averaged)."""
    present = np.unique(labels.true)
    if len(present) < 2:
        notes.add(
            "roc",
            f"not computed: this split holds only class '{names[present[0]]}' ({len(labels.true)} "
            f"sample{'s' if len(labels.true) != 1 else ''}); ROC and precision-recall curves need samples of at "
            "least two classes",
        )
        return None
    count = len(names)
    if count == 2:
        roc, pr = _curve(labels.true == 1, labels.scores[:, 1], names[1])
        rows[1]["roc_auc"], rows[1]["average_precision"] = roc["auc"], pr["average_precision"]
        return {"kind": "binary", "positive": names[1], "roc": [roc], "pr": [pr], "auc": roc["auc"]}
    per_class = count <= MAX_CURVE_CLASSES
    roc_curves, pr_curves, aucs, missing = [], [], [], []
    ranked = None if per_class else _ranked_aucs(labels.true, labels.scores)
    for k in range(count):
        positive = labels.true == k
        if not positive.any():
            missing.append(names[k])
            continue
        if ranked is None:
            roc, pr = _curve(positive, labels.scores[:, k], names[k])
            roc_curves.append(roc)
            pr_curves.append(pr)
            rows[k]["roc_auc"], rows[k]["average_precision"] = roc["auc"], pr["average_precision"]
        else:
            rows[k]["roc_auc"] = number(ranked[k])
        aucs.append(rows[k]["roc_auc"])
    if missing:
        notes.add(
            "roc_auc",
            f"undefined for {label_list(missing)}: no samples of {'it' if len(missing) == 1 else 'them'} in this "
            f"split; the macro ROC AUC averages the other {count - len(missing)} classes",
        )
    result: dict[str, Any] = {"kind": "one-vs-rest", "roc": roc_curves, "pr": pr_curves}
    if not per_class:
        onehot = np.zeros_like(labels.scores, dtype=bool)
        onehot[np.arange(len(labels.true)), labels.true] = True
        if onehot.size <= MAX_MICRO_POINTS:
            roc, pr = _curve(onehot.ravel(), labels.scores.ravel(), "micro-average")
            result["roc"], result["pr"] = [roc], [pr]
            result["micro_auc"] = roc["auc"]
        notes.add(
            "roc_curves",
            f"one micro-averaged ROC and PR curve instead of one per class: {count:,} classes "
            f"(curves and average precision are kept per class up to {MAX_CURVE_CLASSES}); "
            "each class's ROC AUC is in the table",
        )
    defined = [auc for auc in aucs if auc is not None]
    result["auc"] = number(np.mean(defined)) if defined else None
    return result


def classify(
    outputs: np.ndarray, y: np.ndarray, dataset_names: list[str] | None, activation: str, notes: Notes
) -> tuple[dict[str, Any], dict[str, float | None]]:
    """The ``classification`` section of evaluation.json and its headline numbers."""
    from sklearn.metrics import accuracy_score

    labels = labels_from(outputs, y, activation)
    if labels.note:
        notes.add("scores", labels.note)
    names, source = _names(labels, dataset_names)
    if dataset_names and source != "dataset":
        notes.add(
            "class_names",
            f"the dataset names {len(dataset_names)} classes but the model has {len(names)} outputs; "
            "classes are shown by index",
        )
    rows, averages = _per_class(labels, names, notes)
    curves = _curves(labels, names, rows, notes)
    accuracy = number(accuracy_score(labels.true, labels.predicted))
    section = {
        "classes": names,
        "class_names_from": source,
        "accuracy": accuracy,
        "per_class": rows,
        "averages": averages,
        "confusion_matrix": _confusion(labels, names, notes),
        "curves": curves,
        "most_confused": _most_confused(labels, names),
    }
    headline = {
        "accuracy": accuracy,
        "macro_f1": averages["macro"]["f1"],
        "roc_auc": curves["auc"] if curves else None,
    }
    return section, headline
