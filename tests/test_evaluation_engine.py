"""The evaluation report of real runs: iris, breast_cancer and Boston, checked against scikit-learn.

Each run trains a small model for real; the reference figures are computed here, independently of the
engine: the split rebuilt as the seed documents it (a seeded permutation, floor of each fraction), the
scaler fitted on the fit part, and the saved model.h5 predicting the test part.
"""

import json
import math

import keras
import numpy as np
import pytest
import sklearn.datasets
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)
from sklearn.preprocessing import StandardScaler

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.datasets import HDFManager
from experiments.pipeline.evaluation.common import MAX_CURVE_POINTS, downsample
from experiments.pipeline.evaluation.report import decide_task
from experiments.pipeline.execution import STAGES
from tests.helpers import tiny

pytestmark = pytest.mark.training


def classifier(dataset, inputs, outputs, loss, activation, epochs=15):
    return {
        "experiment": {"name": dataset},
        "model": {
            "input_shape": [inputs],
            "network": [
                {"type": "dense", "units": 16, "activation": "relu"},
                {"type": "dense", "units": outputs, "activation": activation},
            ],
            "compilation": {"optimizer": "adam", "loss": loss, "metrics": ["accuracy"]},
        },
        "dataset": {"name": dataset, "transformers": [{"type": "standard_scaler"}]},
        "training": {"samples": {"fit": 0.6, "val": 0.2, "test": 0.2}, "epochs": epochs, "batch_size": 16},
    }


def train(root, config):
    result = run_experiment(load_config(config), trainings_root=root / "trainings", cache_dir=root / "cache")
    assert result.succeeded, result.error
    assert result.path is not None
    return result.path, json.loads((result.path / "evaluation.json").read_text())


def reference_test_split(X, y, seed=0):
    """The test split as the seed documents it, scaled with statistics of the fit split only."""
    n = len(X)
    order = np.random.RandomState(seed).permutation(n)
    n_fit, n_val, n_test = (math.floor(fraction * n + 1e-9) for fraction in (0.6, 0.2, 0.2))
    fit, test = order[:n_fit], order[n_fit + n_val : n_fit + n_val + n_test]
    scaler = StandardScaler().fit(X[fit])
    return scaler.transform(X[test]).astype("float32"), y[test], test


def predictions(folder, X):
    model = keras.models.load_model(folder / "model.h5", compile=False)
    return np.asarray(model.predict(X, verbose=0))


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    root = tmp_path_factory.mktemp("iris")
    folder, report = train(root, classifier("iris", 4, 3, "sparse_categorical_crossentropy", "softmax"))
    bunch = sklearn.datasets.load_iris()
    X, y, rows = reference_test_split(bunch.data.astype("float32"), bunch.target)
    return folder, report, X, y, predictions(folder, X)


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory):
    root = tmp_path_factory.mktemp("breast_cancer")
    folder, report = train(root, classifier("breast_cancer", 30, 1, "binary_crossentropy", "sigmoid", epochs=5))
    bunch = sklearn.datasets.load_breast_cancer()
    X, y, _ = reference_test_split(bunch.data.astype("float32"), bunch.target)
    return folder, report, y, predictions(folder, X)[:, 0]


@pytest.fixture(scope="module")
def boston(tmp_path_factory):
    root = tmp_path_factory.mktemp("boston")
    folder, report = train(root, tiny(epochs=5))
    X_all, y_all = HDFManager(root / "cache" / "datasets" / "BostonHousing.h5").load()
    X, y, rows = reference_test_split(X_all, y_all)
    return folder, report, y, predictions(folder, X)[:, 0], y_all


# --- iris: three classes ----------------------------------------------------------------------------


def test_iris_confusion_matrix_is_3x3_and_sums_to_the_test_split(iris):
    _, report, X, y, _ = iris
    matrix = report["classification"]["confusion_matrix"]
    counts = np.array(matrix["counts"])
    assert counts.shape == (3, 3)
    assert counts.sum() == len(y) == report["samples"] == report["evaluated"] == 30
    assert matrix["labels"] == ["setosa", "versicolor", "virginica"]  # the dataset's own class names
    assert report["task"] == "classification"
    assert "sparse_categorical_crossentropy" in report["task_from"]
    for row, normalised in zip(counts, matrix["normalized"], strict=True):
        assert normalised == pytest.approx((row / row.sum()).tolist())


def test_iris_per_class_figures_equal_scikit_learns_on_the_same_predictions(iris):
    _, report, _, y, outputs = iris
    predicted = outputs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=[0, 1, 2], zero_division=0)
    section = report["classification"]
    for k, row in enumerate(section["per_class"]):
        assert row["support"] == support[k]
        for name, expected in (("precision", precision[k]), ("recall", recall[k]), ("f1", f1[k])):
            # null where scikit-learn had to divide by zero (a class never predicted), else its value
            assert (row[name] if row[name] is not None else 0.0) == pytest.approx(expected), (row, name)
    assert np.array(section["confusion_matrix"]["counts"]).tolist() == confusion_matrix(y, predicted).tolist()
    assert report["headline"]["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert report["headline"]["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert report["headline"]["roc_auc"] == pytest.approx(roc_auc_score(y, outputs, multi_class="ovr"))


def test_iris_has_one_roc_and_pr_curve_per_class_and_the_most_confused_pairs(iris):
    _, report, _, y, outputs = iris
    section = report["classification"]
    curves = section["curves"]
    assert curves["kind"] == "one-vs-rest"
    assert [c["class"] for c in curves["roc"]] == ["setosa", "versicolor", "virginica"]
    for k, curve in enumerate(curves["roc"]):
        assert curve["auc"] == pytest.approx(roc_auc_score(y == k, outputs[:, k]))
        assert curve["fpr"][0] == 0
        assert curve["tpr"][-1] == 1
        assert len(curve["fpr"]) == len(curve["tpr"])
    assert len(curves["pr"]) == 3
    predicted = outputs.argmax(axis=1)
    mistakes = {(int(a), int(p)) for a, p in zip(y, predicted, strict=True) if a != p}
    names = section["classes"]
    assert {(names.index(pair["actual"]), names.index(pair["predicted"])) for pair in section["most_confused"]} == (
        mistakes
    )


def test_the_model_summary_lists_layers_parameters_and_the_size_of_model_h5(iris):
    folder, report, *_ = iris
    model = report["model"]
    assert [layer["type"] for layer in model["layers"]] == ["Dense", "Dense"]
    assert [layer["output_shape"] for layer in model["layers"]] == [[None, 16], [None, 3]]
    assert [layer["params"] for layer in model["layers"]] == [4 * 16 + 16, 16 * 3 + 3]
    assert model["params"] == {"trainable": 131, "non_trainable": 0, "total": 131}
    assert model["model_h5_bytes"] == (folder / "model.h5").stat().st_size


def test_the_report_is_a_stage_of_its_own_in_the_log_and_metrics_json_is_unchanged(iris):
    folder, report, *_ = iris
    log = (folder / "execution.log").read_text()
    assert "INFO - Evaluation - Writing the evaluation report from the test split (30 samples) ..." in log
    assert "DEBUG - Evaluation - Evaluation report took " in log
    assert "INFO - Evaluation - Headline numbers: accuracy " in log
    assert log.index("Trainer - Saving model") < log.index("Evaluation - Writing")
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics) == {"elapsed", "metrics", "hardware"}
    assert set(metrics["elapsed"]) == set(STAGES)
    assert 0 < report["seconds"] < 30


# --- breast_cancer: binary, one sigmoid output -----------------------------------------------------------


def test_breast_cancer_binary_roc_auc_matches_roc_auc_score(breast_cancer):
    _, report, y, scores = breast_cancer
    curves = report["classification"]["curves"]
    assert curves["kind"] == "binary"
    assert curves["positive"] == "benign"
    assert curves["roc"][0]["auc"] == pytest.approx(roc_auc_score(y, scores))
    assert report["headline"]["roc_auc"] == pytest.approx(roc_auc_score(y, scores))
    assert report["classification"]["classes"] == ["malignant", "benign"]
    assert report["headline"]["accuracy"] == pytest.approx(accuracy_score(y, scores >= 0.5))
    assert all(len(curve["fpr"]) <= MAX_CURVE_POINTS for curve in curves["roc"])


# --- Boston: regression ---------------------------------------------------------------------------------


def test_boston_r2_equals_r2_score_and_the_errors_match(boston):
    _, report, y, predicted, _ = boston
    section = report["regression"]
    assert report["task"] == "regression"
    assert section["r2"] == pytest.approx(r2_score(y, predicted)) == pytest.approx(report["headline"]["r2"])
    assert section["mae"] == pytest.approx(mean_absolute_error(y, predicted))
    assert section["rmse"] == pytest.approx(float(np.sqrt(np.mean((y - predicted) ** 2))), rel=1e-6)
    assert section["median_absolute_error"] == pytest.approx(float(np.median(np.abs(y - predicted))), rel=1e-6)


def test_boston_plots_every_point_and_names_the_worst_predictions_by_dataset_row(boston):
    _, report, y, predicted, y_all = boston
    section = report["regression"]
    points = section["points"]
    assert points["sampled"] is False
    assert points["total"] == len(points["actual"]) == 101
    assert sorted(points["actual"]) == pytest.approx(sorted(y.tolist()))
    assert sum(section["residual_histogram"]["counts"]) == 101
    worst = section["worst"]
    assert len(worst) == 10
    errors = [abs(w["residual"]) for w in worst]
    assert errors == sorted(errors, reverse=True)
    assert errors[0] == pytest.approx(float(np.max(np.abs(y - predicted))))
    for item in worst:  # the row number finds the sample in the dataset itself
        assert item["actual"] == pytest.approx(float(y_all[item["row"]]))
        assert item["residual"] == pytest.approx(item["actual"] - item["predicted"])


# --- the parts that need no training ----------------------------------------------------------------------


def test_curves_are_kept_at_most_1000_points_with_both_ends():
    fpr = np.linspace(0, 1, 25_000)
    kept_fpr, kept_tpr = downsample(fpr, fpr**0.5)
    assert len(kept_fpr) == MAX_CURVE_POINTS == len(kept_tpr)
    assert kept_fpr[0] == 0
    assert kept_fpr[-1] == 1
    assert kept_fpr == sorted(x for x in kept_fpr if x is not None)


@pytest.mark.parametrize(
    ("loss", "activation", "task", "expected", "because"),
    [
        ("categorical_crossentropy", "softmax", None, "classification", "the loss"),
        ("mse", "linear", None, "regression", "the loss"),
        ("mse", "softmax", None, "classification", "experiment.task"),  # a guess, saying how to overrule it
        ("my_custom_loss", "sigmoid", None, "classification", "the output layer"),
        ("mse", "softmax", "regression", "regression", "the config"),
    ],
)
def test_the_task_comes_from_the_config_else_the_loss_else_the_output_layer(loss, activation, task, expected, because):
    config = classifier("iris", 4, 3, "sparse_categorical_crossentropy", "softmax")
    config["model"]["compilation"]["loss"] = "mse"
    parsed = load_config(config)
    parsed.model.compilation.loss = loss  # the schema checks loss names against Keras; the decision reads the name
    parsed.experiment.task = task
    decided, why = decide_task(parsed, activation)
    assert decided == expected
    assert because in why


def test_a_big_regression_split_is_plotted_from_a_5000_point_sample_and_says_so(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(12_000, 4)).astype("float32")
    np.savez(tmp_path / "big.npz", X=X, y=X[:, 0] * 3)
    config = tiny(epochs=1)
    config["model"]["input_shape"] = [4]
    config["dataset"] = {"path": str(tmp_path / "big.npz")}
    config["training"]["samples"] = {"fit": 0.5, "test": 0.5}
    config["training"]["shuffle"] = False  # the test split is the dataset's second half
    _, report = train(tmp_path, config)
    points = report["regression"]["points"]
    assert points["sampled"] is True
    assert points["total"] == 6_000
    assert len(points["actual"]) == len(points["predicted"]) == len(points["rows"]) == 5_000
    assert all(6_000 <= row < 12_000 for row in points["rows"])  # rows of the dataset
    assert sum(report["regression"]["residual_histogram"]["counts"]) == 6_000  # the histogram uses every point
    notes = {item["what"]: item["why"] for item in report["not_computed"]}
    assert notes["points"].startswith("the plots show a random sample of 5,000 of the 6,000 predictions")
