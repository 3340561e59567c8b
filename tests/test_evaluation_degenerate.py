"""Runs whose test split cannot give every figure: the report says what it could not compute and why,
and the run still succeeds. Each trains for real on a small file dataset laid out so the split is known
(``shuffle`` off: the test split is the last rows)."""

import json

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from experiments.pipeline import load_config, run_experiment

pytestmark = pytest.mark.training


def config_for(path, outputs, loss, activation, samples, epochs=2, inputs=4, task=None, hidden="relu"):
    config = {
        "experiment": {"name": path.stem},
        "model": {
            "input_shape": [inputs],
            "network": [
                {"type": "dense", "units": 8, "activation": hidden},
                {"type": "dense", "units": outputs, "activation": activation},
            ],
            "compilation": {"optimizer": "adam", "loss": loss},
        },
        "dataset": {"path": str(path)},
        "training": {"samples": samples, "epochs": epochs, "batch_size": 16, "shuffle": False},
    }
    if task:
        config["experiment"]["task"] = task
    return config


def run(tmp_path, config):
    result = run_experiment(load_config(config), trainings_root=tmp_path / "trainings", cache_dir=tmp_path / "cache")
    assert result.succeeded, result.error  # whatever the report could not do, the run that trained succeeded
    assert result.path is not None
    report = json.loads((result.path / "evaluation.json").read_text())
    return result, report, {item["what"]: item["why"] for item in report["not_computed"]}


def dataset(tmp_path, name, X, y):
    path = tmp_path / f"{name}.npz"
    np.savez(path, X=X.astype("float32"), y=y)
    return path


def test_nan_predictions_are_left_out_and_counted(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 4))
    X[-3:, 0] = np.nan  # the last three test rows: the model can only answer NaN for them
    y = X[:, 1] * 2.0
    path = dataset(tmp_path, "nan_rows", X, np.nan_to_num(y))
    # A linear hidden layer carries NaN through (relu would turn it into 0).
    samples = {"fit": 0.5, "val": 0.25, "test": 0.25}
    result, report, notes = run(tmp_path, config_for(path, 1, "mse", "linear", samples, hidden="linear"))
    assert report["samples"] == 10
    assert report["evaluated"] == 7
    assert notes["predictions"].startswith("3 of 10 predictions are NaN or infinite (rows 37, 38, 39)")
    assert report["regression"]["points"]["total"] == 7
    assert report["headline"]["rmse"] is not None
    assert "Not computed: predictions: 3 of 10" in (result.path / "execution.log").read_text()


def test_a_model_that_predicts_only_nan_still_succeeds_with_the_model_summary(tmp_path):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(40, 4))
    X[30:] = np.nan  # every test row
    path = dataset(tmp_path, "all_nan", X, np.arange(40) % 3)
    _, report, notes = run(
        tmp_path,
        config_for(
            path,
            3,
            "sparse_categorical_crossentropy",
            "softmax",
            {"fit": 0.5, "val": 0.25, "test": 0.25},
            hidden="linear",
        ),
    )
    assert report["evaluated"] == 0
    assert "classification" not in report
    assert "every prediction is NaN or infinite (10 of 10)" in notes["predictions"]
    assert report["headline"] == {}
    assert report["model"]["params"]["total"] == 4 * 8 + 8 + 8 * 3 + 3


def test_a_single_class_test_split_gives_no_roc_and_says_why(tmp_path):
    X = np.random.RandomState(2).normal(size=(40, 4))
    y = np.arange(40) % 3
    y[30:] = 1  # the test split (the last 10 rows) holds class 1 alone
    path = dataset(tmp_path, "one_class", X, y)
    _, report, notes = run(
        tmp_path,
        config_for(path, 3, "sparse_categorical_crossentropy", "softmax", {"fit": 0.5, "val": 0.25, "test": 0.25}),
    )
    section = report["classification"]
    assert section["curves"] is None
    assert report["headline"]["roc_auc"] is None
    assert "this split holds only class '1' (10 samples)" in notes["roc"]
    assert "at least two classes" in notes["roc"]
    assert "no samples of them in this split" in notes["recall"]
    assert "'0', '2'" in notes["recall"]
    assert [row["recall"] for row in section["per_class"]] == [None, section["per_class"][1]["recall"], None]
    assert np.array(section["confusion_matrix"]["counts"]).sum() == 10
    assert section["accuracy"] is not None
    assert report["headline"]["macro_f1"] is not None


def test_a_test_split_of_one_sample_gives_no_r2_and_says_why(tmp_path):
    X = np.random.RandomState(3).normal(size=(20, 4))
    path = dataset(tmp_path, "one_sample", X, X[:, 0] + 1)
    _, report, notes = run(tmp_path, config_for(path, 1, "mse", "linear", {"fit": 0.75, "val": 0.2, "test": 0.05}))
    assert report["samples"] == 1
    assert notes["r2"] == "not computed: R² needs at least two samples, and this split has 1"
    section = report["regression"]
    assert section["r2"] is None
    assert section["mae"] == pytest.approx(section["rmse"])
    assert [w["row"] for w in section["worst"]] == [19]  # the dataset's last row
    assert "r2" not in {k for k, v in report["headline"].items() if v is not None}


def test_a_thousand_classes_keep_the_report_bounded_and_say_what_was_left_out(tmp_path):
    rng = np.random.RandomState(4)
    X = rng.normal(size=(2000, 8))
    y = np.arange(2000) % 1000
    path = dataset(tmp_path, "thousand", X, y)
    result, report, notes = run(
        tmp_path,
        config_for(
            path, 1000, "sparse_categorical_crossentropy", "softmax", {"fit": 0.5, "test": 0.5}, epochs=1, inputs=8
        ),
    )
    section = report["classification"]
    assert section["confusion_matrix"] is None
    assert "1,000 x 1,000 matrix" in notes["confusion_matrix"]
    assert len(section["per_class"]) == 1000
    assert sum(row["support"] for row in section["per_class"]) == 1000
    assert [curve["class"] for curve in section["curves"]["roc"]] == ["micro-average"]
    assert "one micro-averaged ROC and PR curve" in notes["roc_curves"]
    assert all(len(curve["fpr"]) <= 1000 for curve in section["curves"]["roc"])
    assert len(section["most_confused"]) <= 10
    assert (result.path / "evaluation.json").stat().st_size < 1_000_000
    # Each class's ROC AUC (from ranks, all classes at once) is scikit-learn's, and the headline their mean.
    scores = keras.models.load_model(result.path / "model.h5", compile=False).predict(X[1000:], verbose=0)
    some = range(0, 1000, 97)
    assert [section["per_class"][k]["roc_auc"] for k in some] == pytest.approx(
        [roc_auc_score(y[1000:] == k, scores[:, k]) for k in some]
    )
    assert report["headline"]["roc_auc"] == pytest.approx(np.mean([row["roc_auc"] for row in section["per_class"]]))


def test_without_a_test_split_the_validation_split_is_used_and_said(tmp_path):
    X = np.random.RandomState(5).normal(size=(40, 4))
    path = dataset(tmp_path, "no_test", X, X[:, 0])
    result, report, _ = run(tmp_path, config_for(path, 1, "mse", "linear", {"fit": 0.75, "val": 0.25}))
    assert report["split"] == "val"
    assert report["samples"] == 10
    assert "no test split" in report["split_note"]
    assert (
        "from the validation (there is no test split) split (10 samples)" in (result.path / "execution.log").read_text()
    )


def test_without_any_held_out_split_the_report_describes_the_model_only(tmp_path):
    X = np.random.RandomState(6).normal(size=(20, 4))
    path = dataset(tmp_path, "fit_only", X, X[:, 0])
    _, report, notes = run(tmp_path, config_for(path, 1, "mse", "linear", {"fit": 1.0}))
    assert report["split"] == "none"
    assert report["samples"] == 0
    assert "neither a test nor a validation split" in notes["predictions"]
    assert report["model"]["layers"][0]["output_shape"] == [None, 8]


def test_labels_the_model_cannot_hold_are_reported_not_raised(tmp_path):
    X = np.random.RandomState(7).normal(size=(40, 4))
    path = dataset(tmp_path, "three_labels", X, np.arange(40) % 3)
    config = config_for(path, 1, "binary_crossentropy", "sigmoid", {"fit": 0.5, "val": 0.25, "test": 0.25})
    _, report, notes = run(tmp_path, config)
    assert "classification" not in report
    assert report["headline"] == {}
    assert notes["classification"] == (
        "not computed: the model has one output, so labels should be 0/1 (or -1/1), but they hold '0', '1', '2'"
    )


class _BlockReport(keras.callbacks.Callback):
    """Puts a folder where evaluation.json would go, so writing the report fails for real."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def on_train_end(self, logs=None):
        (folder,) = self.root.glob("*/executions/*")
        (folder / "evaluation.json").mkdir()


def test_a_report_that_fails_leaves_a_warning_and_the_run_succeeds(tmp_path):
    X = np.random.RandomState(8).normal(size=(40, 4))
    path = dataset(tmp_path, "blocked", X, X[:, 0])
    config = load_config(config_for(path, 1, "mse", "linear", {"fit": 0.5, "val": 0.25, "test": 0.25}))
    root = tmp_path / "trainings"
    result = run_experiment(config, trainings_root=root, cache_dir=tmp_path / "cache", callbacks=[_BlockReport(root)])
    assert result.succeeded
    assert result.path is not None
    assert (result.path / "metrics.json").is_file()
    assert (
        "WARNING - Trainer - Evaluation report failed: IsADirectoryError" in (result.path / "execution.log").read_text()
    )
