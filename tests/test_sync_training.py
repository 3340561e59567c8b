"""Folders that training really wrote: ``manage.py train`` indexes its own execution when it ends."""

import io
import json
import os

import pytest
from django.core.management import call_command

from experiments.index.sync import sync_trainings
from experiments.models import Execution, Experiment
from tests.helpers import tiny

pytestmark = [pytest.mark.django_db, pytest.mark.training]

CHECKPOINT = {"type": "model_checkpoint", "filepath": "weights.{epoch:02d}-{val_loss:.2f}.h5", "period": 1}


def train(config, tmp_path):
    """Run ``manage.py train`` in this process (so it uses the test database); returns (exit code, stdout lines)."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    out = io.StringIO()
    try:
        call_command(
            "train",
            str(config_file),
            trainings_root=str(tmp_path / "trainings"),
            cache_dir=str(tmp_path / "cache"),
            no_progress=True,
            stdout=out,
        )
        code: str | int | None = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue().splitlines()


def test_train_indexes_the_folder_it_wrote(tmp_path):
    code, out = train(tiny(epochs=2, callbacks=[CHECKPOINT]), tmp_path)
    assert code == 0
    folder = out[-1]  # still the last line
    execution = Execution.objects.select_related("experiment").get()
    assert execution.folder_path == folder
    assert execution.experiment.name == "boston_housing"
    assert execution.status == Execution.Status.SUCCEEDED
    assert execution.error == ""
    written = json.loads(open(f"{folder}/metrics.json").read())
    assert execution.epochs == 2
    assert execution.history("val_loss") == written["metrics"]["val_loss"]
    assert execution.test_loss == written["metrics"]["test_loss"][0]
    assert execution.hardware["python"]
    assert set(execution.elapsed) == set(written["elapsed"])
    assert [a["path"] for a in execution.artifacts if a["path"].startswith("callbacks/")] == sorted(
        f"callbacks/model_checkpoint/{name}" for name in os.listdir(f"{folder}/callbacks/model_checkpoint")
    )
    assert execution.finished_at is not None
    assert execution.started_at is not None
    assert execution.started_at <= execution.finished_at

    # The sweep agrees with what train indexed: nothing left to do.
    assert sync_trainings(tmp_path / "trainings").line() == "indexed 0, unchanged 1, errors 0"


def test_a_failed_training_is_indexed_as_failed_with_its_error(tmp_path):
    config = tiny(epochs=2)
    config["model"]["input_shape"] = [12]
    code, out = train(config, tmp_path)
    assert code == 1
    execution = Execution.objects.get()
    assert execution.folder_path == out[-1]
    assert execution.status == Execution.Status.FAILED
    assert execution.error.startswith("ValueError: model.input_shape is [12]")


def test_a_config_error_touches_nothing(tmp_path):
    config = tiny()
    config["model"]["network"][0]["units"] = -5
    code, out = train(config, tmp_path)
    assert code == 2
    assert out == []
    assert not Experiment.objects.exists()
    assert not Execution.objects.exists()
    assert not (tmp_path / "trainings").exists()
