"""``manage.py train``: exit codes, the last stdout line, and nothing written for a bad config."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, tiny

pytestmark = pytest.mark.training


def train(config, tmp_path, *extra):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'index.sqlite3'}",
        "GYMNOS_TRAININGS_ROOT": str(tmp_path / "trainings"),
    }
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "train",
        str(config_file),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    return subprocess.run([*command, *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_it_trains_and_prints_the_execution_folder_last(tmp_path):
    done = train(tiny(), tmp_path)
    assert done.returncode == 0, done.stderr
    folder = done.stdout.strip().splitlines()[-1]
    assert folder.startswith(str(tmp_path / "trainings" / "boston_housing" / "executions"))
    assert {"execution.log", "metrics.json", "model.h5", "training_config.json"} <= set(os.listdir(folder))
    assert "Trainer - Saving model" in done.stderr  # the log is shown as it goes


def test_an_invalid_config_exits_2_lists_every_problem_and_writes_nothing(tmp_path):
    config = tiny()
    config["model"]["network"][1]["units"] = -5
    config["training"]["epoch"] = 3
    config["model"]["network"][0]["activaton"] = "relu"  # only Keras can tell: told beside the schema's
    done = train(config, tmp_path, "--trainings-root", str(tmp_path / "elsewhere"))
    assert done.returncode == 2
    assert "model.network[1].units: must be a positive integer, got -5" in done.stderr
    assert "training.epoch: unknown key; did you mean 'epochs'?" in done.stderr
    assert "model.network[0].activaton: unknown argument for dense; did you mean 'activation'?" in done.stderr
    assert not (tmp_path / "elsewhere").exists()
    assert not (tmp_path / "trainings").exists()
    assert not (tmp_path / "cache").exists()


def test_a_missing_config_file_exits_2(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "train", str(tmp_path / "nope.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'i.sqlite3'}"},
    )
    assert done.returncode == 2
    assert "cannot read" in done.stderr


def test_a_training_failure_exits_1_and_keeps_the_folder(tmp_path):
    config = tiny()
    config["model"]["input_shape"] = [12]
    done = train(config, tmp_path)
    assert done.returncode == 1
    folder = done.stdout.strip().splitlines()[-1]
    assert "Training failed: ValueError: model.input_shape is [12]" in done.stderr
    assert "error" in json.loads(open(os.path.join(folder, "metrics.json")).read())


def test_an_invalid_config_naming_mlflow_leaves_no_mlflow_store_either(tmp_path):
    config = tiny(trackers=[{"type": "mlflow"}])
    config["training"]["batch_size"] = 0
    done = train(config, tmp_path)
    assert done.returncode == 2
    assert "training.batch_size: must be a positive integer, got 0" in done.stderr
    assert not (tmp_path / "trainings").exists()
